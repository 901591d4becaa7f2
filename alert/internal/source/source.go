// Package source reads telemetry messages for the alert service from its
// own RabbitMQ queue, bound to the telemetry exchange beside the
// consumer's ingest queue, so that alerting never slows the store writers
// nor they it. Batches are acked (one cumulative ack) after evaluation.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/retry"
)

// Message is one message body with when it was published (zero if unknown).
type Message struct {
	Body      []byte
	Timestamp time.Time
}

// AckFunc settles a batch: nil acks it, an error returns it to the queue.
type AckFunc func(err error) error

// Source reads batches of messages.
type Source interface {
	// ReadBatch blocks for the first message, then takes up to max
	// messages, waiting at most linger for more.
	ReadBatch(ctx context.Context, max int, linger time.Duration) ([]Message, AckFunc, error)
	// Check is nil while connected.
	Check(ctx context.Context) error
	// Close stops consuming; unacked messages go back to the queue.
	Close() error
}

// ErrStale is returned by an AckFunc whose channel closed: the broker
// redelivers the batch (the engine ignores readings it has seen).
var ErrStale = errors.New("batch delivered on a closed channel; the broker redelivers it")

// Rabbit consumes Topology.Queue with manual acks.
type Rabbit struct {
	conn     *rabbit.Conn
	topo     rabbit.Topology
	prefetch int
	tag      string
	logger   *slog.Logger

	mu         sync.Mutex
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
}

var _ Source = (*Rabbit)(nil)

// NewRabbit returns a source on conn; it declares topo (the alert queue
// bound to the telemetry exchange) on every channel it opens.
func NewRabbit(conn *rabbit.Conn, topo rabbit.Topology, prefetch int, tag string, logger *slog.Logger) (*Rabbit, error) {
	if err := topo.Validate(); err != nil {
		return nil, err
	}
	if prefetch <= 0 {
		prefetch = 2000
	}
	return &Rabbit{conn: conn, topo: topo, prefetch: prefetch, tag: tag, logger: logger.With("component", "alert-source", "queue", topo.Queue)}, nil
}

func (r *Rabbit) open(ctx context.Context) (<-chan amqp.Delivery, error) {
	var deliveries <-chan amqp.Delivery
	err := retry.Do(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		r.logger.Warn("cannot consume, retrying", "err", err, "retry_in", wait)
	}}, func(ctx context.Context) error {
		ch, err := r.conn.Channel(ctx)
		if err != nil {
			return err
		}
		if err := r.topo.Declare(ch); err != nil {
			_ = ch.Close()
			return err
		}
		if err := ch.Qos(r.prefetch, 0, false); err != nil {
			_ = ch.Close()
			return fmt.Errorf("set prefetch: %w", err)
		}
		d, err := ch.Consume(r.topo.Queue, r.tag, false, false, false, false, nil)
		if err != nil {
			_ = ch.Close()
			return fmt.Errorf("consume %q: %w", r.topo.Queue, err)
		}
		r.mu.Lock()
		r.ch, r.deliveries = ch, d
		r.mu.Unlock()
		deliveries = d
		return nil
	})
	return deliveries, err
}

// ReadBatch implements Source.
func (r *Rabbit) ReadBatch(ctx context.Context, max int, linger time.Duration) ([]Message, AckFunc, error) {
	for {
		r.mu.Lock()
		ch, deliveries := r.ch, r.deliveries
		r.mu.Unlock()
		if deliveries == nil {
			var err error
			if deliveries, err = r.open(ctx); err != nil {
				return nil, nil, err
			}
			r.mu.Lock()
			ch = r.ch
			r.mu.Unlock()
		}
		msgs, last, ok := collect(ctx, deliveries, max, linger)
		if ctx.Err() != nil && len(msgs) == 0 {
			return nil, nil, ctx.Err()
		}
		if !ok {
			r.mu.Lock()
			if r.ch == ch {
				r.ch, r.deliveries = nil, nil
			}
			r.mu.Unlock()
			r.logger.Warn("consumer channel closed, reopening")
			continue
		}
		return msgs, r.ackFunc(ch, last), nil
	}
}

// collect takes the first delivery, then whatever arrives within linger.
func collect(ctx context.Context, deliveries <-chan amqp.Delivery, max int, linger time.Duration) ([]Message, uint64, bool) {
	var msgs []Message
	var last uint64
	select {
	case <-ctx.Done():
		return nil, 0, true
	case d, ok := <-deliveries:
		if !ok {
			return nil, 0, false
		}
		msgs, last = append(msgs, Message{Body: d.Body, Timestamp: d.Timestamp}), d.DeliveryTag
	}
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for len(msgs) < max {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return nil, 0, false // these tags died with their channel
			}
			msgs, last = append(msgs, Message{Body: d.Body, Timestamp: d.Timestamp}), d.DeliveryTag
		case <-timer.C:
			return msgs, last, true
		case <-ctx.Done():
			return msgs, last, true
		}
	}
	return msgs, last, true
}

func (r *Rabbit) ackFunc(ch *amqp.Channel, last uint64) AckFunc {
	return func(err error) error {
		r.mu.Lock()
		cur := r.ch
		r.mu.Unlock()
		if ch == nil || ch != cur || ch.IsClosed() {
			return ErrStale
		}
		if err != nil {
			return ch.Nack(last, true, true)
		}
		if aerr := ch.Ack(last, true); aerr != nil {
			return fmt.Errorf("ack up to delivery tag %d: %w", last, aerr)
		}
		return nil
	}
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

// Close implements Source.
func (r *Rabbit) Close() error {
	r.mu.Lock()
	ch := r.ch
	r.ch, r.deliveries = nil, nil
	r.mu.Unlock()
	if ch != nil && !ch.IsClosed() {
		_ = ch.Cancel(r.tag, false)
		if err := ch.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			return fmt.Errorf("close consumer channel: %w", err)
		}
	}
	return nil
}
