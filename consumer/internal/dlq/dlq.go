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
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/source"
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

// Bounds on what a dead letter copies from the message it was made from.
const (
	maxCopiedHeaders    = 32
	maxCopiedHeaderSize = 1024
)

// ownHeaders are the headers the consumer writes itself; a message's own
// values for them are never trusted (a producer could forge them).
var ownHeaders = map[string]bool{
	HeaderReason: true, HeaderFirstFailure: true, HeaderRoutingKey: true, HeaderKind: true,
	HeaderConsumer: true, HeaderRejected: true, HeaderReplayedAt: true, HeaderReplays: true,
}

// Message turns a letter into the bus message to publish: the original body
// and ID, the routing key the consumer saw the message under, a bounded
// copy of the original headers (at most 32, names up to 255 bytes, values
// cut at 1 KiB), and the dead-letter headers. Nothing routes by what the
// message brought with it: x-original-routing-key is always the delivery's
// routing key. A message that failed before keeps its first failure time
// (when it is a valid time) and its replay count.
func (l *Letter) Message(consumerID string, now time.Time) bus.Message {
	h := make(map[string]string, maxCopiedHeaders+8)
	orig := l.Msg.StringHeaders()
	keys := make([]string, 0, len(orig))
	for k := range orig {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a deterministic choice when there are too many
	for _, k := range keys {
		if len(h) == maxCopiedHeaders {
			break
		}
		if ownHeaders[k] || len(k) > bus.MaxShortString {
			continue
		}
		h[k] = truncate(orig[k], maxCopiedHeaderSize)
	}
	first := now.UTC().Format(time.RFC3339)
	if t, err := time.Parse(time.RFC3339, orig[HeaderFirstFailure]); err == nil && !t.After(now) {
		first = t.UTC().Format(time.RFC3339)
	}
	if n, err := strconv.Atoi(orig[HeaderReplays]); err == nil && n > 0 {
		h[HeaderReplays] = strconv.Itoa(n)
		if at, err := time.Parse(time.RFC3339, orig[HeaderReplayedAt]); err == nil {
			h[HeaderReplayedAt] = at.UTC().Format(time.RFC3339)
		}
	}
	l.addOwnHeaders(h, consumerID, first)
	key := l.Msg.Key
	if key == "" {
		key = h[bus.HeaderUnit]
	}
	return bus.Message{ID: l.Msg.ID, Key: key, RoutingKey: l.routingKey(), Headers: h, Body: l.Msg.Body}
}

// Minimal is the letter in the smallest form that still tells the operator
// what and why: the body, the bounded id, the routing key the consumer saw
// and the dead-letter headers, no copied header. Writers fall back to it for
// a letter the bus refuses as is.
func (l *Letter) Minimal(consumerID string, now time.Time) bus.Message {
	h := map[string]string{}
	l.addOwnHeaders(h, consumerID, now.UTC().Format(time.RFC3339))
	return bus.Message{ID: bus.BoundID(l.Msg.ID), RoutingKey: l.routingKey(), Headers: h, Body: l.Msg.Body}
}

// routingKey is the routing key the consumer saw the message under, bounded.
func (l *Letter) routingKey() string {
	rk := l.Msg.RoutingKey
	if len(rk) > bus.MaxShortString {
		rk = truncate(rk, bus.MaxShortString-16)
	}
	return rk
}

func (l *Letter) addOwnHeaders(h map[string]string, consumerID, firstFailure string) {
	h[HeaderFirstFailure] = firstFailure
	h[HeaderRoutingKey] = l.routingKey()
	h[HeaderReason] = truncate(l.Reason, maxReason)
	h[HeaderKind] = l.Kind
	h[HeaderConsumer] = consumerID
	if l.Kind == KindPartial {
		h[HeaderRejected] = strconv.Itoa(l.Rejected)
	}
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
	err := w.Pub.PublishTo(ctx, w.Exchange, msgs)
	if refused := unpublishable(err); len(refused) > 0 {
		// Every other letter is stored; the refused ones go again in their
		// minimal form, which the bus always takes.
		var minimal []bus.Message
		for i := range letters {
			if refused[bus.BoundID(msgs[i].ID)] {
				minimal = append(minimal, letters[i].Minimal(w.ConsumerID, now()))
			}
		}
		err = w.Pub.PublishTo(ctx, w.Exchange, minimal)
	}
	if err != nil {
		return fmt.Errorf("dead-letter %d messages to %q: %w", len(msgs), w.Exchange, err)
	}
	return nil
}

// unpublishable returns the ids of the messages err says can never be
// published, or nil when err holds any other failure (then the whole write
// is retried).
func unpublishable(err error) map[string]bool {
	if err == nil || !errors.Is(err, bus.ErrUnpublishable) {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	ids := map[string]bool{}
	for _, e := range errs {
		var me *bus.MessageError
		if !errors.As(e, &me) || !errors.Is(e, bus.ErrUnpublishable) {
			return nil
		}
		ids[me.ID] = true
	}
	return ids
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
