package influx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flexipack/cutover/shared/influx/influxtest"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/window"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// freshDB returns a Config for a fresh InfluxDB database.
func freshDB(t testing.TB) (Config, testenv.InfluxDB) {
	t.Helper()
	db := testenv.Influx(t)
	return Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket, RetryBase: time.Millisecond}, db
}

// freshDBFor returns a Config for a fresh InfluxDB database reached through
// api: 1.8 itself for v1, the influxtest facade of 2.x (bucket "telemetry",
// DBRP telemetry/autogen) or 3.x (database "telemetry") in front of it. The
// Config leaves the API on auto: /ping's answer must select it.
func freshDBFor(t testing.TB, api API) (Config, testenv.InfluxDB) {
	t.Helper()
	cfg, db := freshDB(t)
	switch api {
	case APIV2:
		f := influxtest.New(t, influxtest.V2, db.URL)
		f.AddBucket("telemetry", db.Bucket)
		f.AddDBRP(influxtest.DBRP{Database: "telemetry", RetentionPolicy: "autogen", Bucket: "telemetry", Default: true})
		cfg.URL, cfg.Token, cfg.Org, cfg.Bucket = f.URL, f.Token, f.Org, "telemetry"
	case APIV3:
		f := influxtest.New(t, influxtest.V3, db.URL)
		f.AddBucket("telemetry", db.DB)
		cfg.URL, cfg.Token, cfg.Org, cfg.Bucket = f.URL, f.Token, "", "telemetry"
	}
	return cfg, db
}

// forEachAPI runs fn as a subtest per API generation: the store's
// conformance suite.
func forEachAPI(t *testing.T, fn func(t *testing.T, api API)) {
	for _, api := range []API{APIV1, APIV2, APIV3} {
		t.Run(string(api), func(t *testing.T) { fn(t, api) })
	}
}

func newWriter(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w, err := NewWriter(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func newReader(t testing.TB, cfg Config) *Reader {
	t.Helper()
	r, err := NewReader(cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// record returns a fully populated record of unit at t; i varies the values.
func record(unit string, t time.Time, i int) telemetry.Record {
	r := telemetry.Record{
		Unit: unit, Site: "North Yard, Bay 3", Model: "FlexiPack-250", Firmware: "2.4.1", Schema: "2.1",
		Seq: int64(1000 + i), HasSeq: true, TimeMs: t.UnixMilli(),
		Has: telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
		SoC: 50 + float64(i%50)/10, SoH: 97.1, Voltage: 812.1, Current: -12.3, Power: -9.99,
		Temps: []telemetry.Temp{{Sensor: "ambient", C: 21.2222}, {Sensor: "cell_max", C: 31.2}},
		Mode:  "discharging",
	}
	if i%3 == 0 {
		r.Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: "Cell over-temperature > 30 °C"}}
	}
	return r
}

func series(units []string, start time.Time, step time.Duration, n int) []telemetry.Record {
	var out []telemetry.Record
	for _, u := range units {
		for i := 0; i < n; i++ {
			out = append(out, record(u, start.Add(time.Duration(i)*step), i))
		}
	}
	return out
}

// canonical sorts by unit then time, sorts alarms by code then severity (the
// order InfluxDB gives them back) and makes empty slices nil.
func canonical(rs []telemetry.Record) []telemetry.Record {
	out := make([]telemetry.Record, len(rs))
	for i, r := range rs {
		r.Temps = slices.Clone(r.Temps)
		r.Alarms = slices.Clone(r.Alarms)
		if len(r.Temps) == 0 {
			r.Temps = nil
		}
		if len(r.Alarms) == 0 {
			r.Alarms = nil
		}
		slices.SortStableFunc(r.Alarms, func(a, b telemetry.Alarm) int {
			return cmp.Or(strings.Compare(a.Code, b.Code), strings.Compare(a.Severity, b.Severity))
		})
		out[i] = r
	}
	slices.SortStableFunc(out, func(a, b telemetry.Record) int {
		return cmp.Or(strings.Compare(a.Unit, b.Unit), cmp.Compare(a.TimeMs, b.TimeMs))
	})
	return out
}

func streamAll(t *testing.T, r *Reader, from, to time.Time, units []string) []telemetry.Record {
	t.Helper()
	var got []telemetry.Record
	if err := r.Stream(testenv.Context(t, time.Minute), from, to, units, func(rec *telemetry.Record) error {
		got = append(got, *rec)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func equalRecords(t *testing.T, got, want []telemetry.Record) {
	t.Helper()
	want = canonical(want)
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	got = canonical(got)
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// wantCounts counts recs per unit and window as window.Align aligns them.
func wantCounts(recs []telemetry.Record, from, to time.Time, w time.Duration) []window.Count {
	m := map[window.Key]int64{}
	for _, r := range recs {
		if !r.Time().Before(from) && r.Time().Before(to) {
			m[window.Key{Unit: r.Unit, Start: window.Align(r.Time(), w)}]++
		}
	}
	var out []window.Count
	for k, n := range m {
		out = append(out, window.Count{Unit: k.Unit, Start: k.Start, N: n})
	}
	slices.SortFunc(out, func(a, b window.Count) int {
		return cmp.Or(strings.Compare(a.Unit, b.Unit), a.Start.Compare(b.Start))
	})
	return out
}

func TestRoundTrip(t *testing.T) { forEachAPI(t, testRoundTrip) }

func testRoundTrip(t *testing.T, api API) {
	cfg, _ := freshDBFor(t, api)
	cfg.BatchLines = 7 // several requests per Write, records never split
	cfg.StreamWindow = 10 * time.Minute
	cfg.ReadParallelism = 3 // slices of 3m20s: readings on both sides of slice bounds
	ctx := testenv.Context(t, 2*time.Minute)
	w, r := newWriter(t, cfg), newReader(t, cfg)
	if err := w.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	recs := series([]string{"FP2-000002", "FP2-000001"}, t0, 7*time.Minute, 30) // crosses StreamWindows
	odd := []telemetry.Record{
		{ // tags and strings that line protocol and Flux must escape
			// No backslash in tags: InfluxDB 1.x line protocol cannot carry one
			// (a tag value's backslash is literal, a trailing one escapes the
			// separator); strings fields can.
			Unit: `FP2 "odd",unit=1`, Site: `North Yard, Bay 3 = "west"`, Model: `Flexi,Pack 250`,
			Firmware: `2.4.1 "beta"\`, Schema: "2.1", TimeMs: t0.Add(time.Minute).UnixMilli(),
			Has: telemetry.HasPower, Power: -0.000123456, Mode: "maintenance",
			Temps: []telemetry.Temp{{Sensor: "c", C: -40}, {Sensor: "cell_12_max", C: 1e-5}, {Sensor: "x" + strings.Repeat("y", 31), C: 123456}},
			Alarms: []telemetry.Alarm{
				{Code: "Z-9", Severity: "critical", Text: `quote " backslash \ comma, equals = space`},
				{Code: "A 1,x", Severity: "info", Text: ""},
				{Code: "A 1,x", Severity: "warning", Text: "°C ünïcødé ${not.interpolated}"},
			},
		},
		{ // generation 1: no site-less firmware, seq 0, nothing optional but schema
			Unit: "FP1-000017", Schema: "1.0", TimeMs: t0.Add(90 * time.Second).UnixMilli(), HasSeq: true, Seq: 0,
		},
		{ // nothing but the required fields
			Unit: "FP1-000018", Schema: "2.0", TimeMs: t0.Add(91*time.Second + 1*time.Millisecond).UnixMilli(),
		},
	}
	all := append(slices.Clone(recs), odd...)
	if err := w.Write(ctx, all); err != nil {
		t.Fatal(err)
	}
	// Writing again is idempotent.
	if err := w.Write(ctx, all); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(-time.Hour), t0.Add(5*time.Hour)

	t.Run("stream all", func(t *testing.T) {
		equalRecords(t, streamAll(t, r, from, to, nil), all)
	})
	t.Run("stream some units, range cut", func(t *testing.T) {
		cutFrom, cutTo := t0.Add(14*time.Minute), t0.Add(70*time.Minute)
		var want []telemetry.Record
		for _, rec := range all {
			if (rec.Unit == "FP2-000001" || rec.Unit == odd[0].Unit) && !rec.Time().Before(cutFrom) && rec.Time().Before(cutTo) {
				want = append(want, rec)
			}
		}
		// One query at a time: each series comes in time order.
		serial := cfg
		serial.ReadParallelism = 1
		got := streamAll(t, newReader(t, serial), cutFrom, cutTo, []string{"FP2-000001", odd[0].Unit, "FP2-000001"})
		equalRecords(t, streamAll(t, r, cutFrom, cutTo, []string{"FP2-000001", odd[0].Unit}), want)
		last := map[string]int64{}
		for _, rec := range got {
			if rec.TimeMs < last[rec.Unit] {
				t.Fatalf("unit %s: %d after %d: a series is not in time order", rec.Unit, rec.TimeMs, last[rec.Unit])
			}
			last[rec.Unit] = rec.TimeMs
		}
		equalRecords(t, got, want)
	})
	t.Run("total", func(t *testing.T) {
		n, err := r.Total(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(all)) {
			t.Fatalf("total %d, want %d", n, len(all))
		}
		// Readings at t0 (2) and t0+70m (2): [t0, t0+70m) holds 10 per series unit + 3 odd.
		if n, err = r.Total(ctx, t0, t0.Add(70*time.Minute)); err != nil || n != 23 {
			t.Fatalf("total [t0, t0+70m): %d, %v; want 23", n, err)
		}
	})
	for _, c := range []struct {
		name     string
		from, to time.Time
		w        time.Duration
		units    []string
	}{
		{"1h", from, to, time.Hour, nil},
		{"15m, range cut inside windows", t0.Add(22 * time.Minute), t0.Add(3*time.Hour + 7*time.Minute), 15 * time.Minute, nil},
		{"7m does not divide a day", from, to, 7 * time.Minute, nil},
		{"to on a reading is exclusive (1.8's range is not)", t0, t0.Add(70 * time.Minute), 10 * time.Minute, nil},
		{"7d starts on window.Align's boundary, not a Thursday", from, to, 7 * 24 * time.Hour, nil},
		{"units", from, to, time.Hour, []string{"FP2-000002", odd[0].Unit}},
	} {
		t.Run("counts "+c.name, func(t *testing.T) {
			got, err := r.Counts(ctx, c.from, c.to, c.w, c.units)
			if err != nil {
				t.Fatal(err)
			}
			src := all
			if c.units != nil {
				src = nil
				for _, rec := range all {
					if slices.Contains(c.units, rec.Unit) {
						src = append(src, rec)
					}
				}
			}
			if want := wantCounts(src, c.from, c.to, c.w); !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %v\nwant %v", got, want)
			}
		})
	}
}

// poison writes one bsu point whose soc_pct is a string, so that every later
// float soc_pct in the same shard is a field type conflict.
func poison(t *testing.T, db testenv.InfluxDB, at time.Time) {
	t.Helper()
	u := fmt.Sprintf("%s/write?db=%s&precision=ms", db.URL, url.QueryEscape(db.DB))
	resp, err := http.Post(u, "text/plain", strings.NewReader(fmt.Sprintf("bsu,unit=poison soc_pct=\"x\",schema=\"2.1\" %d\n", at.UnixMilli())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("poison write: %s", resp.Status)
	}
}

func TestFieldTypeConflictIsolatesBadRecords(t *testing.T) {
	forEachAPI(t, testFieldTypeConflictIsolatesBadRecords)
}

func testFieldTypeConflictIsolatesBadRecords(t *testing.T, api API) {
	cfg, db := freshDBFor(t, api)
	cfg.BatchLines = 40
	ctx := testenv.Context(t, 2*time.Minute)
	poison(t, db, t0.Add(-time.Minute))
	reg := prometheus.NewRegistry()
	w, r := newWriter(t, cfg).WithMetrics(reg), newReader(t, cfg)

	recs := series([]string{"FP2-000001", "FP2-000002", "FP2-000003"}, t0, time.Second, 40)
	bad := []int{0, 17, 18, 63, 119} // these carry soc_pct (a float), the rest do not
	for i := range recs {
		if !slices.Contains(bad, i) {
			recs[i].Has &^= telemetry.HasSoC
			recs[i].SoC = 0
		}
	}
	err := w.Write(ctx, recs)
	var pe *PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *PartialError", err)
	}
	var idx []int
	for _, rej := range pe.Rejected {
		idx = append(idx, rej.Index)
		if rej.Key != recs[rej.Index].Key() {
			t.Fatalf("rejected %d: key %v, want %v", rej.Index, rej.Key, recs[rej.Index].Key())
		}
		if !strings.Contains(rej.Reason, "field type conflict") || !strings.Contains(rej.Reason, "soc_pct") {
			t.Fatalf("rejected %d: reason %q does not explain the conflict", rej.Index, rej.Reason)
		}
	}
	if !reflect.DeepEqual(idx, bad) {
		t.Fatalf("rejected %v, want exactly %v", idx, bad)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Fatal("a partial write must not be ErrUnavailable")
	}
	var good []telemetry.Record
	for i, rec := range recs {
		if !slices.Contains(bad, i) {
			good = append(good, rec)
		}
	}
	units := []string{"FP2-000001", "FP2-000002", "FP2-000003"}
	equalRecords(t, streamAll(t, r, t0, t0.Add(time.Hour), units), good)
	if n := counterValue(w.Metrics().Rejected); n != float64(len(bad)) {
		t.Fatalf("rejected metric %v, want %d", n, len(bad))
	}
	// 1.x and 2.x say only how many points they dropped: the writer splits
	// batches to find them. 3.x names the refused lines.
	if n := counterValue(w.Metrics().Splits); (n == 0) != (api == APIV3) {
		t.Fatalf("splits metric: %v on %s", n, api)
	}

	t.Run("every record refused", func(t *testing.T) {
		all := series([]string{"FP2-000009"}, t0.Add(10*time.Minute), time.Second, 10)
		err := w.Write(ctx, all)
		if !errors.As(err, &pe) || len(pe.Rejected) != len(all) {
			t.Fatalf("got %v, want all %d records rejected", err, len(all))
		}
	})
}

func TestWriteUnavailable(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	cfg := Config{URL: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), Bucket: "x/autogen", MaxRetries: 2, RetryBase: time.Millisecond}
	w := newWriter(t, cfg)
	err := w.Write(ctx, series([]string{"FP2-000001"}, t0, time.Second, 3))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "3 attempt(s)") {
		t.Fatalf("error %q does not say it tried 3 times", err)
	}
	if err := w.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping: got %v, want ErrUnavailable", err)
	}
	r := newReader(t, cfg)
	if _, err := r.Counts(ctx, t0, t0.Add(time.Hour), time.Hour, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("counts: got %v, want ErrUnavailable", err)
	}
}

func TestWriteUnknownDatabaseIsUnavailableWithoutRetry(t *testing.T) {
	cfg, _ := freshDB(t)
	cfg.Bucket = testenv.Name(t, "missing") + "/autogen"
	w := newWriter(t, cfg)
	var sleeps int
	w.sleep = func(context.Context, time.Duration) error { sleeps++; return nil }
	err := w.Write(testenv.Context(t, time.Minute), series([]string{"FP2-000001"}, t0, time.Second, 3))
	if !errors.Is(err, ErrUnavailable) || sleeps != 0 {
		t.Fatalf("got %v after %d retries, want ErrUnavailable without retrying", err, sleeps)
	}
}

// TestRetryThroughProxy puts an httptest proxy in front of the real InfluxDB
// that answers 503 and 429 to the first requests: the writer must retry
// and the data must land.
func TestRetryThroughProxy(t *testing.T) {
	cfg, _ := freshDB(t)
	target, _ := url.Parse(cfg.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var writes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/write" { // 1.8, found through /ping
			switch writes.Add(1) {
			case 1:
				http.Error(rw, `{"code":"unavailable","message":"busy"}`, http.StatusServiceUnavailable)
				return
			case 2:
				rw.Header().Set("Retry-After", "1")
				http.Error(rw, "slow down", http.StatusTooManyRequests)
				return
			}
		}
		proxy.ServeHTTP(rw, req)
	}))
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	pcfg := cfg
	pcfg.URL = srv.URL
	w := newWriter(t, pcfg).WithMetrics(reg)
	var delays []time.Duration
	w.sleep = func(_ context.Context, d time.Duration) error { delays = append(delays, d); return nil }
	ctx := testenv.Context(t, time.Minute)
	recs := series([]string{"FP2-000001"}, t0, time.Second, 25)
	if err := w.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if len(delays) != 2 || delays[1] != time.Second {
		t.Fatalf("retry delays %v, want two, the second the Retry-After of 1s", delays)
	}
	if n := counterValue(w.Metrics().Retries.WithLabelValues("503")) + counterValue(w.Metrics().Retries.WithLabelValues("429")); n != 2 {
		t.Fatalf("retries metric %v, want 2", n)
	}
	n, err := newReader(t, cfg).Total(ctx, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(recs)) {
		t.Fatalf("InfluxDB holds %d readings, want %d", n, len(recs))
	}
}

// counterValue sums the counter values c collects.
func counterValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err == nil && d.Counter != nil {
			sum += d.Counter.GetValue()
		}
	}
	return sum
}
