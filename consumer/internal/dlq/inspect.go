package dlq

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/bus"
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
	// Partition and Offset locate a Kafka dead letter (nil on RabbitMQ).
	Partition *int   `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
}

// Filter selects dead letters; empty fields match everything.
type Filter struct {
	Reason string // substring of the reason, case-insensitive
	Kind   string // exact kind
	Unit   string // exact unit
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

// EntryOf describes a delivery from the dead-letter queue. Messages the
// broker dead-lettered itself (rejected without requeue, expired) carry no
// x-kind; their x-death header supplies the reason, time and routing key.
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
		RoutingKey: h[HeaderRoutingKey],
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
				if rks, ok := x["routing-keys"].([]any); ok && len(rks) > 0 && e.RoutingKey == "" {
					e.RoutingKey, _ = rks[0].(string)
				}
			}
		}
	}
	if e.RoutingKey == "" {
		e.RoutingKey = d.RoutingKey
	}
	e.Unit = UnitOf(h, e.RoutingKey)
	return e, h
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
	for pos := 1; limit <= 0 || pos <= limit; pos++ {
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
	Executed bool    `json:"executed"`
	Entries  []Entry `json:"entries"`
}

// replayChunk is how many letters Replay publishes per confirm round trip.
const replayChunk = 200

// Replay re-publishes the dead letters of queue that match f to exchange
// under their original routing key, with confirms, and only then acks them
// from the dead-letter queue (so a crash in between duplicates, never
// loses). Without execute it only reports what it would replay. It reads at
// most limit messages (0 = all); progress, if not nil, is called after each
// published chunk.
func Replay(ctx context.Context, conn Channeler, pub Publisher, exchange, queue string, f Filter, limit int, execute bool, now func() time.Time, progress func(replayed, matched int)) (ReplayResult, error) {
	res := ReplayResult{Executed: execute}
	var (
		pend []bus.Message
		tags []uint64
	)
	flush := func(ch *amqp.Channel) error {
		if len(pend) == 0 {
			return nil
		}
		if err := pub.PublishTo(ctx, exchange, pend); err != nil {
			return fmt.Errorf("re-publish %d dead letters (none acked from %q): %w", len(pend), queue, err)
		}
		for _, t := range tags {
			if err := ch.Ack(t, false); err != nil {
				return fmt.Errorf("ack replayed dead letter from %q (it was re-published and may be replayed twice): %w", queue, err)
			}
		}
		res.Replayed += len(pend)
		pend, tags = pend[:0], tags[:0]
		if progress != nil {
			progress(res.Replayed, res.Matched)
		}
		return nil
	}
	err := browse(ctx, conn, queue, limit, func(ch *amqp.Channel, d *amqp.Delivery, e Entry, h map[string]string) error {
		res.Read++
		if !f.Match(&e) {
			return nil
		}
		res.Matched++
		res.Entries = append(res.Entries, e)
		if !execute {
			return nil
		}
		if e.RoutingKey == "" {
			return fmt.Errorf("dead letter %d (id %q) has no original routing key; cannot replay it", e.Position, e.ID)
		}
		for _, k := range []string{HeaderReason, HeaderKind, HeaderConsumer, HeaderRejected} {
			delete(h, k)
		}
		h[HeaderReplayedAt] = now().UTC().Format(time.RFC3339)
		h[HeaderReplays] = strconv.Itoa(e.Replays + 1)
		pend = append(pend, bus.Message{ID: d.MessageId, Key: e.Unit, RoutingKey: e.RoutingKey, Headers: h, Body: d.Body})
		tags = append(tags, d.DeliveryTag)
		if len(pend) >= replayChunk {
			return flush(ch)
		}
		return nil
	}, flush)
	return res, err
}
