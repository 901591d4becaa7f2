// Package replay writes the snapshot readings of chosen (unit, window)
// pairs into InfluxDB and nothing else: paced by the throttler,
// checkpointing each finished window so that a killed run resumes without
// redoing it. Writing goes through the consumer's codec and writer (same
// points, same timestamps), so rewriting a reading InfluxDB already has is
// harmless.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/backfill/internal/progress"
	"github.com/flexipack/cutover/backfill/internal/spill"
	"github.com/flexipack/cutover/backfill/internal/throttle"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/window"
)

// Writer writes records idempotently; *influx.Writer is one.
type Writer interface {
	Write(ctx context.Context, recs []telemetry.Record) error
}

// Checkpointer records a finished (unit, window) of a run; *cutover.Store
// is one.
type Checkpointer interface {
	WindowDone(ctx context.Context, runID, unit string, from, to time.Time, points int64) error
}

var (
	_ Writer       = (*influx.Writer)(nil)
	_ Checkpointer = (*cutover.Store)(nil)
)

// Config is what a replay needs.
type Config struct {
	RunID  string
	Window time.Duration
	// Targets are the (unit, window) pairs to write.
	Targets map[window.Key]bool
	// Done are pairs a previous attempt of the run finished: skipped.
	Done map[cutover.WindowKey]bool

	// Concurrency is how many batches are written at once (default
	// DefaultConcurrency); checkpoints stay in order.
	Concurrency int

	Writer      Writer
	Checkpoints Checkpointer // nil: no checkpoints (tests)
	Throttle    *throttle.Throttler
	Progress    *progress.Tracker // nil: not tracked
	Metrics     *Metrics          // nil: not exported
	Logger      *slog.Logger
}

// DefaultConcurrency is how many batches are in flight by default: two
// keep InfluxDB busy while the next request is sent.
const DefaultConcurrency = 2

// Result is what a replay did.
type Result struct {
	PointsWritten  int64 `json:"points_written"`
	WindowsDone    int64 `json:"windows_done"`
	WindowsResumed int64 `json:"windows_skipped_as_done"`
	// PointsRejected are readings InfluxDB refused (type conflicts and the
	// like); they count as skipped.
	PointsRejected int64    `json:"points_rejected"`
	Rejected       []string `json:"rejected,omitempty"`
}

// Metrics are the replay's Prometheus metrics.
type Metrics struct {
	Points        prometheus.Counter
	Windows       prometheus.Counter
	WriteSeconds  prometheus.Histogram
	EffectiveRate prometheus.Gauge
	Paused        prometheus.Gauge
}

// NewMetrics creates the replay metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Points:        prometheus.NewCounter(prometheus.CounterOpts{Name: "backfill_points_written_total", Help: "Readings the backfill wrote to InfluxDB."}),
		Windows:       prometheus.NewCounter(prometheus.CounterOpts{Name: "backfill_windows_done_total", Help: "(unit, window) pairs the backfill finished and checkpointed."}),
		WriteSeconds:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "backfill_write_duration_seconds", Help: "Latency of one backfill batch write.", Buckets: prometheus.DefBuckets}),
		EffectiveRate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "backfill_throttle_effective_points_per_second", Help: "The write rate limit in force (0 = unlimited)."}),
		Paused:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "backfill_paused", Help: "1 while the backfill is paused."}),
	}
	m.Points = obs.Register(reg, m.Points)
	m.Windows = obs.Register(reg, m.Windows)
	m.WriteSeconds = obs.Register(reg, m.WriteSeconds)
	m.EffectiveRate = obs.Register(reg, m.EffectiveRate)
	m.Paused = obs.Register(reg, m.Paused)
	return m
}

// doneWindow is a window whose readings are all in its batch or earlier.
type doneWindow struct {
	key    window.Key
	points int64
}

type batch struct {
	seq  int64
	recs []telemetry.Record
	done []doneWindow

	// Set by write.
	written  int64
	rejected []influx.Rejected
}

// Run writes every reading of s that lies in a target window not already
// done. Readings are decoded and batched in one goroutine and written in
// another, so decoding overlaps InfluxDB's work. A window is checkpointed
// once all its readings are written.
func Run(ctx context.Context, s *spill.Sorter, cfg Config) (Result, error) {
	var res Result
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	batches := make(chan *batch, cfg.Concurrency)
	written := make(chan *batch, cfg.Concurrency)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		return produce(gctx, s, cfg, batches, &res.WindowsResumed)
	})
	var writers sync.WaitGroup
	for range cfg.Concurrency {
		writers.Add(1)
		g.Go(func() error {
			defer writers.Done()
			for b := range batches {
				if err := write(gctx, cfg, b); err != nil {
					return err
				}
				select {
				case written <- b:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	go func() {
		writers.Wait()
		close(written)
	}()
	g.Go(func() error {
		// Commit in sequence order whatever order the writes end in.
		pending := map[int64]*batch{}
		var next int64
		for b := range written {
			pending[b.seq] = b
			for p, ok := pending[next]; ok; p, ok = pending[next] {
				delete(pending, next)
				next++
				if err := commit(gctx, cfg, p, &res); err != nil {
					return err
				}
			}
		}
		return nil
	})
	err := g.Wait()
	return res, err
}

func produce(ctx context.Context, s *spill.Sorter, cfg Config, out chan<- *batch, resumed *int64) error {
	size := cfg.Throttle.BatchSize()
	pr := &producer{cfg: cfg, out: out, resumed: resumed, size: size, seen: make(map[window.Key]bool),
		cur: &batch{recs: make([]telemetry.Record, 0, size)}}
	if err := s.Iterate(func(e *spill.Entry) error { return pr.add(ctx, e) }); err != nil {
		return err
	}
	pr.closeWindow()
	// Target windows the snapshots hold no reading of (ledger windows a
	// backup missed) are done with nothing to write.
	for k := range cfg.Targets {
		if !pr.seen[k] {
			if cfg.Done[cutover.WindowKey(k)] {
				*resumed++
				continue
			}
			pr.cur.done = append(pr.cur.done, doneWindow{key: k})
		}
	}
	if len(pr.cur.recs) > 0 || len(pr.cur.done) > 0 {
		return pr.send(ctx)
	}
	return nil
}

// producer cuts the sorted readings of the target windows into batches.
type producer struct {
	cfg     Config
	out     chan<- *batch
	resumed *int64
	seq     int64
	size    int
	cur     *batch
	// lines counts the line-protocol lines of cur (a reading and its
	// alarms), so that a batch is one write request, never 5000 + a few.
	lines int
	seen  map[window.Key]bool // target windows with readings

	// the window of the last reading
	have     bool
	key      window.Key
	isTarget bool
	points   int64
}

func (pr *producer) send(ctx context.Context) error {
	pr.cur.seq = pr.seq
	pr.seq++
	select {
	case pr.out <- pr.cur:
	case <-ctx.Done():
		return ctx.Err()
	}
	pr.size = pr.cfg.Throttle.BatchSize()
	pr.cur = &batch{recs: make([]telemetry.Record, 0, pr.size)}
	pr.lines = 0
	return nil
}

// closeWindow marks the window just finished done in the current batch.
func (pr *producer) closeWindow() {
	if pr.have && pr.isTarget {
		pr.cur.done = append(pr.cur.done, doneWindow{key: pr.key, points: pr.points})
	}
}

// add adds a reading of a target window not done before, sending the batch
// when it is full.
func (pr *producer) add(ctx context.Context, e *spill.Entry) error {
	start := window.Align(time.UnixMilli(e.TimeMs), pr.cfg.Window)
	if !pr.have || string(e.Unit) != pr.key.Unit || !start.Equal(pr.key.Start) {
		pr.closeWindow()
		pr.have, pr.key, pr.points = true, window.Key{Unit: string(e.Unit), Start: start}, 0
		pr.isTarget = pr.cfg.Targets[pr.key]
		if pr.isTarget {
			pr.seen[pr.key] = true
			if pr.cfg.Done[cutover.WindowKey(pr.key)] {
				pr.isTarget = false
				*pr.resumed++
			}
		}
	}
	if !pr.isTarget {
		return nil
	}
	rec, err := spill.DecodeRecord(e.Payload)
	if err != nil {
		// The spill holds records the codec decoded: this is a bug.
		return fmt.Errorf("spilled reading (%s, %d) does not decode: %w", e.Unit, e.TimeMs, err)
	}
	pr.cur.recs = append(pr.cur.recs, rec)
	pr.points++
	pr.lines += 1 + len(rec.Alarms)
	if len(pr.cur.recs) >= pr.size || pr.lines+1 >= influx.DefaultBatchLines {
		return pr.send(ctx)
	}
	return nil
}

// write writes one batch (after the throttler lets it) and records the
// outcome in it. Refused readings are recorded, not an error.
func write(ctx context.Context, cfg Config, b *batch) error {
	n := len(b.recs)
	if n == 0 {
		return nil
	}
	if err := cfg.Throttle.Wait(ctx, n); err != nil {
		return err
	}
	cfg.Metrics.EffectiveRate.Set(cfg.Throttle.Status().EffectiveRate)
	start := time.Now()
	err := cfg.Writer.Write(ctx, b.recs)
	took := time.Since(start)
	cfg.Throttle.ObserveWrite(took)
	cfg.Metrics.WriteSeconds.Observe(took.Seconds())
	var pe *influx.PartialError
	switch {
	case errors.As(err, &pe):
		b.rejected = pe.Rejected
		cfg.Logger.Warn("influxdb refused readings; they are skipped", "refused", len(pe.Rejected), "err", pe)
	case err != nil:
		return fmt.Errorf("write %d readings: %w", n, err)
	}
	b.written = int64(n - len(b.rejected))
	cfg.Metrics.Points.Add(float64(b.written))
	if cfg.Progress != nil {
		cfg.Progress.AddPoints(int64(n))
	}
	b.recs = nil // done with them: let the memory go before the commit
	return nil
}

// commit accounts for a written batch and checkpoints the windows it
// finished. Batches are committed in order, so a window is checkpointed
// only once every batch holding its readings is written.
func commit(ctx context.Context, cfg Config, b *batch, res *Result) error {
	res.PointsWritten += b.written
	res.PointsRejected += int64(len(b.rejected))
	for _, r := range b.rejected {
		if len(res.Rejected) < 100 {
			res.Rejected = append(res.Rejected, fmt.Sprintf("(%s, %s): %s", r.Key.Unit,
				time.UnixMilli(r.Key.TimeMs).UTC().Format("2006-01-02T15:04:05.000Z"), r.Reason))
		}
	}
	for _, d := range b.done {
		if cfg.Checkpoints != nil {
			if err := cfg.Checkpoints.WindowDone(ctx, cfg.RunID, d.key.Unit, d.key.Start, d.key.Start.Add(cfg.Window), d.points); err != nil {
				return err
			}
		}
		res.WindowsDone++
		cfg.Metrics.Windows.Inc()
		if cfg.Progress != nil {
			cfg.Progress.AddWindows(1)
		}
	}
	return nil
}
