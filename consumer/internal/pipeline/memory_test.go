package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/consumer/internal/consumertest"
	"github.com/flexipack/cutover/consumer/internal/pipeline"
	"github.com/flexipack/cutover/consumer/internal/pipeline/pipelinetest"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// These tests run the pipeline against the in-memory bus, stores, state
// store and ledger of pipelinetest: its ordering, phase and failure logic in
// seconds. The tests in pipeline_test.go and faults_test.go run the same
// pipeline against the real services.

// memPipeline is a pipeline wired to in-memory collaborators.
type memPipeline struct {
	src            *pipelinetest.Source
	legacy, influx *pipelinetest.Sink
	state          *pipelinetest.State
	ledger         *pipelinetest.Ledger
	dead           *pipelinetest.DeadLetters
	reg            *prometheus.Registry
	cfg            pipeline.Config
	p              *pipeline.Pipeline
	cancel         context.CancelFunc
	done           chan error
}

// newMem wires a pipeline in phase; change its parts (hooks, down
// switches, cfg) before start.
func newMem(phase cutover.Phase) *memPipeline {
	return &memPipeline{
		src: pipelinetest.NewSource(), legacy: pipelinetest.NewSink(), influx: pipelinetest.NewSink(),
		state: pipelinetest.NewState(phase), ledger: &pipelinetest.Ledger{}, dead: &pipelinetest.DeadLetters{},
		reg: prometheus.NewRegistry(),
		cfg: pipeline.Config{ConsumerID: "mem-1", Host: "test", BatchSize: 10, FlushInterval: 2 * time.Millisecond, InFlight: 3,
			DecodeWorkers: 2, PhasePoll: 5 * time.Millisecond, ProbeInterval: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond,
			ShutdownTimeout: 5 * time.Second},
	}
}

func (m *memPipeline) start(t *testing.T) {
	t.Helper()
	p, err := pipeline.New(m.cfg, pipeline.Deps{Source: m.src, State: m.state, Ledger: m.ledger, DeadLetter: m.dead,
		Sinks:  []pipeline.SinkSpec{{Name: cutover.SinkLegacy, Sink: m.legacy}, {Name: cutover.SinkInflux, Sink: m.influx}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: m.reg})
	if err != nil {
		t.Fatal(err)
	}
	m.p = p
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan error, 1)
	go func() { m.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-m.done
	})
}

// stop ends the pipeline's context and returns what Run returned.
func (m *memPipeline) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		m.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("Run did not return within %s of the cancel", within)
		return nil
	}
}

func (m *memPipeline) sink(name string) *pipelinetest.Sink {
	if name == cutover.SinkLegacy {
		return m.legacy
	}
	return m.influx
}

// waitAcked waits until n distinct messages are acked.
func (m *memPipeline) waitAcked(t *testing.T, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%d messages acked", n), func() error {
		if got, _ := m.src.Acked(); got != n {
			return fmt.Errorf("%d acked", got)
		}
		return nil
	})
}

// sinkUp reads the consumer_sink_up gauge of a sink.
func (m *memPipeline) sinkUp(t *testing.T, sink string) float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "consumer_sink_up" {
			continue
		}
		for _, mt := range f.Metric {
			if mt.GetLabel()[0].GetValue() == sink {
				return mt.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no consumer_sink_up for %s", sink)
	return 0
}

// messages returns n one-reading messages with IDs prefix-0.. and their readings.
func messages(prefix string, n int) ([]source.Message, []telemetry.Key) {
	bm, rs := consumertest.Messages(prefix, n, 5, 0)
	msgs := make([]source.Message, n)
	keys := make([]telemetry.Key, n)
	for i, b := range bm {
		h := map[string]any{}
		for k, v := range b.Headers {
			h[k] = v
		}
		msgs[i] = source.Message{ID: b.ID, RoutingKey: b.RoutingKey, Key: b.Key, Headers: h, Body: b.Body}
		keys[i] = telemetry.Key{Unit: rs[i].Unit, TimeMs: rs[i].Time.UnixMilli()}
	}
	return msgs, keys
}

// holds counts how many of keys the sink holds.
func holds(s *pipelinetest.Sink, keys []telemetry.Key) int {
	n := 0
	for _, k := range keys {
		if s.Has(k) {
			n++
		}
	}
	return n
}

// TestMemorySettlesInReadOrder: batches finish out of order (their writes
// take different times) but are acked strictly in the order they were read,
// whatever the number in flight; every reading is stored once, a malformed
// message is dead-lettered and acked with its batch.
func TestMemorySettlesInReadOrder(t *testing.T) {
	tests := []struct {
		name     string
		phase    cutover.Phase
		inFlight int
		required []string
	}{
		{"one batch in flight, legacy", cutover.Legacy, 1, []string{cutover.SinkLegacy}},
		{"three in flight, legacy", cutover.Legacy, 3, []string{cutover.SinkLegacy}},
		{"eight in flight, dual-write", cutover.DualWrite, 8, []string{cutover.SinkLegacy, cutover.SinkInflux}},
		{"four in flight, influx-only", cutover.InfluxOnly, 4, []string{cutover.SinkInflux}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMem(tt.phase)
			m.cfg.InFlight = tt.inFlight
			// Batch k's write takes (k mod 4) × 3 ms: later batches often
			// finish first.
			var writes atomic.Int64
			slow := func(ctx context.Context, _ []telemetry.Record) {
				d := time.Duration(writes.Add(1)%4) * 3 * time.Millisecond
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
			m.legacy.Hook, m.influx.Hook = slow, slow
			m.start(t)
			msgs, keys := messages("order", 200)
			msgs[57].Body = []byte("<not telemetry")
			m.src.Publish(msgs...)
			m.waitAcked(t, 200)

			if bad := m.src.OutOfOrder(); len(bad) > 0 {
				t.Fatalf("settled out of read order: %v", bad)
			}
			for i, s := range m.src.Settlements() {
				if s.Batch != uint64(i+1) || s.Err != nil {
					t.Fatalf("settlement %d = batch %d (err %v), want batch %d acked", i, s.Batch, s.Err, i+1)
				}
			}
			good := append(append([]telemetry.Key(nil), keys[:57]...), keys[58:]...)
			for _, name := range tt.required {
				if n := holds(m.sink(name), good); n != len(good) || m.sink(name).Len() != len(good) {
					t.Fatalf("%s holds %d of the %d good readings (%d in all)", name, n, len(good), m.sink(name).Len())
				}
			}
			if l := m.dead.Letters(); len(l) != 1 || l[0].Msg.ID != msgs[57].ID {
				t.Fatalf("dead letters %+v, want the malformed message alone", l)
			}
			if g := m.ledger.Gaps(); len(g) != 0 {
				t.Fatalf("gap ledger %+v, want empty", g)
			}
			if err := m.stop(t, 5*time.Second); err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

// TestMemoryPhaseSwitchAtBatchBoundary: a phase change applies from the next
// batch read; a batch read before it is written and reported in its old
// phase, and a later batch written in the new phase waits for it to settle.
func TestMemoryPhaseSwitchAtBatchBoundary(t *testing.T) {
	m := newMem(cutover.Legacy)
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	m.legacy.Hook = func(ctx context.Context, _ []telemetry.Record) {
		if first.CompareAndSwap(false, true) {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}
	m.start(t)
	a, aKeys := messages("before", 10)
	m.src.Publish(a...)
	<-entered // batch 1 is being written in phase legacy

	reads := m.state.Reads()
	m.state.SetPhase(cutover.DualWrite)
	testenv.Eventually(t, 5*time.Second, "the pipeline reread the phase", func() error {
		if m.state.Reads() < reads+2 {
			return errors.New("not yet")
		}
		return nil
	})
	b, bKeys := messages("after", 10)
	m.src.Publish(b...)
	testenv.Eventually(t, 5*time.Second, "batch 2 written to InfluxDB in dual-write", func() error {
		if n := holds(m.influx, bKeys); n != len(bKeys) {
			return fmt.Errorf("InfluxDB holds %d of %d", n, len(bKeys))
		}
		return nil
	})
	if s := m.src.Settlements(); len(s) != 0 {
		t.Fatalf("settled %+v while batch 1 is still being written", s)
	}
	if ph := m.p.Applied().Phase; ph != cutover.Legacy {
		t.Fatalf("applied phase %s while a legacy batch is unsettled, want legacy", ph)
	}

	close(release)
	m.waitAcked(t, 20)
	if bad := m.src.OutOfOrder(); len(bad) > 0 {
		t.Fatalf("settled out of read order: %v", bad)
	}
	if holds(m.legacy, aKeys) != 10 || holds(m.influx, aKeys) != 0 {
		t.Fatalf("batch 1 (legacy): legacy holds %d, InfluxDB %d of 10; want 10 and 0", holds(m.legacy, aKeys), holds(m.influx, aKeys))
	}
	if holds(m.legacy, bKeys) != 10 {
		t.Fatalf("batch 2 (dual-write): legacy holds %d of 10", holds(m.legacy, bKeys))
	}
	testenv.Eventually(t, 5*time.Second, "the heartbeat reports dual-write", func() error {
		hb, ok := m.state.LastBeat()
		if !ok || hb.Phase != cutover.DualWrite || hb.PhaseVersion != 2 {
			return fmt.Errorf("last heartbeat %+v", hb)
		}
		return nil
	})
}

// TestMemoryStoreDownUp: a required store that is down holds its batches
// (not acked, retried, the other store written once); a repairable store
// that is down gets gap-ledger entries and a breaker that skips it until a
// probe finds it back; a ledger that is down holds the batch like a
// required store.
func TestMemoryStoreDownUp(t *testing.T) {
	tests := []struct {
		name       string
		phase      cutover.Phase
		down       string // the sink that is down first
		ledgerDown bool
		held       bool // batches wait for the store instead of being acked
	}{
		{"legacy required in legacy: held until back", cutover.Legacy, cutover.SinkLegacy, false, true},
		{"legacy required in dual-write: held, InfluxDB written once per batch", cutover.DualWrite, cutover.SinkLegacy, false, true},
		{"influx required in influx-only: held until back", cutover.InfluxOnly, cutover.SinkInflux, false, true},
		{"influx repairable in dual-write: ledger, breaker, probe", cutover.DualWrite, cutover.SinkInflux, false, false},
		{"legacy repairable in influx-primary: ledger, breaker, probe", cutover.InfluxPrimary, cutover.SinkLegacy, false, false},
		{"influx repairable with the ledger down: held until the ledger is back", cutover.DualWrite, cutover.SinkInflux, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMem(tt.phase)
			down := m.sink(tt.down)
			down.SetDown()
			if tt.ledgerDown {
				m.ledger.SetDown()
			}
			m.start(t)
			if tt.held {
				heldUntilBack(t, m, tt.down, tt.ledgerDown)
			} else {
				gapsThenProbe(t, m, tt.down)
			}
			if err := m.stop(t, 5*time.Second); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if bad := m.src.OutOfOrder(); len(bad) > 0 {
				t.Fatalf("settled out of read order: %v", bad)
			}
		})
	}
}

// heldUntilBack: nothing is acked while the store (or ledger) is down; once
// it is back every reading is stored and acked.
func heldUntilBack(t *testing.T, m *memPipeline, downName string, ledgerDown bool) {
	down := m.sink(downName)
	otherName := map[string]string{cutover.SinkLegacy: cutover.SinkInflux, cutover.SinkInflux: cutover.SinkLegacy}[downName]
	other := m.sink(otherName)
	msgs, keys := messages("held", 30)
	m.src.Publish(msgs...)
	testenv.Eventually(t, 5*time.Second, "the batches are retried", func() error {
		_, failed := down.Writes()
		if ledgerDown {
			failed = m.ledger.Failures()
		}
		if failed < 6 {
			return fmt.Errorf("%d failed attempts", failed)
		}
		return nil
	})
	if n, _ := m.src.Acked(); n != 0 || len(m.src.Settlements()) != 0 {
		t.Fatalf("%d messages acked, %d settlements while the store is down", n, len(m.src.Settlements()))
	}
	ctx := testenv.Context(t, 5*time.Second)
	if !ledgerDown {
		if err := m.p.Check(ctx); err == nil || !strings.Contains(err.Error(), "required") {
			t.Fatalf("ready while a required store is down: %v", err)
		}
	}
	down.SetUp()
	m.ledger.SetUp()
	m.waitAcked(t, 30)
	role := func(name string) cutover.Role {
		l, i := m.p.Applied().Phase.Roles()
		if name == cutover.SinkLegacy {
			return l
		}
		return i
	}
	switch {
	case ledgerDown:
		// What InfluxDB missed is in the ledger; nothing is lost.
		if got := m.ledger.Readings(downName) + holds(down, keys); got < 30 || m.ledger.Readings(downName) == 0 {
			t.Fatalf("ledger covers %d readings, %s holds %d: want all 30 accounted for, some in the ledger",
				m.ledger.Readings(downName), downName, holds(down, keys))
		}
	default:
		if holds(down, keys) != 30 || len(m.ledger.Gaps()) != 0 {
			t.Fatalf("%s holds %d of 30, ledger %d entries; want 30 and none", downName, holds(down, keys), len(m.ledger.Gaps()))
		}
	}
	if role(otherName) != cutover.Off {
		// The store that was up was written once per batch, not on every retry.
		if calls, _ := other.Writes(); calls != len(m.src.Settlements()) || holds(other, keys) != 30 {
			t.Fatalf("the store that was up got %d writes for %d batches and holds %d of 30", calls, len(m.src.Settlements()), holds(other, keys))
		}
	}
	if err := m.p.Check(ctx); err != nil {
		t.Fatalf("not ready after the store came back: %v", err)
	}
}

// gapsThenProbe: a repairable store that is down costs gap-ledger entries,
// not acks; its breaker skips it for later batches; a probe closes the
// breaker once it is back.
func gapsThenProbe(t *testing.T, m *memPipeline, downName string) {
	down := m.sink(downName)
	a, aKeys := messages("down", 30)
	m.src.Publish(a...)
	m.waitAcked(t, 30)
	if got := m.ledger.Readings(downName); got != 30 || holds(down, aKeys) != 0 {
		t.Fatalf("ledger covers %d readings for %s and it holds %d; want 30 and 0", got, downName, holds(down, aKeys))
	}
	if up := m.sinkUp(t, downName); up != 0 {
		t.Fatalf("consumer_sink_up{%s} = %v while down, want 0", downName, up)
	}
	if err := m.p.Check(testenv.Context(t, 5*time.Second)); err != nil {
		t.Fatalf("a repairable store that is down made the consumer unready: %v", err)
	}

	calls, _ := down.Writes()
	b, _ := messages("breaker", 30)
	m.src.Publish(b...)
	m.waitAcked(t, 60)
	if again, _ := down.Writes(); again != calls {
		t.Fatalf("%d writes to %s while its breaker was open, want none", again-calls, downName)
	}
	if got := m.ledger.Readings(downName); got != 60 {
		t.Fatalf("ledger covers %d readings, want 60", got)
	}

	down.SetUp()
	testenv.Eventually(t, 5*time.Second, "a probe closes the breaker", func() error {
		if up := m.sinkUp(t, downName); up != 1 {
			return fmt.Errorf("consumer_sink_up{%s} = %v", downName, up)
		}
		return nil
	})
	c, cKeys := messages("back", 30)
	m.src.Publish(c...)
	m.waitAcked(t, 90)
	if holds(down, cKeys) != 30 || m.ledger.Readings(downName) != 60 {
		t.Fatalf("after the probe: %s holds %d of 30, ledger %d readings; want 30 and still 60", downName, holds(down, cKeys), m.ledger.Readings(downName))
	}
}

// TestMemoryShutdown: on cancel the pipeline stops reading, finishes the
// batches in flight and acks them, or, when a required store stays down,
// returns them to the bus within ShutdownTimeout; it always removes its
// heartbeat and closes the source.
func TestMemoryShutdown(t *testing.T) {
	tests := []struct {
		name      string
		legacyOff bool // the required store is down throughout
		timeout   time.Duration
	}{
		{"drain acks the batches in flight", false, 5 * time.Second},
		{"a required store down: the held batches go back to the bus", true, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMem(cutover.Legacy)
			m.cfg.ShutdownTimeout = tt.timeout
			m.legacy.Hook = func(ctx context.Context, _ []telemetry.Record) {
				select {
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			if tt.legacyOff {
				m.legacy.SetDown()
			}
			m.start(t)
			msgs, keys := messages("stop", 100)
			byID := map[string]telemetry.Key{}
			for i := range msgs {
				byID[msgs[i].ID] = keys[i]
			}
			m.src.Publish(msgs...)
			testenv.Eventually(t, 5*time.Second, "batches in flight", func() error {
				calls, _ := m.legacy.Writes()
				if calls < 2 {
					return fmt.Errorf("%d writes", calls)
				}
				return nil
			})
			began := time.Now()
			if err := m.stop(t, tt.timeout+5*time.Second); err != nil {
				t.Fatalf("Run after a cancel: %v", err)
			}
			if took := time.Since(began); took > tt.timeout+2*time.Second {
				t.Fatalf("the drain took %s, ShutdownTimeout is %s", took, tt.timeout)
			}
			if bad := m.src.OutOfOrder(); len(bad) > 0 {
				t.Fatalf("settled out of read order: %v", bad)
			}
			settled := 0
			for _, s := range m.src.Settlements() {
				settled += len(s.IDs)
				for _, id := range s.IDs {
					if s.Err == nil && !m.legacy.Has(byID[id]) {
						t.Fatalf("message %s acked but its reading is not stored", id)
					}
				}
				if tt.legacyOff && s.Err == nil {
					t.Fatalf("batch %d acked while the required store was down", s.Batch)
				}
			}
			acked, _ := m.src.Acked()
			if acked+m.src.Queued() != 100 {
				t.Fatalf("%d acked + %d back on the bus != 100 published", acked, m.src.Queued())
			}
			if tt.legacyOff && (acked != 0 || settled == 0) {
				t.Fatalf("%d acked, %d settled: want the held batches nacked", acked, settled)
			}
			if !tt.legacyOff && acked == 0 {
				t.Fatal("nothing acked by the drain")
			}
			if !m.src.Closed() || len(m.state.Forgotten()) != 1 || m.state.Forgotten()[0] != "mem-1" {
				t.Fatalf("after the drain: source closed %v, heartbeats forgotten %v", m.src.Closed(), m.state.Forgotten())
			}
		})
	}
}
