// Package fleet generates the fleetbench data set: a synthetic fleet's
// readings, deterministic from a seed. scripts/fleetbench loads it for the
// dashboard timings; the verify, gap-counting and rollup benchmarks of
// `make bench` use the very same readings.
package fleet

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

// Fleet generates a synthetic fleet's readings, deterministically from a
// seed: 30% generation-1 units (no power, SoH, firmware or ambient sensor),
// the rest generation 2; a daily charge/discharge cycle per unit with its own
// phase; a rare over-temperature alarm.
type Fleet struct {
	Units   []Unit
	start   time.Time
	cadence time.Duration
	steps   int // readings per unit
}

// Unit is one unit of a Fleet.
type Unit struct {
	ID, site, model, firmware, schema string
	gen1                              bool
	phase                             float64 // of the daily cycle, radians
	offset                            time.Duration
	soh                               float64
	rng                               *rand.Rand
	seq                               int64
}

// SiteName is the name of site i.
func SiteName(i int) string { return fmt.Sprintf("Yard %02d, Bay %d", i, i%4+1) }

// New returns a fleet of units over sites, with readings every cadence
// over days from start.
func New(units, sites int, start time.Time, days int, cadence time.Duration, seed uint64) *Fleet {
	f := &Fleet{start: start, cadence: cadence, steps: int(time.Duration(days) * 24 * time.Hour / cadence)}
	for i := range units {
		u := Unit{
			site:   SiteName(i % sites),
			gen1:   i%10 < 3,
			phase:  2 * math.Pi * float64(i%97) / 97,
			offset: time.Duration(int64(i)*7919) * time.Millisecond % cadence,
			soh:    99 - float64(i%20)*0.25,
			rng:    rand.New(rand.NewPCG(seed, uint64(i))),
		}
		if u.gen1 {
			u.ID, u.model, u.schema = fmt.Sprintf("FP1-%06d", i), "FlexiPack-100", "1.0"
		} else {
			u.ID, u.model, u.schema, u.firmware = fmt.Sprintf("FP2-%06d", i), "FlexiPack-250", "2.1", "2.4.1"
		}
		f.Units = append(f.Units, u)
	}
	return f
}

// Readings is the number of readings the fleet generates.
func (f *Fleet) Readings() int64 { return int64(len(f.Units)) * int64(f.steps) }

// Steps is the number of readings of each unit.
func (f *Fleet) Steps() int { return f.steps }

// Each calls fn with every reading in time order (step by step, unit by
// unit, as live ingest would bring them). fn may not keep the Record.
func (f *Fleet) Each(fn func(*telemetry.Record) error) error {
	var r telemetry.Record
	for k := 0; k < f.steps; k++ {
		for i := range f.Units {
			f.Record(&r, &f.Units[i], k)
			if err := fn(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

// Record fills r with unit u's reading at step k (r's slices are reused).
func (f *Fleet) Record(r *telemetry.Record, u *Unit, k int) {
	t := f.start.Add(time.Duration(k)*f.cadence + u.offset)
	day := 2 * math.Pi * float64(t.UnixMilli()%86_400_000) / 86_400_000
	noise := u.rng.NormFloat64()
	soc := clamp(50+40*math.Sin(day+u.phase)+noise, 0, 100)
	power := -60 * math.Cos(day+u.phase) // charging when SoC rises
	cellMax := 26 + 6*math.Abs(math.Cos(day+u.phase)) + noise/2
	u.seq++
	*r = telemetry.Record{
		Unit: u.ID, Site: u.site, Model: u.model, Firmware: u.firmware, Schema: u.schema,
		Seq: u.seq, HasSeq: true, TimeMs: t.UnixMilli(),
		Has:     telemetry.HasSoC | telemetry.HasVoltage | telemetry.HasCurrent,
		SoC:     round1(soc),
		Voltage: round1(790 + soc/5),
		Temps:   r.Temps[:0],
		Alarms:  r.Alarms[:0],
	}
	r.Current = round2(power * 1000 / r.Voltage)
	r.Temps = append(r.Temps, telemetry.Temp{Sensor: "cell_max", C: round1(cellMax)}, telemetry.Temp{Sensor: "cell_min", C: round1(cellMax - 1.5)})
	switch {
	case power > 5:
		r.Mode = "charging"
	case power < -5:
		r.Mode = "discharging"
	default:
		r.Mode = "idle"
	}
	if !u.gen1 {
		r.Has |= telemetry.HasSoH | telemetry.HasPower
		r.SoH, r.Power = u.soh, round2(power)
		r.Temps = append(r.Temps, telemetry.Temp{Sensor: "ambient", C: round1(18 + 5*math.Sin(day-math.Pi/2))})
	}
	if cellMax > 31.5 && u.rng.IntN(500) == 0 {
		r.Alarms = append(r.Alarms, telemetry.Alarm{Code: "OVT-1", Severity: "warning", Text: "Cell over-temperature > 30 °C"})
	}
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }
func round1(v float64) float64        { return math.Round(v*10) / 10 }
func round2(v float64) float64        { return math.Round(v*100) / 100 }
