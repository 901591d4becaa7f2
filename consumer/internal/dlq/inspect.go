package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/telemetry"
)

// Entry is one dead letter as List and Replay show it.
type Entry struct {
	Position     int       `json:"position"` // 1-based position in the queue when read
	ID           string    `json:"id,omitempty"`
	Kind         string    `json:"kind"`
	Reason       string    `json:"reason"`
	Unit         string    `json:"unit"`
	FirstFailure time.Time `json:"first_failure"`
	RoutingKey   string    `json:"routing_key"`
	Size         int       `json:"size"`
	Rejected     int       `json:"rejected_samples,omitempty"`
	Consumer     string    `json:"consumer,omitempty"`
	Replays      int       `json:"replays,omitempty"`
	// Skipped says why Replay left this letter in the queue ("" if it did not).
	Skipped string `json:"skipped,omitempty"`
	// Partition and Offset locate a Kafka dead letter (nil on RabbitMQ).
	Partition *int   `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
}

// Filter selects dead letters; empty fields match everything.
type Filter struct {
	Reason string // substring of the reason, case-insensitive
	Kind   string // exact kind
	Unit   string // exact unit, as decoded from the body (never a header)
	// Binding, when set, is the ingest queue's binding key (a topic
	// pattern): Replay skips letters whose routing key it does not match,
	// so a letter cannot be steered to another queue bound to the exchange.
	Binding string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Entry) bool {
	if f.Kind != "" && e.Kind != f.Kind {
		return false
	}
	if f.Unit != "" && e.Unit != f.Unit {
		return false
	}
	if f.Reason != "" && !strings.Contains(strings.ToLower(e.Reason), strings.ToLower(f.Reason)) {
		return false
	}
	return true
}

// Channeler opens AMQP channels (rabbit.Conn does).
type Channeler interface {
	Channel(ctx context.Context) (*amqp.Channel, error)
}

// EntryOf describes a delivery from the dead-letter queue. Its routing key
// is the one the letter was dead-lettered under (by the consumer: the key it
// received the message with; by the broker: the original key), and its unit
// is the one its body names: headers a producer could forge never route or
// select a letter. Messages the broker dead-lettered itself (rejected
// without requeue, expired) carry no x-kind; their x-death header supplies
// the reason and time.
func EntryOf(d *amqp.Delivery) (Entry, map[string]string) {
	h := map[string]string{}
	for k, v := range d.Headers {
		switch s := v.(type) {
		case string:
			h[k] = s
		case []byte:
			h[k] = string(s)
		}
	}
	e := Entry{
		ID:         d.MessageId,
		Kind:       h[HeaderKind],
		Reason:     h[HeaderReason],
		RoutingKey: d.RoutingKey,
		Size:       len(d.Body),
		Consumer:   h[HeaderConsumer],
	}
	if t, err := time.Parse(time.RFC3339, h[HeaderFirstFailure]); err == nil {
		e.FirstFailure = t
	}
	e.Rejected, _ = strconv.Atoi(h[HeaderRejected])
	e.Replays, _ = strconv.Atoi(h[HeaderReplays])
	if e.Kind == "" {
		e.Kind = "broker"
		if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
			if x, ok := deaths[0].(amqp.Table); ok {
				if r, ok := x["reason"].(string); ok {
					e.Reason = "dead-lettered by the broker: " + r
				}
				if t, ok := x["time"].(time.Time); ok && e.FirstFailure.IsZero() {
					e.FirstFailure = t.UTC()
				}
			}
		}
	}
	if sum, err := telemetry.Inspect(d.Body); err == nil || sum.Unit != "" {
		e.Unit = sum.Unit
	}
	return e, h
}

// TopicMatch reports whether routingKey matches the AMQP topic pattern
// (words separated by dots; * is one word, # is zero or more).
func TopicMatch(pattern, routingKey string) bool {
	return topicMatch(strings.Split(pattern, "."), strings.Split(routingKey, "."))
}

func topicMatch(p, k []string) bool {
	for len(p) > 0 {
		switch p[0] {
		case "#":
			for i := 0; i <= len(k); i++ {
				if topicMatch(p[1:], k[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(k) == 0 {
				return false
			}
		default:
			if len(k) == 0 || k[0] != p[0] {
				return false
			}
		}
		p, k = p[1:], k[1:]
	}
	return len(k) == 0
}

// browse reads up to limit messages (0 = all) from queue with basic.get and
// no auto-ack, calling fn for each. Whatever fn does not ack goes back to the
// queue, in its place, when the channel closes at the end: browsing consumes
// nothing.
func browse(ctx context.Context, conn Channeler, queue string, limit int, fn func(ch *amqp.Channel, d *amqp.Delivery, e Entry, h map[string]string) error, end func(ch *amqp.Channel) error) error {
	ch, err := conn.Channel(ctx)
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	// Read only what the queue held when we started: letters that a replay
	// sends back (rejected again by the consumer) arrive at its tail and
	// must not be read, and replayed, a second time by the same run.
	//nolint:staticcheck // QueueInspect is the passive declare that does not need the queue's arguments.
	q, err := ch.QueueInspect(queue)
	if err != nil {
		return fmt.Errorf("inspect dead-letter queue %q: %w", queue, err)
	}
	if limit <= 0 || limit > q.Messages {
		limit = q.Messages
	}
	for pos := 1; pos <= limit; pos++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return fmt.Errorf("read dead-letter queue %q: %w", queue, err)
		}
		if !ok {
			break
		}
		e, h := EntryOf(&d)
		e.Position = pos
		if err := fn(ch, &d, e, h); err != nil {
			return err
		}
	}
	if end != nil {
		return end(ch)
	}
	return nil
}

// List returns the dead letters of queue that match f, reading at most
// limit messages (0 = all). It consumes nothing. total is how many messages
// it read.
func List(ctx context.Context, conn Channeler, queue string, f Filter, limit int) (entries []Entry, total int, err error) {
	err = browse(ctx, conn, queue, limit, func(_ *amqp.Channel, _ *amqp.Delivery, e Entry, _ map[string]string) error {
		total++
		if f.Match(&e) {
			entries = append(entries, e)
		}
		return nil
	}, nil)
	return entries, total, err
}

// ReplayResult summarises a replay.
type ReplayResult struct {
	Read     int     `json:"read"`
	Matched  int     `json:"matched"`
	Replayed int     `json:"replayed"`
	Skipped  int     `json:"skipped"`
	Executed bool    `json:"executed"`
	Entries  []Entry `json:"entries"`
}

// Replay re-publishes the dead letters of queue that match f to exchange
// under the routing key they were dead-lettered with, one by one: each is
// acked from the dead-letter queue only once the broker confirmed its
// re-publication (so a crash in between duplicates, never loses). A letter
// that cannot be replayed (no routing key, a key outside f.Binding,
// unroutable, refused) is skipped, stays in the queue, and its entry says
// why; the others are replayed regardless. Without execute it only reports
// what it would replay. It reads at most limit messages (0 = all); progress,
// if not nil, is called every 200 replayed letters. The error is only for
// failures that stop the whole replay (the queue or the broker gone).
func Replay(ctx context.Context, conn Channeler, pub Publisher, exchange, queue string, f Filter, limit int, execute bool, now func() time.Time, progress func(replayed, matched int)) (ReplayResult, error) {
	res := ReplayResult{Executed: execute}
	err := browse(ctx, conn, queue, limit, func(ch *amqp.Channel, d *amqp.Delivery, e Entry, h map[string]string) error {
		res.Read++
		if !f.Match(&e) {
			return nil
		}
		res.Matched++
		if !execute {
			res.Entries = append(res.Entries, e)
			return nil
		}
		skip, err := replayOne(ctx, ch, pub, exchange, f, d, &e, h, now)
		if err != nil {
			return err
		}
		if skip != "" {
			e.Skipped = skip
			res.Skipped++
		} else {
			res.Replayed++
			if progress != nil && res.Replayed%200 == 0 {
				progress(res.Replayed, res.Matched)
			}
		}
		res.Entries = append(res.Entries, e)
		return nil
	}, nil)
	return res, err
}

// replayOne re-publishes one letter and acks it. It returns why the letter
// was skipped ("" when replayed), or an error that stops the replay.
func replayOne(ctx context.Context, ch *amqp.Channel, pub Publisher, exchange string, f Filter, d *amqp.Delivery, e *Entry, h map[string]string, now func() time.Time) (string, error) {
	switch {
	case e.RoutingKey == "":
		return "no routing key", nil
	case f.Binding != "" && !TopicMatch(f.Binding, e.RoutingKey):
		return fmt.Sprintf("routing key %q is outside the ingest binding %q", e.RoutingKey, f.Binding), nil
	}
	for _, k := range []string{HeaderReason, HeaderKind, HeaderConsumer, HeaderRejected, HeaderRoutingKey} {
		delete(h, k)
	}
	h[HeaderReplayedAt] = now().UTC().Format(time.RFC3339)
	h[HeaderReplays] = strconv.Itoa(e.Replays + 1)
	msg := bus.Message{ID: d.MessageId, Key: e.Unit, RoutingKey: e.RoutingKey, Headers: h, Body: d.Body}
	if err := pub.PublishTo(ctx, exchange, []bus.Message{msg}); err != nil {
		var me *bus.MessageError
		if ctx.Err() != nil || !errors.As(err, &me) {
			return "", fmt.Errorf("re-publish dead letter %d (id %q; not acked, still in the queue): %w", e.Position, e.ID, err)
		}
		return "not re-published: " + me.Err.Error(), nil
	}
	if err := ch.Ack(d.DeliveryTag, false); err != nil {
		return "", fmt.Errorf("ack replayed dead letter %d (it was re-published and may be replayed twice): %w", e.Position, err)
	}
	return "", nil
}
