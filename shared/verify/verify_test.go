package verify

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

// memSource is an in-memory Source; it streams in the order given and
// reuses the record it passes, as the real stores may.
type memSource struct {
	recs []telemetry.Record
	err  error
}

func (m memSource) Stream(_ context.Context, from, to time.Time, units []string, fn func(*telemetry.Record) error) error {
	if m.err != nil {
		return m.err
	}
	var r telemetry.Record
	for _, rec := range m.recs {
		t := rec.Time()
		if t.Before(from) || !t.Before(to) || (len(units) > 0 && !slices.Contains(units, rec.Unit)) {
			continue
		}
		r = rec
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

var t0 = time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)

func rec(unit string, t time.Time, soc float64) telemetry.Record {
	return telemetry.Record{Unit: unit, Site: "North Yard, Bay 3", Model: "FlexiPack-250", Schema: "2.1", TimeMs: t.UnixMilli(),
		Has: telemetry.HasSoC | telemetry.HasVoltage, SoC: soc, Voltage: 812.1,
		Temps:  []telemetry.Temp{{Sensor: "ambient", C: 21.2222}, {Sensor: "cell_max", C: 31.2}},
		Alarms: []telemetry.Alarm{{Code: "A", Severity: "warning", Text: "x"}, {Code: "B", Severity: "info", Text: "y"}}}
}

// fleet returns readings of units every 10 minutes over [t0, t0+6h).
func fleet(units ...string) []telemetry.Record {
	var out []telemetry.Record
	for _, u := range units {
		for t := t0; t.Before(t0.Add(6 * time.Hour)); t = t.Add(10 * time.Minute) {
			out = append(out, rec(u, t, 50+float64(t.Minute())/10))
		}
	}
	return out
}

func TestRecordHash(t *testing.T) {
	base := rec("U1", t0, 55.2)
	same := base
	same.Temps = []telemetry.Temp{base.Temps[1], base.Temps[0]}     // another order
	same.Alarms = []telemetry.Alarm{base.Alarms[1], base.Alarms[0]} // another order
	if RecordHash(&base) != RecordHash(&same) {
		t.Fatal("the order of temperatures or alarms changed the hash")
	}
	neg := base
	neg.Voltage = 0
	pos := neg
	neg.Voltage = -1 * 0.0
	if RecordHash(&neg) != RecordHash(&pos) {
		t.Fatal("-0 and +0 hash differently")
	}
	changes := map[string]func(r *telemetry.Record){
		"soc":        func(r *telemetry.Record) { r.SoC = 55.3 },
		"soc absent": func(r *telemetry.Record) { r.Has &^= telemetry.HasSoC },
		"time":       func(r *telemetry.Record) { r.TimeMs++ },
		"site":       func(r *telemetry.Record) { r.Site = "South" },
		"firmware":   func(r *telemetry.Record) { r.Firmware = "2.4.2" },
		"seq":        func(r *telemetry.Record) { r.HasSeq, r.Seq = true, 0 },
		"mode":       func(r *telemetry.Record) { r.Mode = "idle" },
		"temp value": func(r *telemetry.Record) {
			r.Temps = []telemetry.Temp{{Sensor: "ambient", C: 21.2223}, {Sensor: "cell_max", C: 31.2}}
		},
		"temp dropped": func(r *telemetry.Record) { r.Temps = r.Temps[:1] },
		"alarm text": func(r *telemetry.Record) {
			r.Alarms = []telemetry.Alarm{{Code: "A", Severity: "warning", Text: "z"}, {Code: "B", Severity: "info", Text: "y"}}
		},
		"alarm gone": func(r *telemetry.Record) { r.Alarms = nil },
		"unit":       func(r *telemetry.Record) { r.Unit = "U2" },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			c := base
			c.Temps, c.Alarms = slices.Clone(base.Temps), slices.Clone(base.Alarms)
			change(&c)
			if RecordHash(&c) == RecordHash(&base) {
				t.Fatalf("changing %s did not change the hash", name)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	all := fleet("U1", "U2", "U3")
	at := func(h, m int) time.Time { return t0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	without := func(recs []telemetry.Record, unit string, ts time.Time) []telemetry.Record {
		return slices.DeleteFunc(slices.Clone(recs), func(r telemetry.Record) bool { return r.Unit == unit && r.TimeMs == ts.UnixMilli() })
	}
	changed := func(recs []telemetry.Record, unit string, ts time.Time) []telemetry.Record {
		out := slices.Clone(recs)
		for i := range out {
			if out[i].Unit == unit && out[i].TimeMs == ts.UnixMilli() {
				out[i].SoC += 0.1
			}
		}
		return out
	}
	type want struct {
		unit  string
		start time.Time
		kind  string
	}
	tests := []struct {
		name           string
		legacy, influx []telemetry.Record
		opts           Options
		want           []want
		windows        int64
	}{
		{name: "identical", legacy: all, influx: all, windows: 18},
		{name: "reading missing in influx", legacy: all, influx: without(all, "U2", at(1, 20)), windows: 18,
			want: []want{{"U2", at(1, 0), CountDiffers}}},
		{name: "value changed", legacy: all, influx: changed(all, "U3", at(4, 50)), windows: 18,
			want: []want{{"U3", at(4, 0), ValuesDiffer}}},
		{name: "missing and changed", legacy: changed(all, "U1", at(0, 0)), influx: without(all, "U2", at(5, 10)), windows: 18,
			want: []want{{"U1", at(0, 0), ValuesDiffer}, {"U2", at(5, 0), CountDiffers}}},
		{name: "whole window only in legacy", legacy: all, influx: slices.DeleteFunc(slices.Clone(all), func(r telemetry.Record) bool {
			return r.Unit == "U1" && r.Time().Before(at(1, 0))
		}), windows: 18, want: []want{{"U1", at(0, 0), MissingInInflux}}},
		{name: "unit only in influx", legacy: fleet("U1"), influx: fleet("U1", "U9"), windows: 12,
			want: []want{{"U9", at(0, 0), MissingInLegacy}, {"U9", at(1, 0), MissingInLegacy}, {"U9", at(2, 0), MissingInLegacy},
				{"U9", at(3, 0), MissingInLegacy}, {"U9", at(4, 0), MissingInLegacy}, {"U9", at(5, 0), MissingInLegacy}}},
		{name: "units filter ignores the others", legacy: all, influx: without(all, "U2", at(1, 20)), opts: Options{Units: []string{"U1", "U3"}}, windows: 12},
		{name: "10m windows, 1h chunks", legacy: all, influx: without(all, "U2", at(1, 20)),
			opts: Options{Window: 10 * time.Minute, Chunk: time.Hour}, windows: 108, want: []want{{"U2", at(1, 20), MissingInInflux}}},
		{name: "chunk not a multiple of the window", legacy: all, influx: changed(all, "U1", at(2, 30)),
			opts: Options{Window: time.Hour, Chunk: 90 * time.Minute}, windows: 18, want: []want{{"U1", at(2, 0), ValuesDiffer}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.From, opts.To = t0, t0.Add(6*time.Hour)
			var progress []Progress
			opts.Progress = func(p Progress) { progress = append(progress, p) }
			res, err := Compare(context.Background(), memSource{recs: tt.legacy}, memSource{recs: tt.influx}, opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []want
			for _, m := range res.Mismatches {
				got = append(got, want{m.Unit, m.Start, m.Kind})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("mismatches = %v\nwant %v", got, tt.want)
			}
			if res.Windows != tt.windows || res.Mismatched != int64(len(tt.want)) {
				t.Fatalf("windows %d, mismatched %d; want %d, %d", res.Windows, res.Mismatched, tt.windows, len(tt.want))
			}
			if wantRate := float64(len(tt.want)) / float64(tt.windows); res.Rate != wantRate {
				t.Fatalf("rate = %g, want %g", res.Rate, wantRate)
			}
			if len(progress) == 0 || progress[len(progress)-1].Chunk != progress[len(progress)-1].Chunks {
				t.Fatalf("progress = %+v; want a final report", progress)
			}
		})
	}
}

func TestCompareUnalignedRangeAndCap(t *testing.T) {
	all := fleet("U1")
	var broken []telemetry.Record
	for _, r := range all {
		r.SoC++
		broken = append(broken, r)
	}
	// [00:30, 05:30): 6 partial-or-whole windows, all differ; list capped at 2.
	res, err := Compare(context.Background(), memSource{recs: all}, memSource{recs: broken},
		Options{From: t0.Add(30 * time.Minute), To: t0.Add(5*time.Hour + 30*time.Minute), MaxMismatches: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Windows != 6 || res.Mismatched != 6 || len(res.Mismatches) != 2 || !res.Truncated || res.Rate != 1 {
		t.Fatalf("windows %d mismatched %d listed %d truncated %v rate %g; want 6 6 2 true 1", res.Windows, res.Mismatched, len(res.Mismatches), res.Truncated, res.Rate)
	}
	if res.LegacyReadings != 30 || res.InfluxReadings != 30 {
		t.Fatalf("readings %d / %d, want 30 / 30 (only those in range)", res.LegacyReadings, res.InfluxReadings)
	}
}

func TestCompareErrors(t *testing.T) {
	boom := errors.New("boom")
	_, err := Compare(context.Background(), memSource{}, memSource{err: boom}, Options{From: t0, To: t0.Add(time.Hour)})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the source's error", err)
	}
	if _, err := Compare(context.Background(), memSource{}, memSource{}, Options{From: t0, To: t0}); err == nil {
		t.Fatal("an empty range was accepted")
	}
	// A store returning readings outside the asked range is a bug to surface.
	_, err = Compare(context.Background(), memSource{}, outOfRange{}, Options{From: t0, To: t0.Add(time.Hour)})
	if !errors.Is(err, errOutOfRange) {
		t.Fatalf("err = %v, want errOutOfRange", err)
	}
}

type outOfRange struct{}

func (outOfRange) Stream(_ context.Context, from, to time.Time, _ []string, fn func(*telemetry.Record) error) error {
	r := rec("U1", to.Add(time.Minute), 1)
	return fn(&r)
}

// fakeDash is an in-memory Dashboard.
type fakeDash struct {
	fleet  map[string]map[time.Time]float64
	series map[string]map[time.Time]float64 // field → time → value (one unit)
}

func (f fakeDash) FleetSoC(_ context.Context, from, to time.Time, every time.Duration, fn func(string, time.Time, float64) error) error {
	for site, m := range f.fleet {
		for t, v := range m {
			if err := fn(site, t, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f fakeDash) UnitSeries(_ context.Context, unit string, from, to time.Time, field string, fn func(time.Time, float64) error) error {
	for t, v := range f.series[field] {
		if err := fn(t, v); err != nil {
			return err
		}
	}
	return nil
}

func TestShadow(t *testing.T) {
	mk := func(soc float64, extra bool) fakeDash {
		d := fakeDash{fleet: map[string]map[time.Time]float64{"A": {t0: 50, t0.Add(5 * time.Minute): soc}, "": {t0: 10}},
			series: map[string]map[time.Time]float64{"soc_pct": {t0: 1, t0.Add(time.Second): 2}}}
		if extra {
			d.series["soc_pct"][t0.Add(2*time.Second)] = 3
		}
		return d
	}
	opts := ShadowOptions{At: t0.Add(24 * time.Hour), Unit: "U1", Fields: []string{"soc_pct"}}
	res, err := Shadow(context.Background(), mk(51, false), mk(51+1e-12, false), opts)
	if err != nil || !res.OK || len(res.Queries) != 2 {
		t.Fatalf("identical answers: %+v, %v; want ok with 2 queries", res, err)
	}
	res, err = Shadow(context.Background(), mk(51, false), mk(52, true), opts)
	if err != nil || res.OK {
		t.Fatalf("different answers: ok=%v, %v; want not ok", res.OK, err)
	}
	if res.Queries[0].Differences != 1 || *res.Queries[0].Examples[0].Legacy != 51 || *res.Queries[0].Examples[0].Influx != 52 {
		t.Fatalf("fleet differences = %+v", res.Queries[0])
	}
	if q := res.Queries[1]; q.Differences != 1 || q.Examples[0].Legacy != nil || *q.Examples[0].Influx != 3 {
		t.Fatalf("series differences = %+v", q)
	}
}
