// Package sim simulates a fleet of battery storage units that report
// telemetry in the XML contract's format, both firmware generations, with
// believable behaviour: state of charge integrates current against
// capacity, daily charge/discharge schedules, temperatures that follow
// power, faults, alarms, and units that go offline and later flush what they
// buffered in one message. Run drives a fleet in simulated time and
// publishes what it produces.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/rabbit"
)

// Sites units are installed at, several of them hostile to naive escaping
// (XML attributes, InfluxDB tags, CSV).
var Sites = []string{
	"north-yard",
	"North Yard, Bay 3",
	`Depot & Yard "7"`,
	"south",
	"Hafen Süd <Kai 2>",
	"east=field 4",
	"O'Brien's Farm",
}

type model struct {
	name        string
	capacityKWh float64
	ratedKW     float64
}

var models = []model{
	{"FlexiPack-100", 100, 50},
	{"FlexiPack-250", 250, 125},
	{"FlexiPack-500", 500, 250},
}

var gen2Firmware = []string{"2.0.3", "2.4.1", "2.5.0", "3.0.0-rc1"}

// gen2Style is how one unit's firmware writes its messages: it never
// changes for a unit, and across the fleet it covers what the contract
// allows.
type gen2Style struct {
	prefix    string // "bsu", "t", or "" for a default namespace
	schema    string // "2.0", "2.1" or "" (missing, means 2.0)
	decl      bool   // XML declaration
	bom       bool   // UTF-8 byte order mark
	pretty    bool   // newlines and indentation
	milli     bool   // V→mV, A→mA, kW→W
	noUnit    bool   // omit the unit attribute of V, A and kW (the default units)
	tempUnit  string // C, F, K, or "" (missing, means C)
	offsetMin int    // time zone offset of the time attribute
	frac      int    // fractional digits of the time attribute: 0, 3 or 6
	vendorExt bool   // adds an element from another namespace
	cdata     bool   // alarm text in CDATA
}

// Mode values of the contract.
const (
	modeIdle        = "idle"
	modeCharging    = "charging"
	modeDischarging = "discharging"
	modeFault       = "fault"
	modeMaintenance = "maintenance"
)

type alarm struct{ code, severity, text string }

// sample is one reading in physical units (V, A, kW, °C).
type sample struct {
	seq                    int64
	ms                     int64
	soc, soh               float64
	volts, amps, kw        float64
	cellMax, cellMin, ambC float64
	mode                   string
	alarms                 []alarm
	bad                    badSample // for injected rejections; badNone normally
}

type unit struct {
	id, site, firmware string
	model              model
	gen                int
	style              gen2Style

	soc, soh         float64
	kw               float64 // + charging, - discharging
	cellMax, cellMin float64
	ambientOffset    float64
	scheduleShiftH   float64
	phase            time.Duration // offset of its reports within a cadence
	seq              int64
	holdTicks        int    // ticks left in a fault or maintenance
	holdMode         string // fault or maintenance while holdTicks > 0
	offlineTicks     int    // ticks left offline
	buffer           []sample
	msgs             int64 // messages produced, for message ids
}

// Outages: a generation-2 unit goes offline with OfflineProb per cadence,
// for minOutageTicks..minOutageTicks+outageSpread-1 cadences.
const (
	defaultOfflineProb = 0.002
	defaultFaultProb   = 0.0003
	minOutageTicks     = 3
	outageSpread       = 150
	meanOutageTicks    = minOutageTicks + (outageSpread-1)/2.0
)

// Config shapes a fleet.
type Config struct {
	Units       int           // how many units
	Gen1Share   float64       // share of units on generation-1 firmware, 0..1
	Cadence     time.Duration // reporting interval (default 10 s)
	Seed        uint64        // random seed; equal seeds and start times give equal messages
	BadRatio    float64       // extra bad messages (or injected bad samples) per good message, 0..1
	OfflineProb float64       // chance per tick that an online gen-2 unit goes offline (0: 0.002; negative: never)
	FaultProb   float64       // chance per tick that a unit goes into fault with a critical GND alarm (0: 0.0003; negative: never)
}

// Fleet is a simulated fleet. It is not safe for concurrent use.
type Fleet struct {
	cfg   Config
	rng   *rand.Rand
	units []*unit
	buf   []byte
}

// Message is one produced message with what a decoder must make of it.
type Message struct {
	bus.Message
	Generation int
	Samples    int    // sample elements in the body
	Valid      int    // readings a decoder accepts
	Rejected   int    // samples a decoder rejects while keeping the message
	Bad        string // why the whole message must be rejected; "" for a decodable message
	Flush      bool   // a unit flushing samples buffered while offline
}

// NewFleet builds a fleet; the same Config builds the same fleet.
func NewFleet(cfg Config) (*Fleet, error) {
	if cfg.Units <= 0 {
		return nil, fmt.Errorf("units %d: want at least 1", cfg.Units)
	}
	if cfg.Gen1Share < 0 || cfg.Gen1Share > 1 {
		return nil, fmt.Errorf("gen-1 share %v: want 0..1", cfg.Gen1Share)
	}
	if cfg.BadRatio < 0 || cfg.BadRatio > 1 {
		return nil, fmt.Errorf("bad ratio %v: want 0..1", cfg.BadRatio)
	}
	if cfg.Cadence <= 0 {
		cfg.Cadence = 10 * time.Second
	}
	if cfg.Cadence < time.Second || cfg.Cadence%time.Second != 0 {
		// Some units report whole seconds only; whole-second cadences keep
		// every unit's report times distinct.
		return nil, fmt.Errorf("cadence %s: want a whole number of seconds", cfg.Cadence)
	}
	if cfg.OfflineProb == 0 {
		cfg.OfflineProb = defaultOfflineProb
	}
	if cfg.FaultProb == 0 {
		cfg.FaultProb = defaultFaultProb
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	f := &Fleet{cfg: cfg, rng: rng}
	gen1 := int(math.Round(float64(cfg.Units) * cfg.Gen1Share))
	for i := 0; i < cfg.Units; i++ {
		u := &unit{
			site:           Sites[rng.IntN(len(Sites))],
			model:          models[rng.IntN(len(models))],
			soc:            20 + rng.Float64()*60,
			soh:            88 + rng.Float64()*12,
			ambientOffset:  rng.Float64()*10 - 5,
			scheduleShiftH: rng.Float64()*2 - 1,
			// Reports fall in the first half of a cadence, jitter in the
			// next quarter: times stay strictly increasing per unit.
			phase: time.Duration(rng.Int64N(int64(cfg.Cadence / 2))),
			seq:   rng.Int64N(100000),
		}
		u.cellMax = 15 + u.ambientOffset
		u.cellMin = u.cellMax - 1.5
		// Spread generations over the fleet rather than in one block.
		if (i*gen1)/cfg.Units != ((i+1)*gen1)/cfg.Units {
			u.gen = 1
			u.id = fmt.Sprintf("FP1-%06d", i+1)
		} else {
			u.gen = 2
			u.id = fmt.Sprintf("FP2-%06d", i+1)
			u.firmware = gen2Firmware[rng.IntN(len(gen2Firmware))]
			u.style = randomStyle(rng)
			if u.style.frac == 0 {
				u.phase = u.phase.Truncate(time.Second)
			}
		}
		f.units = append(f.units, u)
	}
	return f, nil
}

func randomStyle(rng *rand.Rand) gen2Style {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	return gen2Style{
		prefix:    pick("bsu", "bsu", "t", ""),
		schema:    pick("2.1", "2.1", "2.0", ""),
		decl:      rng.IntN(3) > 0,
		bom:       rng.IntN(10) == 0,
		pretty:    rng.IntN(2) == 0,
		milli:     rng.IntN(3) == 0,
		noUnit:    rng.IntN(4) == 0,
		tempUnit:  pick("C", "C", "F", "K", ""),
		offsetMin: zoneOffsets[rng.IntN(len(zoneOffsets))],
		frac:      []int{0, 3, 3, 6}[rng.IntN(4)],
		vendorExt: rng.IntN(5) == 0,
		cdata:     rng.IntN(2) == 0,
	}
}

// Units returns the number of units.
func (f *Fleet) Units() int { return len(f.units) }

// Buffered returns the samples units hold while offline, not yet sent.
func (f *Fleet) Buffered() int {
	n := 0
	for _, u := range f.units {
		n += len(u.buffer)
	}
	return n
}

// Tick advances every unit by one cadence starting at simulated time t and
// appends the messages produced to dst. Every sample lies in [t, t+¾
// cadence).
func (f *Fleet) Tick(t time.Time, dst []Message) []Message {
	dtH := f.cfg.Cadence.Hours()
	for _, u := range f.units {
		s := f.step(u, t, dtH)
		if u.gen == 2 && u.offlineTicks == 0 && f.rng.Float64() < f.cfg.OfflineProb {
			u.offlineTicks = minOutageTicks + f.rng.IntN(outageSpread)
		}
		if u.offlineTicks > 0 {
			u.offlineTicks--
			u.buffer = append(u.buffer, s)
			// A unit's buffer holds what one message can carry.
			if len(u.buffer) < 999 {
				continue
			}
			u.offlineTicks = 0
		}
		samples := append(u.buffer, s)
		u.buffer = nil
		flush := len(samples) > 1
		if flush && f.rng.IntN(3) == 0 {
			// Flushed buffers arrive out of order.
			f.rng.Shuffle(len(samples), func(i, j int) { samples[i], samples[j] = samples[j], samples[i] })
		}
		rejected := 0
		if u.gen == 2 && f.cfg.BadRatio > 0 && len(samples) < 1000 && f.rng.Float64() < f.cfg.BadRatio/2 {
			// A partly rejected message: one extra sample that the decoder
			// must reject while keeping the others.
			samples = append(samples, f.badSample(u, s))
			rejected = 1
		}
		dst = append(dst, f.message(u, samples, len(samples)-rejected, rejected, flush))
		if f.cfg.BadRatio > 0 && f.rng.Float64() < f.cfg.BadRatio/2 {
			dst = append(dst, f.badMessage(u, s))
		}
	}
	return dst
}

// step advances a unit's physics by one cadence and returns its reading.
func (f *Fleet) step(u *unit, t time.Time, dtH float64) sample {
	rng := f.rng
	jitter := time.Duration(rng.Int64N(int64(f.cfg.Cadence / 4)))
	if u.gen == 2 && u.style.frac == 0 {
		jitter = jitter.Truncate(time.Second)
	}
	ts := t.Add(u.phase + jitter)
	// Schedules and weather follow the site's local time.
	hour := math.Mod(float64(ts.Unix())/3600+float64(u.style.offsetMin)/60+u.scheduleShiftH+48, 24)
	rated := u.model.ratedKW

	var alarms []alarm
	mode := modeIdle
	target := 0.0
	switch {
	case u.holdTicks > 0:
		u.holdTicks--
		mode = u.holdMode
	case rng.Float64() < f.cfg.FaultProb: // drawn even when negative, so seeds keep their fleets
		u.holdTicks, u.holdMode, mode = 10+rng.IntN(50), modeFault, modeFault
		alarms = append(alarms, alarm{"GND", "critical", ""})
	case rng.Float64() < 0.0001:
		u.holdTicks, u.holdMode, mode = 30+rng.IntN(60), modeMaintenance, modeMaintenance
	default:
		switch {
		case hour < 5.5:
			mode, target = modeCharging, 0.3*rated
		case hour >= 11 && hour < 14.5:
			mode, target = modeCharging, 0.5*rated
		case hour >= 17 && hour < 21.5:
			mode, target = modeDischarging, -0.6*rated
		}
		target *= 0.9 + 0.2*rng.Float64()
		if mode == modeCharging && u.soc >= 95 || mode == modeDischarging && u.soc <= 10 {
			mode, target = modeIdle, 0
		}
	}
	// Power ramps rather than jumps.
	u.kw += (target - u.kw) * 0.6
	if math.Abs(u.kw) < 0.05 {
		u.kw = 0
	}
	eff := 1.0
	if u.kw > 0 {
		eff = 0.95
	}
	u.soc = clamp(u.soc+u.kw*eff*dtH/u.model.capacityKWh*100, 0, 100)
	u.soh = clamp(u.soh-math.Abs(u.kw)*dtH*1e-6, 50, 100)

	ocv := 720 + 1.6*u.soc
	amps := u.kw * 1000 / ocv
	volts := ocv + amps*0.05
	ambient := 15 + 8*math.Sin(2*math.Pi*(hour-9)/24) + u.ambientOffset
	heat := 12 * math.Abs(u.kw) / rated
	alpha := 1 - math.Exp(-dtH*3) // about 20 minutes to settle
	u.cellMax += (ambient + 3 + heat - u.cellMax) * alpha
	u.cellMin = u.cellMax - 1.5 - 0.5*math.Abs(u.kw)/rated
	if u.cellMax > 30 && rng.Float64() < 0.02 {
		alarms = append(alarms, alarm{"OVT-1", "warning", "Cell over-temperature > 30 °C"})
	}
	if rng.Float64() < 0.0005 {
		alarms = append(alarms, alarm{"DOOR", "info", "Cabinet door open & unlocked"})
	}
	u.seq++
	return sample{
		seq: u.seq, ms: ts.UnixMilli(),
		soc: u.soc, soh: u.soh,
		volts: volts, amps: amps, kw: u.kw,
		cellMax: u.cellMax, cellMin: u.cellMin, ambC: ambient,
		mode: mode, alarms: alarms,
	}
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// message renders a unit's samples as one message.
func (f *Fleet) message(u *unit, samples []sample, valid, rejected int, flush bool) Message {
	u.msgs++
	b := f.buf[:0]
	if u.gen == 1 {
		b = appendGen1(b, u, &samples[0])
	} else {
		b = appendGen2(b, u, samples)
	}
	f.buf = b
	body := append([]byte(nil), b...)
	first, last := samples[0].seq, samples[0].seq
	for _, s := range samples {
		first, last = min(first, s.seq), max(last, s.seq)
	}
	id := u.id + ":" + strconv.FormatInt(first, 10)
	if last != first {
		id += "-" + strconv.FormatInt(last, 10)
	}
	return Message{
		Message: bus.Message{
			ID:         id,
			Key:        u.id,
			RoutingKey: rabbit.RoutingKey(u.gen, u.id),
			Headers: map[string]string{
				bus.HeaderUnit:       u.id,
				bus.HeaderGeneration: strconv.Itoa(u.gen),
				bus.HeaderSamples:    strconv.Itoa(len(samples)),
				bus.HeaderSource:     "simulate",
			},
			Body: body,
		},
		Generation: u.gen,
		Samples:    len(samples),
		Valid:      valid,
		Rejected:   rejected,
		Flush:      flush,
	}
}

func appendGen1(b []byte, u *unit, s *sample) []byte {
	b = append(b, `<telemetry schema="1.0"><unit`...)
	b = appendAttr(b, "id", u.id)
	b = appendAttr(b, "site", u.site)
	b = appendAttr(b, "model", u.model.name)
	b = append(b, `/><reading ts="`...)
	if s.bad == badTime {
		b = append(b, "1262304000000"...) // 2010: before 2015
	} else {
		b = strconv.AppendInt(b, s.ms, 10)
	}
	b = append(b, `" seq="`...)
	b = strconv.AppendInt(b, s.seq, 10)
	b = append(b, `"><soc>`...)
	switch s.bad {
	case badSoC:
		b = append(b, "140.0"...)
	case badNumber:
		b = append(b, "NaN"...)
	default:
		b = appendFloat(b, s.soc, 1)
	}
	b = append(b, `</soc><voltage>`...)
	b = strconv.AppendInt(b, int64(math.Round(s.volts*1000)), 10)
	b = append(b, `</voltage><current>`...)
	b = strconv.AppendInt(b, int64(math.Round(s.amps*1000)), 10)
	b = append(b, `</current><temp_max>`...)
	b = strconv.AppendInt(b, int64(math.Round(s.cellMax*10)), 10)
	b = append(b, `</temp_max><temp_min>`...)
	b = strconv.AppendInt(b, int64(math.Round(s.cellMin*10)), 10)
	b = append(b, `</temp_min><state>`...)
	if s.bad == badMode {
		b = append(b, '7')
	} else {
		b = append(b, gen1State(s.mode))
	}
	return append(b, `</state></reading></telemetry>`...)
}

func gen1State(mode string) byte {
	switch mode {
	case modeCharging:
		return '1'
	case modeDischarging:
		return '2'
	case modeFault:
		return '3'
	default: // idle, and maintenance, which generation 1 cannot say
		return '0'
	}
}

func appendGen2(b []byte, u *unit, samples []sample) []byte {
	st := &u.style
	p := st.prefix
	nl, ind := "", ""
	if st.pretty {
		nl, ind = "\n", "  "
	}
	if st.bom {
		b = append(b, 0xEF, 0xBB, 0xBF)
	}
	if st.decl {
		b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`...)
		b = append(b, nl...)
	}
	b = append(b, '<')
	b = el(b, p, "Telemetry")
	if p == "" {
		b = append(b, ` xmlns="urn:flexipack:telemetry:2"`...)
	} else {
		b = append(b, " xmlns:"...)
		b = append(b, p...)
		b = append(b, `="urn:flexipack:telemetry:2"`...)
	}
	if st.vendorExt {
		b = append(b, ` xmlns:acme="urn:acme:vendor-ext"`...)
	}
	if st.schema != "" {
		b = appendAttr(b, "schemaVersion", st.schema)
	}
	b = append(b, '>')
	b = append(b, nl...)
	b = append(b, ind...)
	b = append(b, '<')
	b = el(b, p, "Unit")
	b = appendAttr(b, "serial", u.id)
	b = appendAttr(b, "site", u.site)
	b = appendAttr(b, "model", u.model.name)
	b = appendAttr(b, "firmware", u.firmware)
	b = append(b, "/>"...)
	b = append(b, nl...)
	if st.vendorExt {
		b = append(b, ind...)
		b = append(b, `<acme:Diagnostics><acme:Fan rpm="1200"/></acme:Diagnostics>`...)
		b = append(b, nl...)
	}
	for i := range samples {
		b = appendSample2(b, u, &samples[i], nl, ind)
	}
	b = append(b, "</"...)
	b = el(b, p, "Telemetry")
	return append(b, '>', '\n')
}

func appendSample2(b []byte, u *unit, s *sample, nl, ind string) []byte {
	st := &u.style
	p := st.prefix
	open := func(name string) {
		b = append(b, nl...)
		b = append(b, ind...)
		b = append(b, ind...)
		b = append(b, '<')
		b = el(b, p, name)
	}
	closeEl := func(name string) {
		b = append(b, "</"...)
		b = el(b, p, name)
		b = append(b, '>')
	}
	unitAttr := func(def, milli string) {
		switch {
		case st.milli:
			b = appendAttr(b, "unit", milli)
		case !st.noUnit:
			b = appendAttr(b, "unit", def)
		}
	}
	b = append(b, ind...)
	b = append(b, '<')
	b = el(b, p, "Sample")
	b = append(b, ` seq="`...)
	b = strconv.AppendInt(b, s.seq, 10)
	b = append(b, `" time="`...)
	if s.bad == badTime {
		b = append(b, "yesterday"...)
	} else {
		b = appendRFC3339(b, s.ms, st.offsetMin, st.frac)
	}
	b = append(b, `">`...)

	open("SoC")
	b = append(b, '>')
	switch s.bad {
	case badSoC:
		b = append(b, "140"...)
	case badNumber:
		b = append(b, "NaN"...)
	default:
		b = appendFloat(b, s.soc, 1)
	}
	closeEl("SoC")
	open("SoH")
	b = append(b, '>')
	b = appendFloat(b, s.soh, 1)
	closeEl("SoH")

	open("Voltage")
	if s.bad == badUnit {
		b = appendAttr(b, "unit", "kV")
		b = append(b, '>')
		b = appendFloat(b, s.volts/1000, 4)
	} else {
		unitAttr("V", "mV")
		b = append(b, '>')
		if st.milli {
			b = appendFloat(b, s.volts*1000, 0)
		} else {
			b = appendFloat(b, s.volts, 1)
		}
	}
	closeEl("Voltage")
	open("Current")
	unitAttr("A", "mA")
	b = append(b, '>')
	if st.milli {
		b = appendFloat(b, s.amps*1000, 0)
	} else {
		b = appendFloat(b, s.amps, 2)
	}
	closeEl("Current")
	open("Power")
	unitAttr("kW", "W")
	b = append(b, '>')
	if st.milli {
		b = appendFloat(b, s.kw*1000, 0)
	} else {
		b = appendFloat(b, s.kw, 2)
	}
	closeEl("Power")
	for _, tc := range [...]struct {
		sensor string
		c      float64
	}{{"cell_max", s.cellMax}, {"cell_min", s.cellMin}, {"ambient", s.ambC}} {
		open("Temperature")
		b = appendAttr(b, "sensor", tc.sensor)
		if st.tempUnit != "" {
			b = appendAttr(b, "unit", st.tempUnit)
		}
		b = append(b, '>')
		switch st.tempUnit {
		case "F":
			b = appendFloat(b, tc.c*9/5+32, 1)
		case "K":
			b = appendFloat(b, tc.c+273.15, 2)
		default:
			b = appendFloat(b, tc.c, 1)
		}
		closeEl("Temperature")
	}
	open("Mode")
	b = append(b, '>')
	if s.bad == badMode {
		b = append(b, "sleeping"...)
	} else {
		b = append(b, s.mode...)
	}
	closeEl("Mode")
	if len(s.alarms) > 0 {
		open("Alarms")
		b = append(b, '>')
		for _, a := range s.alarms {
			b = append(b, '<')
			b = el(b, p, "Alarm")
			b = appendAttr(b, "code", a.code)
			b = appendAttr(b, "severity", a.severity)
			if a.text == "" {
				b = append(b, "/>"...)
				continue
			}
			b = append(b, '>')
			b = appendAlarmText(b, a.text, st.cdata)
			closeEl("Alarm")
		}
		closeEl("Alarms")
	}
	if u.style.vendorExt {
		b = append(b, `<acme:Note>vendor extension</acme:Note>`...)
	}
	b = append(b, nl...)
	b = append(b, ind...)
	closeEl("Sample")
	return append(b, nl...)
}
