package route

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/verify"
)

// Recorder stores shadow counts and mismatches (cutover.Store does).
type Recorder interface {
	RecordShadow(ctx context.Context, counts []cutover.ShadowCount, mismatches []cutover.ShadowMismatch) error
}

// ShadowConfig tunes the shadow reads.
type ShadowConfig struct {
	// Rate is the share of requests (0..1) also answered by the shadow store.
	Rate float64
	// Concurrency is how many shadow reads may run at once; a request
	// sampled while all are busy is not shadowed (counted as skipped).
	Concurrency int
	// Timeout bounds one shadow read.
	Timeout time.Duration
	// FlushInterval is how often counts and mismatches go to the state store.
	FlushInterval time.Duration
	// Tolerance is the relative difference numbers may have
	// (verify.DefaultAnswerTolerance when 0).
	Tolerance float64
	// MaxPending bounds the mismatches held between flushes; more are
	// counted but not recorded.
	MaxPending int
}

// Job is one shadow read: Answer runs the request against the shadow store
// and returns its JSON body.
type Job struct {
	State        cutover.State
	Endpoint     string
	Params       string
	PrimaryStore string
	ShadowStore  string
	PrimaryBody  []byte
	Answer       func(ctx context.Context) ([]byte, error)
	// Settle, when set with PrimaryAgain, judges a mismatch again after
	// this long with both stores asked anew: the request reached the
	// present and a reading may have been in flight to one store.
	Settle       time.Duration
	PrimaryAgain func(ctx context.Context) ([]byte, error)
}

// Shadower runs shadow reads with a concurrency budget and records them.
type Shadower struct {
	cfg     ShadowConfig
	rec     Recorder
	logger  *slog.Logger
	metrics *shadowMetrics
	sem     chan struct{}
	wg      sync.WaitGroup
	rand    func() float64

	mu      sync.Mutex
	counts  map[countKey]*cutover.ShadowCount
	pending []cutover.ShadowMismatch
}

type countKey struct {
	version  int64
	endpoint string
}

type shadowMetrics struct {
	comparisons *prometheus.CounterVec
	inflight    prometheus.Gauge
}

func newShadowMetrics(reg prometheus.Registerer) *shadowMetrics {
	m := &shadowMetrics{
		comparisons: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "query_shadow_comparisons_total",
			Help: "Shadow reads by endpoint and result: match, mismatch, error (the shadow store failed), skipped (concurrency budget exhausted).",
		}, []string{"endpoint", "result"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "query_shadow_inflight",
			Help: "Shadow reads running now.",
		}),
	}
	m.comparisons = obs.Register(reg, m.comparisons)
	m.inflight = obs.Register(reg, m.inflight)
	return m
}

// NewShadower returns a shadower recording into rec.
func NewShadower(cfg ShadowConfig, rec Recorder, reg prometheus.Registerer, logger *slog.Logger) *Shadower {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 2 * time.Second
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = verify.DefaultAnswerTolerance
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100
	}
	return &Shadower{cfg: cfg, rec: rec, logger: logger, metrics: newShadowMetrics(reg),
		sem: make(chan struct{}, cfg.Concurrency), rand: rand.Float64, counts: map[countKey]*cutover.ShadowCount{}}
}

// Sample reports whether this request should be shadowed.
func (s *Shadower) Sample() bool { return s.cfg.Rate > 0 && s.rand() < s.cfg.Rate }

// Go runs j in the background if the budget allows; it never blocks. ctx
// is the service's context (not the request's): the shadow read outlives
// the response.
func (s *Shadower) Go(ctx context.Context, j Job) {
	select {
	case s.sem <- struct{}{}:
	default:
		s.metrics.comparisons.WithLabelValues(j.Endpoint, "skipped").Inc()
		return
	}
	s.wg.Add(1)
	s.metrics.inflight.Inc()
	go func() {
		defer func() {
			<-s.sem
			s.metrics.inflight.Dec()
			s.wg.Done()
		}()
		s.run(ctx, j)
	}()
}

func (s *Shadower) run(ctx context.Context, j Job) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+j.Settle)
	defer cancel()
	d, err := s.compare(ctx, j)
	if err != nil {
		if ctx.Err() != nil && ctx.Err() != context.DeadlineExceeded {
			return // shutting down: not an outcome
		}
		s.logger.Debug("shadow read failed", "endpoint", j.Endpoint, "store", j.ShadowStore, "err", err)
		s.metrics.comparisons.WithLabelValues(j.Endpoint, "error").Inc()
		s.count(j, func(c *cutover.ShadowCount) { c.Errors++ })
		return
	}
	if d == nil {
		s.metrics.comparisons.WithLabelValues(j.Endpoint, "match").Inc()
		s.count(j, func(c *cutover.ShadowCount) { c.Comparisons++ })
		return
	}
	s.metrics.comparisons.WithLabelValues(j.Endpoint, "mismatch").Inc()
	s.logger.Info("shadow read mismatch", "endpoint", j.Endpoint, "params", j.Params, "path", d.Path)
	s.count(j, func(c *cutover.ShadowCount) { c.Comparisons++; c.Mismatches++ })
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) < s.cfg.MaxPending {
		s.pending = append(s.pending, cutover.ShadowMismatch{
			At: time.Now().UTC(), Phase: j.State.Phase, PhaseVersion: j.State.Version, Endpoint: j.Endpoint, Params: j.Params,
			PrimaryStore: j.PrimaryStore, ShadowStore: j.ShadowStore, Path: d.Path, PrimaryValue: d.First, ShadowValue: d.Second,
		})
	}
}

// compare asks the shadow store and compares; a mismatch of a Settle job
// is judged again after Settle with both stores asked anew.
func (s *Shadower) compare(ctx context.Context, j Job) (*verify.AnswerDiff, error) {
	body, err := j.Answer(ctx)
	if err != nil {
		return nil, err
	}
	d, err := verify.CompareAnswers(j.PrimaryBody, body, s.cfg.Tolerance)
	if err != nil || d == nil || j.Settle <= 0 || j.PrimaryAgain == nil {
		return d, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(j.Settle):
	}
	primary, err := j.PrimaryAgain(ctx)
	if err != nil {
		return nil, err
	}
	if body, err = j.Answer(ctx); err != nil {
		return nil, err
	}
	return verify.CompareAnswers(primary, body, s.cfg.Tolerance)
}

func (s *Shadower) count(j Job, f func(*cutover.ShadowCount)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := countKey{j.State.Version, j.Endpoint}
	c := s.counts[k]
	if c == nil {
		c = &cutover.ShadowCount{Phase: j.State.Phase, PhaseVersion: j.State.Version, Endpoint: j.Endpoint}
		s.counts[k] = c
	}
	f(c)
}

// Flush writes the counts and mismatches gathered since the last flush. On
// failure they are kept for the next one.
func (s *Shadower) Flush(ctx context.Context) error {
	s.mu.Lock()
	counts := make([]cutover.ShadowCount, 0, len(s.counts))
	for _, c := range s.counts {
		counts = append(counts, *c)
	}
	pending := s.pending
	s.counts, s.pending = map[countKey]*cutover.ShadowCount{}, nil
	s.mu.Unlock()
	if err := s.rec.RecordShadow(ctx, counts, pending); err != nil {
		s.mu.Lock()
		for _, c := range counts {
			k := countKey{c.PhaseVersion, c.Endpoint}
			if cur := s.counts[k]; cur != nil {
				cur.Comparisons += c.Comparisons
				cur.Mismatches += c.Mismatches
				cur.Errors += c.Errors
			} else {
				c := c
				s.counts[k] = &c
			}
		}
		s.pending = append(pending, s.pending...)
		if len(s.pending) > s.cfg.MaxPending {
			s.pending = s.pending[:s.cfg.MaxPending]
		}
		s.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every FlushInterval until ctx ends, then waits for the shadow
// reads in flight and flushes a last time.
func (s *Shadower) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.wg.Wait()
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Flush(fctx); err != nil {
				s.logger.Warn("last flush of shadow counts failed", "err", err)
			}
			return
		case <-t.C:
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("record shadow reads (kept for the next flush)", "err", err)
			}
		}
	}
}

// Wait blocks until the shadow reads in flight are done (tests).
func (s *Shadower) Wait() { s.wg.Wait() }

// Metrics returns the comparisons counter (tests).
func (s *Shadower) Metrics() *prometheus.CounterVec { return s.metrics.comparisons }
