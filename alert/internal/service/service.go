// Package service runs the alert service: it reads telemetry batches from
// its own queue, decodes them, evaluates the rules, writes the resulting
// state changes to the state store, acks the batch, and hands the changes
// to Alertmanager and InfluxDB. One goroutine owns the engine; absence
// rules are evaluated on a ticker; a rule reload swaps the rules between
// batches without losing state.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/alert/internal/notify"
	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/alert/internal/store"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/telemetry"
)

// Store is the state the service persists.
type Store interface {
	Load(ctx context.Context) (store.Snapshot, error)
	Apply(ctx context.Context, changes []engine.Change, units []engine.UnitRecord) ([]store.Outboxed, error)
	Ping(ctx context.Context) error
}

// Config tunes the service.
type Config struct {
	BatchSize      int           // most messages per batch (default 500)
	Linger         time.Duration // longest a batch waits to fill (default 50 ms)
	TickInterval   time.Duration // how often absence rules are evaluated (default 1 s)
	UnitCheckpoint time.Duration // how often changed units are written with their aggregate windows (default 5 s)
}

// Source is what the service reads from the bus (shared/source's RabbitMQ
// queue or Kafka group, its own beside the consumer's).
type Source interface {
	ReadBatch(ctx context.Context, max int, linger time.Duration) ([]source.Message, source.AckFunc, error)
	Check(ctx context.Context) error
}

// Deps are what the service talks to.
type Deps struct {
	Rules    *rules.Set
	Source   Source
	Store    Store
	Notifier *notify.Notifier
	Points   *notify.InfluxPoints // nil: no bsu_alert points
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time
}

// Service is the running alert service.
type Service struct {
	cfg  Config
	deps Deps
	eng  *engine.Engine
	dec  *telemetry.Decoder
	m    *metrics

	reloads   chan *rules.Set
	lastUnits time.Time
	prev      engine.Stats

	mu       sync.Mutex
	storeErr error
	started  bool
}

// New returns a service; Start loads the persisted state.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Rules == nil || deps.Source == nil || deps.Store == nil || deps.Notifier == nil || deps.Logger == nil {
		return nil, errors.New("service: rules, source, store, notifier and logger are required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 50 * time.Millisecond
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = time.Second
	}
	if cfg.UnitCheckpoint <= 0 {
		cfg.UnitCheckpoint = 5 * time.Second
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{cfg: cfg, deps: deps, dec: &telemetry.Decoder{Now: deps.Now}, reloads: make(chan *rules.Set, 1)}
	s.eng = engine.New(deps.Rules, engine.Options{Now: deps.Now})
	s.m = newMetrics(deps.Registry)
	s.m.rules.Set(float64(len(deps.Rules.Rules)))
	return s, nil
}

// Start loads the persisted state into the engine and the notifier,
// retrying while the store is unreachable.
func (s *Service) Start(ctx context.Context) error {
	snap, err := retry.Value(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		s.deps.Logger.Warn("cannot load alert state, retrying", "err", err, "retry_in", wait)
	}}, s.deps.Store.Load)
	if err != nil {
		return fmt.Errorf("load alert state: %w", err)
	}
	gone, bad := s.eng.Restore(snap.Units, snap.Alerts)
	for i, err := range bad {
		if i == 10 {
			s.deps.Logger.Warn("more units with unreadable aggregate windows", "count", len(bad)-i)
			break
		}
		s.deps.Logger.Warn("aggregate windows not restored; they refill from the stream", "err", err)
	}
	s.deps.Notifier.Restore(snap.Alerts, snap.Outbox)
	s.m.restore(snap.Alerts)
	s.deps.Logger.Info("alert state loaded", "units", len(snap.Units), "alerts", len(snap.Alerts), "undelivered_resolutions", len(snap.Outbox))
	if len(gone) > 0 {
		if err := s.persist(ctx, gone, nil); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	return nil
}

// Reload swaps the rules at the next batch boundary, keeping state.
func (s *Service) Reload(set *rules.Set) {
	select {
	case <-s.reloads:
	default:
	}
	s.reloads <- set
}

// Check is the readiness check: state loaded, store writable, bus connected.
func (s *Service) Check(ctx context.Context) error {
	s.mu.Lock()
	started, serr := s.started, s.storeErr
	s.mu.Unlock()
	switch {
	case !started:
		return errors.New("loading alert state")
	case serr != nil:
		return fmt.Errorf("state store: %w", serr)
	}
	return s.deps.Source.Check(ctx)
}

type batch struct {
	msgs []source.Message
	ack  source.AckFunc
}

// Run consumes until ctx ends, then writes the last state and returns.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan batch)
	g.Go(func() error { return s.read(gctx, batches) })
	g.Go(func() error { return s.deps.Notifier.Run(gctx) })
	if s.deps.Points != nil {
		g.Go(func() error { return s.deps.Points.Run(gctx) })
	}
	g.Go(func() error { return s.loop(gctx, batches) })
	return g.Wait()
}

func (s *Service) read(ctx context.Context, out chan<- batch) error {
	for {
		msgs, ack, err := s.deps.Source.ReadBatch(ctx, s.cfg.BatchSize, s.cfg.Linger)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, source.ErrStopped) {
			return nil
		}
		if err != nil {
			s.deps.Logger.Warn("read from the bus failed", "err", err)
			continue
		}
		select {
		case out <- batch{msgs: msgs, ack: ack}:
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Service) loop(ctx context.Context, batches <-chan batch) error {
	tick := time.NewTicker(s.cfg.TickInterval)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return s.commit(fctx, true)
		case b := <-batches:
			err = s.handle(ctx, b)
		case <-tick.C:
			s.eng.Tick()
			err = s.commit(ctx, s.deps.Now().Sub(s.lastUnits) >= s.cfg.UnitCheckpoint)
		case set := <-s.reloads:
			s.eng.Reload(set)
			s.m.rules.Set(float64(len(set.Rules)))
			s.deps.Logger.Info("rules reloaded", "file", set.File, "rules", len(set.Rules))
			err = s.commit(ctx, true)
		}
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return err
		}
	}
}

// handle evaluates a batch, stores its effects, then acks it.
func (s *Service) handle(ctx context.Context, b batch) error {
	start := time.Now()
	for i := range b.msgs {
		res, err := s.dec.Decode(b.msgs[i].Body)
		if err != nil {
			// The consumer dead-letters what it cannot decode; here it is only counted.
			s.m.messages.WithLabelValues("undecodable").Inc()
			continue
		}
		s.m.messages.WithLabelValues("ok").Inc()
		s.m.rejected.Add(float64(len(res.Rejects)))
		s.eng.Observe(res.Records)
	}
	s.m.evalSeconds.Observe(time.Since(start).Seconds())
	if err := s.commit(ctx, s.deps.Now().Sub(s.lastUnits) >= s.cfg.UnitCheckpoint); err != nil {
		_ = b.ack(ctx, err)
		return err
	}
	if err := b.ack(ctx, nil); err != nil {
		// Redelivered: the engine ignores readings it has already seen.
		s.deps.Logger.Warn("ack failed; the broker redelivers the batch", "err", err)
	}
	return nil
}

// commit writes the changes since the last commit, retrying until the
// store takes them, then hands them to the notifier. With alert changes it
// writes the changed units' frontiers too (cheap); when checkpoint is true
// (every UnitCheckpoint, on reload, at shutdown) it writes every unit
// changed since the last checkpoint with its aggregate windows.
func (s *Service) commit(ctx context.Context, checkpoint bool) error {
	changes := s.eng.Drain()
	var dirty []engine.UnitRecord
	switch {
	case checkpoint:
		dirty = s.eng.TakeCheckpoint()
		s.lastUnits = s.deps.Now()
	case len(changes) > 0:
		dirty = s.eng.TakeDirty()
	}
	s.m.observe(s.eng.Stats(), &s.prev, changes, s.eng.Units())
	if w := s.eng.Watermark(); !w.IsZero() {
		s.m.lag.Set(s.deps.Now().Sub(w).Seconds())
	}
	if len(changes) == 0 && len(dirty) == 0 {
		return nil
	}
	return s.persist(ctx, changes, dirty)
}

func (s *Service) persist(ctx context.Context, changes []engine.Change, dirty []engine.UnitRecord) error {
	outboxed, err := retry.Value(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		s.setStoreErr(err)
		s.deps.Logger.Warn("cannot write alert state, retrying (the batch is not acked meanwhile)", "err", err, "retry_in", wait)
	}}, func(ctx context.Context) ([]store.Outboxed, error) {
		return s.deps.Store.Apply(ctx, changes, dirty)
	})
	if err != nil {
		return fmt.Errorf("write alert state: %w", err)
	}
	s.setStoreErr(nil)
	s.deps.Notifier.Update(changes, outboxed)
	if s.deps.Points != nil {
		s.deps.Points.Add(changes)
	}
	for i := range changes {
		c := &changes[i]
		lvl := slog.LevelInfo
		if c.State == engine.Pending || c.From == engine.Pending && c.State == engine.Inactive {
			lvl = slog.LevelDebug // pending is not an alert yet
		}
		s.deps.Logger.Log(ctx, lvl, "alert "+stateName(c), "rule", c.Rule, "key", c.Key, "severity", c.Severity, "value", c.Value)
	}
	return nil
}

func stateName(c *engine.Change) string {
	if c.Resolved() {
		return "resolved"
	}
	return c.State.String()
}

func (s *Service) setStoreErr(err error) {
	s.mu.Lock()
	s.storeErr = err
	s.mu.Unlock()
}
