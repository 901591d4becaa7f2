package dlq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/telemetry"
)

// KafkaDead is the dead-letter topic of a Kafka bus and what List and
// Replay need to read it.
type KafkaDead struct {
	Cluster kafka.Config
	// Topic is the dead-letter topic ("<topic>.dead").
	Topic string
	// Original is the telemetry topic; Replay produces only there.
	Original string
	// Group records Replay's progress through Topic (committed offsets).
	Group string
}

// KafkaEntryOf describes a record of the dead-letter topic.
func KafkaEntryOf(m *kafkago.Message) (Entry, map[string]string) {
	h := make(map[string]string, len(m.Headers))
	for _, kh := range m.Headers {
		h[kh.Key] = string(kh.Value)
	}
	id := h[kafka.HeaderMessageID]
	if id == "" {
		id = h["message-id"]
	}
	p, o := m.Partition, m.Offset
	e := Entry{ID: id, Kind: h[HeaderKind], Reason: h[HeaderReason], RoutingKey: h[HeaderRoutingKey], Size: len(m.Value),
		Consumer: h[HeaderConsumer], Partition: &p, Offset: &o}
	if t, err := time.Parse(time.RFC3339, h[HeaderFirstFailure]); err == nil {
		e.FirstFailure = t
	}
	e.Rejected, _ = strconv.Atoi(h[HeaderRejected])
	e.Replays, _ = strconv.Atoi(h[HeaderReplays])
	// The unit is the one the body names, as on RabbitMQ: a header a
	// producer could forge never selects a letter.
	if sum, err := telemetry.Inspect(m.Value); err == nil || sum.Unit != "" {
		e.Unit = sum.Unit
	}
	return e, h
}

// scanKafka reads every partition of the dead-letter topic from its
// starting offset (from(partition)) to the end it had when the scan began,
// calling fn for each record, and done(partition, next) after each chunk of
// a partition (next: the offset after the last record fn saw). At most limit
// records are read in all (0 = all). Nothing is consumed or committed here.
func (d KafkaDead) scanKafka(ctx context.Context, from func(kafka.PartitionLag) int64, limit int,
	fn func(m *kafkago.Message) error, done func(partition int, next int64) error) (int, error) {
	client, err := d.Cluster.Client()
	if err != nil {
		return 0, err
	}
	dialer, err := d.Cluster.Dialer()
	if err != nil {
		return 0, err
	}
	pos, err := kafka.GroupLag(ctx, client, d.Topic, d.Group)
	if err != nil {
		return 0, fmt.Errorf("read dead-letter topic %s: %w", d.Topic, err)
	}
	read := 0
	for _, p := range pos.Partitions {
		start := max(from(p), p.Start, 0)
		if start >= p.End || (limit > 0 && read >= limit) {
			continue
		}
		n, err := d.scanPartition(ctx, dialer, p.Partition, start, p.End, limit-read, limit > 0, fn, done)
		read += n
		if err != nil {
			return read, err
		}
	}
	return read, nil
}

// scanChunk is how many records Replay produces per acknowledged round trip
// and commit.
const scanChunk = 200

func (d KafkaDead) scanPartition(ctx context.Context, dialer *kafkago.Dialer, partition int, start, end int64, left int, bounded bool,
	fn func(m *kafkago.Message) error, done func(partition int, next int64) error) (int, error) {
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: d.Cluster.Brokers, Dialer: dialer, Topic: d.Topic, Partition: partition,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return 0, fmt.Errorf("seek %s/%d to %d: %w", d.Topic, partition, start, err)
	}
	read, inChunk := 0, 0
	next := start
	for next < end && (!bounded || read < left) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return read, fmt.Errorf("read %s/%d at offset %d: %w", d.Topic, partition, next, err)
		}
		read++
		inChunk++
		next = m.Offset + 1
		if err := fn(&m); err != nil {
			return read, err
		}
		if inChunk >= scanChunk {
			inChunk = 0
			if err := done(partition, next); err != nil {
				return read, err
			}
		}
	}
	return read, done(partition, next)
}

// ListKafka returns the dead letters of the topic that match f, reading at
// most limit records (0 = all) from the start of every partition. It
// consumes and commits nothing. total is how many records it read.
func ListKafka(ctx context.Context, d KafkaDead, f Filter, limit int) (entries []Entry, total int, err error) {
	total, err = d.scanKafka(ctx, func(kafka.PartitionLag) int64 { return 0 }, limit, func(m *kafkago.Message) error {
		e, _ := KafkaEntryOf(m)
		if f.Match(&e) {
			entries = append(entries, e)
		}
		return nil
	}, func(int, int64) error { return nil })
	for i := range entries {
		entries[i].Position = i + 1
	}
	return entries, total, err
}

// ReplayKafka produces the dead letters matching f, from Replay's committed
// position (or from the start of the topic with fromStart), back to the
// original topic with their original key, id and body, the dead-letter
// verdict headers removed and x-replays counted, like Replay on RabbitMQ.
// After each chunk is acknowledged by every in-sync replica (acks=all) it
// commits its progress through the dead-letter topic under d.Group, never
// before: a crash in between replays a chunk twice, which readings'
// idempotent upserts absorb. Records that do not match are passed over (the
// topic keeps them; list still shows them, --from-start rescans them).
// A letter whose original topic is not d.Original is skipped (its entry
// says why; the others are replayed regardless): Replay produces only to
// the topic it was configured with, never to one a header names.
func ReplayKafka(ctx context.Context, d KafkaDead, pub bus.Publisher, f Filter, limit int, fromStart, execute bool, now func() time.Time,
	progress func(replayed, matched int)) (ReplayResult, error) {
	res := ReplayResult{Executed: execute}
	var pend []bus.Message
	client, err := d.Cluster.Client()
	if err != nil {
		return res, err
	}
	from := func(p kafka.PartitionLag) int64 {
		if fromStart {
			return 0
		}
		return p.Committed
	}
	done := func(partition int, next int64) error {
		if !execute {
			return nil
		}
		if len(pend) > 0 {
			if err := pub.Publish(ctx, pend); err != nil {
				return fmt.Errorf("produce %d dead letters to %s (progress not committed): %w", len(pend), d.Original, err)
			}
			res.Replayed += len(pend)
			pend = pend[:0]
		}
		if err := kafka.CommitOffsets(ctx, client, d.Topic, d.Group, map[int]int64{partition: next}); err != nil {
			return fmt.Errorf("replayed up to %s/%d offset %d but could not record it (a rerun replays those again): %w", d.Topic, partition, next, err)
		}
		if progress != nil {
			progress(res.Replayed, res.Matched)
		}
		return nil
	}
	read, err := d.scanKafka(ctx, from, limit, func(m *kafkago.Message) error {
		e, h := KafkaEntryOf(m)
		e.Position = res.Read + 1
		res.Read++
		if !f.Match(&e) {
			return nil
		}
		res.Matched++
		if e.RoutingKey != "" && e.RoutingKey != d.Original {
			e.Skipped = fmt.Sprintf("dead-lettered from topic %q, not %q: not replayed", e.RoutingKey, d.Original)
			res.Skipped++
			res.Entries = append(res.Entries, e)
			return nil
		}
		res.Entries = append(res.Entries, e)
		if execute {
			pend = append(pend, replayMessage(m, e, h, now))
		}
		return nil
	}, done)
	res.Read = read
	return res, err
}

// replayMessage is the record to produce for a dead letter: original key,
// id and body; the verdict headers gone; x-replays counted.
func replayMessage(m *kafkago.Message, e Entry, h map[string]string, now func() time.Time) bus.Message {
	for _, k := range []string{HeaderReason, HeaderKind, HeaderConsumer, HeaderRejected, kafka.HeaderMessageID, kafka.HeaderContentType, "message-id"} {
		delete(h, k)
	}
	h[HeaderReplayedAt] = now().UTC().Format(time.RFC3339)
	h[HeaderReplays] = strconv.Itoa(e.Replays + 1)
	return bus.Message{ID: e.ID, Key: string(m.Key), Headers: h, Body: m.Value}
}
