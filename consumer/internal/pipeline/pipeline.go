// Package pipeline is the consumer's engine: it reads batches from a
// source, decodes them on a small worker pool, writes the records to the
// stores the cutover phase asks for (each with its role: required or
// repairable), dead-letters what cannot be decoded, records what a
// repairable store missed in the gap ledger, and acks a batch only after all
// of that is durable.
//
// Ordering and acks: several batches are in flight at once, but they are
// settled strictly in the order they were read, because RabbitMQ acks
// cumulatively (multiple=true) and Kafka commits offsets.
//
// Phases: the pipeline rereads the cutover state every PhasePoll and gives
// each batch the state current when the batch was read (a change applies at
// a batch boundary). Its heartbeat reports the phase of the oldest batch not
// yet settled, so a phase is reported applied only when no batch of an
// earlier phase is still being written.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/telemetry"
)

// Decoder is what the pipeline needs of the codec; one per goroutine.
type Decoder interface {
	Decode(body []byte) (telemetry.Result, error)
}

// StateStore is what the pipeline needs of the cutover state store.
type StateStore interface {
	Current(ctx context.Context) (cutover.State, error)
	Beat(ctx context.Context, hb cutover.Heartbeat) error
	Forget(ctx context.Context, consumerID string) error
}

// Ledger records what a repairable store missed (cutover.Store does).
type Ledger interface {
	RecordGaps(ctx context.Context, gaps []cutover.Gap) error
}

// Config tunes a pipeline. Zero fields take the defaults noted.
type Config struct {
	ConsumerID string // heartbeat and ledger identity (default host-pid)
	Host       string // default os.Hostname
	// BatchSize is the most messages per batch (default 2000).
	BatchSize int
	// FlushInterval is the longest a batch waits to fill (default 100ms).
	FlushInterval time.Duration
	// InFlight is how many batches are read and not yet settled at most
	// (default 3): one filling from the bus while others are written.
	InFlight int
	// DecodeWorkers decode one batch in parallel (default GOMAXPROCS).
	DecodeWorkers int
	// PhasePoll is how often the cutover state is reread and the heartbeat
	// written (default 2s).
	PhasePoll time.Duration
	// ShutdownTimeout bounds the drain after the context ends: in-flight
	// batches are finished and acked within it, or returned to the bus
	// (default 30s).
	ShutdownTimeout time.Duration
	// ProbeInterval is how often a store that failed is pinged to learn
	// when it is back (default 1s).
	ProbeInterval time.Duration
	// RetryMax caps the back-off between attempts at a required store
	// (default 5s; the first wait is 100ms).
	RetryMax time.Duration
	// NewDecoder makes a decoder (default telemetry.NewDecoder).
	NewDecoder func() Decoder
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.ConsumerID == "" {
		h, _ := os.Hostname()
		c.ConsumerID = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 2000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.InFlight <= 0 {
		c.InFlight = 3
	}
	if c.DecodeWorkers <= 0 {
		c.DecodeWorkers = runtime.GOMAXPROCS(0)
	}
	if c.PhasePoll <= 0 {
		c.PhasePoll = 2 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.NewDecoder == nil {
		c.NewDecoder = func() Decoder { return telemetry.NewDecoder() }
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Deps are the pipeline's collaborators.
type Deps struct {
	Source source.Source
	// Sinks are the stores, by ledger name (cutover.SinkLegacy,
	// cutover.SinkInflux); a phase that needs a missing sink fails the
	// pipeline's start.
	Sinks      []SinkSpec
	State      StateStore
	Ledger     Ledger
	DeadLetter dlq.Writer
	Logger     *slog.Logger
	Registry   prometheus.Registerer
}

// Pipeline moves messages from a source to the stores.
type Pipeline struct {
	cfg    Config
	src    source.Source
	sinks  []*sinkState
	state  StateStore
	ledger Ledger
	dead   dlq.Writer
	logger *slog.Logger
	m      *metrics

	decoders sync.Pool

	latest    atomic.Pointer[cutover.State] // last state read from the store
	startedAt time.Time

	mu       sync.Mutex
	seq      uint64
	inflight map[uint64]cutover.State // unsettled batches and their phase
	applied  cutover.State            // phase of the last batch started
	lagSec   float64
}

// New returns a pipeline; Run runs it.
func New(cfg Config, d Deps) (*Pipeline, error) {
	cfg = cfg.withDefaults()
	if d.Source == nil || d.State == nil || d.Ledger == nil || d.DeadLetter == nil || d.Logger == nil {
		return nil, errors.New("pipeline: source, state store, ledger, dead-letter writer and logger are required")
	}
	m := newMetrics(d.Registry)
	p := &Pipeline{cfg: cfg, src: d.Source, state: d.State, ledger: d.Ledger, dead: d.DeadLetter,
		logger: d.Logger.With("component", "pipeline", "consumer_id", cfg.ConsumerID), m: m,
		inflight: map[uint64]cutover.State{}}
	for _, s := range d.Sinks {
		if s.Name != cutover.SinkLegacy && s.Name != cutover.SinkInflux {
			return nil, fmt.Errorf("pipeline: sink %q: want %q or %q", s.Name, cutover.SinkLegacy, cutover.SinkInflux)
		}
		if s.Attempts <= 0 {
			s.Attempts = 1
		}
		p.sinks = append(p.sinks, &sinkState{SinkSpec: s, role: roleFor(s.Name)})
		m.sinkUp.WithLabelValues(s.Name).Set(1)
	}
	p.decoders.New = func() any { return cfg.NewDecoder() }
	return p, nil
}

// Check is a readiness check: nil unless a store the applied phase requires
// is down, or the source is disconnected.
func (p *Pipeline) Check(ctx context.Context) error {
	if err := p.src.Check(ctx); err != nil {
		return err
	}
	st := p.Applied()
	for _, s := range p.sinks {
		if s.role(st.Phase) == cutover.Required {
			if err := s.check(); err != nil {
				return fmt.Errorf("required %w", err)
			}
		}
	}
	return nil
}

// Applied returns the state the pipeline applies: the phase of the oldest
// unsettled batch, or the latest state read when nothing is in flight.
func (p *Pipeline) Applied() cutover.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.appliedLocked()
}

func (p *Pipeline) appliedLocked() cutover.State {
	var oldest uint64
	var st cutover.State
	for seq, s := range p.inflight {
		if oldest == 0 || seq < oldest {
			oldest, st = seq, s
		}
	}
	if oldest != 0 {
		return st
	}
	if l := p.latest.Load(); l != nil {
		return *l
	}
	return p.applied
}

// batch is one read batch on its way through the pipeline.
type batch struct {
	seq   uint64
	msgs  []source.Message
	ack   source.AckFunc
	state cutover.State
	read  time.Time
	done  chan struct{}
	err   error // why the batch cannot be acked; nil when it is durable
	dead  int   // messages dead-lettered whole
}

// Run consumes until ctx ends, then drains: it stops reading, finishes and
// acks the batches in flight within ShutdownTimeout (those it cannot finish
// go back to the bus), removes its heartbeat and closes the source. It
// returns nil after a clean drain.
func (p *Pipeline) Run(ctx context.Context) error {
	p.startedAt = p.cfg.Now()
	if err := p.firstState(ctx); err != nil {
		return err
	}
	for _, s := range p.sinks {
		if s.role(p.latest.Load().Phase) != cutover.Off {
			p.logger.Info("store enabled", "sink", s.Name, "role", s.role(p.latest.Load().Phase).String())
		}
	}
	// workCtx outlives ctx by the shutdown timeout: batches in flight at
	// SIGTERM are finished, not abandoned.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrainTimer := context.AfterFunc(ctx, func() {
		p.logger.Info("stopping: draining in-flight batches", "deadline", p.cfg.ShutdownTimeout)
		t := time.AfterFunc(p.cfg.ShutdownTimeout, cancelWork)
		context.AfterFunc(workCtx, func() { t.Stop() })
	})
	defer stopDrainTimer()

	// Background work (phase poll, heartbeat, probes) lasts until the drain ends.
	bgCtx, stopBG := context.WithCancel(workCtx)
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); p.pollState(bgCtx) }()
	go func() { defer bg.Done(); p.probe(bgCtx) }()

	work := make(chan *batch, p.cfg.InFlight)
	order := make(chan *batch, p.cfg.InFlight)
	slots := make(chan struct{}, p.cfg.InFlight)
	var workers sync.WaitGroup
	for range p.cfg.InFlight {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for b := range work {
				b.err = p.process(workCtx, b)
				close(b.done)
			}
		}()
	}
	ackerDone := make(chan struct{})
	go func() {
		defer close(ackerDone)
		for b := range order {
			<-b.done
			p.settle(b)
			<-slots
		}
	}()

	readErr := p.read(ctx, work, order, slots)
	close(work)
	close(order)
	workers.Wait()
	<-ackerDone
	stopBG()
	bg.Wait()

	forgetCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.state.Forget(forgetCtx, p.cfg.ConsumerID); err != nil {
		p.logger.Warn("remove heartbeat", "err", err)
	}
	if err := p.src.Close(); err != nil {
		p.logger.Warn("close source", "err", err)
	}
	if readErr != nil && !errors.Is(readErr, context.Canceled) && !errors.Is(readErr, source.ErrStopped) {
		return readErr
	}
	p.logger.Info("stopped")
	return nil
}

// read reads batches until ctx ends and hands them to the workers (work) and
// to the acker (order, in read order). slots bounds the batches in flight.
func (p *Pipeline) read(ctx context.Context, work, order chan<- *batch, slots chan struct{}) error {
	backoff := retry.NewBackoff(retry.Policy{})
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			// A read with an ended context makes the source stop consuming
			// (basic.cancel) while the batches in flight finish.
			_, _, _ = p.src.ReadBatch(ctx, 1, 0)
			return ctx.Err()
		}
		msgs, ack, err := p.src.ReadBatch(ctx, p.cfg.BatchSize, p.cfg.FlushInterval)
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, source.ErrStopped) {
				return err
			}
			wait := backoff.Next()
			p.logger.Warn("read from the bus failed, retrying", "err", err, "retry_in", wait)
			if err := retry.Sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		backoff.Reset()
		st := *p.latest.Load()
		p.mu.Lock()
		p.seq++
		b := &batch{seq: p.seq, msgs: msgs, ack: ack, state: st, read: p.cfg.Now(), done: make(chan struct{})}
		if st.Version != p.applied.Version {
			p.logger.Info("applying cutover phase", "phase", st.Phase, "version", st.Version, "from_phase", p.applied.Phase, "first_batch", b.seq)
			p.applied = st
		}
		p.inflight[b.seq] = st
		p.m.inflight.Set(float64(len(p.inflight)))
		p.mu.Unlock()
		order <- b
		work <- b
	}
}

// settle acks or nacks a finished batch, in read order.
func (p *Pipeline) settle(b *batch) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := float64(len(b.msgs))
	err := b.ack(ctx, b.err)
	switch {
	case errors.Is(err, source.ErrStale):
		p.m.deliveries.WithLabelValues("stale").Add(n)
		p.logger.Warn("batch delivered before a reconnect; not settled, the bus redelivers it", "batch", b.seq, "messages", len(b.msgs))
	case err != nil:
		p.m.deliveries.WithLabelValues("stale").Add(n)
		p.logger.Warn("settle batch failed; the bus redelivers it", "batch", b.seq, "err", err)
	case b.err != nil:
		p.m.deliveries.WithLabelValues("nacked").Add(n)
		p.logger.Warn("batch returned to the bus", "batch", b.seq, "messages", len(b.msgs), "err", b.err)
	default:
		p.m.deliveries.WithLabelValues("acked").Add(n)
		p.m.deliveries.WithLabelValues("dead_lettered").Add(float64(b.dead))
		p.m.batchSeconds.Observe(p.cfg.Now().Sub(b.read).Seconds())
	}
	var newest time.Time
	for i := range b.msgs {
		if t := b.msgs[i].Timestamp; t.After(newest) {
			newest = t
		}
	}
	p.mu.Lock()
	delete(p.inflight, b.seq)
	p.m.inflight.Set(float64(len(p.inflight)))
	if !newest.IsZero() && err == nil && b.err == nil {
		p.lagSec = max(0, p.cfg.Now().Sub(newest).Seconds())
		p.m.lagSeconds.Set(p.lagSec)
	}
	p.mu.Unlock()
}

// decoded is a batch after decoding.
type decoded struct {
	recs    []telemetry.Record
	owner   []int // owner[i] is the index of the message recs[i] came from
	letters []dlq.Letter
	dead    int // whole messages dead-lettered
}

// decode decodes a batch on up to DecodeWorkers goroutines.
func (p *Pipeline) decode(msgs []source.Message) decoded {
	const minChunk = 64
	w := min(p.cfg.DecodeWorkers, (len(msgs)+minChunk-1)/minChunk)
	if w <= 1 {
		return p.decodeChunk(msgs, 0)
	}
	parts := make([]decoded, w)
	size := (len(msgs) + w - 1) / w
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := i*size, min((i+1)*size, len(msgs))
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i] = p.decodeChunk(msgs[lo:hi], lo)
		}()
	}
	wg.Wait()
	n := 0
	for i := range parts {
		n += len(parts[i].recs)
	}
	out := decoded{recs: make([]telemetry.Record, 0, n), owner: make([]int, 0, n)}
	for i := range parts {
		out.recs = append(out.recs, parts[i].recs...)
		out.owner = append(out.owner, parts[i].owner...)
		out.letters = append(out.letters, parts[i].letters...)
		out.dead += parts[i].dead
	}
	return out
}

func (p *Pipeline) decodeChunk(msgs []source.Message, base int) decoded {
	dec := p.decoders.Get().(Decoder)
	defer p.decoders.Put(dec)
	out := decoded{recs: make([]telemetry.Record, 0, len(msgs)), owner: make([]int, 0, len(msgs))}
	for i := range msgs {
		res, err := dec.Decode(msgs[i].Body)
		if err != nil {
			out.letters = append(out.letters, dlq.Letter{Msg: msgs[i], Kind: dlq.KindRejected, Reason: err.Error()})
			out.dead++
			continue
		}
		for j := range res.Records {
			out.recs = append(out.recs, res.Records[j].Clone())
			out.owner = append(out.owner, base+i)
		}
		if len(res.Rejects) > 0 {
			p.m.rejectedSamples.Add(float64(len(res.Rejects)))
			kind := dlq.KindPartial
			if len(res.Records) == 0 {
				kind = dlq.KindRejected
				out.dead++
			}
			out.letters = append(out.letters, dlq.Letter{Msg: msgs[i], Kind: kind, Rejected: len(res.Rejects),
				Reason: rejectReason(len(res.Rejects), len(res.Rejects)+len(res.Records), res.Rejects)})
		}
	}
	return out
}

func rejectReason(n, total int, rejects []telemetry.Reject) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d samples rejected: ", n, total)
	for i, r := range rejects {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Error())
		if b.Len() > 3500 {
			fmt.Fprintf(&b, "; … %d more", len(rejects)-i-1)
			break
		}
	}
	return b.String()
}

// process makes a batch durable: dead letters published, records written to
// every store the batch's phase asks for, gaps recorded. It returns nil when
// the batch may be acked.
func (p *Pipeline) process(ctx context.Context, b *batch) error {
	d := p.decode(b.msgs)
	b.dead = d.dead
	p.m.batchMessages.Observe(float64(len(b.msgs)))
	p.m.batchRecords.Observe(float64(len(d.recs)))

	var wg sync.WaitGroup
	errs := make([]error, len(p.sinks)+1)
	extra := make([][]dlq.Letter, len(p.sinks))
	if len(d.letters) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[len(p.sinks)] = p.retry(ctx, "dead-letter", func() error { return p.dead.Write(ctx, d.letters) })
		}()
	}
	if len(d.recs) > 0 {
		for i, s := range p.sinks {
			role := s.role(b.state.Phase)
			if role == cutover.Off {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				extra[i], errs[i] = p.write(ctx, s, role, b, d)
			}()
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var more []dlq.Letter
	for _, l := range extra {
		more = append(more, l...)
	}
	if len(more) > 0 {
		return p.retry(ctx, "dead-letter", func() error { return p.dead.Write(ctx, more) })
	}
	return nil
}

// write writes a batch's records to one store according to its role.
// Required: retried with back-off until it succeeds or ctx ends (the batch is
// then not acked). Repairable: tried Attempts times (skipped while the store
// is known down), then what it missed goes to the gap ledger. Points the store
// refuses individually (influx.PartialError) are dead-lettered with their
// message (required) or recorded in the ledger (repairable).
func (p *Pipeline) write(ctx context.Context, s *sinkState, role cutover.Role, b *batch, d decoded) ([]dlq.Letter, error) {
	if role == cutover.Repairable {
		if down, since, lastErr := s.health(); down {
			reason := fmt.Sprintf("%s: %s since %s: %v", s.Name, errSinkDown, since.UTC().Format(time.RFC3339), lastErr)
			return nil, p.recordGaps(ctx, s, b, d.recs, nil, reason)
		}
	}
	backoff := retry.NewBackoff(retry.Policy{Max: p.cfg.RetryMax})
	for attempt := 1; ; attempt++ {
		start := p.cfg.Now()
		err := s.Sink.Write(ctx, d.recs)
		elapsed := p.cfg.Now().Sub(start).Seconds()
		var pe *influx.PartialError
		switch {
		case err == nil:
			p.m.sinkSeconds.WithLabelValues(s.Name, "ok").Observe(elapsed)
			p.m.recordsWritten.WithLabelValues(s.Name).Add(float64(len(d.recs)))
			p.markUp(s)
			return nil, nil
		case errors.As(err, &pe):
			p.m.sinkSeconds.WithLabelValues(s.Name, "partial").Observe(elapsed)
			p.m.recordsWritten.WithLabelValues(s.Name).Add(float64(len(d.recs) - len(pe.Rejected)))
			p.markUp(s)
			return p.partial(ctx, s, role, b, d, pe)
		}
		p.m.sinkSeconds.WithLabelValues(s.Name, "error").Observe(elapsed)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("write %d records to %s: %w", len(d.recs), s.Name, err)
		}
		if s.setDown(err, p.cfg.Now()) {
			p.m.sinkUp.WithLabelValues(s.Name).Set(0)
			p.logger.Error("store write failed", "sink", s.Name, "role", role.String(), "batch", b.seq, "err", err)
		}
		if role == cutover.Repairable && attempt >= s.Attempts {
			return nil, p.recordGaps(ctx, s, b, d.recs, nil, fmt.Sprintf("%s: %v", s.Name, err))
		}
		if role == cutover.Required && attempt%10 == 0 {
			p.logger.Warn("required store still failing; holding the batch (not acked)", "sink", s.Name, "batch", b.seq, "attempts", attempt, "err", err)
		}
		if serr := retry.Sleep(ctx, backoff.Next()); serr != nil {
			return nil, fmt.Errorf("write %d records to %s: %w (last error: %v)", len(d.recs), s.Name, serr, err)
		}
	}
}

func (p *Pipeline) markUp(s *sinkState) {
	if s.setUp() {
		p.m.sinkUp.WithLabelValues(s.Name).Set(1)
		p.logger.Info("store writes again", "sink", s.Name)
	}
}

// partial handles records a store refused one by one.
func (p *Pipeline) partial(ctx context.Context, s *sinkState, role cutover.Role, b *batch, d decoded, pe *influx.PartialError) ([]dlq.Letter, error) {
	if role == cutover.Repairable {
		idx := make([]int, len(pe.Rejected))
		for i, r := range pe.Rejected {
			idx[i] = r.Index
		}
		return nil, p.recordGaps(ctx, s, b, d.recs, idx, fmt.Sprintf("%s refused: %s", s.Name, pe.Error()))
	}
	// Required: the store will refuse these again; keep them visibly with
	// their message, which replays safely once the cause is fixed.
	byMsg := map[int][]string{}
	var order []int
	for _, r := range pe.Rejected {
		if r.Index < 0 || r.Index >= len(d.owner) {
			continue
		}
		m := d.owner[r.Index]
		if _, ok := byMsg[m]; !ok {
			order = append(order, m)
		}
		byMsg[m] = append(byMsg[m], fmt.Sprintf("reading at %s: %s", time.UnixMilli(r.Key.TimeMs).UTC().Format("2006-01-02T15:04:05.000Z"), r.Reason))
	}
	sort.Ints(order)
	letters := make([]dlq.Letter, 0, len(order))
	for _, m := range order {
		reasons := byMsg[m]
		letters = append(letters, dlq.Letter{Msg: b.msgs[m], Kind: dlq.KindPartial, Rejected: len(reasons),
			Reason: fmt.Sprintf("%s refused %d reading(s): %s", s.Name, len(reasons), strings.Join(reasons, "; "))})
	}
	p.logger.Warn("store refused readings; dead-lettered with their messages", "sink", s.Name, "readings", len(pe.Rejected), "messages", len(letters))
	return letters, nil
}

// recordGaps writes one ledger entry per unit for the records a repairable
// store missed (all of recs, or those at idx), durably, before the ack. A
// ledger that cannot be written holds the batch like a required store.
func (p *Pipeline) recordGaps(ctx context.Context, s *sinkState, b *batch, recs []telemetry.Record, idx []int, reason string) error {
	type span struct {
		from, to int64
		n        int
	}
	spans := map[string]*span{}
	var units []string
	add := func(r *telemetry.Record) {
		sp, ok := spans[r.Unit]
		if !ok {
			sp = &span{from: r.TimeMs, to: r.TimeMs}
			spans[r.Unit] = sp
			units = append(units, r.Unit)
		}
		sp.from, sp.to = min(sp.from, r.TimeMs), max(sp.to, r.TimeMs)
		sp.n++
	}
	if idx == nil {
		for i := range recs {
			add(&recs[i])
		}
	} else {
		for _, i := range idx {
			if i >= 0 && i < len(recs) {
				add(&recs[i])
			}
		}
	}
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	gaps := make([]cutover.Gap, 0, len(units))
	readings := 0
	for _, u := range units {
		sp := spans[u]
		gaps = append(gaps, cutover.Gap{Sink: s.Name, Unit: u, From: time.UnixMilli(sp.from).UTC(), To: time.UnixMilli(sp.to).UTC(),
			Readings: sp.n, Reason: reason, ConsumerID: p.cfg.ConsumerID})
		readings += sp.n
	}
	if err := p.retry(ctx, "gap ledger", func() error { return p.ledger.RecordGaps(ctx, gaps) }); err != nil {
		return err
	}
	p.m.ledgerEntries.WithLabelValues(s.Name).Add(float64(len(gaps)))
	p.m.ledgerReadings.WithLabelValues(s.Name).Add(float64(readings))
	p.logger.Warn("readings recorded in the gap ledger", "sink", s.Name, "batch", b.seq, "units", len(gaps), "readings", readings, "reason", reason)
	return nil
}

// retry calls fn until it succeeds or ctx ends, with back-off.
func (p *Pipeline) retry(ctx context.Context, what string, fn func() error) error {
	err := retry.Do(ctx, retry.Policy{Max: p.cfg.RetryMax, OnRetry: func(attempt int, err error, _ time.Duration) {
		if attempt == 1 || attempt%10 == 0 {
			p.logger.Error("write failed; holding the batch (not acked)", "what", what, "attempts", attempt, "err", err)
		}
	}}, func(context.Context) error { return fn() })
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// firstState reads the cutover state before anything is consumed, retrying
// until ctx ends: the consumer never guesses a phase.
func (p *Pipeline) firstState(ctx context.Context) error {
	st, err := retry.Value(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		p.logger.Warn("cannot read the cutover phase; not consuming until it can", "err", err, "retry_in", wait)
	}}, func(ctx context.Context) (cutover.State, error) {
		st, err := p.state.Current(ctx)
		if err != nil {
			return st, err
		}
		if _, perr := cutover.ParsePhase(string(st.Phase)); perr != nil {
			return st, retry.Permanent(fmt.Errorf("cutover state: %w", perr))
		}
		return st, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("read cutover phase: %w", retry.Stopped(ctx, err))
	}
	if err != nil {
		return err // a phase this consumer does not know
	}
	p.latest.Store(&st)
	p.m.setPhase(st)
	p.logger.Info("cutover phase read", "phase", st.Phase, "version", st.Version)
	return nil
}

// pollState rereads the cutover state and writes the heartbeat every PhasePoll.
func (p *Pipeline) pollState(ctx context.Context) {
	t := time.NewTicker(p.cfg.PhasePoll)
	defer t.Stop()
	p.beat(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := p.state.Current(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				p.logger.Warn("reread cutover phase failed; keeping the last one", "err", err)
			}
		default:
			if _, perr := cutover.ParsePhase(string(st.Phase)); perr != nil {
				p.logger.Error("cutover state names an unknown phase; keeping the last one", "err", perr)
				break
			}
			if prev := p.latest.Load(); prev == nil || prev.Version != st.Version {
				p.logger.Info("cutover phase changed; applying at the next batch", "phase", st.Phase, "version", st.Version, "actor", st.Actor)
			}
			p.latest.Store(&st)
		}
		p.beat(ctx)
	}
}

func (p *Pipeline) beat(ctx context.Context) {
	st := p.Applied()
	p.m.setPhase(st)
	lag, err := p.src.Lag(ctx)
	if err != nil {
		lag = -1
	} else {
		p.m.lagMessages.Set(float64(lag))
	}
	p.mu.Lock()
	lagSec := p.lagSec
	if lag == 0 {
		lagSec = 0
	}
	p.mu.Unlock()
	err = p.state.Beat(ctx, cutover.Heartbeat{ConsumerID: p.cfg.ConsumerID, Host: p.cfg.Host, Phase: st.Phase, PhaseVersion: st.Version,
		LagMessages: lag, LagSeconds: lagSec, StartedAt: p.startedAt})
	if err != nil && ctx.Err() == nil {
		p.logger.Warn("heartbeat failed", "err", err)
	}
}

// probe pings the stores that are down, so that a repairable store that is
// back is written again without a restart.
func (p *Pipeline) probe(ctx context.Context) {
	t := time.NewTicker(p.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		phase := p.latest.Load().Phase
		for _, s := range p.sinks {
			down, _, _ := s.health()
			pinger, ok := s.Sink.(Pinger)
			// A required store is probed by the write that holds its batch.
			if !down || !ok || s.role(phase) == cutover.Required {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := pinger.Ping(pctx)
			cancel()
			if err == nil {
				p.markUp(s)
			}
		}
	}
}
