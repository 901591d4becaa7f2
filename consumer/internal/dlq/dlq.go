// Package dlq keeps what the consumer cannot store where an operator can see
// and re-drive it: whole messages the codec rejects (kind "rejected") and
// messages with some rejected samples (kind "partial": the original body,
// with every rejected sample and its reason in the headers; replaying it
// after a fix is safe because the accepted samples upsert idempotently).
//
// Dead letters are published, with confirms, to the dead-letter exchange
// (RabbitMQ) or to the "<topic>.dead" topic (Kafka) under the original
// routing key, with headers naming the reason, the first failure time, the
// original routing key, the kind and the consumer. List and Replay read the
// RabbitMQ dead-letter queue without consuming what they do not replay.
package dlq

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/consumer/internal/source"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
)

// Header names of a dead letter.
const (
	HeaderReason       = "x-reason"
	HeaderFirstFailure = "x-first-failure" // RFC 3339, kept across replays
	HeaderRoutingKey   = "x-original-routing-key"
	HeaderKind         = "x-kind"
	HeaderConsumer     = "x-consumer"
	HeaderRejected     = "x-rejected-samples" // kind partial: how many samples were rejected
	HeaderReplayedAt   = "x-replayed-at"      // set by Replay
	HeaderReplays      = "x-replays"          // how many times Replay re-drove it
)

// Kinds of dead letter.
const (
	// KindRejected is a message the codec rejected whole.
	KindRejected = "rejected"
	// KindPartial is a message of which some samples were rejected (by the
	// codec, or by a required sink that refused individual points); its
	// accepted samples were stored.
	KindPartial = "partial"
)

// maxReason bounds the reason header; a message of 1,000 bad samples would
// otherwise carry a header bigger than the message.
const maxReason = 4000

// Letter is a message to dead-letter.
type Letter struct {
	Msg      source.Message
	Kind     string
	Reason   string
	Rejected int // samples rejected, for KindPartial
}

// Message turns a letter into the bus message to publish: the original body,
// ID and routing key, the original headers, and the dead-letter headers. A
// message that failed before (it carries x-first-failure) keeps its first
// failure time.
func (l *Letter) Message(consumerID string, now time.Time) bus.Message {
	h := l.Msg.StringHeaders()
	if h[HeaderFirstFailure] == "" {
		h[HeaderFirstFailure] = now.UTC().Format(time.RFC3339)
	}
	rk := l.Msg.RoutingKey
	if prev := h[HeaderRoutingKey]; prev != "" {
		rk = prev
	}
	h[HeaderRoutingKey] = rk
	h[HeaderReason] = truncate(l.Reason, maxReason)
	h[HeaderKind] = l.Kind
	h[HeaderConsumer] = consumerID
	if l.Kind == KindPartial {
		h[HeaderRejected] = strconv.Itoa(l.Rejected)
	} else {
		delete(h, HeaderRejected)
	}
	key := l.Msg.Key
	if key == "" {
		key = h[bus.HeaderUnit]
	}
	return bus.Message{ID: l.Msg.ID, Key: key, RoutingKey: rk, Headers: h, Body: l.Msg.Body}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + " …(truncated)"
}

// Writer stores dead letters durably: Write returns nil only once the bus
// has every letter.
type Writer interface {
	Write(ctx context.Context, letters []Letter) error
}

// Publisher is what RabbitWriter and Replay need of rabbit.Publisher:
// publishing with confirms.
type Publisher interface {
	PublishTo(ctx context.Context, exchange string, msgs []bus.Message) error
}

// RabbitWriter publishes dead letters to a dead-letter exchange with confirms.
type RabbitWriter struct {
	Pub        Publisher
	Exchange   string
	ConsumerID string
	Now        func() time.Time
}

// Write implements Writer.
func (w *RabbitWriter) Write(ctx context.Context, letters []Letter) error {
	if len(letters) == 0 {
		return nil
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	msgs := make([]bus.Message, len(letters))
	for i := range letters {
		msgs[i] = letters[i].Message(w.ConsumerID, now())
	}
	if err := w.Pub.PublishTo(ctx, w.Exchange, msgs); err != nil {
		return fmt.Errorf("dead-letter %d messages to %q: %w", len(msgs), w.Exchange, err)
	}
	return nil
}

// KafkaWriter produces dead letters to a topic (by convention
// "<topic>.dead") keyed by unit, with the same headers as on RabbitMQ,
// returning once every in-sync replica has them (acks=all).
type KafkaWriter struct {
	Pub        bus.Publisher
	Topic      string
	ConsumerID string
	Now        func() time.Time
}

// NewKafkaWriter returns a writer producing to topic on the cluster of cfg.
func NewKafkaWriter(cfg kafka.Config, topic, consumerID string, logger *slog.Logger, reg prometheus.Registerer) (*KafkaWriter, error) {
	pub, err := kafka.NewPublisher(cfg, topic, kafka.Options{Name: "dead-letter"}, logger, reg)
	if err != nil {
		return nil, err
	}
	return &KafkaWriter{Pub: pub, Topic: topic, ConsumerID: consumerID}, nil
}

// Write implements Writer.
func (w *KafkaWriter) Write(ctx context.Context, letters []Letter) error {
	if len(letters) == 0 {
		return nil
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	msgs := make([]bus.Message, len(letters))
	for i := range letters {
		msgs[i] = letters[i].Message(w.ConsumerID, now())
		// The publisher sets its own id and content type headers.
		delete(msgs[i].Headers, kafka.HeaderMessageID)
		delete(msgs[i].Headers, kafka.HeaderContentType)
		delete(msgs[i].Headers, "message-id")
	}
	if err := w.Pub.Publish(ctx, msgs); err != nil {
		return fmt.Errorf("dead-letter %d messages to topic %q: %w", len(msgs), w.Topic, err)
	}
	return nil
}

// Close flushes and closes the producer.
func (w *KafkaWriter) Close() error { return w.Pub.Close() }

// UnitOf returns the unit a dead letter is about: the unit header, else the
// last word of its routing key ("bsu.v2.FP2-004211").
func UnitOf(headers map[string]string, routingKey string) string {
	if u := headers[bus.HeaderUnit]; u != "" {
		return u
	}
	if i := strings.LastIndexByte(routingKey, '.'); i >= 0 && strings.HasPrefix(routingKey, "bsu.") {
		return routingKey[i+1:]
	}
	return ""
}
