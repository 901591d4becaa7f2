// Package bus defines what the producer and the consumer's dead-letter path
// need from a message bus, independent of RabbitMQ or Kafka: a Message and a
// durable Publisher.
package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
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

// ErrUnpublishable marks a message no retry can publish (a routing key or
// header name longer than the bus allows): it fails alone, its batch
// neighbours and the connection are unaffected, and callers must not retry it.
var ErrUnpublishable = errors.New("message can never be published")

// MaxShortString is the longest AMQP short string (message id, routing key,
// header name), in bytes.
const MaxShortString = 255

// boundedIDPrefix is how much of an over-long id BoundID keeps readable.
const boundedIDPrefix = 64

// BoundID returns id when it fits in MaxShortString bytes; otherwise a
// stable replacement: its first 64 bytes (cut on a character boundary),
// "~sha256:" and the hex SHA-256 of the whole id, so the same long id
// always maps to the same short one and duplicates stay recognisable.
func BoundID(id string) string {
	if len(id) <= MaxShortString {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	cut := boundedIDPrefix
	for cut > 0 && !utf8.RuneStart(id[cut]) {
		cut--
	}
	return strings.ToValidUTF8(id[:cut], "") + "~sha256:" + hex.EncodeToString(sum[:])
}

// MessageError is the failure of one message in a batch, returned (joined
// with the others) by Publish.
type MessageError struct {
	ID  string
	Err error
}

func (e *MessageError) Error() string { return fmt.Sprintf("message %s: %v", e.ID, e.Err) }

// Unwrap returns the cause.
func (e *MessageError) Unwrap() error { return e.Err }
