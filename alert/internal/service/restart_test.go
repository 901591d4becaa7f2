package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/alert/internal/notify"
	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/alert/internal/store"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/testenv"
)

// killableStore is the real PostgreSQL store; once killed, nothing more
// reaches it, as if the process had died (SIGKILL) at that instant. It
// records the alert changes written, to count notifications.
type killableStore struct {
	*store.Store
	dead    atomic.Bool
	mu      sync.Mutex
	changes []engine.Change
}

func (k *killableStore) Apply(ctx context.Context, changes []engine.Change, units []engine.UnitRecord) ([]store.Outboxed, error) {
	if k.dead.Load() {
		return nil, retry.Permanent(errors.New("process killed"))
	}
	out, err := k.Store.Apply(ctx, changes, units)
	if err == nil {
		k.mu.Lock()
		k.changes = append(k.changes, changes...)
		k.mu.Unlock()
	}
	return out, err
}

func (k *killableStore) firings(rule string) []engine.Change {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []engine.Change
	for _, c := range k.changes {
		if c.Rule == rule && c.State == engine.Firing && c.From != engine.Firing {
			out = append(out, c)
		}
	}
	return out
}

const dropRules = `settings: {allowed_lateness: 10m} # redelivered readings are late, not dropped: the windows must not count them twice
rules:
  - {name: Drop, kind: aggregate, field: soc_pct, func: delta, window: 10m, when: mode == idle, expr: value < -20, severity: critical}
  - {name: MeanLow, kind: aggregate, field: soc_pct, func: mean, window: 10m, expr: value < 70, severity: warning}
`

// idle is a gen-1 message: unit U1 idle at soc percent, t after t0.
func idle(t0 time.Time, t time.Duration, soc float64) source.Message {
	return source.Message{Body: fmt.Appendf(nil, `<telemetry schema="1.0"><unit id="U1" site="s"/><reading ts="%d"><soc>%g</soc><state>0</state></reading></telemetry>`,
		t0.Add(t).UnixMilli(), soc)}
}

// ramp is one message per minute from `from` to `to` minutes, SoC falling
// 2.5 points a minute from 80 at minute 0.
func ramp(t0 time.Time, from, to int) []source.Message {
	var out []source.Message
	for m := from; m <= to; m++ {
		out = append(out, idle(t0, time.Duration(m)*time.Minute, 80-2.5*float64(m)))
	}
	return out
}

type running struct {
	svc    *Service
	src    *memSource
	cancel context.CancelFunc
	done   chan error
}

func startService(t *testing.T, st Store, checkpoint time.Duration) *running {
	t.Helper()
	set, err := rules.Parse("drop.yml", []byte(dropRules))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := prometheus.NewRegistry()
	n := notify.NewNotifier(notify.Config{}, nopPoster{}, nopOutbox{}, logger, reg)
	src := &memSource{batches: make(chan []source.Message, 4)}
	svc, err := New(Config{Linger: time.Millisecond, UnitCheckpoint: checkpoint}, Deps{Rules: set, Source: src, Store: st, Notifier: n, Logger: logger, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r := &running{svc: svc, src: src, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	return r
}

func (r *running) send(t *testing.T, msgs []source.Message) {
	t.Helper()
	ok, nack := r.src.acks()
	r.src.batches <- msgs
	waitFor(t, "batch settled", func() bool { o, n := r.src.acks(); return o+n > ok+nack })
}

func openStore(t *testing.T, dsn string) *killableStore {
	t.Helper()
	s, err := store.Open(testenv.Context(t, time.Minute), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &killableStore{Store: s}
}

// A graceful shutdown in the middle of an aggregate window writes the
// windows changed since the last checkpoint (no alert changed and the next
// unit checkpoint is an hour away), and the next process fires at the
// reading that completes the drop, with every reading in its windows.
func TestWindowsSurviveGracefulShutdown(t *testing.T) {
	dsn := testenv.Postgres(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	st1 := openStore(t, dsn)
	r1 := startService(t, st1, time.Hour)
	r1.send(t, ramp(t0, 0, 2)) // the first batch checkpoints its units
	r1.send(t, ramp(t0, 3, 5)) // this one is written only by the shutdown
	r1.cancel()
	if err := <-r1.done; err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	st2 := openStore(t, dsn)
	r2 := startService(t, st2, time.Hour)
	r2.send(t, ramp(t0, 6, 8))
	if f := st2.firings("Drop"); len(f) != 0 {
		t.Fatalf("fired at -20 (8m): %+v", f)
	}
	r2.send(t, ramp(t0, 9, 9))
	f := st2.firings("Drop")
	if len(f) != 1 || !f[0].FiredAt.Equal(t0.Add(9*time.Minute)) || f[0].Value != -22.5 {
		t.Fatalf("want one firing at 9m with delta -22.5 (window restored across the restart), got %+v", f)
	}
	if m := st2.firings("MeanLow"); len(m) != 1 || m[0].Value != 68.75 {
		t.Fatalf("want one MeanLow firing with the mean of 0..9m, 68.75 (3..5m written at shutdown), got %+v", m)
	}
}

// A crash (nothing written after the kill) right after a batch whose
// state was stored but whose ack was lost: the broker redelivers that
// batch and the unacked one after it. The restored windows do not count
// the redelivered readings twice and the alert fires once, at 9m.
func TestWindowsAfterCrashAndRedelivery(t *testing.T) {
	dsn := testenv.Postgres(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	st1 := openStore(t, dsn)
	r1 := startService(t, st1, time.Nanosecond) // checkpoint units with every batch
	r1.send(t, ramp(t0, 0, 5))
	st1.dead.Store(true) // SIGKILL: the ack of 0..5m "was lost", 6..8m is never stored
	r1.send(t, ramp(t0, 6, 8))
	if _, nack := r1.src.acks(); nack != 1 {
		t.Fatalf("the batch after the kill was not nacked")
	}
	r1.cancel()
	<-r1.done

	st2 := openStore(t, dsn)
	r2 := startService(t, st2, time.Nanosecond)
	r2.send(t, ramp(t0, 0, 5)) // redelivered: already in the restored windows
	r2.send(t, ramp(t0, 6, 8))
	if f := st2.firings("Drop"); len(f) != 0 {
		t.Fatalf("redelivered readings counted twice: fired before 9m: %+v", f)
	}
	r2.send(t, ramp(t0, 9, 9))
	r2.send(t, ramp(t0, 9, 9)) // and a plain redelivery of the firing reading
	f := st2.firings("Drop")
	if len(f) != 1 || !f[0].FiredAt.Equal(t0.Add(9*time.Minute)) || f[0].Value != -22.5 {
		t.Fatalf("want one firing at 9m with delta -22.5, got %+v", f)
	}
	// The mean of 0..9m is 68.75 (below 70 first at 9m); a redelivered
	// reading counted twice would move it.
	m := st2.firings("MeanLow")
	if len(m) != 1 || !m[0].FiredAt.Equal(t0.Add(9*time.Minute)) || m[0].Value != 68.75 {
		t.Fatalf("want one MeanLow firing at 9m with mean 68.75, got %+v", m)
	}
	r2.cancel()
	if err := <-r2.done; err != nil {
		t.Fatal(err)
	}
	if st := r2.svc.eng.Stats(); st.Duplicates == 0 {
		t.Fatalf("no redelivered reading was recognised: %+v", st)
	}
}
