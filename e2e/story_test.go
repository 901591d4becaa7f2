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
// exactly once and every malformed message in the dead-letter queue. Each
// phase is a subtest; a failed phase stops the story.
func TestCutoverStory(t *testing.T) {
	s := newStory(t, rabbitBus(t))
	s.phase("two consumers in phase legacy", s.startConsumers)
	s.phase("history drains into the legacy store", s.drainHistory)
	s.phase("snapshot of the history, then dual-write", s.snapshotThenDualWrite)
	s.phase("live traffic", s.startLiveTraffic)
	s.phase("consumer killed mid-stream", s.consumerKilled)
	s.phase("broker restart", s.brokerRestart)
	s.outageRepairAndCutover()
	s.summary()
}

// outageRepairAndCutover is the second half of the story, the same on every
// bus: the InfluxDB outage and the PostgreSQL restart under live traffic,
// the repairs, the phase walk to influx-primary and the final checks.
func (s *story) outageRepairAndCutover() {
	s.phase("influx outage", s.influxOutage)
	s.phase("postgres restart", s.postgresRestart)
	s.phase("live traffic stops", s.stopLiveTraffic)
	s.phase("second snapshot", s.secondSnapshot)
	s.phase("backfill the lost window from the gap ledger", s.backfillLedger)
	s.phase("backfill the history", s.backfillHistory)
	s.phase("verify, shadow-read, influx-primary", s.verifyAndAdvance)
	s.phase("last burst in influx-primary", s.lastBurst)
	s.phase("both stores hold every reading once", s.checkStores)
	s.phase("every malformed message is dead-lettered", s.checkDeadLetters)
	s.phase("every gap-ledger entry is repaired", s.checkLedger)
	s.phase("the API reader saw no failure but 503", s.checkQueryReader)
}

// storyBus is what the story needs from the message bus under test, so the
// same story runs on each bus the binaries support.
type storyBus struct {
	name string
	// env configures the binaries for this bus.
	env []string
	// consumers returns how many consumers are attached to the ingest queue
	// (or consumer group).
	consumers func() (int, error)
	// backlog returns how many messages wait to be consumed.
	backlog func() (int, error)
	// deadLetterCount returns how many dead letters wait, redeliveries included.
	deadLetterCount func() (int, error)
	// drainDeadLetters consumes the dead letters and classifies them.
	drainDeadLetters func(t *testing.T) deadLetters
	// restart restarts the broker (durable messages survive).
	restart func(ctx context.Context, t *testing.T)
}

// rabbitBus runs the story on RabbitMQ, in the run's own exchanges and queues.
func rabbitBus(t *testing.T) storyBus {
	amqpURL := testenv.RabbitURL(t)
	mgmtURL := testenv.RabbitMgmtURL(t)
	exchange, queue := testenv.Name(t, "x"), testenv.Name(t, "q")
	deadExchange, deadQueue := testenv.Name(t, "dlx"), testenv.Name(t, "dq")
	t.Cleanup(func() { deleteQueues(t, amqpURL, []string{queue, deadQueue}, []string{exchange, deadExchange}) })
	return storyBus{
		name: "rabbitmq",
		env: []string{"AMQP_URL=" + amqpURL, "AMQP_MANAGEMENT_URL=" + mgmtURL, "BUS=rabbitmq", "AMQP_QUEUE_TYPE=classic",
			"AMQP_EXCHANGE=" + exchange, "AMQP_QUEUE=" + queue, "AMQP_DEAD_EXCHANGE=" + deadExchange, "AMQP_DEAD_QUEUE=" + deadQueue},
		consumers: func() (int, error) {
			_, n, err := queueState(amqpURL, queue)
			return n, err
		},
		backlog: func() (int, error) {
			n, _, err := queueState(amqpURL, queue)
			return n, err
		},
		deadLetterCount: func() (int, error) {
			n, _, err := queueState(amqpURL, deadQueue)
			return n, err
		},
		drainDeadLetters: func(t *testing.T) deadLetters { return drainDeadLetters(t, amqpURL, deadQueue) },
		restart: func(ctx context.Context, t *testing.T) {
			t.Helper()
			for _, args := range [][]string{{"stop_app"}, {"start_app"}} {
				if out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput(); err != nil {
					t.Fatalf("rabbitmqctl %s: %v\n%s", args[0], err, out)
				}
			}
		},
	}
}

// story is the state the phases share: the services, the runner, what was
// produced so far and the marks in time the later phases count from.
type story struct {
	top    *testing.T
	began  time.Time
	ctx    context.Context
	bus    storyBus
	r      *runner
	pg     *testenv.PrivatePostgres
	inf    *testenv.PrivateInflux
	state  *cutover.Store
	leg    *legacy.Store
	reader *influx.Reader

	// Reading times: the history starts at most a few hours back, live
	// traffic ends before now; everything is counted over [origin, far).
	origin, far time.Time

	consumers map[string]*proc
	producer  *proc // the live traffic, while it runs
	query     *proc // query serve, read by api throughout
	api       *apiReader
	faults    []string

	history, liveSum, last, total simSummary
	snap1To, snap2To, dualWriteAt time.Time
	lost, hist                    runReport
	legN, infN                    int64
	dl                            deadLetters
	ledgerEntries, repaired       int
}

func newStory(t *testing.T, bus storyBus) *story {
	s := &story{top: t, began: time.Now(), bus: bus, consumers: map[string]*proc{}}
	s.ctx = testenv.Context(t, 12*time.Minute)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	lg := &logs{dir: t.TempDir()}
	t.Cleanup(func() { lg.dumpOnFailure(t) }) // runs last: after the processes stopped

	bin := binaries(t)
	s.pg = testenv.StartPostgres(t)
	s.inf = testenv.StartInfluxd(t)
	bucket := testenv.S3(t)

	const influxBucket = "telemetry/autogen"
	env := append(os.Environ(),
		"PG_DSN="+s.pg.DSN, "STATE_DSN="+s.pg.DSN,
		"INFLUX_URL="+s.inf.URL, "INFLUX_TOKEN=", "INFLUX_ORG=flexipack", "INFLUX_BUCKET="+influxBucket,
		"S3_ENDPOINT="+bucket.Endpoint, "S3_BUCKET="+bucket.Bucket, "S3_PREFIX=snapshots",
		"AWS_ACCESS_KEY_ID="+bucket.AccessKey, "AWS_SECRET_ACCESS_KEY="+bucket.SecretKey, "AWS_REGION="+bucket.Region,
		"LOG_FORMAT=json", "LOG_LEVEL=info", "HTTP_ADDR=", "MIGRATE_ACTOR=e2e")
	env = append(env, bus.env...)
	s.r = &runner{t: t, top: t, ctx: s.ctx, bin: bin, env: env, logs: lg}

	var err error
	if s.state, err = cutover.Open(s.ctx, s.pg.DSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.state.Close() })
	if s.leg, err = legacy.Open(s.ctx, s.pg.DSN, logger); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.leg.Close() })
	icfg := influx.Config{URL: s.inf.URL, Org: "flexipack", Bucket: influxBucket}
	if s.reader, err = influx.NewReader(icfg, logger); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.reader.Close() })

	s.origin = time.Now().Add(-6 * time.Hour).Truncate(time.Hour)
	s.far = time.Now().Add(24 * time.Hour)
	return s
}

// phase runs one phase of the story as a subtest; a failed phase ends the
// story, since every later phase builds on it.
func (s *story) phase(name string, run func(t *testing.T)) {
	s.top.Helper()
	ok := s.top.Run(name, func(t *testing.T) {
		s.r.t = t
		defer func() { s.r.t = s.top }()
		s.step(t, "%s", name)
		run(t)
	})
	if !ok {
		s.top.FailNow()
	}
}

func (s *story) step(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("==> [%s] %s", time.Since(s.began).Round(time.Second), fmt.Sprintf(format, args...))
}

func (s *story) legacyTotal() (int64, error) { return s.leg.Total(s.ctx, s.origin, s.far) }
func (s *story) influxTotal() (int64, error) { return s.reader.Total(s.ctx, s.origin, s.far) }

// waitLegacy waits until the legacy store's count satisfies want, failing at
// once if the live producer died.
func (s *story) waitLegacy(t *testing.T, what string, want func(int64) error) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, what, func() error {
		if p := s.producer; p != nil && !p.running() && p.err != nil {
			t.Fatalf("%s: producer simulate (live) exited: %v\n%s", what, p.err, p.out.String())
		}
		n, err := s.legacyTotal()
		if err != nil {
			return err
		}
		return want(n)
	})
}

func atLeast(min int64) func(int64) error {
	return func(n int64) error {
		if n < min {
			return fmt.Errorf("legacy store holds %d readings, want at least %d", n, min)
		}
		return nil
	}
}

func exactly(want int64) func(int64) error {
	return func(n int64) error {
		if n != want {
			return fmt.Errorf("legacy store holds %d readings, want %d", n, want)
		}
		return nil
	}
}

// live holds when want consumers beat in the state store and consume from the bus.
func (s *story) live(want int) func() error {
	return func() error {
		hbs, err := s.state.Heartbeats(s.ctx, liveForHealthy)
		if err != nil {
			return err
		}
		if len(hbs) < want {
			return fmt.Errorf("%d live consumers, want %d", len(hbs), want)
		}
		consumers, err := s.bus.consumers()
		if err != nil {
			return err
		}
		if consumers < want {
			return fmt.Errorf("%d consumers on the %s ingest queue, want %d", consumers, s.bus.name, want)
		}
		return nil
	}
}

// drained holds when the ingest queue is empty.
func (s *story) drained() error {
	msgs, err := s.bus.backlog()
	if err != nil {
		return err
	}
	if msgs != 0 {
		return fmt.Errorf("%d messages still in the %s ingest queue", msgs, s.bus.name)
	}
	return nil
}

func (s *story) startConsumer(id string) {
	s.consumers[id] = s.r.start(id, "consumer", "run", "--consumer-id", id, "--phase-poll", "200ms", "--shutdown-timeout", "10s")
}

// kill SIGKILLs a consumer and restarts it.
func (s *story) kill(t *testing.T, id string) {
	t.Helper()
	s.step(t, "SIGKILL %s, then restart it", id)
	s.consumers[id].kill()
	s.startConsumer(id)
	s.faults = append(s.faults, "kill:"+id)
}

// progress waits until the legacy store holds more readings than now.
func (s *story) progress(t *testing.T, what string, more int64) {
	t.Helper()
	var n int64
	testenv.Eventually(t, time.Minute, "count the legacy store's readings", func() (err error) {
		n, err = s.legacyTotal()
		return err
	})
	s.waitLegacy(t, what, atLeast(n+more))
}

// pastSecond returns the next whole second and waits until it has passed.
func pastSecond(t *testing.T, what string) time.Time {
	t.Helper()
	to := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	testenv.Eventually(t, 3*time.Second, what, func() error {
		if time.Now().Before(to) {
			return fmt.Errorf("now is before %s", to)
		}
		return nil
	})
	return to
}

func (s *story) startConsumers(t *testing.T) {
	for i := 1; i <= consumerCount; i++ {
		s.startConsumer(fmt.Sprintf("consumer-%d", i))
	}
	testenv.Eventually(t, 90*time.Second, "both consumers beat and consume", s.live(consumerCount))
	s.startQuery(t)
}

// drainHistory simulates a time-compressed history that drains into the legacy store.
func (s *story) drainHistory(t *testing.T) {
	s.step(t, "history: %d units, %d messages, as fast as the bus takes them", units, historyCount)
	h := &s.history
	s.r.runJSON(h, 0, "producer", "simulate", "--units", fmt.Sprint(units), "--count", fmt.Sprint(historyCount),
		"--cadence", "30s", "--time-scale", "0", "--bad-ratio", badRatio, "--seed", "101")
	s.total.add(*h)
	t.Logf("history: %d messages, %d readings, %d bad messages %v, %d rejected samples, simulated %s .. %s",
		h.Messages, h.Readings, h.BadMessages, h.BadByKind, h.RejectedSamples, h.SimStart.Format(time.RFC3339), h.SimEnd.Format(time.RFC3339))
	if h.Readings == 0 || h.BadMessages == 0 || h.RejectedSamples == 0 {
		t.Fatalf("the history has no readings, bad messages or rejected samples: %+v", *h)
	}
	if h.SimStart.Before(s.origin) {
		t.Fatalf("history starts at %s, before the counted range %s", h.SimStart, s.origin)
	}
	s.waitLegacy(t, "the history is in the legacy store", exactly(s.total.Readings))
	testenv.Eventually(t, time.Minute, "the ingest queue is drained", s.drained)
}

// snapshotThenDualWrite snapshots the history, then advances to dual-write
// before any live traffic, so no reading can fall between the two.
func (s *story) snapshotThenDualWrite(t *testing.T) {
	s.snap1To = pastSecond(t, "the snapshot's end is in the past")
	s.step(t, "snapshot of the legacy store [%s, %s)", s.origin.Format(time.RFC3339), s.snap1To.Format(time.RFC3339))
	var snap1 snapshotManifest
	s.r.runJSON(&snap1, 0, "backfill", "snapshot", "--from", s.origin.Format(time.RFC3339), "--to", s.snap1To.Format(time.RFC3339))
	if snap1.Records != s.history.Readings {
		t.Fatalf("snapshot %s holds %d records, the history %d readings", snap1.SnapshotID, snap1.Records, s.history.Readings)
	}
	s.step(t, "advance to dual-write")
	s.r.run(0, "migrate", "advance", "--execute", "--to", "dual-write", "--consumer-timeout", "60s", "--reason", "e2e: start dual-write")
	s.dualWriteAt = time.Now().UTC().Truncate(time.Second)
}

func (s *story) startLiveTraffic(t *testing.T) {
	s.step(t, "live traffic: %d units every %s, real time, with faults", units, liveCadence)
	liveStart := time.Now().UTC().Truncate(time.Second) // not in the future, not before dual-write
	s.producer = s.r.start("producer-live", "producer", "simulate", "--units", fmt.Sprint(units), "--cadence", liveCadence,
		"--time-scale", "1", "--start", liveStart.Format(time.RFC3339), "--bad-ratio", badRatio, "--seed", "202", "-o", "json")
	s.waitLegacy(t, "live traffic reaches the legacy store", atLeast(s.total.Readings+300))
}

func (s *story) consumerKilled(t *testing.T) {
	s.kill(t, "consumer-1")
	testenv.Eventually(t, 90*time.Second, "both consumers back", s.live(consumerCount))
	s.progress(t, "traffic flows after the kill", 200)
}

// brokerRestart restarts the shared broker (durable queues keep their messages).
func (s *story) brokerRestart(t *testing.T) {
	s.bus.restart(s.ctx, t)
	s.faults = append(s.faults, s.bus.name+"-restart")
	testenv.Eventually(t, 2*time.Minute, "both consumers reconnected after the broker restart", s.live(consumerCount))
	s.progress(t, "traffic flows after the broker restart", 200)
}

// influxOutage stops InfluxDB for influxOutage; a consumer dies during it too.
func (s *story) influxOutage(t *testing.T) {
	s.step(t, "InfluxDB down for %s", influxOutage)
	s.inf.Stop()
	outageBegan := time.Now()
	testenv.Eventually(t, influxOutage, "the consumers record gap-ledger entries", func() error {
		n, err := s.state.OpenGapCount(s.ctx, "")
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no open gap-ledger entries yet")
		}
		return nil
	})
	s.kill(t, "consumer-1")
	time.Sleep(influxOutage - time.Since(outageBegan))
	s.inf.Start()
	s.faults = append(s.faults, fmt.Sprintf("influx-outage:%s", influxOutage))
	s.step(t, "InfluxDB back after %s", time.Since(outageBegan).Round(time.Second))
	testenv.Eventually(t, 90*time.Second, "both consumers live after the InfluxDB outage", s.live(consumerCount))
	s.progress(t, "traffic flows after the InfluxDB outage", 200)
}

// postgresRestart restarts PostgreSQL (the legacy and the state store).
func (s *story) postgresRestart(t *testing.T) {
	s.pg.Stop()
	s.pg.Start()
	s.faults = append(s.faults, "postgres-restart")
	testenv.Eventually(t, 90*time.Second, "both consumers live after the PostgreSQL restart", s.live(consumerCount))
	s.progress(t, "traffic flows after the PostgreSQL restart", 200)
}

// stopLiveTraffic stops the producer and checks what the outage left to repair.
func (s *story) stopLiveTraffic(t *testing.T) {
	if err := s.producer.stop(60 * time.Second); err != nil {
		t.Fatalf("producer simulate (live) exited with %v", err)
	}
	p := s.producer
	s.producer = nil
	l := &s.liveSum
	if err := json.Unmarshal(p.out.Bytes(), l); err != nil {
		t.Fatalf("producer simulate (live): %v\n%s", err, p.out.String())
	}
	s.total.add(*l)
	t.Logf("live: %d messages, %d readings, %d bad messages %v, %d rejected samples, %d retried batches, simulated %s .. %s",
		l.Messages, l.Readings, l.BadMessages, l.BadByKind, l.RejectedSamples, l.Retries, l.SimStart.Format(time.RFC3339), l.SimEnd.Format(time.RFC3339))
	if l.SimStart.Before(s.dualWriteAt) {
		t.Fatalf("live traffic starts at %s, before dual-write at %s", l.SimStart, s.dualWriteAt)
	}
	s.waitLegacy(t, "the live traffic is in the legacy store", exactly(s.total.Readings))
	testenv.Eventually(t, time.Minute, "the ingest queue is drained", s.drained)
	ledger, err := s.state.Gaps(s.ctx, cutover.GapFilter{Sink: cutover.SinkInflux})
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) == 0 {
		t.Fatal("the InfluxDB outage left no gap-ledger entries for sink influx")
	}
	inInflux, err := s.influxTotal()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before backfill: legacy %d readings, InfluxDB %d, %d gap-ledger entries", s.total.Readings, inInflux, len(ledger))
	if inInflux >= s.total.Readings {
		t.Fatalf("InfluxDB already holds %d of %d readings before any backfill: the story lost nothing to repair", inInflux, s.total.Readings)
	}
}

// secondSnapshot snapshots the live traffic.
func (s *story) secondSnapshot(t *testing.T) {
	s.snap2To = pastSecond(t, "second snapshot end in the past")
	s.step(t, "second snapshot [%s, %s)", s.snap1To.Format(time.RFC3339), s.snap2To.Format(time.RFC3339))
	var snap2 snapshotManifest
	s.r.runJSON(&snap2, 0, "backfill", "snapshot", "--from", s.snap1To.Format(time.RFC3339), "--to", s.snap2To.Format(time.RFC3339))
	if snap2.Records != s.liveSum.Readings {
		t.Fatalf("snapshot %s holds %d records, the live traffic %d readings", snap2.SnapshotID, snap2.Records, s.liveSum.Readings)
	}
}

func (s *story) backfillLedger(t *testing.T) {
	from, to := s.origin.Format(time.RFC3339), s.snap2To.Format(time.RFC3339)
	var lostDry gapsReport
	s.r.runJSON(&lostDry, 0, "backfill", "gaps", "--from-ledger", "--from", from, "--to", to, "--window", verifyWindow)
	s.r.runJSON(&s.lost, 0, "backfill", "run", "--execute", "--from-ledger", "--from", from, "--to", to, "--window", verifyWindow)
	if len(s.lost.LedgerOpen) != 0 || s.lost.Skipped || s.lost.Result.PointsRejected != 0 {
		t.Fatalf("backfill run --from-ledger left entries open or skipped data: %+v", s.lost)
	}
	if open, err := s.state.OpenGapCount(s.ctx, ""); err != nil || open != 0 {
		t.Fatalf("after backfill run --from-ledger: %d open gap-ledger entries (%v)", open, err)
	}
}

func (s *story) backfillHistory(t *testing.T) {
	from, to := s.origin.Format(time.RFC3339), s.dualWriteAt.Format(time.RFC3339)
	var histGaps gapsReport
	s.r.runJSON(&histGaps, 0, "backfill", "gaps", "--from", from, "--to", to, "--window", verifyWindow)
	if histGaps.MissingTotal != s.history.Readings {
		t.Fatalf("backfill gaps finds %d readings missing from the history, want the %d the history has", histGaps.MissingTotal, s.history.Readings)
	}
	s.r.runJSON(&s.hist, 0, "backfill", "run", "--execute", "--from", from, "--to", to, "--window", verifyWindow)
	if h := s.hist; h.Skipped || h.Result.PointsRejected != 0 || h.Result.PointsWritten < s.history.Readings {
		t.Fatalf("backfill run (history) wrote %d readings, want at least %d, and skipped nothing: %+v", h.Result.PointsWritten, s.history.Readings, h)
	}
	s.waitInflux(t)
}

// waitInflux waits until InfluxDB holds every reading produced so far.
func (s *story) waitInflux(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, time.Minute, "InfluxDB holds every reading", func() (err error) {
		if s.infN, err = s.influxTotal(); err != nil {
			return err
		}
		if s.infN != s.total.Readings {
			return fmt.Errorf("InfluxDB holds %d readings, want %d", s.infN, s.total.Readings)
		}
		return nil
	})
}

func (s *story) verifyAndAdvance(t *testing.T) {
	verifyTo := time.Now().UTC().Truncate(time.Second)
	s.step(t, "verify [%s, %s)", s.origin.Format(time.RFC3339), verifyTo.Format(time.RFC3339))
	s.r.run(0, "migrate", "verify", "--from", s.origin.Format(time.RFC3339), "--to", verifyTo.Format(time.RFC3339), "--window", verifyWindow)
	gates := []string{"--consumer-timeout", "60s", "--max-lag", "30s", "--recent", "3h", "--recent-window", "5m", "--min-shadow-reads", fmt.Sprint(minShadowReads)}
	unit := firstUnit(t, s.api.base)
	before := s.answers(t, verifyTo, unit)
	s.step(t, "advance to shadow-read")
	s.r.run(0, "migrate", append([]string{"advance", "--execute", "--to", "shadow-read", "--reason", "e2e: verified"}, gates...)...)
	s.shadowReadsRecorded(t)
	s.step(t, "advance to influx-primary")
	s.r.run(0, "migrate", append([]string{"advance", "--execute", "--to", "influx-primary", "--reason", "e2e: shadow reads agree"}, gates...)...)
	s.servedBy(t, "influxdb")
	after := s.answers(t, verifyTo, unit)
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s: InfluxDB's answer differs from PostgreSQL's\npostgres: %.400s\ninfluxdb: %.400s", p, b, after[p])
		}
	}
}

func (s *story) lastBurst(t *testing.T) {
	s.r.runJSON(&s.last, 0, "producer", "simulate", "--units", fmt.Sprint(units), "--cadence", liveCadence, "--time-scale", "1",
		"--start", time.Now().UTC().Truncate(time.Second).Format(time.RFC3339), "--duration", "8s", "--bad-ratio", badRatio, "--seed", "303")
	s.total.add(s.last)
	s.waitLegacy(t, "the last burst is in the legacy store", exactly(s.total.Readings))
	testenv.Eventually(t, time.Minute, "the ingest queue is drained", s.drained)
}

// checkStores checks that every accepted reading is in both stores exactly once.
func (s *story) checkStores(t *testing.T) {
	var err error
	if s.legN, err = s.legacyTotal(); err != nil {
		t.Fatal(err)
	}
	s.waitInflux(t)
	keys := map[telemetry.Key]uint8{}
	for bit, src := range map[uint8]interface {
		Stream(context.Context, time.Time, time.Time, []string, func(*telemetry.Record) error) error
	}{1: s.leg, 2: s.reader} {
		var n int64
		if err := src.Stream(s.ctx, s.origin, s.far, nil, func(rec *telemetry.Record) error {
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
		if n != s.total.Readings {
			t.Fatalf("store %d streams %d readings, want %d", bit, n, s.total.Readings)
		}
	}
	for k, bits := range keys {
		if bits != 3 {
			t.Fatalf("reading %v is only in the %s store", k, map[uint8]string{1: "legacy", 2: "InfluxDB"}[bits])
		}
	}
	if int64(len(keys)) != s.total.Readings || s.legN != s.total.Readings {
		t.Fatalf("%d distinct readings (legacy count %d), the simulator produced %d", len(keys), s.legN, s.total.Readings)
	}
	s.r.run(0, "migrate", "verify", "--from", s.origin.Format(time.RFC3339), "--to", time.Now().UTC().Format(time.RFC3339), "--window", verifyWindow, "--shadow=false")
}

// checkDeadLetters checks that every malformed message is dead-lettered with its reason.
func (s *story) checkDeadLetters(t *testing.T) {
	total := s.total
	wantLetters := total.BadMessages + total.RejectedSamples // each message with rejected samples carries exactly one
	testenv.Eventually(t, time.Minute, "every malformed message is dead-lettered", func() error {
		n, err := s.bus.deadLetterCount()
		if err != nil {
			return err
		}
		if int64(n) < wantLetters {
			return fmt.Errorf("%d dead letters, want at least %d", n, wantLetters)
		}
		return nil
	})
	dl := s.bus.drainDeadLetters(t)
	s.dl = dl
	t.Logf("dead letters: %d (%d distinct): %d rejected whole, %d with every sample rejected, %d partial, %d rejected samples; by reason %v",
		dl.Raw, dl.Distinct, dl.Whole, dl.AllRejected, dl.Partial, dl.Samples, dl.ByReason)
	if int64(dl.Whole) != total.BadMessages || int64(dl.Samples) != total.RejectedSamples || dl.NoReason != 0 {
		t.Fatalf("dead letters: %d rejected whole (want %d bad messages), %d rejected samples (want %d), %d without a reason",
			dl.Whole, total.BadMessages, dl.Samples, total.RejectedSamples, dl.NoReason)
	}
	if !maps.Equal(dl.ByKind, total.BadByKind) {
		t.Fatalf("dead letters rejected whole, by kind: %v; the simulator sent %v", dl.ByKind, total.BadByKind)
	}
}

func (s *story) checkLedger(t *testing.T) {
	all, err := s.state.Gaps(s.ctx, cutover.GapFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range all {
		if g.RepairedAt != nil {
			s.repaired++
		}
	}
	s.ledgerEntries = len(all)
	if s.repaired != len(all) {
		t.Fatalf("%d of %d gap-ledger entries repaired", s.repaired, len(all))
	}
}

// summary prints the story's one-line result (make test-e2e greps it).
func (s *story) summary() {
	dl := s.dl
	line := fmt.Sprintf("e2e: produced=%d legacy=%d influx=%d dead_lettered=%d (bad_messages=%d rejected_samples=%d, %d redelivered copies) "+
		"ledger_entries=%d repaired=%d backfilled_history=%d backfilled_ledger=%d faults=%s took=%s",
		s.total.Readings, s.legN, s.infN, dl.Distinct, dl.Whole, dl.Samples, dl.Raw-dl.Distinct,
		s.ledgerEntries, s.repaired, s.hist.Result.PointsWritten, s.lost.Result.PointsWritten, strings.Join(s.faults, ","), time.Since(s.began).Round(time.Second))
	s.top.Log(line)
	fmt.Println(line)
}
