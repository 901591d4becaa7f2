package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexipack/cutover/consumer/internal/consumertest"
	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/consumer/internal/pipeline"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
)

// InfluxDB stopped mid-run in dual-write: PostgreSQL stays complete, the
// ledger covers exactly the readings InfluxDB missed, and InfluxDB is written
// again once it is back, without a restart.
func TestInfluxDownRecordsExactGaps(t *testing.T) {
	env := consumertest.NewEnv(t)
	st := env.State()
	env.SetPhase(st, cutover.DualWrite)
	pi := testenv.StartInfluxd(t)
	icfg := influx.Config{URL: pi.URL, Bucket: "telemetry/autogen", MaxRetries: 2, RetryBase: 50 * time.Millisecond, Timeout: 2 * time.Second}
	h := startPipeline(t, env, opts{influx: &icfg})
	ctx := testenv.Context(t, 3*time.Minute)

	m1, r1 := consumertest.Messages("FP2-P1", 1000, 10, 0)
	env.Publish(m1)
	waitCounts(t, env, env.LegacyDSN, pi.URL, "telemetry", 1000, 1000, 60*time.Second)

	pi.Stop()
	m2, r2 := consumertest.Messages("FP2-P2", 1500, 10, time.Hour)
	env.Publish(m2)
	waitCounts(t, env, env.LegacyDSN, "", "", 2500, -1, 60*time.Second)
	testenv.Eventually(t, 30*time.Second, "all acked while InfluxDB is down", func() error {
		if a := h.acked(); a != 2500 {
			return fmt.Errorf("acked %d, want 2500", a)
		}
		return nil
	})
	if err := h.p.Check(ctx); err != nil {
		t.Fatalf("ready must stay true while only a repairable store is down: %v", err)
	}

	pi.Start()
	testenv.Eventually(t, 30*time.Second, "influx sink up again", func() error {
		if v := h.metric("consumer_sink_up", map[string]string{"sink": "influx"}); v != 1 {
			return errors.New("consumer_sink_up{sink=influx} is 0")
		}
		return nil
	})
	m3, r3 := consumertest.Messages("FP2-P3", 1000, 10, 2*time.Hour)
	env.Publish(m3)
	waitCounts(t, env, env.LegacyDSN, pi.URL, "telemetry", 3500, 2000, 60*time.Second)

	keys := consumertest.InfluxKeys(t, pi.URL, "telemetry")
	for _, r := range append(append([]consumertest.Reading(nil), r1...), r3...) {
		if !keys[r] {
			t.Fatalf("reading %v missing from InfluxDB", r)
		}
	}
	gaps, err := st.Gaps(ctx, cutover.GapFilter{Sink: cutover.SinkInflux})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, g := range gaps {
		total += g.Readings
		if !strings.HasPrefix(g.Unit, "FP2-P2") || g.ConsumerID != h.name || g.Reason == "" {
			t.Errorf("unexpected ledger entry %+v", g)
		}
	}
	if total != len(r2) {
		t.Fatalf("ledger covers %d readings, want exactly the %d InfluxDB missed", total, len(r2))
	}
	for _, r := range r2 {
		if keys[r] {
			t.Fatalf("reading %v is in InfluxDB but was ledgered", r)
		}
		covered := false
		for _, g := range gaps {
			if g.Unit == r.Unit && !r.Time.Before(g.From) && !r.Time.After(g.To) {
				covered = true
				break
			}
		}
		if !covered {
			t.Fatalf("missed reading %v not covered by the ledger", r)
		}
	}
	if v := h.metric("consumer_gap_ledger_readings_total", map[string]string{"sink": "influx"}); int(v) != len(r2) {
		t.Fatalf("ledger readings metric = %v, want %d", v, len(r2))
	}
}

// PostgreSQL stopped in dual-write: nothing is acked, the messages wait on
// the broker, /-/ready is false, InfluxDB is written once; all arrive after
// PostgreSQL returns.
func TestLegacyDownHoldsMessages(t *testing.T) {
	env := consumertest.NewEnv(t)
	st := env.State()
	env.SetPhase(st, cutover.DualWrite)
	pg := testenv.StartPostgres(t)
	h := startPipeline(t, env, opts{legacyDSN: pg.DSN, cfg: pipeline.Config{RetryMax: time.Second}})
	ctx := testenv.Context(t, 3*time.Minute)

	m1, _ := consumertest.Messages("FP2-L1", 1000, 10, 0)
	env.Publish(m1)
	waitCounts(t, env, pg.DSN, env.Influx.URL, env.InfluxDB, 1000, 1000, 60*time.Second)
	testenv.Eventually(t, 10*time.Second, "first part acked", func() error {
		if a := h.acked(); a != 1000 {
			return fmt.Errorf("acked %d", a)
		}
		return nil
	})

	pg.Stop()
	m2, _ := consumertest.Messages("FP2-L2", 1500, 10, time.Hour)
	// testenv's Stop returns when runuser exits; the postmaster may live a
	// moment longer and hold its lock file, which would fail Start.
	waitGone(t, pgPort(t, pg.DSN))
	env.Publish(m2)
	testenv.Eventually(t, 30*time.Second, "not ready while the required store is down", func() error {
		if err := h.p.Check(ctx); err == nil || !strings.Contains(err.Error(), "legacy") {
			return fmt.Errorf("Check = %v", err)
		}
		return nil
	})
	// The repairable store gets the held batches (as many as are in flight).
	testenv.Eventually(t, 30*time.Second, "held batches written to InfluxDB", func() error {
		if n := consumertest.InfluxCount(t, env.Influx.URL, env.InfluxDB); n <= 1000 {
			return fmt.Errorf("influx has %d", n)
		}
		return nil
	})
	if a := h.acked(); a != 1000 {
		t.Fatalf("acked %d while PostgreSQL is down, want 1000", a)
	}
	if n := h.metric("consumer_deliveries_total", map[string]string{"outcome": "nacked"}); n != 0 {
		t.Fatalf("nacked %v", n)
	}

	pg.Start()
	waitCounts(t, env, pg.DSN, env.Influx.URL, env.InfluxDB, 2500, 2500, 60*time.Second)
	testenv.Eventually(t, 30*time.Second, "everything acked and ready", func() error {
		if a := h.acked(); a != 2500 {
			return fmt.Errorf("acked %d", a)
		}
		return h.p.Check(ctx)
	})
	if n := env.QueueMessages(env.Topology.Queue); n != 0 {
		t.Fatalf("queue holds %d", n)
	}
	if gaps, _ := st.Gaps(ctx, cutover.GapFilter{}); len(gaps) != 0 {
		t.Fatalf("a required store's failure must not be ledgered: %+v", gaps)
	}
	// Retrying the legacy store never wrote InfluxDB again.
	if w := h.metric("consumer_records_written_total", map[string]string{"sink": "influx"}); w != 2500 {
		t.Fatalf("records written to InfluxDB = %v, want 2500 (once each)", w)
	}
}

// A phase change under load switches every consumer (their heartbeats
// report it) without a lost or doubled reading.
func TestPhaseChangeUnderLoad(t *testing.T) {
	env := consumertest.NewEnv(t)
	st := env.State()
	env.SetPhase(st, cutover.DualWrite)
	cfg := pipeline.Config{BatchSize: 300, FlushInterval: 20 * time.Millisecond}
	a := startPipeline(t, env, opts{cfg: cfg})
	b := startPipeline(t, env, opts{cfg: cfg})
	ctx := testenv.Context(t, 3*time.Minute)

	var published atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m, _ := consumertest.Messages(fmt.Sprintf("FP2-C%03d", i), 400, 20, 0)
			env.Publish(m)
			published.Add(int64(len(m)))
			time.Sleep(20 * time.Millisecond) // pace the load, not a wait for a condition
		}
	}()
	waitApplied := func(want cutover.State) {
		testenv.Eventually(t, 30*time.Second, "both consumers apply "+string(want.Phase), func() error {
			hbs, err := st.Heartbeats(ctx, time.Minute)
			if err != nil {
				return err
			}
			ok := 0
			for _, hb := range hbs {
				if hb.PhaseVersion == want.Version && hb.Phase == want.Phase {
					ok++
				}
			}
			if ok != 2 {
				return fmt.Errorf("heartbeats %+v", hbs)
			}
			return nil
		})
	}
	testenv.Eventually(t, 30*time.Second, "load flowing", func() error {
		if a.acked() == 0 || b.acked() == 0 {
			return errors.New("a consumer has acked nothing yet")
		}
		return nil
	})
	moreLoad := func() {
		from := a.acked() + b.acked()
		testenv.Eventually(t, 30*time.Second, "load continues after the switch", func() error {
			if got := a.acked() + b.acked(); got < from+2000 {
				return fmt.Errorf("acked %d since the switch", got-from)
			}
			return nil
		})
	}
	moreLoad()
	waitApplied(env.SetPhase(st, cutover.ShadowRead))
	moreLoad()
	waitApplied(env.SetPhase(st, cutover.InfluxPrimary))
	moreLoad()
	close(stop)
	wg.Wait()
	n := int(published.Load())
	waitCounts(t, env, env.LegacyDSN, env.Influx.URL, env.InfluxDB, n, n, 90*time.Second)
	if gaps, _ := st.Gaps(ctx, cutover.GapFilter{}); len(gaps) != 0 {
		t.Fatalf("gaps under a phase change with both stores up: %+v", gaps)
	}
	testenv.Eventually(t, 30*time.Second, "every message acked once", func() error {
		if got := a.acked() + b.acked(); got != n {
			return fmt.Errorf("acked %d+%d, want %d", a.acked(), b.acked(), n)
		}
		return nil
	})
	t.Logf("%d messages; consumer a acked %d, b acked %d", n, a.acked(), b.acked())
}

// The broker closes the consumer's connection mid-run: the source reopens,
// acks of the old channel are dropped (never sent on the new one), and the
// counts are exact.
func TestReconnectDropsStaleTags(t *testing.T) {
	env := consumertest.NewEnv(t)
	mgmt := testenv.RabbitMgmtURL(t)
	st := env.State()
	env.SetPhase(st, cutover.DualWrite)
	const n = 20000
	msgs, _ := consumertest.Messages("FP2-R", n, 100, 0)
	env.Publish(msgs)
	h := startPipeline(t, env, opts{cfg: pipeline.Config{BatchSize: 500}})
	testenv.Eventually(t, 60*time.Second, "some acked", func() error {
		if h.acked() < 1000 {
			return errors.New("fewer than 1000 acked")
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, "connection closed by the broker", func() error {
		c, err := rabbit.CloseConnections(context.Background(), mgmt, h.name)
		if err != nil {
			return err
		}
		if c == 0 {
			return errors.New("connection not listed yet")
		}
		return nil
	})
	waitCounts(t, env, env.LegacyDSN, env.Influx.URL, env.InfluxDB, n, n, 120*time.Second)
	testenv.Eventually(t, 60*time.Second, "queue drained", func() error {
		if q := env.QueueMessages(env.Topology.Queue); q != 0 {
			return fmt.Errorf("queue holds %d", q)
		}
		return nil
	})
	if r := h.metric("consumer_source_reopened_total", nil); r < 1 {
		t.Fatalf("source reopened %v times, want ≥ 1", r)
	}
}

// pgPort returns the port of a PostgreSQL DSN.
func pgPort(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// waitGone waits until the postmaster listening on port has exited (its
// lock file names a PID that no longer exists, zombies included: PostgreSQL
// refuses to start while kill(pid, 0) succeeds).
func waitGone(t *testing.T, port string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "postmaster on port "+port+" gone", func() error {
		locks, _ := filepath.Glob("/tmp/pgtest-*/data/postmaster.pid")
		for _, l := range locks {
			b, err := os.ReadFile(l)
			if err != nil {
				continue
			}
			lines := strings.Split(string(b), "\n")
			if len(lines) < 4 || strings.TrimSpace(lines[3]) != port {
				continue
			}
			if _, err := os.Stat("/proc/" + strings.TrimSpace(lines[0])); err == nil {
				return fmt.Errorf("postmaster %s still exists", strings.TrimSpace(lines[0]))
			}
		}
		return nil
	})
}

// gen2WithSensor is a one-sample message whose temperature sensor is named
// sensor.
func gen2WithSensor(unit, sensor string, t time.Time) []byte {
	return fmt.Appendf(nil, `<Telemetry xmlns="urn:flexipack:telemetry:2" schemaVersion="2.1"><Unit serial="%s" site="s" model="m"/><Sample seq="1" time="%s"><SoC>50</SoC><Temperature sensor="%s" unit="C">20.5</Temperature></Sample></Telemetry>`,
		unit, t.UTC().Format(time.RFC3339Nano), sensor)
}

// InfluxDB refuses single points (a field type conflict): in dual-write the
// ledger records exactly those readings; in influx-primary, where InfluxDB
// is required, their messages are dead-lettered as "partial". Everything
// else is stored either way.
func TestInfluxRefusedPoints(t *testing.T) {
	env := consumertest.NewEnv(t)
	st := env.State()
	ctx := testenv.Context(t, 2*time.Minute)
	// temp_weird_c becomes a string field: float writes to it conflict.
	if err := writeLine(env.Influx.URL, env.InfluxDB, fmt.Sprintf(`bsu,unit=seed temp_weird_c="text" %d`, consumertest.Base.UnixMilli())); err != nil {
		t.Fatal(err)
	}
	publish := func(prefix string, offset time.Duration) {
		var msgs []bus.Message
		for i := range 40 {
			sensor := "ok"
			if i%10 == 3 {
				sensor = "weird"
			}
			u := fmt.Sprintf("%s-%d", prefix, i%4)
			msgs = append(msgs, bus.Message{ID: fmt.Sprint(prefix, i), RoutingKey: rabbit.RoutingKey(2, u),
				Body: gen2WithSensor(u, sensor, consumertest.Base.Add(offset+time.Duration(i)*time.Second))})
		}
		env.Publish(msgs)
	}
	env.SetPhase(st, cutover.DualWrite)
	h := startPipeline(t, env, opts{})
	publish("FP2-T1", 0)
	waitCounts(t, env, env.LegacyDSN, env.Influx.URL, env.InfluxDB, 40, 36, 60*time.Second)
	testenv.Eventually(t, 30*time.Second, "batch acked (after its ledger entries)", func() error {
		if a := h.acked(); a != 40 {
			return fmt.Errorf("acked %d", a)
		}
		return nil
	})
	gaps, err := st.Gaps(ctx, cutover.GapFilter{Sink: cutover.SinkInflux})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range gaps {
		n += g.Readings
		if !strings.Contains(g.Reason, "conflict") {
			t.Errorf("ledger reason %q does not name the conflict", g.Reason)
		}
	}
	if n != 4 {
		t.Fatalf("ledger covers %d readings, want the 4 InfluxDB refused: %+v", n, gaps)
	}
	if q := env.QueueMessages(env.Topology.DeadQueue); q != 0 {
		t.Fatalf("dead letters in dual-write: %d", q)
	}

	env.SetPhase(st, cutover.InfluxPrimary)
	testenv.Eventually(t, 10*time.Second, "influx-primary applied", func() error {
		if h.p.Applied().Phase != cutover.InfluxPrimary {
			return errors.New("not yet")
		}
		return nil
	})
	publish("FP2-T2", time.Hour)
	waitCounts(t, env, env.LegacyDSN, env.Influx.URL, env.InfluxDB, 80, 72, 60*time.Second)
	testenv.Eventually(t, 30*time.Second, "refused readings dead-lettered", func() error {
		if q := env.QueueMessages(env.Topology.DeadQueue); q != 4 {
			return fmt.Errorf("dead-letter queue holds %d, want 4", q)
		}
		return nil
	})
	entries, _, err := dlq.List(ctx, env.Conn(), env.Topology.DeadQueue, dlq.Filter{Kind: dlq.KindPartial, Reason: "influx refused"}, 0)
	if err != nil || len(entries) != 4 {
		t.Fatalf("partial dead letters = %+v, %v", entries, err)
	}
}

// writeLine writes one line of line protocol with InfluxDB 1.8's /write.
func writeLine(base, db, line string) error {
	resp, err := http.Post(base+"/write?precision=ms&db="+url.QueryEscape(db), "text/plain", strings.NewReader(line))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("write %q: %s: %s", line, resp.Status, b)
	}
	return nil
}
