package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	sharedkafka "github.com/flexipack/cutover/shared/kafka"
)

// KafkaOptions configure a Kafka source.
type KafkaOptions struct {
	// Cluster is how to reach the brokers (TLS, SASL).
	Cluster sharedkafka.Config
	Topic   string
	GroupID string
	// QueueCapacity is how many fetched messages the reader buffers ahead
	// (the Kafka counterpart of a prefetch).
	QueueCapacity int
	// SessionTimeout is how long the group waits for a silent member (a
	// killed process) before giving its partitions to the others
	// (default 10 s; the broker's minimum is usually 6 s).
	SessionTimeout time.Duration
}

// Kafka reads a topic as a member of a consumer group. It commits a batch's
// offsets (synchronously) only when the batch is acked, that is after the
// records are durable; several consumers in one group share the partitions.
// A batch settled with an error is not committed: the source closes its
// reader and opens a new one, which resumes from the group's committed
// offsets, so the batch (and whatever was fetched after it) is read again.
type Kafka struct {
	opts   KafkaOptions
	logger *slog.Logger
	client *kafka.Client
	group  *sharedkafka.GroupReader
}

var _ Source = (*Kafka)(nil)

// NewKafka returns a Kafka source; it connects on the first ReadBatch.
func NewKafka(opts KafkaOptions, logger *slog.Logger) (*Kafka, error) {
	switch {
	case opts.Topic == "":
		return nil, errors.New("kafka source: no topic (--kafka-topic)")
	case opts.GroupID == "":
		return nil, errors.New("kafka source: no consumer group (--kafka-group)")
	}
	if opts.QueueCapacity <= 0 {
		opts.QueueCapacity = 4000
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	dialer, err := opts.Cluster.Dialer()
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	client, err := opts.Cluster.Client()
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	logger = logger.With("component", "kafka-source", "topic", opts.Topic, "group", opts.GroupID)
	group := sharedkafka.NewGroupReader(opts.Cluster.Brokers, dialer, sharedkafka.GroupOptions{
		Topic: opts.Topic, GroupID: opts.GroupID, QueueCapacity: opts.QueueCapacity, SessionTimeout: opts.SessionTimeout}, logger)
	return &Kafka{opts: opts, client: client, group: group, logger: logger}, nil
}

// ReadBatch implements Source.
func (k *Kafka) ReadBatch(ctx context.Context, max int, linger time.Duration) ([]Message, AckFunc, error) {
	b, err := k.group.FetchBatch(ctx, max, linger)
	if errors.Is(err, sharedkafka.ErrGroupClosed) {
		return nil, nil, ErrStopped
	}
	if err != nil {
		return nil, nil, err
	}
	msgs := make([]Message, len(b.Messages))
	for i := range b.Messages {
		msgs[i] = fromKafka(&b.Messages[i])
	}
	return msgs, k.ackFunc(b), nil
}

func fromKafka(m *kafka.Message) Message {
	h := make(map[string]any, len(m.Headers))
	for _, kh := range m.Headers {
		h[kh.Key] = string(kh.Value)
	}
	// shared/kafka's publisher writes message_id; "message-id" is what
	// earlier dead letters carried.
	id, _ := h[sharedkafka.HeaderMessageID].(string)
	if id == "" {
		id, _ = h["message-id"].(string)
	}
	return Message{ID: id, RoutingKey: m.Topic, Key: string(m.Key), Headers: h, Timestamp: m.Time, Body: m.Value}
}

func (k *Kafka) ackFunc(b *sharedkafka.Batch) AckFunc {
	return func(ctx context.Context, failure error) error {
		err := k.group.Settle(ctx, b, failure)
		switch {
		case errors.Is(err, sharedkafka.ErrStaleBatch):
			return ErrStale
		case failure != nil && err != nil:
			k.logger.Warn("close reader after a failed batch", "err", err)
			return nil
		}
		return err
	}
}

// Lag implements Source: the group's committed offsets against the
// partitions' end offsets, summed over the topic (records fetched and not
// yet committed count, as unacknowledged messages do on RabbitMQ).
func (k *Kafka) Lag(ctx context.Context) (int64, error) {
	l, err := sharedkafka.GroupLag(ctx, k.client, k.opts.Topic, k.opts.GroupID)
	if err != nil {
		return 0, err
	}
	return l.Total, nil
}

// Check implements Source: ready while not closed and the cluster answers
// a metadata request for the topic.
func (k *Kafka) Check(ctx context.Context) error {
	if k.group.Closed() {
		return ErrStopped
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return sharedkafka.TopicReady(ctx, k.client, k.opts.Topic)
}

// Close leaves the group; uncommitted messages are read again by whichever
// member gets their partitions.
func (k *Kafka) Close() error { return k.group.Close() }
