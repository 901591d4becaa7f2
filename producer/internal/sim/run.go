package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/retry"
)

// RunConfig says how long and how fast to run a fleet.
type RunConfig struct {
	Fleet Config
	// Count stops the run after this many messages (0: no limit).
	Count int64
	// Duration stops the run after this much wall-clock time (0: no limit).
	Duration time.Duration
	// Rate caps messages per second (0: as fast as the bus takes them).
	Rate float64
	// TimeScale is simulated seconds per wall-clock second (1: real time;
	// 1440: a day a minute; 0: unpaced). Simulated time never passes the
	// wall clock, so an unpaced run that catches up continues in real time.
	TimeScale float64
	// Start is the simulated start time; zero means PlanStart's choice.
	Start time.Time
	// Publishers is the number of concurrent publishing workers (default
	// 4); each unit always goes through the same worker, in order.
	Publishers int
	// Batch is the most messages per Publish call (default 256).
	Batch int
	// MaxAttempts per batch before the run fails (default 10).
	MaxAttempts int
	// Progress is the interval of progress log lines (default 10 s; <0 off).
	Progress time.Duration
	// Now is the wall clock (default time.Now).
	Now func() time.Time
}

// Summary is what a run produced, counting only messages the bus
// confirmed. Readings is what a decoder accepts: a consumer that stored
// everything has exactly this many readings.
type Summary struct {
	Units             int            `json:"units"`
	Gen1Units         int            `json:"gen1_units"`
	Seed              uint64         `json:"seed"`
	SimStart          time.Time      `json:"sim_start"`
	SimEnd            time.Time      `json:"sim_end"`
	Messages          int64          `json:"messages"`
	Gen1Messages      int64          `json:"gen1_messages"`
	Gen2Messages      int64          `json:"gen2_messages"`
	FlushMessages     int64          `json:"flush_messages"`
	Samples           int64          `json:"samples"`
	Readings          int64          `json:"readings"`
	RejectedSamples   int64          `json:"rejected_samples"`
	BadMessages       int64          `json:"bad_messages"`
	BadByKind         map[string]int `json:"bad_by_kind,omitempty"`
	Bytes             int64          `json:"bytes"`
	BufferedUnsent    int            `json:"buffered_unsent"`
	Retries           int64          `json:"retries"`
	Interrupted       bool           `json:"interrupted"`
	ElapsedSeconds    float64        `json:"elapsed_seconds"`
	MessagesPerSecond float64        `json:"messages_per_second"`
	ReadingsPerSecond float64        `json:"readings_per_second"`
}

// PlanStart returns the simulated start of a run beginning at now: early
// enough that the run's simulated span ends at now (so no reading lies in
// the future), or now itself when the span is open-ended. The span is
// Count messages at the fleet's expected messages per cadence (with 5 %
// slack), or Duration × TimeScale.
func PlanStart(cfg RunConfig, now time.Time) time.Time {
	if !cfg.Start.IsZero() {
		return cfg.Start.Truncate(time.Second)
	}
	cad := cfg.Fleet.Cadence
	if cad <= 0 {
		cad = 10 * time.Second
	}
	var span time.Duration
	switch {
	case cfg.Count > 0 && cfg.Fleet.Units > 0:
		ticks := int64(math.Ceil(float64(cfg.Count)/expectedPerTick(cfg.Fleet)*1.05)) + 1
		span = time.Duration(ticks) * cad
	case cfg.Duration > 0 && cfg.TimeScale > 0:
		span = time.Duration(float64(cfg.Duration) * cfg.TimeScale)
	}
	return now.Add(-span - cad).Truncate(time.Second)
}

// expectedPerTick is the fleet's mean messages per cadence: every online
// unit reports, offline generation-2 units (a mean outage is 78 cadences)
// do not, and bad messages come on top.
func expectedPerTick(c Config) float64 {
	units := float64(c.Units)
	gen1 := math.Round(units * c.Gen1Share)
	p := c.OfflineProb
	if p == 0 {
		p = defaultOfflineProb
	}
	online := 1.0
	if p > 0 {
		online = 1 / (1 + p*meanOutageTicks)
	}
	return max(gen1+(units-gen1)*online+units*c.BadRatio/2, 1)
}

// minStart is the contract's earliest reading time.
var minStart = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)

type runMetrics struct {
	messages *prometheus.CounterVec
	readings prometheus.Counter
	simTime  prometheus.Gauge
	retries  prometheus.Counter
}

func newRunMetrics(reg prometheus.Registerer) *runMetrics {
	m := &runMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "producer_sim_messages_total", Help: "Simulated messages confirmed by the bus, by kind (good, partial, bad)."}, []string{"kind"}),
		readings: prometheus.NewCounter(prometheus.CounterOpts{Name: "producer_sim_readings_total", Help: "Readings a decoder accepts in confirmed simulated messages."}),
		simTime:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "producer_sim_time_seconds", Help: "Simulated clock, Unix seconds."}),
		retries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "producer_sim_publish_retries_total", Help: "Batches published again after an error."}),
	}
	m.messages = obs.Register(reg, m.messages)
	m.readings = obs.Register(reg, m.readings)
	m.simTime = obs.Register(reg, m.simTime)
	m.retries = obs.Register(reg, m.retries)
	return m
}

// tally accumulates a run's confirmed messages.
type tally struct {
	mu sync.Mutex
	s  Summary
}

func (t *tally) add(msgs []Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range msgs {
		m := &msgs[i]
		t.s.Messages++
		t.s.Samples += int64(m.Samples)
		t.s.Readings += int64(m.Valid)
		t.s.RejectedSamples += int64(m.Rejected)
		t.s.Bytes += int64(len(m.Body))
		if m.Flush {
			t.s.FlushMessages++
		}
		switch m.Generation {
		case 1:
			t.s.Gen1Messages++
		case 2:
			t.s.Gen2Messages++
		}
		if m.Bad != "" {
			t.s.BadMessages++
			if t.s.BadByKind == nil {
				t.s.BadByKind = map[string]int{}
			}
			t.s.BadByKind[m.Bad]++
		}
	}
}

func (t *tally) snapshot() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.s
	return s
}

// Run drives a fleet: one tick per cadence of simulated time, paced by
// TimeScale and Rate, never ahead of the wall clock, and publishes every
// message through pub until Count or Duration is reached or ctx ends. A
// cancelled ctx is a normal stop: what was generated is still published
// (for up to 30 s) and the summary says Interrupted. A batch the bus
// refuses is retried (so a message may arrive twice); Run fails after
// MaxAttempts, or at once for an unroutable message.
func Run(ctx context.Context, cfg RunConfig, pub bus.Publisher, logger *slog.Logger, reg prometheus.Registerer) (Summary, error) {
	cfg = cfg.withDefaults()
	if cfg.Rate < 0 || cfg.TimeScale < 0 || cfg.Count < 0 || cfg.Duration < 0 {
		return Summary{}, errors.New("rate, time scale, count and duration must not be negative")
	}
	fleet, err := NewFleet(cfg.Fleet)
	if err != nil {
		return Summary{}, err
	}
	wallStart := cfg.Now()
	start := PlanStart(cfg, wallStart)
	if start.Before(minStart) {
		return Summary{}, fmt.Errorf("simulated start %s is before 2015-01-01, which the contract rejects: lower --count, or raise --units", start.Format(time.RFC3339))
	}
	if start.After(wallStart) {
		return Summary{}, fmt.Errorf("simulated start %s is in the future", start.Format(time.RFC3339))
	}
	r := &runner{cfg: cfg, fleet: fleet, start: start, wallStart: wallStart, simNow: start, lastLog: wallStart,
		m: newRunMetrics(reg), logger: logger}
	for _, u := range fleet.units {
		if u.gen == 1 {
			r.gen1++
		}
	}
	logger.Info("simulating", "units", fleet.Units(), "gen1_units", r.gen1, "seed", cfg.Fleet.Seed,
		"sim_start", start.UTC(), "cadence", cfg.Fleet.Cadence, "time_scale", cfg.TimeScale, "rate", cfg.Rate, "count", cfg.Count, "duration", cfg.Duration)

	// Workers keep publishing what was generated after ctx ends, for a while.
	pubCtx, cancelPub := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPub()
	stopDrain := context.AfterFunc(ctx, func() {
		time.AfterFunc(30*time.Second, cancelPub)
	})
	defer stopDrain()

	g, gctx := errgroup.WithContext(pubCtx)
	r.ins = make([]chan Message, cfg.Publishers)
	for i := range r.ins {
		r.ins[i] = make(chan Message, cfg.Batch*2)
		in := r.ins[i]
		g.Go(func() error { return publishWorker(gctx, in, cfg, pub, &r.t, r.m, logger) })
	}
	if cfg.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate/20)))
	}
	r.generate(ctx, gctx)
	for _, in := range r.ins {
		close(in)
	}
	return r.summary(g.Wait())
}

func (cfg RunConfig) withDefaults() RunConfig {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Publishers <= 0 {
		cfg.Publishers = 4
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Progress == 0 {
		cfg.Progress = 10 * time.Second
	}
	if cfg.Fleet.Cadence <= 0 {
		cfg.Fleet.Cadence = 10 * time.Second
	}
	return cfg
}

// runner is one Run in progress: the fleet, the publishing workers' inputs
// and how far generation got.
type runner struct {
	cfg              RunConfig
	fleet            *Fleet
	gen1             int
	start, wallStart time.Time
	ins              []chan Message
	limiter          *rate.Limiter
	m                *runMetrics
	t                tally
	logger           *slog.Logger

	msgs        []Message
	sent        int64
	simNow      time.Time
	interrupted bool
	lastLog     time.Time
	lastLogSent int64
}

// generate ticks the fleet and hands its messages to the workers until
// Count or Duration is reached, ctx ends, or a worker failed (gctx).
func (r *runner) generate(ctx, gctx context.Context) {
	cfg := r.cfg
	for tick := int64(0); ; tick++ {
		if ctx.Err() != nil {
			r.interrupted = true
			return
		}
		if gctx.Err() != nil {
			return
		}
		simT := r.start.Add(time.Duration(tick) * cfg.Fleet.Cadence)
		if !r.pace(ctx, gctx, simT) {
			return
		}
		r.msgs = r.fleet.Tick(simT, r.msgs[:0])
		r.simNow = simT.Add(cfg.Fleet.Cadence)
		r.m.simTime.Set(float64(r.simNow.Unix()))
		if !r.send(ctx, gctx, r.msgs) || (cfg.Count > 0 && r.sent >= cfg.Count) {
			return
		}
		r.logProgress()
	}
}

// pace waits until the tick at simT may be generated: TimeScale's pace,
// and every reading of the tick (before simT + cadence) in the past. It
// returns false when the run ends instead.
func (r *runner) pace(ctx, gctx context.Context, simT time.Time) bool {
	cfg := r.cfg
	if cfg.Duration > 0 && cfg.Now().Sub(r.wallStart) >= cfg.Duration {
		return false
	}
	if cfg.TimeScale > 0 {
		target := r.wallStart.Add(time.Duration(float64(simT.Sub(r.start)) / cfg.TimeScale))
		if cfg.Duration > 0 {
			target = minTime(target, r.wallStart.Add(cfg.Duration))
		}
		if !r.wait(ctx, gctx, target) {
			r.interrupted = ctx.Err() != nil
			return false
		}
		if cfg.Duration > 0 && cfg.Now().Sub(r.wallStart) >= cfg.Duration {
			return false
		}
	}
	if !r.wait(ctx, gctx, simT.Add(cfg.Fleet.Cadence)) {
		r.interrupted = ctx.Err() != nil
		return false
	}
	return true
}

// wait waits until the wall clock reaches until; false if ctx or gctx ended.
func (r *runner) wait(ctx, gctx context.Context, until time.Time) bool {
	d := until.Sub(r.cfg.Now())
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-gctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// send hands msgs to their workers (a unit always to the same one), within
// Count and Rate; false when the run ends.
func (r *runner) send(ctx, gctx context.Context, msgs []Message) bool {
	for i := range msgs {
		if r.cfg.Count > 0 && r.sent >= r.cfg.Count {
			return false
		}
		if r.limiter != nil {
			if err := r.limiter.Wait(ctx); err != nil {
				r.interrupted = ctx.Err() != nil
				return false
			}
		}
		select {
		case r.ins[workerOf(msgs[i].Key, len(r.ins))] <- msgs[i]:
			r.sent++
		case <-ctx.Done():
			r.interrupted = true
			return false
		case <-gctx.Done():
			return false
		}
	}
	return true
}

func (r *runner) logProgress() {
	if now := r.cfg.Now(); r.cfg.Progress > 0 && now.Sub(r.lastLog) >= r.cfg.Progress {
		s := r.t.snapshot()
		r.logger.Info("progress", "generated", r.sent, "confirmed", s.Messages, "readings", s.Readings,
			"msgs_per_s", math.Round(float64(r.sent-r.lastLogSent)/now.Sub(r.lastLog).Seconds()),
			"sim_time", r.simNow.UTC(), "behind_now", now.Sub(r.simNow).Round(time.Second).String())
		r.lastLog, r.lastLogSent = now, r.sent
	}
}

// summary reports the run once the workers are done (werr: their error).
func (r *runner) summary(werr error) (Summary, error) {
	elapsed := r.cfg.Now().Sub(r.wallStart)
	s := r.t.snapshot()
	s.Units, s.Gen1Units, s.Seed = r.fleet.Units(), r.gen1, r.cfg.Fleet.Seed
	s.SimStart, s.SimEnd = r.start.UTC(), r.simNow.UTC()
	s.BufferedUnsent = r.fleet.Buffered()
	s.Interrupted = r.interrupted
	s.ElapsedSeconds = elapsed.Seconds()
	if sec := elapsed.Seconds(); sec > 0 {
		s.MessagesPerSecond = math.Round(float64(s.Messages)/sec*10) / 10
		s.ReadingsPerSecond = math.Round(float64(s.Readings)/sec*10) / 10
	}
	if werr != nil {
		return s, werr
	}
	if r.sent != s.Messages {
		return s, fmt.Errorf("generated %d messages but only %d were confirmed", r.sent, s.Messages)
	}
	return s, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// workerOf keeps each unit on one worker, so its messages stay in order.
func workerOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

func publishWorker(ctx context.Context, in <-chan Message, cfg RunConfig, pub bus.Publisher, t *tally, m *runMetrics, logger *slog.Logger) error {
	batch := make([]Message, 0, cfg.Batch)
	busMsgs := make([]bus.Message, 0, cfg.Batch)
	for {
		msg, ok := <-in
		if !ok {
			return nil
		}
		batch = append(batch[:0], msg)
	fill:
		for len(batch) < cfg.Batch {
			select {
			case msg, ok := <-in:
				if !ok {
					break fill
				}
				batch = append(batch, msg)
			default:
				break fill
			}
		}
		busMsgs = busMsgs[:0]
		for i := range batch {
			busMsgs = append(busMsgs, batch[i].Message)
		}
		retries, err := publishRetry(ctx, pub, busMsgs, cfg.MaxAttempts, m, logger)
		t.mu.Lock()
		t.s.Retries += int64(retries)
		t.mu.Unlock()
		if err != nil {
			return err
		}
		t.add(batch)
		for i := range batch {
			kind := "good"
			switch {
			case batch[i].Bad != "":
				kind = "bad"
			case batch[i].Rejected > 0:
				kind = "partial"
			}
			m.messages.WithLabelValues(kind).Inc()
			m.readings.Add(float64(batch[i].Valid))
		}
	}
}

// publishRetry publishes msgs, retrying the whole batch with backoff, and
// returns how many retries it took.
func publishRetry(ctx context.Context, pub bus.Publisher, msgs []bus.Message, attempts int, m *runMetrics, logger *slog.Logger) (int, error) {
	calls := 0
	err := retry.Do(ctx, retry.Policy{MaxAttempts: attempts, OnRetry: func(attempt int, err error, wait time.Duration) {
		m.retries.Inc()
		logger.Warn("publish failed, retrying the batch", "messages", len(msgs), "attempt", attempt, "err", err, "retry_in", wait)
	}}, func(ctx context.Context) error {
		calls++
		err := pub.Publish(ctx, msgs)
		if errors.Is(err, rabbit.ErrUnroutable) {
			return retry.Permanent(fmt.Errorf("publish: %w (is the ingest queue bound to the exchange?)", err))
		}
		return err
	})
	var stopped *retry.StoppedError
	switch {
	case err == nil:
		return calls - 1, nil
	case errors.As(err, &stopped):
		return calls, fmt.Errorf("publish %d messages: %w", len(msgs), stopped.Err)
	case errors.Is(err, rabbit.ErrUnroutable):
		return calls - 1, err
	default:
		return calls - 1, fmt.Errorf("publish %d messages, attempt %d: %w", len(msgs), calls, err)
	}
}
