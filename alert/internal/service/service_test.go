package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/alert/internal/notify"
	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/alert/internal/store"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/source"
)

// memSource hands out batches from a channel and records how each was settled.
type memSource struct {
	batches chan []source.Message
	mu      sync.Mutex
	settled []error
	onAck   func()
}

func (m *memSource) ReadBatch(ctx context.Context, _ int, _ time.Duration) ([]source.Message, source.AckFunc, error) {
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case b := <-m.batches:
		return b, func(_ context.Context, err error) error {
			if m.onAck != nil && err == nil {
				m.onAck()
			}
			m.mu.Lock()
			m.settled = append(m.settled, err)
			m.mu.Unlock()
			return nil
		}, nil
	}
}

func (m *memSource) Check(context.Context) error { return nil }
func (m *memSource) Close() error                { return nil }

func (m *memSource) acks() (ok, nack int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.settled {
		if e == nil {
			ok++
		} else {
			nack++
		}
	}
	return ok, nack
}

// memStore is the state store in memory; fail makes Apply fail.
type memStore struct {
	mu     sync.Mutex
	fail   bool
	alerts map[string]engine.Alert
	units  int
}

func (s *memStore) Load(context.Context) (store.Snapshot, error) { return store.Snapshot{}, nil }
func (s *memStore) Ping(context.Context) error                   { return nil }
func (s *memStore) Apply(_ context.Context, changes []engine.Change, units []engine.UnitRecord) ([]store.Outboxed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return nil, errors.New("connection refused")
	}
	for _, c := range changes {
		if c.State == engine.Inactive {
			delete(s.alerts, c.Rule+"/"+c.Key)
		} else {
			s.alerts[c.Rule+"/"+c.Key] = c.Alert
		}
	}
	s.units += len(units)
	return nil, nil
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.alerts)
}

type nopPoster struct{}

func (nopPoster) Post(context.Context, []notify.AMAlert) error { return nil }

type nopOutbox struct{}

func (nopOutbox) Delivered(context.Context, []int64) error { return nil }

func gen1(unit string, at time.Time, tempC int) source.Message {
	return source.Message{Body: fmt.Appendf(nil, `<telemetry schema="1.0"><unit id="%s" site="s"/><reading ts="%d"><temp_max>%d</temp_max><state>0</state></reading></telemetry>`,
		unit, at.UnixMilli(), tempC*10)}
}

func newTestService(t *testing.T, src *memSource, st *memStore, reg prometheus.Registerer) *Service {
	set, err := rules.Parse("t.yml", []byte("rules:\n  - {name: Hot, kind: threshold, expr: temp_cell_max_c > 55, severity: critical}\n"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := notify.NewNotifier(notify.Config{}, nopPoster{}, nopOutbox{}, logger, reg)
	svc, err := New(Config{Linger: time.Millisecond}, Deps{Rules: set, Source: src, Store: st, Notifier: n, Logger: logger, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A batch is acked only after its changes are stored; an undecodable
// message is counted and acked with its batch; while the store fails the
// batch stays unacked and the service is not ready.
func TestBatchAckedAfterStateStored(t *testing.T) {
	st := &memStore{alerts: map[string]engine.Alert{}}
	src := &memSource{batches: make(chan []source.Message, 4)}
	src.onAck = func() {
		if st.count() == 0 {
			t.Error("batch acked before its alert was stored")
		}
	}
	reg := prometheus.NewRegistry()
	svc := newTestService(t, src, st, reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	now := time.Now()
	src.batches <- []source.Message{gen1("U1", now, 60), {Body: []byte("<not-xml")}}
	waitFor(t, "first batch acked", func() bool { ok, _ := src.acks(); return ok == 1 })
	if got := counter(t, reg, "alert_messages_total", "undecodable"); got != 1 {
		t.Fatalf("undecodable messages counted: %v", got)
	}

	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	src.onAck = nil
	src.batches <- []source.Message{gen1("U2", now, 61)}
	waitFor(t, "not ready while the store fails", func() bool { return svc.Check(ctx) != nil })
	if ok, _ := src.acks(); ok != 1 {
		t.Fatalf("a batch was acked while its state could not be stored")
	}
	st.mu.Lock()
	st.fail = false
	st.mu.Unlock()
	waitFor(t, "second batch acked once the store answers", func() bool { ok, _ := src.acks(); return ok == 2 })
	waitFor(t, "ready again", func() bool { return svc.Check(ctx) == nil })
	if st.count() != 2 {
		t.Fatalf("%d alerts stored, want 2", st.count())
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		var stopped *retry.StoppedError
		if !errors.As(err, &stopped) {
			t.Fatal(err)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}
