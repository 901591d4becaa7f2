// Package throttle paces backfill writes, modelled on gh-ost's throttler: a
// target rate in points per second (a token bucket), automatic slowing
// while InfluxDB's write latency or the live ingest queue is over its
// bound, and operator control at run time (pause, resume, change the rate)
// with the reason for any slowing always on show.
package throttle

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// MaxBatch is the largest batch a caller should take tokens for; it is
// the writer's batch size, so an unthrottled run writes full batches.
const MaxBatch = 5000

// minFactor is how far automatic slowing may cut the rate.
const minFactor = 1.0 / 64

// latencyAlpha weighs a new write latency in the moving average.
const latencyAlpha = 0.3

// Config sets the throttler's bounds. Zero disables a bound.
type Config struct {
	// Rate is the target in points per second; 0 is unlimited.
	Rate float64
	// MaxWriteLatency slows writing while the moving average of write
	// latency exceeds it.
	MaxWriteLatency time.Duration
	// MaxQueueDepth slows writing while the live ingest queue holds more
	// messages.
	MaxQueueDepth int64
	// QueueDepth reads the live ingest queue's depth (nil: not watched).
	QueueDepth func(ctx context.Context) (int64, error)
	// QueueName names the queue in reasons.
	QueueName string
	// Interval is how often bounds are evaluated (default 1s).
	Interval time.Duration
	// QueueInterval is how often the queue depth is read (default 5s, the
	// management API's statistics interval).
	QueueInterval time.Duration
}

// Status is the throttler's state, for progress, logs and /control/status.
type Status struct {
	State string `json:"state"` // running, throttled or paused
	// TargetRate is the operator's target in points/s (0 = unlimited).
	TargetRate float64 `json:"target_points_per_second"`
	// EffectiveRate is the limit in force now (0 = unlimited).
	EffectiveRate float64 `json:"effective_points_per_second"`
	// Factor is how much automatic slowing leaves of the rate (1 = none).
	Factor float64 `json:"slowdown_factor"`
	// Reason says why writing is slowed or paused ("" when running freely).
	Reason         string  `json:"reason,omitempty"`
	WriteLatencyMs float64 `json:"write_latency_ewma_ms"`
	QueueDepth     int64   `json:"queue_depth"`
	QueueError     string  `json:"queue_error,omitempty"`
}

// Throttler paces writers. It is safe for concurrent use.
type Throttler struct {
	cfg     Config
	limiter *rate.Limiter

	mu          sync.Mutex
	target      float64
	factor      float64
	paused      bool
	pauseReason string
	resumed     chan struct{} // closed on resume
	reason      string
	latencyEWMA float64 // seconds
	queueDepth  int64
	queueErr    string
	points      int64   // points taken since the last evaluation
	achieved    float64 // points/s over the last evaluations (moving average)
	lastEval    time.Time
	now         func() time.Time
	// changed is closed (and replaced) whenever the limit in force
	// changes, so a wait booked at the old rate is rebooked at once.
	changed chan struct{}
	lastEff float64
}

// New returns a throttler; call Run to evaluate its bounds.
func New(cfg Config) *Throttler {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.QueueInterval <= 0 {
		cfg.QueueInterval = 5 * time.Second
	}
	t := &Throttler{cfg: cfg, target: math.Max(cfg.Rate, 0), factor: 1, now: time.Now, resumed: make(chan struct{}), changed: make(chan struct{}), lastEff: -1}
	t.limiter = rate.NewLimiter(rate.Inf, MaxBatch)
	t.lastEval = t.now()
	t.applyLocked()
	return t
}

// applyLocked sets the token bucket from target and factor, and wakes the
// writers waiting at the old limit.
func (t *Throttler) applyLocked() {
	eff := t.effectiveLocked()
	if eff != t.lastEff {
		t.lastEff = eff
		close(t.changed)
		t.changed = make(chan struct{})
	}
	if eff <= 0 {
		t.limiter.SetLimit(rate.Inf)
		t.limiter.SetBurst(MaxBatch)
		return
	}
	t.limiter.SetLimit(rate.Limit(eff))
	t.limiter.SetBurst(burstFor(eff))
}

// burstFor keeps the bucket small (a tenth of a second's worth) so the
// achieved rate tracks the target closely over any minute.
func burstFor(r float64) int {
	b := int(r / 10)
	return min(max(b, 1), MaxBatch)
}

func (t *Throttler) effectiveLocked() float64 {
	base := t.target
	if t.factor >= 1 {
		return base
	}
	if base <= 0 {
		// Unlimited: slow down from what was achieved lately.
		base = math.Max(t.achieved, 100)
	}
	return math.Max(base*t.factor, 1)
}

// BatchSize is how many points a caller should write per batch now: a
// full batch when unlimited, a tenth of a second's worth otherwise.
func (t *Throttler) BatchSize() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	eff := t.effectiveLocked()
	if eff <= 0 {
		return MaxBatch
	}
	return burstFor(eff)
}

// Wait blocks until n points may be written: while paused, and until the
// token bucket allows them. It returns ctx's error when ctx ends first.
func (t *Throttler) Wait(ctx context.Context, n int) error {
	for n > 0 {
		t.mu.Lock()
		paused, resumed := t.paused, t.resumed
		t.mu.Unlock()
		if paused {
			select {
			case <-resumed:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		take := min(n, t.limiter.Burst())
		if take < 1 {
			take = 1
		}
		booked, err := t.wait(ctx, take)
		if err != nil {
			return err
		}
		if !booked {
			continue // the limit changed, or a pause came: look again
		}
		n -= take
		t.mu.Lock()
		t.points += int64(take)
		t.mu.Unlock()
	}
	return nil
}

// wait takes n tokens, sleeping as long as the bucket says. It returns
// false, with the tokens given back, when the limit changes or a pause
// starts during the sleep, so the caller books again under the new
// conditions instead of sleeping out a wait booked at the old rate.
func (t *Throttler) wait(ctx context.Context, n int) (bool, error) {
	t.mu.Lock()
	changed := t.changed
	t.mu.Unlock()
	r := t.limiter.ReserveN(time.Now(), n)
	if !r.OK() {
		return false, nil // the burst shrank under us (rate lowered)
	}
	d := r.Delay()
	if d <= 0 {
		return true, nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true, nil
	case <-changed:
		r.Cancel()
		return false, nil
	case <-ctx.Done():
		r.Cancel()
		return false, ctx.Err()
	}
}

// ObserveWrite feeds one write request's latency into the moving average.
func (t *Throttler) ObserveWrite(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.latencyEWMA == 0 {
		t.latencyEWMA = d.Seconds()
		return
	}
	t.latencyEWMA = latencyAlpha*d.Seconds() + (1-latencyAlpha)*t.latencyEWMA
}

// SetRate changes the target rate (points/s; 0 = unlimited).
func (t *Throttler) SetRate(r float64) error {
	if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return fmt.Errorf("rate %v: want a number of points per second, 0 for unlimited", r)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.target = r
	t.applyLocked()
	return nil
}

// Pause stops writing at the next batch until Resume; why is shown as the
// reason.
func (t *Throttler) Pause(why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if why == "" {
		why = "paused by operator"
	}
	t.pauseReason = why
	if !t.paused {
		t.paused = true
		t.resumed = make(chan struct{})
		close(t.changed) // writers waiting for tokens stop at once
		t.changed = make(chan struct{})
	}
}

// Resume lets paused writers go on.
func (t *Throttler) Resume() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.paused {
		t.paused = false
		t.pauseReason = ""
		close(t.resumed)
	}
}

// Status returns the current state.
func (t *Throttler) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Status{
		State:          "running",
		TargetRate:     t.target,
		EffectiveRate:  t.effectiveLocked(),
		Factor:         t.factor,
		Reason:         t.reason,
		WriteLatencyMs: t.latencyEWMA * 1000,
		QueueDepth:     t.queueDepth,
		QueueError:     t.queueErr,
	}
	if t.factor < 1 {
		s.State = "throttled"
	}
	if t.paused {
		s.State = "paused"
		s.Reason = t.pauseReason
	}
	return s
}

// Run evaluates the bounds every Interval until ctx ends: over a bound the
// rate halves (down to 1/64), under all bounds it recovers by half again
// per interval, and the reason says which bound and by how much.
func (t *Throttler) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	var lastQueue time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if t.cfg.QueueDepth != nil && t.cfg.MaxQueueDepth > 0 && t.now().Sub(lastQueue) >= t.cfg.QueueInterval {
			lastQueue = t.now()
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			d, err := t.cfg.QueueDepth(qctx)
			cancel()
			t.mu.Lock()
			if err != nil {
				// Unknown depth does not throttle: the live pipeline's
				// own alerts cover a broken broker; the error is shown.
				t.queueErr = err.Error()
			} else {
				t.queueDepth, t.queueErr = d, ""
			}
			t.mu.Unlock()
		}
		t.evaluate()
	}
}

// evaluate applies one step of automatic slowing.
func (t *Throttler) evaluate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if el := now.Sub(t.lastEval).Seconds(); el > 0 {
		cur := float64(t.points) / el
		if t.achieved == 0 {
			t.achieved = cur
		} else if t.factor >= 1 { // measure the free-running rate only
			t.achieved = 0.5*cur + 0.5*t.achieved
		}
	}
	t.points, t.lastEval = 0, now

	var over []string
	if t.cfg.MaxWriteLatency > 0 && t.latencyEWMA > t.cfg.MaxWriteLatency.Seconds() {
		over = append(over, fmt.Sprintf("write latency %s > %s", fmtDur(t.latencyEWMA), t.cfg.MaxWriteLatency))
	}
	if t.cfg.MaxQueueDepth > 0 && t.queueDepth > t.cfg.MaxQueueDepth {
		q := t.cfg.QueueName
		if q == "" {
			q = "ingest"
		}
		over = append(over, fmt.Sprintf("queue %s depth %d > %d", q, t.queueDepth, t.cfg.MaxQueueDepth))
	}
	switch {
	case len(over) > 0:
		t.factor = math.Max(t.factor/2, minFactor)
		t.reason = strings.Join(over, "; ")
	case t.factor < 1:
		t.factor = math.Min(t.factor*1.5, 1)
		if t.factor < 1 {
			t.reason = "recovering after slowing"
		} else {
			t.reason = ""
		}
	}
	t.applyLocked()
}

func fmtDur(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(time.Millisecond).String()
}
