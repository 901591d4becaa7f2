package telemetry

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Namespace is the generation-2 telemetry namespace.
const Namespace = "urn:flexipack:telemetry:2"

// MaxSamples is the most samples one message may carry; more rejects the message.
const MaxSamples = 1000

// Decoder decodes message bodies; not safe for concurrent use; reuse one per goroutine.
type Decoder struct {
	// Now is the clock readings are checked against (no more than 10 minutes
	// in the future); nil means time.Now.
	Now func() time.Time

	sc      scanner
	now     time.Time
	recs    []Record
	rejects []Reject
	temps   []Temp
	alarms  []Alarm
	arena   []byte // the strings records point at
	textBuf []byte // a leaf's text when it came in several pieces

	jsonScratch []byte   // DecodeJSON's unescaped strings
	jsonStrs    interner // DecodeJSON's repeated strings

	inspect bool
	msgErr  *MessageError
	samples int
	gen     int

	unitSeen                           bool
	unit, site, model, firmware, schem string

	// The sample being decoded.
	cur      Record
	idx      int
	seqRaw   []byte
	rejected bool
	rField   string
	rReason  string
	seen     uint16
	t0, a0   int // where the sample's temperatures and alarms start
}

// NewDecoder returns a decoder whose clock is time.Now.
func NewDecoder() *Decoder { return &Decoder{} }

// Result is what one message decoded to. Records, their strings, the
// Rejects slice and Unit belong to the Decoder and are reused by its next
// Decode (the strings inside each Reject are the caller's). On a message
// error, Unit is the caller's.
type Result struct {
	Records    []Record // accepted readings, in message order
	Rejects    []Reject // rejected samples, in message order
	Generation int      // 1 or 2; 0 when the root was not recognised
	Unit       string   // the unit identifier, when found
}

// Summary is what Inspect extracts for message headers.
type Summary struct {
	Generation int
	Unit       string
	Samples    int // samples (generation 2) or readings (generation 1) in the message
}

var inspectPool = sync.Pool{New: func() any { return &Decoder{inspect: true} }}

// Inspect checks size and well-formedness only and extracts what a publisher
// puts in message headers. The error, if any, is a *MessageError; the sample
// count is reported, not checked, and samples are not decoded.
func Inspect(body []byte) (Summary, error) {
	d := inspectPool.Get().(*Decoder)
	defer inspectPool.Put(d)
	res, err := d.Decode(body)
	sum := Summary{Generation: res.Generation, Unit: strings.Clone(res.Unit), Samples: d.samples}
	if err != nil {
		return sum, err
	}
	return sum, nil
}

// Decode returns the accepted records and per-sample rejections of one message.
// A non-nil error (*MessageError) means the whole message is rejected.
// res.Records alias d's memory until the next Decode; use Clone to keep one.
// res.Rejects is reused by the next Decode too; its strings are the caller's.
func (d *Decoder) Decode(body []byte) (Result, error) {
	d.begin()
	if len(body) > MaxMessageBytes {
		return Result{}, &MessageError{Kind: KindTooLarge, Reason: fmt.Sprintf("message is %d bytes, over the %d-byte (1 MiB) limit", len(body), MaxMessageBytes)}
	}
	d.sc.reset(body)
	if cap(d.arena) < len(body) {
		// Strings copied out of the body never add up to more than the body,
		// so the arena never moves during a Decode.
		d.arena = make([]byte, 0, len(body))
	}
	if bad := checkChars(body); bad >= 0 {
		d.sc.fail(bad, "not UTF-8 encoded XML text (invalid UTF-8 or a character XML forbids)")
		return d.fail(d.sc.messageError())
	}
	if d.sc.prolog() == tokErr {
		return d.fail(d.sc.messageError())
	}
	switch d.sc.next() {
	case tokErr:
		return d.fail(d.sc.messageError())
	case tokStart:
	default:
		return d.fail(&MessageError{Kind: KindNotWellFormed, Reason: "not well-formed: no root element"})
	}
	ok := true
	switch {
	case len(d.sc.space) == 0 && string(d.sc.local) == "telemetry":
		d.gen = 1
		ok = d.gen1()
	case string(d.sc.space) == Namespace && string(d.sc.local) == "Telemetry":
		d.gen = 2
		ok = d.gen2()
	default:
		name := string(d.sc.local)
		if len(d.sc.space) > 0 {
			name = "{" + string(d.sc.space) + "}" + name
		}
		d.messageFail(KindUnknownRoot, fmt.Sprintf("unknown root element %s: want <telemetry> (generation 1) or <Telemetry> in namespace %s (generation 2)", name, Namespace))
		ok = d.skip()
	}
	if ok {
		if k := d.sc.next(); k != tokEOF {
			ok = false // the scanner refuses anything after the root but comments, PIs and white space
		}
	}
	if !ok {
		return d.fail(d.sc.messageError())
	}
	if d.msgErr != nil {
		return d.fail(d.msgErr)
	}
	for i := range d.recs {
		r := &d.recs[i]
		r.Unit, r.Site, r.Model, r.Firmware, r.Schema = d.unit, d.site, d.model, d.firmware, d.schem
	}
	return Result{Records: d.recs, Rejects: d.rejects, Generation: d.gen, Unit: d.unit}, nil
}

func (d *Decoder) begin() {
	d.now = time.Time{}
	if !d.inspect {
		if d.Now != nil {
			d.now = d.Now()
		} else {
			d.now = time.Now()
		}
	}
	clear(d.recs) // drop references to the previous message's strings
	d.recs = d.recs[:0]
	d.rejects = d.rejects[:0]
	d.temps = d.temps[:0]
	d.alarms = d.alarms[:0]
	d.arena = d.arena[:0]
	d.msgErr = nil
	d.samples, d.gen = 0, 0
	d.unitSeen = false
	d.unit, d.site, d.model, d.firmware, d.schem = "", "", "", "", ""
}

func (d *Decoder) fail(e *MessageError) (Result, error) {
	res := Result{Generation: d.gen, Unit: strings.Clone(d.unit)}
	d.recs = d.recs[:0]
	d.rejects = d.rejects[:0]
	return res, e
}

// messageFail records the first semantic reason to reject the message;
// scanning goes on so that a well-formedness error, if any, wins.
func (d *Decoder) messageFail(kind MessageKind, reason string) {
	if d.msgErr == nil {
		d.msgErr = &MessageError{Kind: kind, Reason: reason}
	}
}

// str copies b into the arena and returns it as a string that lives until
// the next Decode.
func (d *Decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
}

// skip consumes the rest of the element just started.
func (d *Decoder) skip() bool {
	for depth := 1; depth > 0; {
		switch d.sc.next() {
		case tokStart:
			depth++
		case tokEnd:
			depth--
		case tokErr, tokEOF:
			return false
		}
	}
	return true
}

// leaf reads the text of the element just started, up to its end tag. Child
// elements in a foreign namespace are skipped; a child in ns is reported in
// child (the caller rejects the sample).
func (d *Decoder) leaf(ns string) (text []byte, child string, ok bool) {
	pieces := 0
	for {
		switch d.sc.next() {
		case tokText:
			switch pieces {
			case 0:
				text = d.sc.text
			case 1:
				d.textBuf = append(append(d.textBuf[:0], text...), d.sc.text...)
				text = d.textBuf
			default:
				d.textBuf = append(d.textBuf, d.sc.text...)
				text = d.textBuf
			}
			pieces++
		case tokStart:
			if string(d.sc.space) == ns && child == "" {
				child = string(d.sc.local)
			}
			if !d.skip() {
				return nil, "", false
			}
		case tokEnd:
			return text, child, true
		default:
			return nil, "", false
		}
	}
}

// Per-sample rejection. The first problem found names the sample's reason.
func (d *Decoder) reject(field, reason string) {
	if !d.rejected {
		d.rejected, d.rField, d.rReason = true, field, reason
	}
}

func (d *Decoder) beginSample(idx int) {
	d.cur = Record{}
	d.idx = idx
	d.seqRaw = nil
	d.rejected, d.rField, d.rReason = false, "", ""
	d.seen = 0
	d.t0, d.a0 = len(d.temps), len(d.alarms)
}

// sampleAttrs reads seq and the time attribute (named timeAttr).
func (d *Decoder) sampleAttrs(timeAttr string, epochMs bool) {
	if v, ok := d.sc.attr("seq"); ok {
		d.seqRaw = v
		n, ok := parseSeq(v)
		if !ok {
			d.reject("seq", quoteShort(v)+" is not a non-negative integer")
		}
		d.cur.Seq, d.cur.HasSeq = n, ok
	}
	v, ok := d.sc.attr(timeAttr)
	if !ok || len(v) == 0 {
		d.reject(timeAttr, "missing")
		return
	}
	var ms int64
	if epochMs {
		n, ok := parseInt(v)
		if !ok {
			d.reject(timeAttr, quoteShort(v)+" is not an integer of Unix epoch milliseconds")
			return
		}
		ms = n
	} else {
		var why string
		if ms, why = parseRFC3339(v); why != "" {
			d.reject(timeAttr, why)
			return
		}
	}
	if why := checkTime(ms, d.now); why != "" {
		d.reject(timeAttr, why)
		return
	}
	d.cur.TimeMs = ms
}

// endSample keeps the record or the rejection.
func (d *Decoder) endSample() {
	t0, a0 := d.t0, d.a0
	if d.rejected {
		d.temps = d.temps[:t0]
		d.alarms = d.alarms[:a0]
		d.rejects = append(d.rejects, Reject{Index: d.idx, Seq: string(d.seqRaw), Field: d.rField, Reason: d.rReason})
		return
	}
	if len(d.temps) > t0 {
		d.cur.Temps = d.temps[t0:len(d.temps):len(d.temps)]
	}
	if len(d.alarms) > a0 {
		d.cur.Alarms = d.alarms[a0:len(d.alarms):len(d.alarms)]
	}
	d.recs = append(d.recs, d.cur)
}

// number parses a measurement's text: empty means not reported.
func (d *Decoder) number(field string, text []byte, conv unitConv) (float64, bool) {
	v, present, why := number(text, conv)
	if why != "" {
		d.reject(field, why)
	}
	return v, present && why == ""
}

func number(text []byte, conv unitConv) (v float64, present bool, why string) {
	text = trimXMLSpace(text)
	if len(text) == 0 {
		return 0, false, ""
	}
	v, sig, why := parseDecimal(text)
	if why != "" {
		return 0, true, why
	}
	return convert(v, sig, conv), true, ""
}

// percent parses SoC or SoH: the range is checked on the value as sent,
// before rounding (100.0001 is out of range though it rounds to 100).
func (d *Decoder) percent(field string, text []byte) (float64, bool) {
	text = trimXMLSpace(text)
	if len(text) == 0 {
		return 0, false
	}
	v, sig, why := parseDecimal(text)
	if why == "" {
		why = checkPercent(v)
	}
	if why != "" {
		d.reject(field, why)
		return 0, false
	}
	return convert(v, sig, convNone), true
}

// integer parses a generation-1 integer measurement: empty means not reported.
func (d *Decoder) integer(field string, text []byte, conv unitConv, unitName string) (float64, bool) {
	text = trimXMLSpace(text)
	if len(text) == 0 {
		return 0, false
	}
	n, ok := parseInt(text)
	if !ok {
		if _, _, why := parseDecimal(text); why != "" {
			d.reject(field, why)
		} else {
			d.reject(field, quoteShort(text)+" is not an integer ("+unitName+")")
		}
		return 0, false
	}
	return convert(float64(n), 0, conv), true
}

// addTemp adds a temperature to the sample, sorted by sensor; a repeated
// sensor rejects the sample (field "" names it Temperature[sensor]).
func (d *Decoder) addTemp(field string, sensor []byte, c float64) {
	t0 := d.t0
	i := len(d.temps)
	for i > t0 && d.temps[i-1].Sensor > string(sensor) {
		i--
	}
	if i > t0 && d.temps[i-1].Sensor == string(sensor) {
		if field == "" {
			field = tempField(sensor, "")
		}
		d.reject(field, "sensor repeated")
		return
	}
	d.temps = append(d.temps, Temp{})
	copy(d.temps[i+1:], d.temps[i:])
	d.temps[i] = Temp{Sensor: d.str(sensor), C: c}
}

func tempField(sensor []byte, suffix string) string {
	return "Temperature[" + string(sensor) + "]" + suffix
}

var (
	cellMax = []byte("cell_max")
	cellMin = []byte("cell_min")
)

// Element bits for "at most once" checks.
const (
	seenSoC uint16 = 1 << iota
	seenSoH
	seenVoltage
	seenCurrent
	seenPower
	seenMode
	seenAlarms
	seenTempMax
	seenTempMin
)

func (d *Decoder) once(bit uint16, field string) {
	if d.seen&bit != 0 {
		d.reject(field, "element repeated")
	}
	d.seen |= bit
}

func (d *Decoder) unitFields(id, site, model, firmware []byte, idName, elem string) {
	if d.unitSeen {
		d.messageFail(KindStructure, fmt.Sprintf("<%s> repeated: a message is from one unit", elem))
		return
	}
	d.unitSeen = true
	if len(trimXMLSpace(id)) == 0 {
		d.messageFail(KindNoUnit, fmt.Sprintf("no unit identifier: <%s> without %s", elem, idName))
		return
	}
	for _, f := range [...]struct {
		name string
		v    []byte
	}{{idName, id}, {"site", site}, {"model", model}} {
		if why := checkTagValue(f.v); why != "" {
			d.messageFail(KindStructure, fmt.Sprintf("%s@%s: %s", elem, f.name, why))
			return
		}
	}
	d.unit, d.site, d.model, d.firmware = d.str(id), d.str(site), d.str(model), d.str(firmware)
}

func (d *Decoder) gen2() bool {
	d.schem = Schema20
	if v, ok := d.sc.attr("schemaVersion"); ok {
		s, known := internSchema(v)
		if !known || s == Schema10 {
			d.messageFail(KindStructure, fmt.Sprintf("Telemetry@schemaVersion %s: want 2.0 or 2.1", quoteShort(v)))
		}
		d.schem = s
	}
	for {
		switch d.sc.next() {
		case tokText:
		case tokEnd:
			if !d.unitSeen {
				d.messageFail(KindNoUnit, "no unit identifier: no <Unit> element")
			}
			if d.inspect {
				return true // Inspect reports the count, it does not judge it
			}
			if d.samples == 0 {
				d.messageFail(KindStructure, "no <Sample> element")
			} else if d.samples > MaxSamples {
				d.messageFail(KindStructure, fmt.Sprintf("%d samples: at most %d per message", d.samples, MaxSamples))
			}
			return true
		case tokStart:
			if string(d.sc.space) != Namespace {
				if !d.skip() {
					return false
				}
				continue
			}
			switch string(d.sc.local) {
			case "Unit":
				serial, _ := d.sc.attr("serial")
				site, _ := d.sc.attr("site")
				model, _ := d.sc.attr("model")
				fw, _ := d.sc.attr("firmware")
				d.unitFields(serial, site, model, fw, "serial", "Unit")
				if !d.noChildren("Unit") {
					return false
				}
			case "Sample":
				d.samples++
				if d.inspect || d.samples > MaxSamples || d.msgErr != nil {
					if !d.skip() {
						return false
					}
					continue
				}
				if !d.sample2(d.samples - 1) {
					return false
				}
			default:
				d.messageFail(KindStructure, fmt.Sprintf("unknown element <%s> in <Telemetry>", d.sc.local))
				if !d.skip() {
					return false
				}
			}
		default:
			return false
		}
	}
}

// noChildren consumes an element that must have no child in the
// telemetry namespace (ours); text is ignored.
func (d *Decoder) noChildren(elem string) bool {
	_, child, ok := d.leaf(d.ourNS())
	if ok && child != "" {
		d.messageFail(KindStructure, fmt.Sprintf("unknown element <%s> in <%s>", child, elem))
	}
	return ok
}

func (d *Decoder) ourNS() string {
	if d.gen == 1 {
		return ""
	}
	return Namespace
}

func measureUnit(field string, v []byte, present bool) (unitConv, string) {
	if !present {
		return convNone, ""
	}
	switch field {
	case "Voltage":
		switch string(v) {
		case "V":
			return convNone, ""
		case "mV":
			return convMilli, ""
		}
		return 0, fmt.Sprintf("unit %s is not V or mV", quoteShort(v))
	case "Current":
		switch string(v) {
		case "A":
			return convNone, ""
		case "mA":
			return convMilli, ""
		}
		return 0, fmt.Sprintf("unit %s is not A or mA", quoteShort(v))
	case "Power":
		switch string(v) {
		case "kW":
			return convNone, ""
		case "W":
			return convMilli, ""
		}
		return 0, fmt.Sprintf("unit %s is not kW or W", quoteShort(v))
	default: // Temperature
		switch string(v) {
		case "C":
			return convNone, ""
		case "F":
			return convF, ""
		case "K":
			return convK, ""
		}
		return 0, fmt.Sprintf("unit %s is not C, F or K", quoteShort(v))
	}
}

func (d *Decoder) sample2(idx int) bool {
	d.beginSample(idx)
	d.sampleAttrs("time", false)
	for {
		switch d.sc.next() {
		case tokText:
		case tokEnd:
			d.endSample()
			return true
		case tokStart:
			if string(d.sc.space) != Namespace {
				if !d.skip() {
					return false
				}
				continue
			}
			if !d.sampleChild2() {
				return false
			}
		default:
			return false
		}
	}
}

func (d *Decoder) sampleChild2() bool {
	local := d.sc.local
	switch string(local) {
	case "SoC", "SoH":
		field, bit, has := "SoC", seenSoC, HasSoC
		if string(local) == "SoH" {
			field, bit, has = "SoH", seenSoH, HasSoH
		}
		d.once(bit, field)
		text, ok := d.leafOK(field)
		if !ok {
			return false
		}
		if v, present := d.percent(field, text); present {
			if has == HasSoC {
				d.cur.SoC = v
			} else {
				d.cur.SoH = v
			}
			d.cur.Has |= has
		}
	case "Voltage", "Current", "Power":
		return d.measure2(local)
	case "Temperature":
		return d.temperature2()
	case "Mode":
		d.once(seenMode, "Mode")
		text, ok := d.leafOK("Mode")
		if !ok {
			return false
		}
		if text = trimXMLSpace(text); len(text) > 0 {
			m, known := internMode(text)
			if !known {
				d.reject("Mode", quoteShort(text)+" is not one of "+modeList)
			}
			d.cur.Mode = m
		}
	case "Alarms":
		d.once(seenAlarms, "Alarms")
		return d.alarms2()
	default:
		d.reject(string(local), "unknown element in <Sample>")
		return d.skip()
	}
	return true
}

// measure2 reads a generation-2 <Voltage>, <Current> or <Power> (local)
// with its unit attribute into the current sample; false when the sample
// is rejected and the decoder must skip it.
func (d *Decoder) measure2(local []byte) bool {
	var (
		field string
		bit   uint16
		has   Presence
	)
	switch string(local) {
	case "Voltage":
		field, bit, has = "Voltage", seenVoltage, HasVoltage
	case "Current":
		field, bit, has = "Current", seenCurrent, HasCurrent
	default:
		field, bit, has = "Power", seenPower, HasPower
	}
	d.once(bit, field)
	u, uok := d.sc.attr("unit")
	text, ok := d.leafOK(field)
	if !ok {
		return false
	}
	if len(trimXMLSpace(text)) == 0 {
		return true
	}
	conv, why := measureUnit(field, u, uok)
	if why != "" {
		d.reject(field+"@unit", why)
		return true
	}
	if v, present := d.number(field, text, conv); present {
		switch has {
		case HasVoltage:
			d.cur.Voltage = v
		case HasCurrent:
			d.cur.Current = v
		default:
			d.cur.Power = v
		}
		d.cur.Has |= has
	}
	return true
}

// temperature2 reads a generation-2 <Temperature> with its sensor and unit
// attributes into the current sample; false as for measure2.
func (d *Decoder) temperature2() bool {
	sensor, sok := d.sc.attr("sensor")
	u, uok := d.sc.attr("unit")
	text, ok := d.leafOK("Temperature")
	if !ok {
		return false
	}
	if len(trimXMLSpace(text)) == 0 {
		return true // not reported: nothing of it is checked
	}
	if !sok {
		d.reject("Temperature@sensor", "missing")
		return true
	}
	if !validSensor(sensor) {
		d.reject("Temperature@sensor", quoteShort(sensor)+" does not match [a-z0-9_]{1,32}")
		return true
	}
	conv, why := measureUnit("Temperature", u, uok)
	if why != "" {
		d.reject(tempField(sensor, "@unit"), why)
		return true
	}
	v, _, why := number(text, conv)
	if why != "" {
		d.reject(tempField(sensor, ""), why)
		return true
	}
	d.addTemp("", sensor, v)
	return true
}

// leafOK reads a leaf's text and rejects the sample if it has a child
// element in the telemetry namespace.
func (d *Decoder) leafOK(field string) ([]byte, bool) {
	text, child, ok := d.leaf(d.ourNS())
	if child != "" {
		d.reject(field, "unexpected element <"+child+"> inside")
	}
	return text, ok
}

func (d *Decoder) alarms2() bool {
	n := 0
	for {
		switch d.sc.next() {
		case tokText:
		case tokEnd:
			return true
		case tokStart:
			if string(d.sc.space) != Namespace {
				if !d.skip() {
					return false
				}
				continue
			}
			if string(d.sc.local) != "Alarm" {
				d.reject("Alarms", "unexpected element <"+string(d.sc.local)+"> inside")
				if !d.skip() {
					return false
				}
				continue
			}
			code, _ := d.sc.attr("code")
			sev, _ := d.sc.attr("severity")
			field := ""
			if why := checkTagValue(code); why != "" {
				field = "Alarm[" + strconv.Itoa(n) + "]@code"
				d.reject(field, why)
			} else if why := checkTagValue(sev); why != "" {
				field = "Alarm[" + strconv.Itoa(n) + "]@severity"
				d.reject(field, why)
			}
			text, child, ok := d.leaf(Namespace)
			if !ok {
				return false
			}
			if child != "" {
				d.reject("Alarm["+strconv.Itoa(n)+"]", "unexpected element <"+child+"> inside")
			}
			if !d.rejected {
				d.alarms = append(d.alarms, Alarm{Code: d.str(code), Severity: d.str(sev), Text: d.str(text)})
			}
			n++
		default:
			return false
		}
	}
}

func (d *Decoder) gen1() bool {
	d.schem = Schema10
	if v, ok := d.sc.attr("schema"); !ok || string(v) != Schema10 {
		if ok {
			d.messageFail(KindStructure, fmt.Sprintf("telemetry@schema %s: want 1.0", quoteShort(v)))
		} else {
			d.messageFail(KindStructure, "telemetry@schema missing: want 1.0")
		}
	}
	for {
		switch d.sc.next() {
		case tokText:
		case tokEnd:
			if !d.unitSeen {
				d.messageFail(KindNoUnit, "no unit identifier: no <unit> element")
			}
			if d.samples != 1 && !d.inspect {
				d.messageFail(KindStructure, fmt.Sprintf("%d <reading> elements: generation 1 sends exactly one", d.samples))
			}
			return true
		case tokStart:
			if len(d.sc.space) != 0 {
				if !d.skip() {
					return false
				}
				continue
			}
			switch string(d.sc.local) {
			case "unit":
				id, _ := d.sc.attr("id")
				site, _ := d.sc.attr("site")
				model, _ := d.sc.attr("model")
				d.unitFields(id, site, model, nil, "id", "unit")
				if !d.noChildren("unit") {
					return false
				}
			case "reading":
				d.samples++
				if d.inspect || d.samples > 1 || d.msgErr != nil {
					if !d.skip() {
						return false
					}
					continue
				}
				if !d.reading1() {
					return false
				}
			default:
				d.messageFail(KindStructure, fmt.Sprintf("unknown element <%s> in <telemetry>", d.sc.local))
				if !d.skip() {
					return false
				}
			}
		default:
			return false
		}
	}
}

func (d *Decoder) reading1() bool {
	d.beginSample(0)
	d.sampleAttrs("ts", true)
	for {
		switch d.sc.next() {
		case tokText:
		case tokEnd:
			// Only one reading per message: a rejected one leaves no record,
			// and a second reading rejects the message anyway.
			d.endSample()
			return true
		case tokStart:
			if len(d.sc.space) != 0 {
				if !d.skip() {
					return false
				}
				continue
			}
			var (
				bit  uint16
				conv unitConv
				name string
			)
			switch string(d.sc.local) {
			case "soc":
				bit, name = seenSoC, "soc"
			case "voltage":
				bit, conv, name = seenVoltage, convMilli, "voltage"
			case "current":
				bit, conv, name = seenCurrent, convMilli, "current"
			case "temp_max":
				bit, conv, name = seenTempMax, convTenth, "temp_max"
			case "temp_min":
				bit, conv, name = seenTempMin, convTenth, "temp_min"
			case "state":
				bit, name = seenMode, "state"
			default:
				d.reject(string(d.sc.local), "unknown element in <reading>")
				if !d.skip() {
					return false
				}
				continue
			}
			d.once(bit, name)
			text, ok := d.leafOK(name)
			if !ok {
				return false
			}
			d.field1(name, conv, text)
		default:
			return false
		}
	}
}

// field1 stores the text of the generation-1 reading's element name
// (converted with conv) in the current sample, or rejects it.
func (d *Decoder) field1(name string, conv unitConv, text []byte) {
	switch name {
	case "soc":
		if v, present := d.percent(name, text); present {
			d.cur.SoC, d.cur.Has = v, d.cur.Has|HasSoC
		}
	case "voltage":
		if v, present := d.integer(name, text, conv, "millivolts"); present {
			d.cur.Voltage, d.cur.Has = v, d.cur.Has|HasVoltage
		}
	case "current":
		if v, present := d.integer(name, text, conv, "milliamperes"); present {
			d.cur.Current, d.cur.Has = v, d.cur.Has|HasCurrent
		}
	case "temp_max", "temp_min":
		if v, present := d.integer(name, text, conv, "tenths of a degree Celsius"); present {
			sensor := cellMax
			if name == "temp_min" {
				sensor = cellMin
			}
			d.addTemp(name, sensor, v)
		}
	case "state":
		text = trimXMLSpace(text)
		if len(text) == 0 {
			break
		}
		n, ok := parseInt(text)
		if !ok || n < 0 || n > 3 {
			d.reject(name, quoteShort(text)+" is not one of 0 (idle), 1 (charging), 2 (discharging), 3 (fault)")
			break
		}
		d.cur.Mode = [...]string{ModeIdle, ModeCharging, ModeDischarging, ModeFault}[n]
	}
}
