package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// TestCutoverEndToEnd runs a whole cutover, legacy → dual-write →
// shadow-read → influx-primary → influx-only and a rollback, with the real
// consumer binary (two instances) and the real migrate binary, while a
// producer keeps publishing to RabbitMQ; then it checks that both stores
// hold exactly the published readings: none lost, none doubled.
//
// The producer is the test itself (publishing generation-2 XML through
// shared/rabbit), because 'producer simulate' is not built yet; the history
// written before dual-write is copied to InfluxDB by the test, as backfill
// would, and recorded as a finished backfill run.
func TestCutoverEndToEnd(t *testing.T) {
	ctx := testenv.Context(t, 10*time.Minute)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dsn := testenv.Postgres(t)
	db := testenv.Influx(t)
	amqpURL := testenv.RabbitURL(t)
	topo := rabbit.Topology{Exchange: testenv.Name(t, "x"), Queue: testenv.Name(t, "q"), QueueType: "classic", BindingKey: "bsu.#",
		DeadExchange: testenv.Name(t, "dlx"), DeadQueue: testenv.Name(t, "dq")}
	t.Cleanup(func() { deleteTopology(t, amqpURL, topo) })

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/flexipack/cutover/consumer", "github.com/flexipack/cutover/migrate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the binaries: %v\n%s", err, out)
	}
	envv := append(os.Environ(),
		"STATE_DSN="+dsn, "PG_DSN="+dsn, "INFLUX_URL="+db.URL, "INFLUX_TOKEN="+db.Token, "INFLUX_ORG="+db.Org, "INFLUX_BUCKET="+db.Bucket,
		"AMQP_URL="+amqpURL, "AMQP_EXCHANGE="+topo.Exchange, "AMQP_QUEUE="+topo.Queue, "AMQP_DEAD_EXCHANGE="+topo.DeadExchange,
		"AMQP_DEAD_QUEUE="+topo.DeadQueue, "LOG_FORMAT=json", "LOG_LEVEL=info", "HTTP_ADDR=")

	state, err := cutover.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer state.Close()

	// Two consumers.
	for _, id := range []string{"consumer-1", "consumer-2"} {
		startConsumer(t, filepath.Join(bin, "consumer"), envv, id)
	}

	// The producer: 4 units, a reading each every 20ms, each published
	// once and confirmed; published holds every confirmed reading's key.
	conn, err := rabbit.Dial(ctx, amqpURL, "e2e-producer", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var mu sync.Mutex
	published := map[telemetry.Key]bool{}
	start := time.Now().UTC().Truncate(time.Second)
	stopProducer := make(chan struct{})
	producerDone := make(chan error, 1)
	go func() { producerDone <- produce(ctx, pub, stopProducer, &mu, published) }()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(published) }

	mig := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "migrate"), args...)
		cmd.Env = envv
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("migrate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		t.Logf("migrate %s:\n%s", strings.Join(args, " "), out.String())
		return out.String()
	}
	live := func() error {
		hbs, err := state.Heartbeats(ctx, 10*time.Second)
		if err != nil {
			return err
		}
		if len(hbs) != 2 {
			return fmt.Errorf("%d live consumers, want 2", len(hbs))
		}
		return nil
	}
	testenv.Eventually(t, 60*time.Second, "both consumers beat", live)
	testenv.Eventually(t, 30*time.Second, "the producer publishes", func() error {
		if n := count(); n < 200 {
			return fmt.Errorf("%d readings published", n)
		}
		return nil
	})

	// legacy → dual-write: no gates; advance waits for both consumers.
	mig(0, "advance", "--execute", "--consumer-timeout", "30s", "--actor", "e2e", "--reason", "e2e cutover")
	// Readings before this bound may be in the legacy store only: copy
	// them to InfluxDB, as backfill would, until verify finds the range clean.
	bound := time.Now().UTC().Add(2 * time.Second).Truncate(time.Second)
	leg, err := legacy.Open(ctx, dsn, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	iw, err := influx.NewWriter(influx.Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer iw.Close()
	from := start.Add(-time.Minute)
	testenv.Eventually(t, 90*time.Second, "the pre-dual-write history is backfilled and verified", func() error {
		if time.Now().Before(bound.Add(2 * time.Second)) {
			return fmt.Errorf("readings before %s may still be in flight", bound.Format(time.RFC3339))
		}
		var batch []telemetry.Record
		err := leg.Stream(ctx, from, bound, nil, func(r *telemetry.Record) error {
			c := *r
			c.Temps, c.Alarms = slices.Clone(r.Temps), slices.Clone(r.Alarms)
			batch = append(batch, c)
			return nil
		})
		if err != nil {
			return err
		}
		if err := iw.Write(ctx, batch); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "migrate"), "verify", "--from", from.Format(time.RFC3339), "--to", bound.Format(time.RFC3339), "--shadow=false")
		cmd.Env = envv
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("verify: %v: %s", err, out)
		}
		return nil
	})
	if err := state.StartBackfillRun(ctx, "e2e-backfill", map[string]any{"from": from, "to": bound}); err != nil {
		t.Fatal(err)
	}
	if err := state.FinishBackfillRun(ctx, "e2e-backfill", map[string]any{"copied": "all"}); err != nil {
		t.Fatal(err)
	}

	// No query service runs in this story: the shadow-reads gate is not required.
	planFlags := []string{"--max-lag", "5s", "--recent", "10m", "--recent-window", "10s", "--min-shadow-reads", "0"}
	gateFlags := append(slices.Clone(planFlags), "--consumer-timeout", "30s", "--actor", "e2e")
	mig(0, append([]string{"advance", "--execute", "--to", "shadow-read"}, gateFlags...)...)
	// The recent verify must see dual-written readings, not an empty range.
	testenv.Eventually(t, 30*time.Second, "the recent window holds dual-written readings", func() error {
		if time.Since(bound) < 8*time.Second {
			return fmt.Errorf("only %s since dual-write", time.Since(bound))
		}
		return nil
	})
	out := mig(0, append([]string{"plan", "-o", "json"}, planFlags...)...)
	if !strings.Contains(out, `"name": "verify-recent"`) || strings.Contains(out, `"ok": false`) {
		t.Fatalf("plan into influx-primary:\n%s", out)
	}
	mig(0, append([]string{"advance", "--execute", "--to", "influx-primary"}, gateFlags...)...)
	mig(2, append([]string{"advance", "--execute", "--to", "influx-only"}, gateFlags...)...) // no --confirm
	mig(0, append([]string{"advance", "--execute", "--to", "influx-only", "--confirm", "influx-only"}, gateFlags...)...)

	// Influx-only for a while, then roll back to influx-primary.
	atSwitch := count()
	testenv.Eventually(t, 30*time.Second, "readings published in influx-only", func() error {
		if n := count(); n < atSwitch+300 {
			return fmt.Errorf("%d published since influx-only", n-atSwitch)
		}
		return nil
	})
	out = mig(0, "rollback", "--execute", "--consumer-timeout", "30s", "--actor", "e2e", "-o", "json")
	var rb struct {
		RepairCommand string `json:"repair_command"`
	}
	if err := json.Unmarshal([]byte(out), &rb); err != nil || !strings.HasPrefix(rb.RepairCommand, "migrate repair-legacy --from ") {
		t.Fatalf("rollback output %q: %v", out, err)
	}

	// Stop the producer and let the consumers drain the queue.
	close(stopProducer)
	if err := <-producerDone; err != nil {
		t.Fatal(err)
	}
	total := count()
	reader, err := influx.NewReader(influx.Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	end := time.Now().Add(time.Minute)
	testenv.Eventually(t, 60*time.Second, "InfluxDB holds every published reading", func() error {
		n, err := reader.Total(ctx, from, end)
		if err != nil {
			return err
		}
		if n != int64(total) {
			return fmt.Errorf("InfluxDB has %d readings, %d were published", n, total)
		}
		return nil
	})
	// Repair the legacy store with the command rollback printed.
	mig(0, strings.Fields(strings.TrimPrefix(rb.RepairCommand, "migrate "))...)

	// Exactly the published readings, in each store.
	for name, src := range map[string]interface {
		Stream(context.Context, time.Time, time.Time, []string, func(*telemetry.Record) error) error
	}{"legacy": leg, "influx": reader} {
		seen := map[telemetry.Key]int{}
		err := src.Stream(ctx, from, end, nil, func(r *telemetry.Record) error { seen[r.Key()]++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		var missing, doubled, extra int
		for k := range published {
			if seen[k] == 0 {
				missing++
			}
		}
		for k, n := range seen {
			if n > 1 {
				doubled++
			}
			if !published[k] {
				extra++
			}
		}
		if missing+doubled+extra != 0 || len(seen) != total {
			t.Fatalf("%s store: %d readings for %d published: %d missing, %d doubled, %d never published", name, len(seen), total, missing, doubled, extra)
		}
		t.Logf("%s store: all %d published readings, none missing, doubled or extra", name, total)
	}
	mig(0, "verify", "--from", from.Format(time.RFC3339), "--to", end.Format(time.RFC3339), "--window", "1m")
	out = mig(0, "history")
	for _, want := range []string{"advance legacy → dual-write", "advance dual-write → shadow-read", "advance shadow-read → influx-primary",
		"advance influx-primary → influx-only", "rollback influx-only → influx-primary", "legacy_gap_from"} {
		if !strings.Contains(out, want) {
			t.Fatalf("history lacks %q:\n%s", want, out)
		}
	}
}

func startConsumer(t *testing.T, bin string, env []string, id string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), id+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--consumer-id", id, "--phase-poll", "200ms", "--shutdown-timeout", "10s")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- %s log (tail):\n%s", id, b)
		}
	})
}

// produce publishes one generation-2 reading per unit every 20ms until stop.
func produce(ctx context.Context, pub *rabbit.Publisher, stop <-chan struct{}, mu *sync.Mutex, published map[telemetry.Key]bool) error {
	units := []string{"FP2-E2E001", "FP2-E2E002", "FP2-E2E003", "FP2-E2E004"}
	last := map[string]int64{}
	seq := 0
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		var msgs []bus.Message
		var keys []telemetry.Key
		for i, u := range units {
			ms := time.Now().UnixMilli()
			if ms <= last[u] {
				ms = last[u] + 1
			}
			last[u] = ms
			seq++
			ts := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
			body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:2" schemaVersion="2.1">
  <bsu:Unit serial="%s" site="%s" model="FlexiPack-250" firmware="2.4.1"/>
  <bsu:Sample seq="%d" time="%s">
    <bsu:SoC>%.1f</bsu:SoC><bsu:SoH>97.1</bsu:SoH>
    <bsu:Voltage unit="V">812.1</bsu:Voltage><bsu:Current unit="A">-12.30</bsu:Current>
    <bsu:Temperature sensor="cell_max" unit="C">31.2</bsu:Temperature>
    <bsu:Mode>discharging</bsu:Mode>
  </bsu:Sample>
</bsu:Telemetry>`, u, []string{"North Yard, Bay 3", "south"}[i%2], seq, ts, 20+float64(seq%800)/10)
			msgs = append(msgs, bus.Message{ID: fmt.Sprintf("e2e-%d", seq), Key: u, RoutingKey: rabbit.RoutingKey(2, u),
				Headers: map[string]string{bus.HeaderUnit: u, bus.HeaderGeneration: "2", bus.HeaderSamples: "1", bus.HeaderSource: "e2e"}, Body: []byte(body)})
			keys = append(keys, telemetry.Key{Unit: u, TimeMs: ms})
		}
		if err := pub.Publish(ctx, msgs); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		mu.Lock()
		for _, k := range keys {
			published[k] = true
		}
		mu.Unlock()
	}
}

// deleteTopology removes the test's exchanges and queues.
func deleteTopology(t *testing.T, url string, topo rabbit.Topology) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, url, "e2e-cleanup", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel(ctx)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer ch.Close()
	_, _ = ch.QueueDelete(topo.Queue, false, false, false)
	_, _ = ch.QueueDelete(topo.DeadQueue, false, false, false)
	_ = ch.ExchangeDelete(topo.Exchange, false, false)
	_ = ch.ExchangeDelete(topo.DeadExchange, false, false)
}
