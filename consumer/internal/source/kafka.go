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
	dialer *kafka.Dialer
	client *kafka.Client

	mu     sync.Mutex
	reader *kafka.Reader // nil until the first read or after a nack
	gen    uint64        // bumped when the reader is replaced
	closed bool
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
	return &Kafka{opts: opts, dialer: dialer, client: client,
		logger: logger.With("component", "kafka-source", "topic", opts.Topic, "group", opts.GroupID)}, nil
}

func (k *Kafka) current() (*kafka.Reader, uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, 0, ErrStopped
	}
	if k.reader == nil {
		k.reader = kafka.NewReader(kafka.ReaderConfig{
			Brokers:        k.opts.Cluster.Brokers,
			Dialer:         k.dialer,
			SessionTimeout: k.opts.SessionTimeout,
			// A third of the session, as Kafka recommends.
			HeartbeatInterval: k.opts.SessionTimeout / 3,
			RebalanceTimeout:  k.opts.SessionTimeout,
			GroupID:           k.opts.GroupID,
			Topic:             k.opts.Topic,
			MinBytes:          1,
			MaxBytes:          16 << 20,
			MaxWait:           250 * time.Millisecond,
			QueueCapacity:     k.opts.QueueCapacity,
			CommitInterval:    0, // synchronous commits: CommitMessages returns once stored
			StartOffset:       kafka.FirstOffset,
			ErrorLogger:       kafka.LoggerFunc(func(msg string, args ...any) { k.logger.Warn(fmt.Sprintf(msg, args...)) }),
		})
		k.gen++
	}
	return k.reader, k.gen, nil
}

// ReadBatch implements Source.
func (k *Kafka) ReadBatch(ctx context.Context, max int, linger time.Duration) ([]Message, AckFunc, error) {
	if max <= 0 {
		max = 1
	}
	r, gen, err := k.current()
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
	raw := make([]kafka.Message, 0, max)
	raw = append(raw, first)
	if linger > 0 {
		lctx, cancel := context.WithTimeout(ctx, linger)
		for len(raw) < max {
			m, err := r.FetchMessage(lctx)
			if err != nil {
				break
			}
			raw = append(raw, m)
		}
		cancel()
	}
	msgs := make([]Message, len(raw))
	// The last message per partition is what a commit needs.
	last := map[int]kafka.Message{}
	for i := range raw {
		msgs[i] = fromKafka(&raw[i])
		if l, ok := last[raw[i].Partition]; !ok || raw[i].Offset > l.Offset {
			last[raw[i].Partition] = raw[i]
		}
	}
	commits := make([]kafka.Message, 0, len(last))
	for _, m := range last {
		commits = append(commits, m)
	}
	return msgs, k.ackFunc(r, gen, commits), nil
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

func (k *Kafka) ackFunc(r *kafka.Reader, gen uint64, commits []kafka.Message) AckFunc {
	return func(ctx context.Context, err error) error {
		k.mu.Lock()
		stale := k.gen != gen || k.reader != r
		k.mu.Unlock()
		if stale {
			return ErrStale
		}
		if err == nil {
			if cerr := r.CommitMessages(ctx, commits...); cerr != nil {
				return fmt.Errorf("commit offsets: %w", cerr)
			}
			return nil
		}
		// Not committing is not enough: the reader has moved past these
		// messages. Replace it so the group resumes from the last commit.
		k.mu.Lock()
		if k.reader == r {
			k.reader = nil
		}
		k.mu.Unlock()
		if cerr := r.Close(); cerr != nil {
			k.logger.Warn("close reader after a failed batch", "err", cerr)
		}
		return nil
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
	k.mu.Lock()
	closed := k.closed
	k.mu.Unlock()
	if closed {
		return ErrStopped
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return sharedkafka.TopicReady(ctx, k.client, k.opts.Topic)
}

// Close leaves the group; uncommitted messages are read again by whichever
// member gets their partitions.
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
