// Package source reads telemetry messages from the bus in batches, for the
// consumer pipeline and the alert service (each on its own queue or
// consumer group): RabbitMQ (manual acks, one cumulative ack per batch,
// reconnects that drop stale delivery tags) and Kafka (a consumer group that
// commits offsets only when told the batch is done with).
package source

import (
	"context"
	"errors"
	"time"
)

// Message is one message read from the bus. Body and the other fields stay
// valid until the batch is acked.
type Message struct {
	// ID is the AMQP message-id or the Kafka "message_id" header ("" if none).
	ID string
	// RoutingKey is the AMQP routing key, or the Kafka topic.
	RoutingKey string
	// Key is the Kafka message key (the unit), "" on RabbitMQ.
	Key string
	// Headers are the message headers as the bus carries them (AMQP table
	// values, Kafka header bytes as strings).
	Headers map[string]any
	// Timestamp is when the producer published the message (zero if unknown).
	Timestamp time.Time
	// Body is the payload.
	Body []byte
}

// Header returns the string value of a header, "" when it is absent or not
// a string.
func (m *Message) Header(name string) string {
	switch v := m.Headers[name].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	default:
		return ""
	}
}

// StringHeaders returns the headers with string values, for republishing.
func (m *Message) StringHeaders() map[string]string {
	out := make(map[string]string, len(m.Headers))
	for k := range m.Headers {
		if v := m.Header(k); v != "" {
			out[k] = v
		}
	}
	return out
}

// AckFunc settles a batch: nil acknowledges every message of the batch (the
// broker forgets them, the group commits their offsets); an error returns
// them to the bus for redelivery. Batches must be settled in the order they
// were read: RabbitMQ acks cumulatively and Kafka commits offsets, so
// settling a later batch first would settle the earlier one too.
type AckFunc func(ctx context.Context, err error) error

// Source is a bus the consumer reads. Several processes reading the same
// queue or group share the work.
type Source interface {
	// ReadBatch blocks until a message is available, then returns up to max
	// messages, waiting at most linger for the batch to fill. When ctx ends
	// it stops consuming and returns ctx's error; batches already returned
	// can still be settled.
	ReadBatch(ctx context.Context, max int, linger time.Duration) ([]Message, AckFunc, error)
	// Lag returns how many messages wait on the bus for this consumer.
	Lag(ctx context.Context) (int64, error)
	// Check is a readiness check: nil while connected.
	Check(ctx context.Context) error
	// Close releases the connection; unsettled messages go back to the bus.
	Close() error
}

// ErrStale reports an ack or nack that was dropped because the channel or
// reader that delivered the batch is gone: the bus redelivers those
// messages (so they may be stored twice, idempotently), never loses them.
var ErrStale = errors.New("batch delivered on a closed channel or reader; not settled, the bus redelivers it")
