package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"

	kafkago "github.com/segmentio/kafka-go"
)

// PartitionLag is one partition's position for a consumer group.
type PartitionLag struct {
	Partition int `json:"partition"`
	// Committed is the group's committed offset (the next record it will
	// read), -1 when the group has committed nothing on this partition.
	Committed int64 `json:"committed"`
	// Start and End are the partition's first retained offset and its end
	// (high watermark: the offset the next record will get).
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// Lag is End minus the committed offset (or minus Start when nothing
	// is committed: a new group reads from the first retained record).
	Lag int64 `json:"lag"`
}

// Lag is a consumer group's lag on a topic: how many records wait for it,
// the Kafka meaning of "messages ready on the queue" on RabbitMQ.
type Lag struct {
	Topic      string         `json:"topic"`
	Group      string         `json:"group"`
	Total      int64          `json:"total"`
	Partitions []PartitionLag `json:"partitions"`
}

// GroupLag computes the lag of group on topic from the group's committed
// offsets against the partitions' end offsets: records fetched but not yet
// committed count as waiting, as unacknowledged messages do on RabbitMQ.
func GroupLag(ctx context.Context, client *kafkago.Client, topic, group string) (Lag, error) {
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return Lag{}, fmt.Errorf("kafka lag: metadata of %s: %w", topic, err)
	}
	var parts []int
	for _, t := range meta.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return Lag{}, fmt.Errorf("kafka lag: topic %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	if len(parts) == 0 {
		return Lag{}, fmt.Errorf("kafka lag: topic %s has no partitions", topic)
	}
	sort.Ints(parts)
	// Two requests: a broker may refuse the same partition twice in one,
	// and the answer does not say which of the two it is.
	var offs []kafkago.PartitionOffsets
	for _, which := range []int64{kafkago.FirstOffset, kafkago.LastOffset} {
		reqs := make([]kafkago.OffsetRequest, len(parts))
		for i, p := range parts {
			reqs[i] = kafkago.OffsetRequest{Partition: p, Timestamp: which}
		}
		r, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
		if err != nil {
			return Lag{}, fmt.Errorf("kafka lag: offsets of %s: %w", topic, err)
		}
		for _, po := range r.Topics[topic] {
			offs = append(offs, normalise(po, which))
		}
	}
	committed, err := client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return Lag{}, fmt.Errorf("kafka lag: committed offsets of group %s: %w", group, err)
	}
	switch {
	case errors.Is(committed.Error, kafkago.GroupIdNotFound):
		// A group that never committed (Kafka answers -1 offsets, some
		// brokers this error): everything waits.
		return lagOf(topic, group, parts, offs, nil)
	case committed.Error != nil:
		return Lag{}, fmt.Errorf("kafka lag: committed offsets of group %s: %w", group, committed.Error)
	}
	return lagOf(topic, group, parts, offs, committed.Topics[topic])
}

func lagOf(topic, group string, parts []int, offs []kafkago.PartitionOffsets, committed []kafkago.OffsetFetchPartition) (Lag, error) {
	byPart := map[int]*PartitionLag{}
	out := Lag{Topic: topic, Group: group, Partitions: make([]PartitionLag, len(parts))}
	for i, p := range parts {
		out.Partitions[i] = PartitionLag{Partition: p, Committed: -1, Start: -1, End: -1}
		byPart[p] = &out.Partitions[i]
	}
	for _, o := range offs {
		pl := byPart[o.Partition]
		if pl == nil {
			continue
		}
		if o.Error != nil {
			return Lag{}, fmt.Errorf("kafka lag: offsets of %s/%d: %w", topic, o.Partition, o.Error)
		}
		// -1: not asked in this request (kafka-go fills both fields).
		if o.FirstOffset >= 0 {
			pl.Start = o.FirstOffset
		}
		if o.LastOffset >= 0 {
			pl.End = o.LastOffset
		}
	}
	for _, c := range committed {
		pl := byPart[c.Partition]
		if pl == nil {
			continue
		}
		if c.Error != nil {
			return Lag{}, fmt.Errorf("kafka lag: committed offset of group %s on %s/%d: %w", group, topic, c.Partition, c.Error)
		}
		pl.Committed = c.CommittedOffset
	}
	for i := range out.Partitions {
		pl := &out.Partitions[i]
		if pl.End < 0 {
			return Lag{}, fmt.Errorf("kafka lag: no end offset for %s/%d", topic, pl.Partition)
		}
		from := pl.Committed
		if from < 0 {
			from = max(pl.Start, 0)
		}
		pl.Lag = max(pl.End-from, 0)
		out.Total += pl.Lag
	}
	return out, nil
}

// normalise returns po with only the offset asked for (which: FirstOffset or
// LastOffset) set, the other -1. kafka-go files an answer by the timestamp
// the broker echoes, and brokers answer "earliest" with timestamp -1 (the
// value that also means "latest") since ListOffsets v1, so the answer may
// sit in either field, or in Offsets.
func normalise(po kafkago.PartitionOffsets, which int64) kafkago.PartitionOffsets {
	v := int64(-1)
	switch {
	case len(po.Offsets) > 0:
		for o := range po.Offsets {
			v = o
		}
	case which == kafkago.FirstOffset && po.LastOffset >= 0:
		v = po.LastOffset
	case which == kafkago.FirstOffset:
		v = po.FirstOffset
	default:
		v = po.LastOffset
	}
	po.FirstOffset, po.LastOffset = -1, -1
	if which == kafkago.FirstOffset {
		po.FirstOffset = v
	} else {
		po.LastOffset = v
	}
	return po
}

// CommitOffsets commits offsets (partition → next offset to read) for
// group on topic as a standalone consumer (generation -1), the way a tool
// that is not a group member records its progress; Kafka accepts it while
// the group has no active members.
func CommitOffsets(ctx context.Context, client *kafkago.Client, topic, group string, offsets map[int]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	parts := make([]kafkago.OffsetCommit, 0, len(offsets))
	for p, o := range offsets {
		parts = append(parts, kafkago.OffsetCommit{Partition: p, Offset: o})
	}
	resp, err := client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{topic: parts}})
	if err != nil {
		return fmt.Errorf("commit offsets of group %s on %s: %w", group, topic, err)
	}
	var errs []error
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				errs = append(errs, fmt.Errorf("partition %d: %w", p.Partition, p.Error))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("commit offsets of group %s on %s: %w", group, topic, errors.Join(errs...))
	}
	return nil
}
