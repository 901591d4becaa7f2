package verify_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/scripts/fleetbench/fleet"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/verify"
)

// benchData is the fleetbench data set loaded into a fresh legacy store and
// a fresh InfluxDB database, shared by the benchmarks of one run.
type benchData struct {
	legacy   *legacy.Store
	db       testenv.InfluxDB
	from, to time.Time
	readings int64
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// loadBench loads VERIFY_BENCH_UNITS units (default 60) over one day at a
// 1-minute cadence (86,400 readings by default, the size of the demo's day)
// into a fresh legacy store and InfluxDB database, dropped when b ends.
func loadBench(b *testing.B) benchData {
	b.Helper()
	logger := slog.New(slog.DiscardHandler)
	var bench benchData
	func() {
		ctx := context.Background()
		units := envInt("VERIFY_BENCH_UNITS", 60)
		start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		f := fleet.New(units, max(1, units/10), start, 1, time.Minute, 1)
		leg, err := legacy.Open(ctx, testenv.Postgres(b), logger)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(leg.Close)
		if err := leg.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		db := testenv.Influx(b)
		w, err := influx.NewWriter(influx.Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket}, logger)
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		batch := make([]telemetry.Record, 0, 5000)
		flush := func() error {
			if err := leg.Write(ctx, batch); err != nil {
				return err
			}
			if err := w.Write(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
			return nil
		}
		err = f.Each(func(r *telemetry.Record) error {
			c := *r
			c.Temps = append([]telemetry.Temp(nil), r.Temps...)
			c.Alarms = append([]telemetry.Alarm(nil), r.Alarms...)
			if batch = append(batch, c); len(batch) == cap(batch) {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			b.Fatal(err)
		}
		bench = benchData{legacy: leg, db: db, from: start, to: start.Add(24 * time.Hour), readings: f.Readings()}
		waitCold(b, db)
	}()
	return bench
}

// waitCold waits until InfluxDB has moved the database's freshly written
// points from its write cache into TSM files and finished compacting them,
// so the benchmarks read a past day as production reads it (from the cache,
// every query sorts and deduplicates the points again: about a third more
// InfluxDB CPU per reading). scripts/services.sh sets the 5-second
// cache-snapshot-write-cold-duration this relies on.
func waitCold(b *testing.B, db testenv.InfluxDB) {
	b.Helper()
	c, err := influx.NewClient(influx.Config{URL: db.URL, Token: db.Token, Bucket: db.Bucket})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var busy []string
		err := c.Query(context.Background(), "SHOW STATS", func(s *influx.Series) error {
			if s.Tags["database"] != db.DB || len(s.Values) == 0 {
				return nil
			}
			for i, col := range s.Columns {
				if col != "memBytes" && !strings.HasSuffix(col, "CompactionsActive") {
					continue
				}
				if n, _ := influx.Int64(s.Values[0][i]); n != 0 {
					busy = append(busy, fmt.Sprintf("%s %s=%d", s.Name, col, n))
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("InfluxDB's stats: %v", err)
		}
		if len(busy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("InfluxDB still holds the benchmark's points in its cache after 2 minutes (%s): is cache-snapshot-write-cold-duration short, as scripts/services.sh sets it?", strings.Join(busy, ", "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func timed(b *testing.B, fn func() error) time.Duration {
	b.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkVerify compares the legacy store with InfluxDB over the data
// set's day (1h windows, verify's defaults), reading InfluxDB with
// InfluxQL, and the same with the Flux reader it replaced, in one run.
func BenchmarkVerify(b *testing.B) {
	d := loadBench(b)
	// migrate's main sets this GC target (unless GOGC is set).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	ql, err := influx.NewReader(influx.Config{URL: d.db.URL, Token: d.db.Token, Org: d.db.Org, Bucket: d.db.Bucket}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ql.Close()
	fx := newFluxReader(d.db.URL, d.db.Token, d.db.Org, d.db.Bucket)
	defer fx.client.Close()
	ctx := context.Background()
	run := func(src verify.Source) func() error {
		return func() error {
			res, err := verify.Compare(ctx, d.legacy, src, verify.Options{From: d.from, To: d.to})
			if err == nil && (res.Mismatched != 0 || res.InfluxReadings != d.readings) {
				b.Fatalf("verify found %d mismatches, %d InfluxDB readings of %d", res.Mismatched, res.InfluxReadings, d.readings)
			}
			return err
		}
	}
	cpu, err := serverCPU(d.db.URL)
	if err != nil {
		b.Fatalf("InfluxDB's CPU time: %v", err)
	}
	// One untimed pass of each first: the timed ones find the files and
	// the caches as a second verify of the same day would. The InfluxQL
	// passes run together, then the Flux ones: interleaved, each InfluxQL
	// pass met the garbage a Flux pass had just left in InfluxDB.
	if err := run(ql)(); err != nil {
		b.Fatal(err)
	}
	var tQL, tFlux, cQL, cFlux time.Duration
	for b.Loop() {
		c0 := cpu()
		tQL += timed(b, run(ql))
		cQL += cpu() - c0
	}
	if err := run(fx)(); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		c0 := cpu()
		tFlux += timed(b, run(fx))
		cFlux += cpu() - c0
	}
	n := float64(b.N) * float64(d.readings)
	b.ReportMetric(n/tQL.Seconds(), "influxql_readings/s")
	b.ReportMetric(n/tFlux.Seconds(), "flux_readings/s")
	b.ReportMetric(tFlux.Seconds()/tQL.Seconds(), "ratio")
	b.ReportMetric(float64(d.readings), "readings")
	// InfluxDB's own CPU per verified reading: what bounds the rate on an
	// idle machine (1e6 / µs per reading = readings/s per InfluxDB core).
	b.ReportMetric(float64(cQL.Microseconds())/n, "influxql_influxd_cpu_us/reading")
	b.ReportMetric(float64(cFlux.Microseconds())/n, "flux_influxd_cpu_us/reading")
}

// BenchmarkGapCounts counts InfluxDB's readings per unit and 1h window over
// the day (what backfill gaps compares with the snapshots' counts) with
// InfluxQL, next to the Flux count it replaced.
func BenchmarkGapCounts(b *testing.B) {
	d := loadBench(b)
	ql, err := influx.NewReader(influx.Config{URL: d.db.URL, Token: d.db.Token, Org: d.db.Org, Bucket: d.db.Bucket}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ql.Close()
	fx := newFluxReader(d.db.URL, d.db.Token, d.db.Org, d.db.Bucket)
	defer fx.client.Close()
	ctx := context.Background()
	var tQL, tFlux time.Duration
	for b.Loop() {
		var nQL, nFlux int64
		tQL += timed(b, func() error {
			cs, err := ql.Counts(ctx, d.from, d.to, time.Hour, nil)
			for _, c := range cs {
				nQL += c.N
			}
			return err
		})
		tFlux += timed(b, func() error {
			cs, err := fx.Counts(ctx, d.from, d.to, time.Hour, nil)
			for _, c := range cs {
				nFlux += c.N
			}
			return err
		})
		if nQL != d.readings || nFlux != d.readings {
			b.Fatalf("counted %d (InfluxQL) and %d (Flux) readings, want %d", nQL, nFlux, d.readings)
		}
	}
	n := float64(b.N) * float64(d.readings)
	b.ReportMetric(n/tQL.Seconds(), "influxql_readings/s")
	b.ReportMetric(n/tFlux.Seconds(), "flux_readings/s")
	b.ReportMetric(tFlux.Seconds()/tQL.Seconds(), "ratio")
}

// BenchmarkVerifyParts times each store's stream alone over the data set's
// day (what bounds BenchmarkVerify: the two run concurrently), InfluxDB's
// with one query at a time and with two slices read in parallel.
func BenchmarkVerifyParts(b *testing.B) {
	d := loadBench(b)
	reader := func(p int) *influx.Reader {
		r, err := influx.NewReader(influx.Config{URL: d.db.URL, Token: d.db.Token, Org: d.db.Org, Bucket: d.db.Bucket, ReadParallelism: p}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(r.Close)
		return r
	}
	ql1, ql2 := reader(1), reader(2)
	ctx := context.Background()
	stream := func(src verify.Source) func() error {
		return func() error {
			var h uint64
			return src.Stream(ctx, d.from, d.to, nil, func(r *telemetry.Record) error { h += verify.RecordHash(r); return nil })
		}
	}
	var tLeg, tQL1, tQL2 time.Duration
	for b.Loop() {
		tLeg += timed(b, stream(d.legacy))
		tQL1 += timed(b, stream(ql1))
		tQL2 += timed(b, stream(ql2))
	}
	n := float64(b.N) * float64(d.readings)
	b.ReportMetric(n/tLeg.Seconds(), "legacy_readings/s")
	b.ReportMetric(n/tQL1.Seconds(), "influxql_p1_readings/s")
	b.ReportMetric(n/tQL2.Seconds(), "influxql_p2_readings/s")
}
