package influxdb

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/flexipack/cutover/scripts/fleetbench/fleet"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/rollup"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// BenchmarkRollup rolls a day of the fleetbench data set (ROLLUP_BENCH_UNITS
// units, default 60, at a 1-minute cadence: 86,400 readings) up into
// bsu_5m and bsu_site_5m with the Go job, next to the continuous queries'
// own SELECT … INTO statements over the same day (the baseline it
// replaced), in one run on the same database.
func BenchmarkRollup(b *testing.B) {
	ctx := context.Background()
	units := 60
	if n, err := strconv.Atoi(os.Getenv("ROLLUP_BENCH_UNITS")); err == nil && n > 0 {
		units = n
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f := fleet.New(units, max(1, units/10), start, 1, time.Minute, 1)
	db := testenv.Influx(b)
	cfg := influx.Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket}
	w, err := influx.NewWriter(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	batch := make([]telemetry.Record, 0, 5000)
	err = f.Each(func(r *telemetry.Record) error {
		c := *r
		c.Temps = append([]telemetry.Temp(nil), r.Temps...)
		c.Alarms = append([]telemetry.Alarm(nil), r.Alarms...)
		if batch = append(batch, c); len(batch) == cap(batch) {
			err := w.Write(ctx, batch)
			batch = batch[:0]
			return err
		}
		return nil
	})
	if err == nil {
		err = w.Write(ctx, batch)
	}
	if err != nil {
		b.Fatal(err)
	}
	qc, err := influx.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer qc.Close()
	job := rollup.New(qc, w, nil)
	cqs, err := ContinuousQueries(ContinuousQueriesText)
	if err != nil {
		b.Fatal(err)
	}
	stmts, err := ResampleStatements(cqs, start, start.Add(24*time.Hour), 0)
	if err != nil {
		b.Fatal(err)
	}
	var tJob, tCQ time.Duration
	for b.Loop() {
		t := time.Now()
		for _, s := range stmts {
			if err := qc.Query(ctx, s, func(*influx.Series) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		tCQ += time.Since(t)
		t = time.Now()
		res, err := job.Range(ctx, start, start.Add(24*time.Hour))
		if err != nil || res.Points == 0 {
			b.Fatalf("rollup: %d points, %v", res.Points, err)
		}
		tJob += time.Since(t)
	}
	n := float64(b.N) * float64(f.Readings())
	b.ReportMetric(n/tJob.Seconds(), "job_readings/s")
	b.ReportMetric(n/tCQ.Seconds(), "cq_readings/s")
	b.ReportMetric(tCQ.Seconds()/tJob.Seconds(), "ratio")
}
