package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/retry"
)

// Errors a message in a batch can fail with (inside a *bus.MessageError,
// joined with the batch's other failures); test with errors.Is.
var (
	// ErrUnroutable: the broker returned the mandatory message because no
	// queue is bound for its routing key. It was not stored.
	ErrUnroutable = errors.New("unroutable: returned by the broker")
	// ErrNacked: the broker refused the message (basic.nack). It was not stored.
	ErrNacked = errors.New("nacked by the broker")
)

// PublisherOptions tune a Publisher. The zero value is usable.
type PublisherOptions struct {
	// Window bounds the unconfirmed messages in flight (default 1024). Publish
	// blocks while the window is full.
	Window int
	// ContentType of every message (default "application/xml").
	ContentType string
	// NoDeclare skips declaring the topology on every (re)opened channel.
	// By default the publisher declares it, so that it can start before the
	// consumer without its first messages being unroutable.
	NoDeclare bool
	// Name labels the publisher's metrics (default "producer"), so that two
	// publishers in one process keep separate series.
	Name string
	// Now is the clock for the message timestamp and confirm latency
	// (default time.Now).
	Now func() time.Time
}

// Publisher publishes to RabbitMQ with publisher confirms. It keeps up to
// Window messages unconfirmed in flight; every message is mandatory and
// persistent, so an unroutable message comes back as ErrUnroutable instead
// of succeeding silently. When the channel or connection closes, it opens a
// new channel (waiting for Conn to redial) and republishes, in the original
// order, every message that was not yet confirmed; a message whose confirm
// was lost with the connection may therefore arrive twice (at-least-once).
// It is safe for concurrent use.
type Publisher struct {
	conn   *Conn
	topo   Topology
	opts   PublisherOptions
	logger *slog.Logger
	m      *publisherMetrics
	window chan struct{} // semaphore: one token per unconfirmed message

	mu      sync.Mutex
	ch      *amqp.Channel // nil while (re)opening
	ready   chan struct{} // closed when ch is set; replaced when it is lost
	pending []*entry      // published, unconfirmed, in delivery-tag order
	lastErr error

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
}

var _ bus.Publisher = (*Publisher)(nil)

// entry is one message on its way to a confirm.
type entry struct {
	id       string
	exchange string
	key      string
	pub      amqp.Publishing
	batch    *batch
	tag      uint64 // 0 until published on the current channel
	sent     time.Time
	returned *amqp.Return
}

// batch is one Publish call waiting for its confirms.
type batch struct {
	remaining int // guarded by Publisher.mu
	errs      []error
	done      chan struct{}
}

// NewPublisher opens a confirm-mode channel on conn, declares t (unless
// opts.NoDeclare) and returns a publisher whose Publish sends to
// t.Exchange. It fails if the first channel cannot be opened before ctx
// ends; after that it reopens channels on its own until Close.
func NewPublisher(ctx context.Context, conn *Conn, t Topology, opts PublisherOptions, logger *slog.Logger, reg prometheus.Registerer) (*Publisher, error) {
	if opts.Window <= 0 {
		opts.Window = 1024
	}
	if opts.ContentType == "" {
		opts.ContentType = "application/xml"
	}
	if opts.Name == "" {
		opts.Name = "producer"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if !opts.NoDeclare {
		if err := t.Validate(); err != nil {
			return nil, err
		}
	}
	m := newPublisherMetrics(reg, opts.Name)
	runCtx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		conn:   conn,
		topo:   t,
		opts:   opts,
		logger: logger.With("component", "rabbitmq-publisher", "publisher", opts.Name),
		m:      m,
		window: make(chan struct{}, opts.Window),
		ready:  make(chan struct{}),
		ctx:    runCtx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	s, err := p.open(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	p.install(s)
	go p.run(s)
	return p, nil
}

// session is one confirm-mode channel and its notification channels.
type session struct {
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
	returns  chan amqp.Return
	closes   chan *amqp.Error
}

func (p *Publisher) open(ctx context.Context) (*session, error) {
	ch, err := p.conn.Channel(ctx)
	if err != nil {
		return nil, err
	}
	if !p.opts.NoDeclare {
		if err := p.topo.Declare(ch); err != nil {
			_ = ch.Close()
			return nil, err
		}
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	// Buffers hold a whole window, so the connection's reader never blocks
	// on us while we hold the lock to publish.
	s := &session{
		ch:       ch,
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, p.opts.Window+1)),
		returns:  ch.NotifyReturn(make(chan amqp.Return, p.opts.Window+1)),
		closes:   ch.NotifyClose(make(chan *amqp.Error, 1)),
	}
	return s, nil
}

// install republishes what was unconfirmed on the new channel, then lets
// Publish use it.
func (p *Publisher) install(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.pending
	p.pending = nil
	for _, e := range old {
		p.m.republished.Inc()
		p.publishLocked(s.ch, e)
	}
	if len(old) > 0 {
		p.logger.Info("republished unconfirmed messages", "count", len(old))
	}
	p.ch = s.ch
	p.lastErr = nil
	close(p.ready)
}

// run serves confirms and returns of a session and replaces it when it
// closes, until Close.
func (p *Publisher) run(s *session) {
	defer close(p.done)
	for {
		err := p.serve(s)
		p.mu.Lock()
		p.ch = nil
		p.ready = make(chan struct{})
		p.lastErr = err
		p.mu.Unlock()
		if p.ctx.Err() != nil {
			p.failPending(bus.ErrClosed)
			return
		}
		p.logger.Warn("rabbitmq channel closed, reopening", "err", err, "unconfirmed", p.unconfirmed())
		b := retry.NewBackoff(retry.Policy{})
		for {
			next, err := p.open(p.ctx)
			if err == nil {
				s = next
				break
			}
			if p.ctx.Err() != nil {
				p.failPending(bus.ErrClosed)
				return
			}
			p.mu.Lock()
			p.lastErr = err
			p.mu.Unlock()
			wait := b.Next()
			p.logger.Warn("reopen rabbitmq channel failed", "err", err, "retry_in", wait)
			select {
			case <-p.ctx.Done():
				p.failPending(bus.ErrClosed)
				return
			case <-time.After(wait):
			}
		}
		p.install(s)
	}
}

// serve handles one session until its channel closes or the publisher does.
func (p *Publisher) serve(s *session) error {
	for {
		select {
		case r, ok := <-s.returns:
			if ok {
				p.onReturn(r)
			} else {
				s.returns = nil
			}
		case c, ok := <-s.confirms:
			if !ok {
				p.drainReturns(s.returns)
				return errors.New("confirm notifications closed")
			}
			// The broker sends basic.return before the basic.ack of the same
			// message, and the client delivers them in that order, so a
			// return for this tag is in the buffer by now.
			p.drainReturns(s.returns)
			p.onConfirm(c)
		case amqpErr := <-s.closes:
			// Confirms that arrived before the close still count: drain
			// them until the client closes the notification channels.
			timeout := time.After(5 * time.Second)
		drain:
			for {
				select {
				case c, ok := <-s.confirms:
					if !ok {
						break drain
					}
					p.drainReturns(s.returns)
					p.onConfirm(c)
				case <-timeout:
					break drain
				}
			}
			p.drainReturns(s.returns)
			if amqpErr == nil {
				return amqp.ErrClosed
			}
			return amqpErr
		case <-p.ctx.Done():
			_ = s.ch.Close()
			return bus.ErrClosed
		}
	}
}

func (p *Publisher) drainReturns(returns chan amqp.Return) {
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				return
			}
			p.onReturn(r)
		default:
			return
		}
	}
}

// onReturn marks the oldest unconfirmed message with the returned message's
// id: returns come in publish order.
func (p *Publisher) onReturn(r amqp.Return) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.pending {
		if e.tag != 0 && e.returned == nil && e.id == r.MessageId {
			r.Body = nil // the caller has it
			e.returned = &r
			return
		}
	}
	p.logger.Warn("returned message matches no unconfirmed message", "message_id", r.MessageId, "reply", r.ReplyText)
}

func (p *Publisher) onConfirm(c amqp.Confirmation) {
	p.mu.Lock()
	defer p.mu.Unlock()
	idx := -1
	if len(p.pending) > 0 && p.pending[0].tag == c.DeliveryTag {
		idx = 0
	} else {
		for i, e := range p.pending {
			if e.tag == c.DeliveryTag {
				idx = i
				break
			}
		}
	}
	if idx < 0 {
		p.logger.Warn("confirm for an unknown delivery tag", "tag", c.DeliveryTag)
		return
	}
	e := p.pending[idx]
	if idx == 0 {
		p.pending[0] = nil
		p.pending = p.pending[1:]
	} else {
		p.pending = append(p.pending[:idx], p.pending[idx+1:]...)
	}
	var err error
	switch {
	case e.returned != nil:
		p.m.returned.Inc()
		err = fmt.Errorf("%w: exchange %q, routing key %q: %d %s", ErrUnroutable, e.exchange, e.key, e.returned.ReplyCode, e.returned.ReplyText)
	case !c.Ack:
		p.m.nacked.Inc()
		err = fmt.Errorf("%w: exchange %q, routing key %q", ErrNacked, e.exchange, e.key)
	default:
		p.m.confirmed.Inc()
		p.m.latency.Observe(p.opts.Now().Sub(e.sent).Seconds())
	}
	p.resolveLocked(e, err)
}

// resolveLocked settles one message of a batch and frees its window slot.
func (p *Publisher) resolveLocked(e *entry, err error) {
	<-p.window
	p.m.inflight.Dec()
	if err != nil {
		e.batch.errs = append(e.batch.errs, &bus.MessageError{ID: e.id, Err: err})
	}
	e.batch.remaining--
	if e.batch.remaining == 0 {
		close(e.batch.done)
	}
}

func (p *Publisher) failPending(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.pending {
		p.resolveLocked(e, err)
	}
	p.pending = nil
}

func (p *Publisher) unconfirmed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// publishLocked sends e on ch and queues it for its confirm. When the send
// fails because the channel died, e stays queued and is republished on the
// next channel.
func (p *Publisher) publishLocked(ch *amqp.Channel, e *entry) {
	e.tag = ch.GetNextPublishSeqNo()
	e.returned = nil
	if e.sent.IsZero() {
		e.sent = p.opts.Now()
	}
	if err := ch.PublishWithContext(p.ctx, e.exchange, e.key, true, false, e.pub); err != nil {
		e.tag = 0
		if !ch.IsClosed() && !errors.Is(err, amqp.ErrClosed) {
			// Not a dead channel (say, a frame the client refused): this
			// message fails on its own.
			p.resolveLocked(e, fmt.Errorf("publish to exchange %q: %w", e.exchange, err))
			return
		}
	}
	p.pending = append(p.pending, e)
}

// Publish publishes msgs to the topology's exchange; see PublishTo.
func (p *Publisher) Publish(ctx context.Context, msgs []bus.Message) error {
	return p.PublishTo(ctx, p.topo.Exchange, msgs)
}

// PublishTo publishes msgs to exchange, each with its RoutingKey, and
// returns nil once the broker has confirmed every one. Otherwise it returns
// the failures joined (each a *bus.MessageError wrapping ErrUnroutable,
// ErrNacked, ...), or ctx's error: then some messages may have been stored
// and the caller may retry them all. While the broker is unreachable it
// waits (bounded by ctx) for the connection to come back.
func (p *Publisher) PublishTo(ctx context.Context, exchange string, msgs []bus.Message) error {
	// A frame the client cannot encode makes amqp091-go drop the whole
	// connection, so what can never be published fails here, alone.
	var refused []error
	for i := range msgs {
		if err := checkMessage(exchange, &msgs[i]); err != nil {
			if refused == nil {
				msgs = slices.Clone(msgs)
			}
			refused = append(refused, &bus.MessageError{ID: bus.BoundID(msgs[i].ID), Err: err})
		}
	}
	if refused != nil {
		ok := slices.DeleteFunc(msgs, func(m bus.Message) bool { return checkMessage(exchange, &m) != nil })
		p.m.refused.Add(float64(len(refused)))
		return errors.Join(append(refused, p.publishTo(ctx, exchange, ok))...)
	}
	return p.publishTo(ctx, exchange, msgs)
}

// checkMessage says why m can never be published to exchange, or nil.
// Message ids need no check: newEntry bounds them.
func checkMessage(exchange string, m *bus.Message) error {
	if len(exchange) > bus.MaxShortString {
		return fmt.Errorf("exchange name of %d bytes (most %d): %w", len(exchange), bus.MaxShortString, bus.ErrUnpublishable)
	}
	if len(m.RoutingKey) > bus.MaxShortString {
		return fmt.Errorf("routing key of %d bytes (most %d): %w", len(m.RoutingKey), bus.MaxShortString, bus.ErrUnpublishable)
	}
	for k := range m.Headers {
		if len(k) > bus.MaxShortString {
			return fmt.Errorf("header name of %d bytes (most %d): %w", len(k), bus.MaxShortString, bus.ErrUnpublishable)
		}
	}
	return nil
}

func (p *Publisher) publishTo(ctx context.Context, exchange string, msgs []bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	b := &batch{remaining: len(msgs), done: make(chan struct{})}
	locked := false
	unlock := func() {
		if locked {
			p.mu.Unlock()
			locked = false
		}
	}
	defer unlock()
	for i := range msgs {
		// Take a window slot; block only with the lock released, because
		// confirms need the lock to free slots.
		select {
		case p.window <- struct{}{}:
		default:
			unlock()
			select {
			case p.window <- struct{}{}:
			case <-ctx.Done():
				return fmt.Errorf("publish to %q: window full: %w", exchange, ctx.Err())
			case <-p.ctx.Done():
				return bus.ErrClosed
			}
		}
		e := p.newEntry(exchange, &msgs[i], b)
		if !locked {
			p.mu.Lock()
			locked = true
		}
		for p.ch == nil {
			ready, lastErr := p.ready, p.lastErr
			unlock()
			select {
			case <-ready:
			case <-ctx.Done():
				<-p.window
				return fmt.Errorf("publish to %q: broker unavailable (%v): %w", exchange, lastErr, ctx.Err())
			case <-p.ctx.Done():
				<-p.window
				return bus.ErrClosed
			}
			p.mu.Lock()
			locked = true
		}
		p.m.inflight.Inc()
		p.m.published.Inc()
		p.publishLocked(p.ch, e)
	}
	unlock()
	select {
	case <-b.done:
		p.mu.Lock()
		err := errors.Join(b.errs...)
		p.mu.Unlock()
		return err
	case <-ctx.Done():
		return fmt.Errorf("publish to %q: waiting for confirms: %w", exchange, ctx.Err())
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		if b.remaining == 0 {
			return errors.Join(b.errs...)
		}
		return bus.ErrClosed
	}
}

func (p *Publisher) newEntry(exchange string, m *bus.Message, b *batch) *entry {
	var headers amqp.Table
	if len(m.Headers) > 0 {
		headers = make(amqp.Table, len(m.Headers))
		for k, v := range m.Headers {
			headers[k] = v
		}
	}
	id := bus.BoundID(m.ID)
	return &entry{
		id:       id,
		exchange: exchange,
		key:      m.RoutingKey,
		batch:    b,
		pub: amqp.Publishing{
			Headers:      headers,
			ContentType:  p.opts.ContentType,
			DeliveryMode: amqp.Persistent,
			MessageId:    id,
			Timestamp:    p.opts.Now(),
			Body:         m.Body,
		},
	}
}

// Check is a readiness check: nil while a channel is open.
func (p *Publisher) Check(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil {
		return nil
	}
	if p.lastErr != nil {
		return fmt.Errorf("rabbitmq channel down: %w", p.lastErr)
	}
	return errors.New("rabbitmq channel down")
}

// Close stops the publisher: messages still unconfirmed fail with
// bus.ErrClosed. It does not close the Conn.
func (p *Publisher) Close() error {
	p.cancel()
	<-p.done
	return nil
}

type publisherMetrics struct {
	published, confirmed, returned, nacked, republished prometheus.Counter
	refused                                             prometheus.Counter
	inflight                                            prometheus.Gauge
	latency                                             prometheus.Observer
}

func newPublisherMetrics(reg prometheus.Registerer, name string) *publisherMetrics {
	counter := func(n, help string) prometheus.Counter {
		return obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rabbitmq_publisher", Name: n, Help: help}, []string{"publisher"})).WithLabelValues(name)
	}
	published := counter("published_total", "Messages sent to the broker, first attempts only.")
	confirmed := counter("confirmed_total", "Messages the broker confirmed (stored).")
	returned := counter("returned_total", "Messages the broker returned as unroutable.")
	nacked := counter("nacked_total", "Messages the broker nacked.")
	republished := counter("republished_total", "Unconfirmed messages sent again after a channel or connection loss.")
	inflight := obs.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "rabbitmq_publisher", Name: "inflight_messages", Help: "Messages published and not yet confirmed."}, []string{"publisher"}))
	latency := obs.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "rabbitmq_publisher", Name: "confirm_latency_seconds", Help: "Time from first publish to the broker's confirm.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}, []string{"publisher"}))
	refused := counter("refused_total", "Messages refused before sending because they can never be published (routing key or header name over 255 bytes).")
	return &publisherMetrics{
		published:   published,
		confirmed:   confirmed,
		returned:    returned,
		nacked:      nacked,
		republished: republished,
		refused:     refused,
		inflight:    inflight.WithLabelValues(name),
		latency:     latency.WithLabelValues(name),
	}
}
