package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	sharedkafka "github.com/flexipack/cutover/shared/kafka"
)

// KafkaOptions configure the Kafka source.
type KafkaOptions struct {
	Cluster sharedkafka.Config
	Topic   string
	// GroupID is the alert service's own consumer group, so that it reads
	// every message beside the consumers' group.
	GroupID string
	// QueueCapacity is how many fetched messages the reader buffers ahead.
	QueueCapacity int
}

// Kafka reads the telemetry topic in the alert service's own consumer
// group and commits a batch's offsets only when the batch is acked (after
// its state is stored). A batch settled with an error is not committed: the
// reader is replaced and resumes from the group's committed offsets.
type Kafka struct {
	group *sharedkafka.GroupReader
}

var _ Source = (*Kafka)(nil)

var errKafkaClosed = errors.New("kafka source closed")

// NewKafka returns a Kafka source; it connects on the first ReadBatch.
func NewKafka(opts KafkaOptions, logger *slog.Logger) (*Kafka, error) {
	if opts.Topic == "" || opts.GroupID == "" {
		return nil, errors.New("kafka source: a topic (--kafka-topic) and a consumer group (--kafka-group) are required")
	}
	if err := opts.Cluster.Validate(); err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	if opts.QueueCapacity <= 0 {
		opts.QueueCapacity = 2000
	}
	dialer, err := opts.Cluster.Dialer()
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	logger = logger.With("component", "alert-kafka-source", "topic", opts.Topic, "group", opts.GroupID)
	group := sharedkafka.NewGroupReader(opts.Cluster.Brokers, dialer, sharedkafka.GroupOptions{
		Topic: opts.Topic, GroupID: opts.GroupID, QueueCapacity: opts.QueueCapacity}, logger)
	return &Kafka{group: group}, nil
}

// ReadBatch implements Source.
func (k *Kafka) ReadBatch(ctx context.Context, max int, linger time.Duration) ([]Message, AckFunc, error) {
	b, err := k.group.FetchBatch(ctx, max, linger)
	if errors.Is(err, sharedkafka.ErrGroupClosed) {
		return nil, nil, errKafkaClosed
	}
	if err != nil {
		return nil, nil, err
	}
	msgs := make([]Message, len(b.Messages))
	for i := range b.Messages {
		msgs[i] = Message{Body: b.Messages[i].Value, Timestamp: b.Messages[i].Time}
	}
	return msgs, func(failure error) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := k.group.Settle(ctx, b, failure)
		if errors.Is(err, sharedkafka.ErrStaleBatch) {
			return ErrStale
		}
		return err
	}, nil
}

// Check implements Source: kafka-go reconnects on its own; ready unless closed.
func (k *Kafka) Check(context.Context) error {
	if k.group.Closed() {
		return errKafkaClosed
	}
	return nil
}

// Close leaves the group; uncommitted messages are read again.
func (k *Kafka) Close() error { return k.group.Close() }
