package telemetry

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// AppendJSON appends the record as one normalised JSON object (no newline),
// with keys in the contract's order; keys not reported are left out, alarms
// too when there are none. time is UTC with exactly three fractional
// digits; numbers use the shortest form that reads back to the same float
// (exponent forms for very large or small magnitudes, as encoding/json).
func AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"unit":`...)
	dst = appendJSONString(dst, r.Unit)
	if r.Site != "" {
		dst = append(dst, `,"site":`...)
		dst = appendJSONString(dst, r.Site)
	}
	if r.Model != "" {
		dst = append(dst, `,"model":`...)
		dst = appendJSONString(dst, r.Model)
	}
	if r.Firmware != "" {
		dst = append(dst, `,"firmware":`...)
		dst = appendJSONString(dst, r.Firmware)
	}
	dst = append(dst, `,"schema":`...)
	dst = appendJSONString(dst, r.Schema)
	if r.HasSeq {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendInt(dst, r.Seq, 10)
	}
	dst = append(dst, `,"time":"`...)
	dst = appendTimeMs(dst, r.TimeMs)
	dst = append(dst, '"')
	if r.Has&HasSoC != 0 {
		dst = appendJSONFloat(dst, `,"soc_pct":`, r.SoC)
	}
	if r.Has&HasSoH != 0 {
		dst = appendJSONFloat(dst, `,"soh_pct":`, r.SoH)
	}
	if r.Has&HasVoltage != 0 {
		dst = appendJSONFloat(dst, `,"voltage_v":`, r.Voltage)
	}
	if r.Has&HasCurrent != 0 {
		dst = appendJSONFloat(dst, `,"current_a":`, r.Current)
	}
	if r.Has&HasPower != 0 {
		dst = appendJSONFloat(dst, `,"power_kw":`, r.Power)
	}
	if len(r.Temps) > 0 {
		dst = append(dst, `,"temp_c":{`...)
		n := 0
		for i := range r.Temps {
			t := &r.Temps[i]
			if !finite(t.C) {
				continue
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = appendJSONString(dst, t.Sensor)
			dst = appendJSONFloat(dst, ":", t.C)
		}
		dst = append(dst, '}')
	}
	if r.Mode != "" {
		dst = append(dst, `,"mode":`...)
		dst = appendJSONString(dst, r.Mode)
	}
	if len(r.Alarms) > 0 {
		dst = append(dst, `,"alarms":[`...)
		for i := range r.Alarms {
			a := &r.Alarms[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"code":`...)
			dst = appendJSONString(dst, a.Code)
			dst = append(dst, `,"severity":`...)
			dst = appendJSONString(dst, a.Severity)
			dst = append(dst, `,"text":`...)
			dst = appendJSONString(dst, a.Text)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// AppendJSONNumber appends f as encoding/json writes a float64 (null for
// a NaN or an infinity, which encoding/json refuses).
func AppendJSONNumber(dst []byte, f float64) []byte { return appendJSONFloat(dst, "", f) }

// appendJSONFloat writes a number the way encoding/json does; a NaN or
// infinity (never produced by the decoders) is written as null.
func appendJSONFloat(dst []byte, key string, f float64) []byte {
	dst = append(dst, key...)
	if !finite(f) {
		return append(dst, "null"...)
	}
	if out, ok := appendShortDecimal(dst, f); ok {
		return out
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += n
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// DecodeJSON reads one normalised record (one JSON object, as AppendJSON
// writes it; surrounding white space allowed) and validates it the way Decode
// validates a sample: unit, schema and time required; time any RFC 3339
// form (truncated to the millisecond) within [2015-01-01, now+10min]; known
// keys only, each at most once; SoC and SoH in 0..100; mode one of the listed
// values; sensor names [a-z0-9_]{1,32}, distinct; seq a non-negative
// integer; values rounded to 6 significant digits; tag values that line
// protocol can carry. null is refused everywhere. The error is a
// *FieldError. The returned record shares no mutable memory with line or
// d: its strings may be shared with the decoder's other records (Go strings
// are immutable), so repeated values such as unit and site cost nothing.
func (d *Decoder) DecodeJSON(line []byte) (Record, error) {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	p := jsonParser{b: line, scratch: d.jsonScratch[:0], strs: &d.jsonStrs}
	defer func() { d.jsonScratch = p.scratch }()
	r, err := p.record()
	if err != nil {
		return Record{}, err
	}
	if err := validateRecord(&r, now(), true); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Validate checks a record the way DecodeJSON does, except for the
// future-time bound (which needs a clock): for records built by hand, such
// as rows read back from the legacy store.
func (r *Record) Validate() error { return validateRecord(r, time.Time{}, false) }

func validateRecord(r *Record, now time.Time, checkFuture bool) error {
	if strings.TrimSpace(r.Unit) == "" {
		return &FieldError{"unit", "missing"}
	}
	for _, f := range [...]struct{ k, v string }{{"unit", r.Unit}, {"site", r.Site}, {"model", r.Model}} {
		if why := checkTagValue([]byte(f.v)); why != "" {
			return &FieldError{f.k, why}
		}
	}
	if _, ok := internSchema([]byte(r.Schema)); !ok {
		return &FieldError{"schema", fmt.Sprintf("%q is not 1.0, 2.0 or 2.1", r.Schema)}
	}
	if r.HasSeq && r.Seq < 0 {
		return &FieldError{"seq", "negative"}
	}
	if r.TimeMs < MinTimeMs {
		return &FieldError{"time", checkTime(r.TimeMs, now)}
	}
	if checkFuture {
		if why := checkTime(r.TimeMs, now); why != "" {
			return &FieldError{"time", why}
		}
	}
	for _, f := range [...]struct {
		k   string
		bit Presence
		v   float64
	}{{"soc_pct", HasSoC, r.SoC}, {"soh_pct", HasSoH, r.SoH}, {"voltage_v", HasVoltage, r.Voltage}, {"current_a", HasCurrent, r.Current}, {"power_kw", HasPower, r.Power}} {
		if r.Has&f.bit == 0 {
			continue
		}
		if !finite(f.v) {
			return &FieldError{f.k, "not a finite number"}
		}
		if f.bit == HasSoC || f.bit == HasSoH {
			if why := checkPercent(f.v); why != "" {
				return &FieldError{f.k, why}
			}
		}
	}
	for i := range r.Temps {
		t := &r.Temps[i]
		if !validSensor([]byte(t.Sensor)) {
			return &FieldError{"temp_c", fmt.Sprintf("sensor %q does not match [a-z0-9_]{1,32}", t.Sensor)}
		}
		if !finite(t.C) {
			return &FieldError{"temp_c." + t.Sensor, "not a finite number"}
		}
		if i > 0 && r.Temps[i-1].Sensor >= t.Sensor {
			return &FieldError{"temp_c." + t.Sensor, "sensors repeated or not sorted"}
		}
	}
	if r.Mode != "" {
		if _, ok := internMode([]byte(r.Mode)); !ok {
			return &FieldError{"mode", fmt.Sprintf("%q is not one of %s", r.Mode, modeList)}
		}
	}
	for i := range r.Alarms {
		a := &r.Alarms[i]
		if why := checkTagValue([]byte(a.Code)); why != "" {
			return &FieldError{fmt.Sprintf("alarms[%d].code", i), why}
		}
		if why := checkTagValue([]byte(a.Severity)); why != "" {
			return &FieldError{fmt.Sprintf("alarms[%d].severity", i), why}
		}
		if !utf8.ValidString(a.Text) {
			return &FieldError{fmt.Sprintf("alarms[%d].text", i), "not valid UTF-8"}
		}
	}
	for _, f := range [...]struct{ k, v string }{{"unit", r.Unit}, {"site", r.Site}, {"model", r.Model}, {"firmware", r.Firmware}} {
		if !utf8.ValidString(f.v) {
			return &FieldError{f.k, "not valid UTF-8"}
		}
	}
	return nil
}

// Clone returns a copy of the record that shares no memory with r (so it
// outlives the decoder's next Decode).
func (r *Record) Clone() Record {
	c := *r
	n := len(r.Unit) + len(r.Site) + len(r.Model) + len(r.Firmware) + len(r.Schema) + len(r.Mode)
	for i := range r.Temps {
		n += len(r.Temps[i].Sensor)
	}
	for i := range r.Alarms {
		a := &r.Alarms[i]
		n += len(a.Code) + len(a.Severity) + len(a.Text)
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range [...]string{r.Unit, r.Site, r.Model, r.Firmware, r.Schema, r.Mode} {
		b.WriteString(s)
	}
	for i := range r.Temps {
		b.WriteString(r.Temps[i].Sensor)
	}
	for i := range r.Alarms {
		a := &r.Alarms[i]
		b.WriteString(a.Code)
		b.WriteString(a.Severity)
		b.WriteString(a.Text)
	}
	all := b.String()
	take := func(s string) string {
		v := all[:len(s)]
		all = all[len(s):]
		return v
	}
	c.Unit, c.Site, c.Model, c.Firmware, c.Schema, c.Mode = take(r.Unit), take(r.Site), take(r.Model), take(r.Firmware), take(r.Schema), take(r.Mode)
	if r.Temps != nil {
		c.Temps = make([]Temp, len(r.Temps))
		for i, t := range r.Temps {
			c.Temps[i] = Temp{Sensor: take(t.Sensor), C: t.C}
		}
	}
	if r.Alarms != nil {
		c.Alarms = make([]Alarm, len(r.Alarms))
		for i, a := range r.Alarms {
			c.Alarms[i] = Alarm{Code: take(a.Code), Severity: take(a.Severity), Text: take(a.Text)}
		}
	}
	return c
}

// jsonParser reads the one JSON object shape a record has.
type jsonParser struct {
	b       []byte
	i       int
	scratch []byte    // a string's bytes when it had escapes
	strs    *interner // repeated short strings (unit, site, sensor…), shared
}

func (p *jsonParser) errf(format string, args ...any) error {
	return &FieldError{Reason: fmt.Sprintf("invalid JSON at offset %d: ", p.i) + fmt.Sprintf(format, args...)}
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) expect(c byte) error {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != c {
		return p.errf("%q expected", c)
	}
	p.i++
	return nil
}

func (p *jsonParser) peek() byte {
	p.ws()
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

// object calls f for each key of an object; duplicate keys are refused.
func (p *jsonParser) object(f func(key string) error) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
		return nil
	}
	var seenBuf [16]string
	seen := seenBuf[:0]
	for {
		p.ws()
		kb, err := p.strBytes()
		if err != nil {
			return err
		}
		key := recordKey(kb)
		if key == "" {
			key = p.strs.get(kb)
		}
		if slices.Contains(seen, key) {
			return &FieldError{key, "key repeated"}
		}
		seen = append(seen, key)
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := f(key); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errf("',' or '}' expected")
		}
	}
}

func (p *jsonParser) str() (string, error) {
	b, err := p.strBytes()
	if err != nil {
		return "", err
	}
	return p.strs.get(b), nil
}

// strBytes reads a string and returns its decoded bytes: a slice of p.b
// when it had no escapes, else of p.scratch (valid until the next call).
func (p *jsonParser) strBytes() ([]byte, error) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		if p.i < len(p.b) && p.b[p.i] == 'n' {
			return nil, p.errf("null is not allowed")
		}
		return nil, p.errf("string expected")
	}
	p.i++
	start := p.i
	escaped := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			b := p.b[start:p.i]
			if escaped {
				p.scratch = append(p.scratch, b...)
				b = p.scratch
			}
			p.i++
			return b, nil
		case c < 0x20:
			return nil, p.errf("control character in string")
		case c == '\\':
			if !escaped {
				p.scratch, escaped = p.scratch[:0], true
			}
			var err error
			if p.scratch, err = p.escape(append(p.scratch, p.b[start:p.i]...)); err != nil {
				return nil, err
			}
			start = p.i
			continue
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && n == 1 {
				return nil, p.errf("invalid UTF-8")
			}
			p.i += n
			continue
		}
		p.i++
	}
	return nil, p.errf("unterminated string")
}

// recordKey returns the constant for one of the record's keys, without
// allocating; "" for any other key.
func recordKey(b []byte) string {
	switch string(b) {
	case "unit":
		return "unit"
	case "site":
		return "site"
	case "model":
		return "model"
	case "firmware":
		return "firmware"
	case "schema":
		return "schema"
	case "seq":
		return "seq"
	case "time":
		return "time"
	case "soc_pct":
		return "soc_pct"
	case "soh_pct":
		return "soh_pct"
	case "voltage_v":
		return "voltage_v"
	case "current_a":
		return "current_a"
	case "power_kw":
		return "power_kw"
	case "temp_c":
		return "temp_c"
	case "mode":
		return "mode"
	case "alarms":
		return "alarms"
	case "code":
		return "code"
	case "severity":
		return "severity"
	case "text":
		return "text"
	}
	return ""
}

// interner hands out one string per distinct short byte sequence it has
// seen, so the values that repeat across records (unit, site, model,
// firmware, schema, mode, sensor names, alarm codes) are allocated once.
// Strings are immutable, so records sharing them share nothing mutable.
// It stops remembering at maxInterned entries; nil allocates every time.
type interner struct{ m map[string]string }

const (
	maxInterned    = 4096
	maxInternedLen = 64
)

func (in *interner) get(b []byte) string {
	if in == nil || len(b) > maxInternedLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < maxInterned {
		in.m[s] = s
	}
	return s
}

// escape decodes the escape sequence at p.i (a backslash) onto out.
func (p *jsonParser) escape(out []byte) ([]byte, error) {
	if p.i+1 >= len(p.b) {
		return nil, p.errf("unterminated escape")
	}
	e := p.b[p.i+1]
	p.i += 2
	switch e {
	case '"', '\\', '/':
		out = append(out, e)
	case 'b':
		out = append(out, '\b')
	case 'f':
		out = append(out, '\f')
	case 'n':
		out = append(out, '\n')
	case 'r':
		out = append(out, '\r')
	case 't':
		out = append(out, '\t')
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return nil, p.errf("bad \\u escape")
		}
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
				p.i += 2
				r2, ok = p.hex4()
				if !ok {
					return nil, p.errf("bad \\u escape")
				}
			}
			r = utf16.DecodeRune(r, r2)
			if r == utf8.RuneError {
				return nil, p.errf("unpaired surrogate in \\u escape")
			}
		}
		out = utf8.AppendRune(out, r)
	default:
		return nil, p.errf("bad escape \\%c", e)
	}
	return out, nil
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	r, ok := parseCharRef(p.b[p.i:p.i+4], 16)
	p.i += 4
	return r, ok
}

// number returns the raw text of a JSON number.
func (p *jsonParser) number() ([]byte, error) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	d := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == d || (p.b[d] == '0' && p.i-d > 1) {
		p.i = start
		if p.i < len(p.b) && p.b[p.i] == 'n' {
			return nil, p.errf("null is not allowed")
		}
		return nil, p.errf("number expected")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		f := p.i
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
		if p.i == f {
			return nil, p.errf("digits expected after '.'")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		e := p.i
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
		}
		if p.i == e {
			return nil, p.errf("digits expected in exponent")
		}
	}
	return p.b[start:p.i], nil
}

// float reads a number; key (with "."+sub when sub is not empty) names it
// in errors.
func (p *jsonParser) float(key, sub string) (float64, error) {
	raw, err := p.number()
	if err != nil {
		return 0, err
	}
	v, sig, why := parseDecimal(raw)
	if why == "" && (key == "soc_pct" || key == "soh_pct") {
		why = checkPercent(v) // on the value as written, as Decode does
	}
	if why != "" {
		if sub != "" {
			key += "." + sub
		}
		return 0, &FieldError{key, why}
	}
	return convert(v, sig, convNone), nil
}

func (p *jsonParser) record() (Record, error) {
	var r Record
	hasTime, hasSchema := false, false
	err := p.object(func(key string) error {
		switch key {
		case "unit", "site", "model", "firmware", "schema", "mode", "time":
			return p.recordString(&r, key, &hasTime, &hasSchema)
		case "seq":
			raw, err := p.number()
			if err != nil {
				return err
			}
			n, ok := parseSeq(raw)
			if !ok {
				return &FieldError{key, quoteShort(raw) + " is not a non-negative integer"}
			}
			r.Seq, r.HasSeq = n, true
		case "soc_pct", "soh_pct", "voltage_v", "current_a", "power_kw":
			v, err := p.float(key, "")
			if err != nil {
				return err
			}
			switch key {
			case "soc_pct":
				r.SoC, r.Has = v, r.Has|HasSoC
			case "soh_pct":
				r.SoH, r.Has = v, r.Has|HasSoH
			case "voltage_v":
				r.Voltage, r.Has = v, r.Has|HasVoltage
			case "current_a":
				r.Current, r.Has = v, r.Has|HasCurrent
			default:
				r.Power, r.Has = v, r.Has|HasPower
			}
		case "temp_c":
			return p.temps(&r.Temps)
		case "alarms":
			return p.alarms(&r.Alarms)
		default:
			return &FieldError{key, "unknown key"}
		}
		return nil
	})
	if err != nil {
		return Record{}, err
	}
	p.ws()
	if p.i != len(p.b) {
		return Record{}, p.errf("unexpected text after the record")
	}
	if !hasTime {
		return Record{}, &FieldError{"time", "missing"}
	}
	if !hasSchema {
		return Record{}, &FieldError{"schema", "missing"}
	}
	return r, nil
}

// recordString reads the string value of key, one of the record's string
// fields, into r.
func (p *jsonParser) recordString(r *Record, key string, hasTime, hasSchema *bool) error {
	b, err := p.strBytes()
	if err != nil {
		return err
	}
	if key == "time" {
		ms, why := parseRFC3339(b)
		if why != "" {
			return &FieldError{key, why}
		}
		r.TimeMs, *hasTime = ms, true
		return nil
	}
	s := p.strs.get(b)
	switch key {
	case "unit":
		r.Unit = s
	case "site":
		r.Site = s
	case "model":
		r.Model = s
	case "firmware":
		r.Firmware = s
	case "schema":
		r.Schema, *hasSchema = s, true
	case "mode":
		if s == "" {
			return &FieldError{key, `"" is not one of ` + modeList}
		}
		r.Mode = s
	}
	return nil
}

// temps reads the temp_c object into temps, kept sorted by sensor.
func (p *jsonParser) temps(temps *[]Temp) error {
	return p.object(func(sensor string) error {
		v, err := p.float("temp_c", sensor)
		if err != nil {
			return err
		}
		if !validSensor([]byte(sensor)) {
			return &FieldError{"temp_c", fmt.Sprintf("sensor %q does not match [a-z0-9_]{1,32}", sensor)}
		}
		i, found := slices.BinarySearchFunc(*temps, sensor, func(t Temp, s string) int { return strings.Compare(t.Sensor, s) })
		if found {
			return &FieldError{"temp_c." + sensor, "sensor repeated"}
		}
		*temps = slices.Insert(*temps, i, Temp{Sensor: sensor, C: v})
		return nil
	})
}

// alarms reads the alarms array, appending to alarms.
func (p *jsonParser) alarms(alarms *[]Alarm) error {
	if err := p.expect('['); err != nil {
		return err
	}
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		var a Alarm
		idx := len(*alarms)
		err := p.object(func(k string) error {
			s, err := p.str()
			if err != nil {
				return err
			}
			switch k {
			case "code":
				a.Code = s
			case "severity":
				a.Severity = s
			case "text":
				a.Text = s
			default:
				return &FieldError{fmt.Sprintf("alarms[%d].%s", idx, k), "unknown key"}
			}
			return nil
		})
		if err != nil {
			return err
		}
		*alarms = append(*alarms, a)
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.errf("',' or ']' expected")
		}
	}
}
