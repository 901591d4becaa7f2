package cmd_test

// Benchmarks run by `make bench` against the real services. They measure
// whole runs, so each iteration takes seconds and Go runs it once; each
// fails (b.Errorf) when its target is missed.
//
//   BACKFILL_BENCH_POINTS            readings in the throughput benchmark (default 150000)
//   BACKFILL_BENCH_THROTTLE_WINDOW   how long the throttled run lasts (default 60s)
//   BACKFILL_BENCH_THROTTLE_RATE     its target rate (default 2000/s)
//   BACKFILL_BENCH_RSS_POINTS        readings in the small snapshot of the memory benchmark (default 3000; the large one has 100x)

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchReadings returns n readings over as many units as keep ~1 reading
// per second per unit, starting at t0.
func benchReadings(n int) []telemetry.Record {
	out := make([]telemetry.Record, n)
	for i := range out {
		out[i] = benchReading(i, n)
	}
	return out
}

// benchReading returns reading i of benchReadings(n).
func benchReading(i, n int) telemetry.Record {
	unitsN := max(n/3600, 1)
	return reading(fmt.Sprintf("FP2-%06d", i%unitsN), t0.Add(time.Duration(i/unitsN)*time.Second))
}

// rawWrite is the baseline: precomputed line protocol posted in requests
// of up to 5000 lines (InfluxDB's advice, and the writer's batch size), one
// request at a time, into the given database.
func rawWrite(b *testing.B, base, bucket string, recs []telemetry.Record) time.Duration {
	b.Helper()
	var bodies [][]byte
	var body []byte
	lines := 0
	for i := range recs {
		if n := 1 + len(recs[i].Alarms); lines+n > 5000 {
			bodies, body, lines = append(bodies, body), nil, 0
		}
		body = telemetry.AppendLineProtocol(body, &recs[i])
		lines += 1 + len(recs[i].Alarms)
	}
	bodies = append(bodies, body)
	u := base + "/api/v2/write?precision=ms&org=flexipack&bucket=" + url.QueryEscape(bucket)
	start := time.Now()
	for _, body := range bodies {
		resp, err := http.Post(u, "text/plain; charset=utf-8", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("raw write: %s", resp.Status)
		}
	}
	return time.Since(start)
}

// BenchmarkReplayVsRawWrite compares an unthrottled `backfill run
// --execute` with the raw line-protocol loop, both writing the same readings
// into fresh databases of the same InfluxDB in the same run. Target: the
// replay's writing phase (replay_points_per_second in the run's summary) at
// >= 80% of the raw loop; the whole command (read and verify the snapshot,
// de-duplicate, count both sides, replay) is reported as run/raw.
func BenchmarkReplayVsRawWrite(b *testing.B) {
	n := envInt("BACKFILL_BENCH_POINTS", 150_000)
	recs := benchReadings(n)
	dir := b.TempDir()
	st, _ := snapshot.NewDirStore(dir)
	w, err := snapshot.NewWriter(st, "", "20261121T000000Z", t0, t0.Add(24*time.Hour), snapshot.WriterOptions{PartRecords: 50_000})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range recs {
		if err := w.Add(ctx, &recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var rawRate, replayRate, phaseRate float64
	var replayCPU time.Duration
	for i := 0; i < b.N; i++ {
		// Alternate which goes first so neither always meets a warmer server.
		var raw, replay time.Duration
		var sum struct {
			ReplayPointsPerSecond float64 `json:"replay_points_per_second"`
			Result                struct {
				PointsWritten int `json:"points_written"`
			} `json:"result"`
		}
		runRaw := func() {
			db := testenv.Influx(b)
			raw = rawWrite(b, db.URL, db.Bucket, recs)
		}
		runReplay := func() {
			e := newEnv(b)
			start, cpu0 := time.Now(), testenv.CPUTime()
			code, out := e.backfill("run", "--snapshot-dir", dir, "--from", t0.Format(time.RFC3339), "--to", t0.Add(24*time.Hour).Format(time.RFC3339),
				"--execute", "--influx-url", e.influx.URL, "--output", "json")
			replay = time.Since(start)
			replayCPU += testenv.CPUTime() - cpu0
			if code != 0 {
				b.Fatalf("run exit %d:\n%s", code, out)
			}
			if err := json.Unmarshal([]byte(out[strings.Index(out, "\n{")+1:]), &sum); err != nil {
				b.Fatalf("run summary: %v\n%s", err, out)
			}
			if sum.Result.PointsWritten != n {
				b.Fatalf("run wrote %d readings, want %d", sum.Result.PointsWritten, n)
			}
		}
		if i%2 == 0 {
			runRaw()
			runReplay()
		} else {
			runReplay()
			runRaw()
		}
		rawRate += float64(n) / raw.Seconds()
		replayRate += float64(n) / replay.Seconds()
		phaseRate += sum.ReplayPointsPerSecond
		b.Logf("raw loop %s (%.0f/s); backfill run %s end to end (%.0f/s), writing phase %.0f/s",
			raw.Round(time.Millisecond), float64(n)/raw.Seconds(), replay.Round(time.Millisecond), float64(n)/replay.Seconds(), sum.ReplayPointsPerSecond)
	}
	rawRate /= float64(b.N)
	replayRate /= float64(b.N)
	phaseRate /= float64(b.N)
	b.ReportMetric(rawRate, "raw-points/s")
	b.ReportMetric(replayRate, "run-points/s")
	b.ReportMetric(replayRate/rawRate, "run/raw")
	b.ReportMetric(phaseRate/rawRate, "writing-phase/raw")
	// CPU of the backfill process (in-process here) per point replayed,
	// end to end; InfluxDB's own CPU is not counted.
	b.ReportMetric(float64(replayCPU.Microseconds())/float64(n*b.N), "cpu-us/point")
	// The target is on the replay itself, the writing phase; reading and
	// verifying the snapshots and counting both sides come before it and
	// are reported end to end (run/raw) for the record.
	if phaseRate < 0.8*rawRate {
		b.Errorf("unthrottled replay (writing phase) %.0f points/s is %.0f%% of the raw loop's %.0f points/s; want >= 80%%", phaseRate, 100*phaseRate/rawRate, rawRate)
	}
}

// BenchmarkThrottledRate runs `backfill run --execute --rate R` over enough
// readings to last the window and measures, at a counting proxy, the rate
// the writes arrive at. Target: within ±5% of R.
func BenchmarkThrottledRate(b *testing.B) {
	rate := envInt("BACKFILL_BENCH_THROTTLE_RATE", 2000)
	win := envDur("BACKFILL_BENCH_THROTTLE_WINDOW", 60*time.Second)
	n := int(float64(rate) * win.Seconds())
	recs := benchReadings(n)
	for i := 0; i < b.N; i++ {
		e := newEnv(b)
		e.writeSnapshot("20261121T000000Z", t0, t0.Add(24*time.Hour), recs, 50_000)
		code, out := e.backfill("run", "--from", t0.Format(time.RFC3339), "--to", t0.Add(24*time.Hour).Format(time.RFC3339),
			"--execute", "--rate", strconv.Itoa(rate))
		if code != 0 {
			b.Fatalf("run exit %d:\n%s", code, out)
		}
		got, span, reqs := e.proxy.rate()
		b.ReportMetric(got, "achieved-points/s")
		b.ReportMetric(float64(rate), "target-points/s")
		b.ReportMetric(100*(got-float64(rate))/float64(rate), "error-%")
		b.ReportMetric(span.Seconds(), "measured-s")
		b.Logf("target %d/s, achieved %.1f/s over %s in %d requests", rate, got, span.Round(time.Millisecond), reqs)
		if got < 0.95*float64(rate) || got > 1.05*float64(rate) {
			b.Errorf("achieved %.1f points/s, target %d: outside ±5%%", got, rate)
		}
	}
}

// BenchmarkPeakRSS runs the backfill binary on a snapshot and on one 100
// times larger (both fully replayed into fresh databases) and reports each
// run's peak RSS (VmHWM, which the run reports in its summary). Memory is
// bounded by --spill-memory (readings held before spilling to disk), not by
// the snapshot: with the buffer (BACKFILL_BENCH_SPILL_MIB, default 1 MiB)
// smaller than the small snapshot's readings, both runs peak at about the
// same RSS. Target: the large run's peak stays under 1.5x the small one's.
func BenchmarkPeakRSS(b *testing.B) {
	bin := buildBackfill(b)
	small := envInt("BACKFILL_BENCH_RSS_POINTS", 30000) // large enough to fill the fixed buffers (batches, spill chunk)
	spillMiB := envInt("BACKFILL_BENCH_SPILL_MIB", 1)
	for i := 0; i < b.N; i++ {
		var rss [2]float64
		for j, n := range []int{small, small * 100} {
			e := newEnv(b)
			dir := b.TempDir()
			st, _ := snapshot.NewDirStore(dir)
			w, err := snapshot.NewWriter(st, "", "20261121T000000Z", t0, t0.Add(48*time.Hour), snapshot.WriterOptions{PartRecords: 100_000})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for k := 0; k < n; k++ {
				r := benchReading(k, n)
				if err := w.Add(ctx, &r); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
			args := append([]string{"--log-level", "warn", "run"}, e.args()...)
			args = append(args, "--http-addr", "127.0.0.1:0", "--snapshot-dir", dir, "--influx-url", e.influx.URL, "--execute",
				"--spill-memory", strconv.Itoa(spillMiB),
				"--output", "json", "--from", t0.Format(time.RFC3339), "--to", t0.Add(48*time.Hour).Format(time.RFC3339))
			cmd := exec.Command(bin, args...)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			if err := cmd.Run(); err != nil {
				b.Fatalf("backfill on %d readings: %v\n%s", n, err, stdout.String())
			}
			var sum struct {
				PeakRSSMiB float64 `json:"peak_rss_mib"`
				Result     struct {
					PointsWritten int `json:"points_written"`
				} `json:"result"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Result.PointsWritten != n || sum.PeakRSSMiB == 0 {
				b.Fatalf("backfill on %d readings: summary %+v, %v:\n%s", n, sum, err, stdout.String())
			}
			rss[j] = sum.PeakRSSMiB
			b.Logf("%d readings: peak RSS %.1f MiB", n, rss[j])
		}
		b.ReportMetric(rss[0], "small-peak-MiB")
		b.ReportMetric(rss[1], "100x-peak-MiB")
		b.ReportMetric(rss[1]/rss[0], "ratio")
		b.ReportMetric(float64(spillMiB), "spill-MiB")
		if rss[1] > 1.5*rss[0] {
			b.Errorf("peak RSS grows with the snapshot: %.1f MiB for %d readings, %.1f MiB for 100x", rss[0], small, rss[1])
		}
	}
}
