package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

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
	opts   KafkaOptions
	dialer *kafka.Dialer
	logger *slog.Logger

	mu     sync.Mutex
	reader *kafka.Reader
	closed bool
}

var _ Source = (*Kafka)(nil)

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
	return &Kafka{opts: opts, dialer: dialer, logger: logger.With("component", "alert-kafka-source", "topic", opts.Topic, "group", opts.GroupID)}, nil
}

func (k *Kafka) current() (*kafka.Reader, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, errors.New("kafka source closed")
	}
	if k.reader == nil {
		k.reader = kafka.NewReader(kafka.ReaderConfig{
			Brokers: k.opts.Cluster.Brokers, Dialer: k.dialer, GroupID: k.opts.GroupID, Topic: k.opts.Topic,
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: k.opts.QueueCapacity,
			CommitInterval: 0, // synchronous: CommitMessages returns once the offsets are stored
			StartOffset:    kafka.FirstOffset,
			ErrorLogger:    kafka.LoggerFunc(func(msg string, args ...any) { k.logger.Warn(fmt.Sprintf(msg, args...)) }),
		})
	}
	return k.reader, nil
}

// ReadBatch implements Source.
func (k *Kafka) ReadBatch(ctx context.Context, max int, linger time.Duration) ([]Message, AckFunc, error) {
	r, err := k.current()
	if err != nil {
		return nil, nil, err
	}
	first, err := r.FetchMessage(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("fetch from %s: %w", k.opts.Topic, err)
	}
	raw := []kafka.Message{first}
	lctx, cancel := context.WithTimeout(ctx, linger)
	for len(raw) < max {
		m, err := r.FetchMessage(lctx)
		if err != nil {
			break
		}
		raw = append(raw, m)
	}
	cancel()
	msgs := make([]Message, len(raw))
	last := map[int]kafka.Message{} // the newest message per partition is what a commit needs
	for i := range raw {
		msgs[i] = Message{Body: raw[i].Value, Timestamp: raw[i].Time}
		if l, ok := last[raw[i].Partition]; !ok || raw[i].Offset > l.Offset {
			last[raw[i].Partition] = raw[i]
		}
	}
	commits := make([]kafka.Message, 0, len(last))
	for _, m := range last {
		commits = append(commits, m)
	}
	return msgs, k.ackFunc(r, commits), nil
}

func (k *Kafka) ackFunc(r *kafka.Reader, commits []kafka.Message) AckFunc {
	return func(err error) error {
		k.mu.Lock()
		stale := k.reader != r
		k.mu.Unlock()
		if stale {
			return ErrStale
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if cerr := r.CommitMessages(ctx, commits...); cerr != nil {
				return fmt.Errorf("commit offsets: %w", cerr)
			}
			return nil
		}
		// The reader has moved past these messages: replace it so that the
		// group resumes from the last commit.
		k.mu.Lock()
		if k.reader == r {
			k.reader = nil
		}
		k.mu.Unlock()
		return r.Close()
	}
}

// Check implements Source: kafka-go reconnects on its own; ready unless closed.
func (k *Kafka) Check(context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errors.New("kafka source closed")
	}
	return nil
}

// Close leaves the group; uncommitted messages are read again.
func (k *Kafka) Close() error {
	k.mu.Lock()
	r := k.reader
	k.reader, k.closed = nil, true
	k.mu.Unlock()
	if r != nil {
		if err := r.Close(); err != nil {
			return fmt.Errorf("close kafka reader: %w", err)
		}
	}
	return nil
}
