// Package bus defines what the producer and the consumer's dead-letter path
// need from a message bus, independent of RabbitMQ or Kafka: a Message and a
// durable Publisher.
package bus

import (
	"context"
	"errors"
	"fmt"
)

// Message is one telemetry message for the bus.
type Message struct {
	// ID identifies the message (AMQP message-id, a Kafka header). It should
	// be unique per message; a republished message keeps its ID so that
	// duplicates can be recognised downstream.
	ID string
	// Key is the unit id: the Kafka partition key, so one unit's messages
	// stay ordered.
	Key string
	// RoutingKey is the RabbitMQ routing key (see rabbit.RoutingKey).
	RoutingKey string
	// Headers travel with the message (AMQP headers, Kafka headers).
	Headers map[string]string
	// Body is the payload, published byte for byte.
	Body []byte
}

// Publisher publishes durably. Publish returns nil only once the broker has
// confirmed every message in msgs; on error, the caller may retry the same
// messages (delivery is at-least-once, so a retried message may arrive
// twice). Implementations are safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) error
	Close() error
}

// Header names every producer sets.
const (
	HeaderUnit         = "unit"          // unit identifier, "" when the body has none
	HeaderGeneration   = "generation"    // "1" or "2"
	HeaderSamples      = "samples"       // number of readings in the body
	HeaderInspectError = "inspect_error" // set by poll when the body could not be inspected
	HeaderSource       = "source"        // simulate, poll or serve
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("publisher closed")

// MessageError is the failure of one message in a batch, returned (joined
// with the others) by Publish.
type MessageError struct {
	ID  string
	Err error
}

func (e *MessageError) Error() string { return fmt.Sprintf("message %s: %v", e.ID, e.Err) }

// Unwrap returns the cause.
func (e *MessageError) Unwrap() error { return e.Err }
