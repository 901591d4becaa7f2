// Package querytest makes deterministic fleets of readings for the query
// service's tests, conformance suite and benchmark, and loads them into the
// stores.
package querytest

import (
	"context"
	"fmt"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

// Fleet describes a synthetic fleet.
type Fleet struct {
	Units   int
	Sites   int
	From    time.Time
	Cadence time.Duration
	Steps   int // readings per unit
}

// UnitName returns the i-th unit's name.
func UnitName(i int) string { return fmt.Sprintf("bsu-%04d", i) }

// SiteName returns the i-th site's name (one with a space and a comma, as
// line protocol must escape).
func SiteName(i int) string {
	if i == 1 {
		return "North Yard, Bay 1"
	}
	return fmt.Sprintf("site-%02d", i)
}

// Record returns unit u's reading number k. Values vary with u and k, have
// at most 6 significant digits (SoC and power use all six, so means often
// lie halfway between two 6-digit values), and some readings carry alarms (two at
// the same instant, to exercise ordering), no power, or no site.
func (f Fleet) Record(u, k int) telemetry.Record {
	t := f.From.Add(time.Duration(k) * f.Cadence).Add(time.Duration(u%7) * time.Second)
	r := telemetry.Record{
		Unit: UnitName(u), Site: SiteName(u % max(1, f.Sites)), Model: []string{"BSU-200", "BSU-400"}[u%2],
		Schema: telemetry.Schema21, Firmware: "4.2.0", Seq: int64(k), HasSeq: true, TimeMs: t.UnixMilli(),
		Has: telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
		SoC: float64((u*3739+k*1103)%1000000) / 10000, SoH: 90 + float64((u+k)%100)/10,
		Voltage: 700 + float64((u*13+k*7)%2000)/10, Current: float64((u*17+k*5)%600-300) / 10,
		Power: float64((u*1931+k*337)%400000-200000) / 10000,
		Temps: []telemetry.Temp{{Sensor: "cell_max", C: 25 + float64((u+k*3)%150)/10}, {Sensor: "cell_min", C: 20 + float64((u+k)%100)/10}},
		Mode:  []string{telemetry.ModeIdle, telemetry.ModeCharging, telemetry.ModeDischarging}[k%3],
	}
	if (u+k)%13 == 0 {
		r.Has &^= telemetry.HasPower
	}
	if (u+k)%17 == 0 {
		r.Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: fmt.Sprintf("Cell over-temperature > %d °C", 30+k%5)}}
	}
	if (u+k)%29 == 0 {
		r.Alarms = append(r.Alarms, telemetry.Alarm{Code: "BMS-7", Severity: "critical", Text: "contactor\nopen"}, telemetry.Alarm{Code: "AUX-2", Severity: "info", Text: "fan"})
	}
	if u%11 == 5 {
		r.Site = "" // a unit that never reports its site
	}
	return r
}

// Records returns every reading of the fleet, unit by unit.
func (f Fleet) Records() []telemetry.Record {
	out := make([]telemetry.Record, 0, f.Units*f.Steps)
	for u := 0; u < f.Units; u++ {
		for k := 0; k < f.Steps; k++ {
			out = append(out, f.Record(u, k))
		}
	}
	return out
}

// Writer stores records (legacy.Store and the InfluxDB writer do).
type Writer interface {
	Write(ctx context.Context, recs []telemetry.Record) error
}

// Load writes recs in batches of 5000.
func Load(ctx context.Context, w Writer, recs []telemetry.Record) error {
	for i := 0; i < len(recs); i += 5000 {
		if err := w.Write(ctx, recs[i:min(len(recs), i+5000)]); err != nil {
			return fmt.Errorf("load readings %d..: %w", i, err)
		}
	}
	return nil
}
