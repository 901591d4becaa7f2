//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// Fleet sizes, chosen so the whole story takes a few minutes on two cores.
const (
	units          = 40
	historyCount   = 4000             // messages of time-compressed history (cadence 30 s: ~50 min of data)
	liveCadence    = "1s"             // live traffic: 40 messages a second
	influxOutage   = 30 * time.Second // the one bare sleep: InfluxDB is down this long
	badRatio       = "0.01"
	verifyWindow   = "1m"
	consumerCount  = 2
	liveForHealthy = 15 * time.Second
)

// simSummary is what 'producer simulate -o json' reports.
type simSummary struct {
	Messages        int64          `json:"messages"`
	Readings        int64          `json:"readings"`
	RejectedSamples int64          `json:"rejected_samples"`
	BadMessages     int64          `json:"bad_messages"`
	BadByKind       map[string]int `json:"bad_by_kind"`
	SimStart        time.Time      `json:"sim_start"`
	SimEnd          time.Time      `json:"sim_end"`
	Retries         int64          `json:"retries"`
	Interrupted     bool           `json:"interrupted"`
}

func (s *simSummary) add(o simSummary) {
	if s.BadByKind == nil {
		s.BadByKind = map[string]int{}
	}
	for k, n := range o.BadByKind {
		s.BadByKind[k] += n
	}
	s.Messages += o.Messages
	s.Readings += o.Readings
	s.RejectedSamples += o.RejectedSamples
	s.BadMessages += o.BadMessages
	s.Retries += o.Retries
}

// snapshotManifest is what 'backfill snapshot -o json' reports.
type snapshotManifest struct {
	SnapshotID string `json:"snapshot_id"`
	Records    int64  `json:"records"`
}

// gapsReport is what 'backfill gaps -o json' reports.
type gapsReport struct {
	GapsFound    int   `json:"gaps_found"`
	MissingTotal int64 `json:"missing_readings"`
}

// runReport is what 'backfill run --execute -o json' reports.
type runReport struct {
	RunID          string  `json:"run_id"`
	GapsFound      int     `json:"gaps_found"`
	MissingTotal   int64   `json:"missing_readings"`
	LedgerRepaired []int64 `json:"ledger_repaired"`
	LedgerOpen     []any   `json:"ledger_not_covered"`
	Skipped        bool    `json:"skipped_anything"`
	Result         struct {
		PointsWritten  int64 `json:"points_written"`
		WindowsDone    int64 `json:"windows_done"`
		PointsRejected int64 `json:"points_rejected"`
	} `json:"result"`
}

// TestCutoverStory runs the whole cutover with the four real binaries and
// faults, and checks that every accepted reading ends up in both stores
// exactly once and every malformed message in the dead-letter queue:
//
//  1. two consumers in phase legacy; a time-compressed history is simulated
//     and drained into PostgreSQL;
//  2. a snapshot of that history goes to S3, then the cutover advances to
//     dual-write, and only then does live traffic start, so no reading can
//     fall between the snapshot and dual-write;
//  3. while live traffic flows: a consumer is SIGKILLed twice (and
//     restarted), RabbitMQ restarts, InfluxDB is down for 30 s (the
//     consumers record gap-ledger entries) and PostgreSQL restarts;
//  4. a second snapshot covers the live traffic; backfill repairs the
//     history (gaps + run) and the lost window (run --from-ledger);
//  5. verify is clean; the cutover advances through shadow-read to
//     influx-primary, and a last burst of traffic lands in both stores.
func TestCutoverStory(t *testing.T) {
	began := time.Now()
	ctx := testenv.Context(t, 12*time.Minute)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	lg := &logs{dir: t.TempDir()}
	t.Cleanup(func() { lg.dumpOnFailure(t) }) // runs last: after the processes stopped

	bin := binaries(t)
	pg := testenv.StartPostgres(t)
	inf := testenv.StartInfluxd(t)
	bucket := testenv.S3(t)
	amqpURL := testenv.RabbitURL(t)
	mgmtURL := testenv.RabbitMgmtURL(t)
	exchange, queue := testenv.Name(t, "x"), testenv.Name(t, "q")
	deadExchange, deadQueue := testenv.Name(t, "dlx"), testenv.Name(t, "dq")
	t.Cleanup(func() { deleteQueues(t, amqpURL, []string{queue, deadQueue}, []string{exchange, deadExchange}) })

	const influxBucket = "telemetry/autogen"
	env := append(os.Environ(),
		"PG_DSN="+pg.DSN, "STATE_DSN="+pg.DSN,
		"INFLUX_URL="+inf.URL, "INFLUX_TOKEN=", "INFLUX_ORG=flexipack", "INFLUX_BUCKET="+influxBucket,
		"S3_ENDPOINT="+bucket.Endpoint, "S3_BUCKET="+bucket.Bucket, "S3_PREFIX=snapshots",
		"AWS_ACCESS_KEY_ID="+bucket.AccessKey, "AWS_SECRET_ACCESS_KEY="+bucket.SecretKey, "AWS_REGION="+bucket.Region,
		"AMQP_URL="+amqpURL, "AMQP_MANAGEMENT_URL="+mgmtURL, "BUS=rabbitmq", "AMQP_QUEUE_TYPE=classic",
		"AMQP_EXCHANGE="+exchange, "AMQP_QUEUE="+queue, "AMQP_DEAD_EXCHANGE="+deadExchange, "AMQP_DEAD_QUEUE="+deadQueue,
		"LOG_FORMAT=json", "LOG_LEVEL=info", "HTTP_ADDR=", "MIGRATE_ACTOR=e2e")
	r := &runner{t: t, ctx: ctx, bin: bin, env: env, logs: lg}

	state, err := cutover.Open(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()
	leg, err := legacy.Open(ctx, pg.DSN, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	icfg := influx.Config{URL: inf.URL, Org: "flexipack", Bucket: influxBucket}
	reader, err := influx.NewReader(icfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	// Reading times: the history starts at most a few hours back, live
	// traffic ends before now; everything is counted over [origin, far).
	origin := time.Now().Add(-6 * time.Hour).Truncate(time.Hour)
	far := time.Now().Add(24 * time.Hour)
	legacyTotal := func() (int64, error) { return leg.Total(ctx, origin, far) }
	influxTotal := func() (int64, error) { return reader.Total(ctx, origin, far) }
	var producer *proc // the live traffic, while it runs
	waitLegacy := func(what string, want func(int64) error) {
		t.Helper()
		testenv.Eventually(t, 2*time.Minute, what, func() error {
			if producer != nil && !producer.running() && producer.err != nil {
				t.Fatalf("%s: producer simulate (live) exited: %v\n%s", what, producer.err, producer.out.String())
			}
			n, err := legacyTotal()
			if err != nil {
				return err
			}
			return want(n)
		})
	}
	atLeast := func(min int64) func(int64) error {
		return func(n int64) error {
			if n < min {
				return fmt.Errorf("legacy store holds %d readings, want at least %d", n, min)
			}
			return nil
		}
	}
	exactly := func(want int64) func(int64) error {
		return func(n int64) error {
			if n != want {
				return fmt.Errorf("legacy store holds %d readings, want %d", n, want)
			}
			return nil
		}
	}
	live := func(want int) func() error {
		return func() error {
			hbs, err := state.Heartbeats(ctx, liveForHealthy)
			if err != nil {
				return err
			}
			if len(hbs) < want {
				return fmt.Errorf("%d live consumers, want %d", len(hbs), want)
			}
			_, consumers, err := queueState(amqpURL, queue)
			if err != nil {
				return err
			}
			if consumers < want {
				return fmt.Errorf("%d consumers on %s, want %d", consumers, queue, want)
			}
			return nil
		}
	}
	drained := func() error {
		msgs, _, err := queueState(amqpURL, queue)
		if err != nil {
			return err
		}
		if msgs != 0 {
			return fmt.Errorf("%d messages still in %s", msgs, queue)
		}
		return nil
	}
	step := func(format string, args ...any) {
		t.Logf("==> [%s] %s", time.Since(began).Round(time.Second), fmt.Sprintf(format, args...))
	}

	// 1. Two consumers in phase legacy.
	step("two consumers, phase legacy")
	consumers := map[string]*proc{}
	startConsumer := func(id string) {
		consumers[id] = r.start(id, "consumer", "run", "--consumer-id", id, "--phase-poll", "200ms", "--shutdown-timeout", "10s")
	}
	for i := 1; i <= consumerCount; i++ {
		startConsumer(fmt.Sprintf("consumer-%d", i))
	}
	testenv.Eventually(t, 90*time.Second, "both consumers beat and consume", live(consumerCount))

	// 2. History, time compressed: it drains into the legacy store.
	step("history: %d units, %d messages, as fast as the bus takes them", units, historyCount)
	var history, liveSum, last, total simSummary
	r.runJSON(&history, 0, "producer", "simulate", "--units", fmt.Sprint(units), "--count", fmt.Sprint(historyCount),
		"--cadence", "30s", "--time-scale", "0", "--bad-ratio", badRatio, "--seed", "101")
	total.add(history)
	t.Logf("history: %d messages, %d readings, %d bad messages %v, %d rejected samples, simulated %s .. %s",
		history.Messages, history.Readings, history.BadMessages, history.BadByKind, history.RejectedSamples,
		history.SimStart.Format(time.RFC3339), history.SimEnd.Format(time.RFC3339))
	if history.Readings == 0 || history.BadMessages == 0 || history.RejectedSamples == 0 {
		t.Fatalf("the history has no readings, bad messages or rejected samples: %+v", history)
	}
	if history.SimStart.Before(origin) {
		t.Fatalf("history starts at %s, before the counted range %s", history.SimStart, origin)
	}
	waitLegacy("the history is in the legacy store", exactly(total.Readings))
	testenv.Eventually(t, time.Minute, "the ingest queue is drained", drained)

	// 3. Snapshot of the history, then dual-write, then live traffic.
	snap1To := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	testenv.Eventually(t, 3*time.Second, "the snapshot's end is in the past", func() error {
		if time.Now().Before(snap1To) {
			return fmt.Errorf("now is before %s", snap1To)
		}
		return nil
	})
	step("snapshot of the legacy store [%s, %s)", origin.Format(time.RFC3339), snap1To.Format(time.RFC3339))
	var snap1 snapshotManifest
	r.runJSON(&snap1, 0, "backfill", "snapshot", "--from", origin.Format(time.RFC3339), "--to", snap1To.Format(time.RFC3339))
	if snap1.Records != history.Readings {
		t.Fatalf("snapshot %s holds %d records, the history %d readings", snap1.SnapshotID, snap1.Records, history.Readings)
	}
	step("advance to dual-write")
	r.run(0, "migrate", "advance", "--execute", "--to", "dual-write", "--consumer-timeout", "60s", "--reason", "e2e: start dual-write")
	dualWriteAt := time.Now().UTC().Truncate(time.Second)

	step("live traffic: %d units every %s, real time, with faults", units, liveCadence)
	liveStart := time.Now().UTC().Truncate(time.Second) // not in the future, not before dual-write
	producer = r.start("producer-live", "producer", "simulate", "--units", fmt.Sprint(units), "--cadence", liveCadence,
		"--time-scale", "1", "--start", liveStart.Format(time.RFC3339), "--bad-ratio", badRatio, "--seed", "202", "-o", "json")
	before := total.Readings
	waitLegacy("live traffic reaches the legacy store", atLeast(before+300))

	var faults []string
	kill := func(id string) {
		t.Helper()
		step("SIGKILL %s, then restart it", id)
		consumers[id].kill()
		startConsumer(id)
		faults = append(faults, "kill:"+id)
	}
	progress := func(what string, more int64) {
		t.Helper()
		var n int64
		testenv.Eventually(t, time.Minute, "count the legacy store's readings", func() (err error) {
			n, err = legacyTotal()
			return err
		})
		waitLegacy(what, atLeast(n+more))
	}

	// Fault 1: a consumer dies mid-stream.
	kill("consumer-1")
	testenv.Eventually(t, 90*time.Second, "both consumers back", live(consumerCount))
	progress("traffic flows after the kill", 200)

	// Fault 2: the shared RabbitMQ restarts (durable queues keep their messages).
	step("RabbitMQ restart (rabbitmqctl stop_app / start_app)")
	for _, args := range [][]string{{"stop_app"}, {"start_app"}} {
		if out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl %s: %v\n%s", args[0], err, out)
		}
	}
	faults = append(faults, "rabbitmq-restart")
	testenv.Eventually(t, 2*time.Minute, "both consumers reconnected after the broker restart", live(consumerCount))
	progress("traffic flows after the broker restart", 200)

	// Fault 3: InfluxDB is down for 30 s; a consumer dies during it too.
	step("InfluxDB down for %s", influxOutage)
	inf.Stop()
	outageBegan := time.Now()
	testenv.Eventually(t, influxOutage, "the consumers record gap-ledger entries", func() error {
		n, err := state.OpenGapCount(ctx, "")
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no open gap-ledger entries yet")
		}
		return nil
	})
	kill("consumer-1")
	time.Sleep(influxOutage - time.Since(outageBegan))
	inf.Start()
	faults = append(faults, fmt.Sprintf("influx-outage:%s", influxOutage))
	step("InfluxDB back after %s", time.Since(outageBegan).Round(time.Second))
	testenv.Eventually(t, 90*time.Second, "both consumers live after the InfluxDB outage", live(consumerCount))
	progress("traffic flows after the InfluxDB outage", 200)

	// Fault 4: PostgreSQL (legacy and state store) restarts.
	step("PostgreSQL restart")
	pg.Stop()
	pg.Start()
	faults = append(faults, "postgres-restart")
	testenv.Eventually(t, 90*time.Second, "both consumers live after the PostgreSQL restart", live(consumerCount))
	progress("traffic flows after the PostgreSQL restart", 200)

	step("stop the live traffic")
	if err := producer.stop(60 * time.Second); err != nil {
		t.Fatalf("producer simulate (live) exited with %v", err)
	}
	liveProducer := producer
	producer = nil
	if err := json.Unmarshal(liveProducer.out.Bytes(), &liveSum); err != nil {
		t.Fatalf("producer simulate (live): %v\n%s", err, liveProducer.out.String())
	}
	total.add(liveSum)
	t.Logf("live: %d messages, %d readings, %d bad messages %v, %d rejected samples, %d retried batches, simulated %s .. %s",
		liveSum.Messages, liveSum.Readings, liveSum.BadMessages, liveSum.BadByKind, liveSum.RejectedSamples, liveSum.Retries,
		liveSum.SimStart.Format(time.RFC3339), liveSum.SimEnd.Format(time.RFC3339))
	if liveSum.SimStart.Before(dualWriteAt) {
		t.Fatalf("live traffic starts at %s, before dual-write at %s", liveSum.SimStart, dualWriteAt)
	}
	waitLegacy("the live traffic is in the legacy store", exactly(total.Readings))
	testenv.Eventually(t, time.Minute, "the ingest queue is drained", drained)
	ledger, err := state.Gaps(ctx, cutover.GapFilter{Sink: cutover.SinkInflux})
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) == 0 {
		t.Fatal("the InfluxDB outage left no gap-ledger entries for sink influx")
	}
	inInflux, err := influxTotal()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before backfill: legacy %d readings, InfluxDB %d, %d gap-ledger entries", total.Readings, inInflux, len(ledger))
	if inInflux >= total.Readings {
		t.Fatalf("InfluxDB already holds %d of %d readings before any backfill: the story lost nothing to repair", inInflux, total.Readings)
	}

	// 4. Second snapshot, then backfill the history and the lost window.
	snap2To := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	testenv.Eventually(t, 3*time.Second, "second snapshot end in the past", func() error {
		if time.Now().Before(snap2To) {
			return fmt.Errorf("now is before %s", snap2To)
		}
		return nil
	})
	step("second snapshot [%s, %s)", snap1To.Format(time.RFC3339), snap2To.Format(time.RFC3339))
	var snap2 snapshotManifest
	r.runJSON(&snap2, 0, "backfill", "snapshot", "--from", snap1To.Format(time.RFC3339), "--to", snap2To.Format(time.RFC3339))
	if snap2.Records != liveSum.Readings {
		t.Fatalf("snapshot %s holds %d records, the live traffic %d readings", snap2.SnapshotID, snap2.Records, liveSum.Readings)
	}

	step("backfill the lost window from the gap ledger")
	var lostDry gapsReport
	r.runJSON(&lostDry, 0, "backfill", "gaps", "--from-ledger", "--from", origin.Format(time.RFC3339), "--to", snap2To.Format(time.RFC3339), "--window", verifyWindow)
	var lost runReport
	r.runJSON(&lost, 0, "backfill", "run", "--execute", "--from-ledger", "--from", origin.Format(time.RFC3339), "--to", snap2To.Format(time.RFC3339), "--window", verifyWindow)
	if len(lost.LedgerOpen) != 0 || lost.Skipped || lost.Result.PointsRejected != 0 {
		t.Fatalf("backfill run --from-ledger left entries open or skipped data: %+v", lost)
	}
	if open, err := state.OpenGapCount(ctx, ""); err != nil || open != 0 {
		t.Fatalf("after backfill run --from-ledger: %d open gap-ledger entries (%v)", open, err)
	}

	step("backfill the history")
	var histGaps gapsReport
	r.runJSON(&histGaps, 0, "backfill", "gaps", "--from", origin.Format(time.RFC3339), "--to", dualWriteAt.Format(time.RFC3339), "--window", verifyWindow)
	if histGaps.MissingTotal != history.Readings {
		t.Fatalf("backfill gaps finds %d readings missing from the history, want the %d the history has", histGaps.MissingTotal, history.Readings)
	}
	var hist runReport
	r.runJSON(&hist, 0, "backfill", "run", "--execute", "--from", origin.Format(time.RFC3339), "--to", dualWriteAt.Format(time.RFC3339), "--window", verifyWindow)
	if hist.Skipped || hist.Result.PointsRejected != 0 || hist.Result.PointsWritten < history.Readings {
		t.Fatalf("backfill run (history) wrote %d readings, want at least %d, and skipped nothing: %+v", hist.Result.PointsWritten, history.Readings, hist)
	}
	testenv.Eventually(t, time.Minute, "InfluxDB holds every reading", func() error {
		n, err := influxTotal()
		if err != nil {
			return err
		}
		if n != total.Readings {
			return fmt.Errorf("InfluxDB holds %d readings, want %d", n, total.Readings)
		}
		return nil
	})

	// 5. Verify, then shadow-read and influx-primary.
	verifyTo := time.Now().UTC().Truncate(time.Second)
	step("verify [%s, %s)", origin.Format(time.RFC3339), verifyTo.Format(time.RFC3339))
	r.run(0, "migrate", "verify", "--from", origin.Format(time.RFC3339), "--to", verifyTo.Format(time.RFC3339), "--window", verifyWindow)
	gates := []string{"--consumer-timeout", "60s", "--max-lag", "30s", "--recent", "3h", "--recent-window", "5m", "--min-shadow-reads", "0"}
	step("advance to shadow-read")
	r.run(0, "migrate", append([]string{"advance", "--execute", "--to", "shadow-read", "--reason", "e2e: verified"}, gates...)...)
	step("advance to influx-primary")
	r.run(0, "migrate", append([]string{"advance", "--execute", "--to", "influx-primary", "--reason", "e2e: shadow reads agree"}, gates...)...)

	step("a last burst of traffic in influx-primary")
	r.runJSON(&last, 0, "producer", "simulate", "--units", fmt.Sprint(units), "--cadence", liveCadence, "--time-scale", "1",
		"--start", time.Now().UTC().Truncate(time.Second).Format(time.RFC3339), "--duration", "8s", "--bad-ratio", badRatio, "--seed", "303")
	total.add(last)
	waitLegacy("the last burst is in the legacy store", exactly(total.Readings))
	testenv.Eventually(t, time.Minute, "the ingest queue is drained", drained)

	// Every accepted reading is in both stores exactly once.
	step("check both stores and the dead-letter queue")
	legN, err := legacyTotal()
	if err != nil {
		t.Fatal(err)
	}
	var infN int64
	testenv.Eventually(t, time.Minute, "InfluxDB holds every reading", func() error {
		if infN, err = influxTotal(); err != nil {
			return err
		}
		if infN != total.Readings {
			return fmt.Errorf("InfluxDB holds %d readings, want %d", infN, total.Readings)
		}
		return nil
	})
	keys := map[telemetry.Key]uint8{}
	for bit, src := range map[uint8]interface {
		Stream(context.Context, time.Time, time.Time, []string, func(*telemetry.Record) error) error
	}{1: leg, 2: reader} {
		var n int64
		if err := src.Stream(ctx, origin, far, nil, func(rec *telemetry.Record) error {
			k := rec.Key()
			if keys[k]&bit != 0 {
				return fmt.Errorf("reading %v twice", k)
			}
			keys[k] |= bit
			n++
			return nil
		}); err != nil {
			t.Fatalf("stream store %d: %v", bit, err)
		}
		if n != total.Readings {
			t.Fatalf("store %d streams %d readings, want %d", bit, n, total.Readings)
		}
	}
	for k, bits := range keys {
		if bits != 3 {
			t.Fatalf("reading %v is only in the %s store", k, map[uint8]string{1: "legacy", 2: "InfluxDB"}[bits])
		}
	}
	if int64(len(keys)) != total.Readings || legN != total.Readings {
		t.Fatalf("%d distinct readings (legacy count %d), the simulator produced %d", len(keys), legN, total.Readings)
	}
	r.run(0, "migrate", "verify", "--from", origin.Format(time.RFC3339), "--to", time.Now().UTC().Format(time.RFC3339), "--window", verifyWindow, "--shadow=false")

	// Every malformed message is dead-lettered with its reason.
	wantLetters := total.BadMessages + total.RejectedSamples // each message with rejected samples carries exactly one
	testenv.Eventually(t, time.Minute, "every malformed message is dead-lettered", func() error {
		n, _, err := queueState(amqpURL, deadQueue)
		if err != nil {
			return err
		}
		if int64(n) < wantLetters {
			return fmt.Errorf("%d dead letters, want at least %d", n, wantLetters)
		}
		return nil
	})
	dl := drainDeadLetters(t, amqpURL, deadQueue)
	t.Logf("dead letters: %d (%d distinct): %d rejected whole, %d with every sample rejected, %d partial, %d rejected samples; by reason %v",
		dl.Raw, dl.Distinct, dl.Whole, dl.AllRejected, dl.Partial, dl.Samples, dl.ByReason)
	if int64(dl.Whole) != total.BadMessages || int64(dl.Samples) != total.RejectedSamples || dl.NoReason != 0 {
		t.Fatalf("dead letters: %d rejected whole (want %d bad messages), %d rejected samples (want %d), %d without a reason",
			dl.Whole, total.BadMessages, dl.Samples, total.RejectedSamples, dl.NoReason)
	}
	if !maps.Equal(dl.ByKind, total.BadByKind) {
		t.Fatalf("dead letters rejected whole, by kind: %v; the simulator sent %v", dl.ByKind, total.BadByKind)
	}

	all, err := state.Gaps(ctx, cutover.GapFilter{})
	if err != nil {
		t.Fatal(err)
	}
	repaired := 0
	for _, g := range all {
		if g.RepairedAt != nil {
			repaired++
		}
	}
	if repaired != len(all) {
		t.Fatalf("%d of %d gap-ledger entries repaired", repaired, len(all))
	}
	line := fmt.Sprintf("e2e: produced=%d legacy=%d influx=%d dead_lettered=%d (bad_messages=%d rejected_samples=%d, %d redelivered copies) "+
		"ledger_entries=%d repaired=%d backfilled_history=%d backfilled_ledger=%d faults=%s took=%s",
		total.Readings, legN, infN, dl.Distinct, dl.Whole, dl.Samples, dl.Raw-dl.Distinct,
		len(all), repaired, hist.Result.PointsWritten, lost.Result.PointsWritten, strings.Join(faults, ","), time.Since(began).Round(time.Second))
	t.Log(line)
	fmt.Println(line)
}
