package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/retry"
)

// RabbitOptions configure a RabbitMQ source.
type RabbitOptions struct {
	// Topology names the ingest queue; the source declares it (idempotent)
	// on every channel it opens.
	Topology rabbit.Topology
	// Prefetch is the channel's QoS prefetch count: how many unacknowledged
	// messages the broker sends ahead. Keep it at 2-4 batches so the broker
	// fills the next batch while one is being written.
	Prefetch int
	// ConsumerTag names the consumer in the broker (the consumer id).
	ConsumerTag string
	// MgmtURL, when set, is the management API Lag asks first for the
	// queue depth (ready plus unacknowledged); without it, or when it does
	// not answer, Lag counts the ready messages with a passive declare.
	MgmtURL string
}

// Rabbit reads the ingest queue with manual acks. Every batch is acked with
// one basic.ack (multiple=true) up to its last delivery tag. When the channel
// or the connection closes, it opens a new channel (the Conn redials with
// backoff) and consumes again; acks for batches delivered on the old channel
// are dropped (ErrStale), because delivery tags belong to their channel and
// the broker redelivers those messages anyway.
type Rabbit struct {
	conn   *rabbit.Conn
	opts   RabbitOptions
	logger *slog.Logger
	m      *rabbitMetrics

	mu         sync.Mutex
	ch         *amqp.Channel // channel whose tags are current; nil while reopening
	deliveries <-chan amqp.Delivery
	stopped    bool // basic.cancel sent: no more reads
	timer      *time.Timer
}

var _ Source = (*Rabbit)(nil)

type rabbitMetrics struct {
	reconnects prometheus.Counter
	stale      prometheus.Counter
}

// NewRabbit returns a source reading opts.Topology.Queue over conn. It opens
// its channel on the first ReadBatch. Its metrics (source_reopened_total,
// source_stale_messages_total) go to reg, which callers wrap with their
// service's prefix (prometheus.WrapRegistererWithPrefix).
func NewRabbit(conn *rabbit.Conn, opts RabbitOptions, logger *slog.Logger, reg prometheus.Registerer) (*Rabbit, error) {
	if err := opts.Topology.Validate(); err != nil {
		return nil, err
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = 4000
	}
	m := &rabbitMetrics{
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "source_reopened_total", Help: "Times the bus source reopened its channel after a channel or connection close."}),
		stale:      prometheus.NewCounter(prometheus.CounterOpts{Name: "source_stale_messages_total", Help: "Messages whose ack was dropped because their channel closed (the broker redelivers them)."}),
	}
	m.reconnects = obs.Register(reg, m.reconnects)
	m.stale = obs.Register(reg, m.stale)
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Rabbit{conn: conn, opts: opts, logger: logger.With("component", "rabbitmq-source", "queue", opts.Topology.Queue), m: m, timer: t}, nil
}

// open opens a channel, declares the topology, sets QoS and starts
// consuming, retrying with backoff until ctx ends.
func (r *Rabbit) open(ctx context.Context) error {
	err := retry.Do(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		r.logger.Warn("cannot consume, retrying", "err", err, "retry_in", wait)
	}}, func(ctx context.Context) error {
		ch, deliveries, err := r.tryOpen(ctx)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.ch, r.deliveries = ch, deliveries
		r.mu.Unlock()
		return nil
	})
	var stopped *retry.StoppedError
	if errors.As(err, &stopped) {
		return fmt.Errorf("consume %q: %w", r.opts.Topology.Queue, err)
	}
	return err
}

func (r *Rabbit) tryOpen(ctx context.Context) (*amqp.Channel, <-chan amqp.Delivery, error) {
	ch, err := r.conn.Channel(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := r.opts.Topology.Declare(ch); err != nil {
		_ = ch.Close()
		return nil, nil, err
	}
	if err := ch.Qos(r.opts.Prefetch, 0, false); err != nil {
		_ = ch.Close()
		return nil, nil, fmt.Errorf("set prefetch %d: %w", r.opts.Prefetch, err)
	}
	deliveries, err := ch.Consume(r.opts.Topology.Queue, r.opts.ConsumerTag, false, false, false, false, nil)
	if err != nil {
		_ = ch.Close()
		return nil, nil, fmt.Errorf("consume %q: %w", r.opts.Topology.Queue, err)
	}
	return ch, deliveries, nil
}

// lost forgets the current channel after its deliveries stopped.
func (r *Rabbit) lost() {
	r.mu.Lock()
	ch := r.ch
	r.ch, r.deliveries = nil, nil
	r.mu.Unlock()
	r.m.reconnects.Inc()
	r.logger.Warn("consumer channel closed, reopening")
	if ch != nil && !ch.IsClosed() {
		_ = ch.Close() // a broker-side cancel leaves the channel open
	}
}

// stop cancels the consumer: the broker sends nothing more, and what it
// already sent stays unacked until Close returns it to the queue.
func (r *Rabbit) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.stopped = true
	if r.ch != nil && !r.ch.IsClosed() {
		if err := r.ch.Cancel(r.opts.ConsumerTag, false); err != nil {
			r.logger.Warn("cancel consumer", "err", err)
		}
	}
}

// ErrStopped is returned by ReadBatch after the source stopped consuming.
var ErrStopped = errors.New("source stopped consuming")

// ReadBatch implements Source.
func (r *Rabbit) ReadBatch(ctx context.Context, max int, linger time.Duration) ([]Message, AckFunc, error) {
	if max <= 0 {
		max = 1
	}
	for {
		r.mu.Lock()
		stopped, deliveries := r.stopped, r.deliveries
		r.mu.Unlock()
		if stopped {
			return nil, nil, ErrStopped
		}
		if ctx.Err() != nil {
			r.stop()
			return nil, nil, ctx.Err()
		}
		if deliveries == nil {
			if err := r.open(ctx); err != nil {
				if ctx.Err() != nil {
					r.stop()
					return nil, nil, ctx.Err()
				}
				return nil, nil, err
			}
			continue
		}
		var first amqp.Delivery
		select {
		case <-ctx.Done():
			r.stop()
			return nil, nil, ctx.Err()
		case d, ok := <-deliveries:
			if !ok {
				r.lost()
				continue
			}
			first = d
		}
		msgs, last, closed := r.fill(ctx, deliveries, &first, max, linger)
		lastCh := first.Acknowledger
		if closed {
			// These tags died with their channel; the broker redelivers.
			r.m.stale.Add(float64(len(msgs)))
			r.lost()
			continue
		}
		ch, _ := lastCh.(*amqp.Channel)
		return msgs, r.ackFunc(ch, last, len(msgs)), nil
	}
}

// fill makes a batch of up to max messages starting with first: what is
// already buffered, then what arrives within linger. closed reports that
// the deliveries channel closed (the batch's tags died with it).
func (r *Rabbit) fill(ctx context.Context, deliveries <-chan amqp.Delivery, first *amqp.Delivery, max int, linger time.Duration) (msgs []Message, last uint64, closed bool) {
	msgs = make([]Message, 0, max)
	msgs = append(msgs, fromDelivery(first))
	last = first.DeliveryTag
	// Take what is already buffered without arming the timer.
drain:
	for len(msgs) < max {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return msgs, last, true
			}
			msgs = append(msgs, fromDelivery(&d))
			last = d.DeliveryTag
		default:
			break drain
		}
	}
	if len(msgs) >= max || linger <= 0 {
		return msgs, last, false
	}
	r.timer.Reset(linger)
	defer r.timer.Stop()
	for len(msgs) < max {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return msgs, last, true
			}
			msgs = append(msgs, fromDelivery(&d))
			last = d.DeliveryTag
		case <-r.timer.C:
			return msgs, last, false
		case <-ctx.Done():
			return msgs, last, false
		}
	}
	return msgs, last, false
}

func fromDelivery(d *amqp.Delivery) Message {
	return Message{
		ID:         d.MessageId,
		RoutingKey: d.RoutingKey,
		Headers:    d.Headers,
		Timestamp:  d.Timestamp,
		Body:       d.Body,
	}
}

func (r *Rabbit) ackFunc(ch *amqp.Channel, last uint64, n int) AckFunc {
	return func(_ context.Context, err error) error {
		r.mu.Lock()
		cur := r.ch
		r.mu.Unlock()
		if ch == nil || ch != cur || ch.IsClosed() {
			r.m.stale.Add(float64(n))
			return ErrStale
		}
		if err == nil {
			if aerr := ch.Ack(last, true); aerr != nil {
				return fmt.Errorf("ack up to delivery tag %d: %w", last, aerr)
			}
			return nil
		}
		if nerr := ch.Nack(last, true, true); nerr != nil {
			return fmt.Errorf("nack up to delivery tag %d: %w", last, nerr)
		}
		return nil
	}
}

// Lag returns the messages waiting in the queue: ready plus unacknowledged
// from the management API when MgmtURL is set and answers, else the ready
// messages, read with a passive declare on a short-lived channel.
func (r *Rabbit) Lag(ctx context.Context) (int64, error) {
	if r.opts.MgmtURL != "" {
		mctx, cancel := context.WithTimeout(ctx, time.Second)
		n, err := rabbit.QueueDepth(mctx, r.opts.MgmtURL, "", r.opts.Topology.Queue)
		cancel()
		if err == nil {
			return n, nil
		}
	}
	ch, err := r.conn.Channel(ctx)
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(r.opts.Topology.Queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("inspect queue %q: %w", r.opts.Topology.Queue, err)
	}
	return int64(q.Messages), nil
}

// Check implements Source.
func (r *Rabbit) Check(ctx context.Context) error {
	if err := r.conn.Check(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil || r.ch.IsClosed() {
		return errors.New("rabbitmq consumer channel not open")
	}
	return nil
}

// Close stops consuming and closes the channel: the broker requeues every
// message not acked yet. It does not close the Conn.
func (r *Rabbit) Close() error {
	r.stop()
	r.mu.Lock()
	ch := r.ch
	r.ch, r.deliveries = nil, nil
	r.mu.Unlock()
	if ch != nil && !ch.IsClosed() {
		if err := ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			return fmt.Errorf("close consumer channel: %w", err)
		}
	}
	return nil
}
