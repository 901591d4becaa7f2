package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flexipack/cutover/shared/kafka"
)

// Kafka reads the telemetry topic as a member of the alert service's own
// consumer group, beside the consumers' group, so alerting and storing
// never slow each other. A batch's offsets are committed when it is acked;
// a nacked batch is read again (the reader is replaced and resumes from the
// group's committed offsets).
type Kafka struct {
	cluster kafka.Config
	dialer  *kafkago.Dialer
	client  *kafkago.Client
	topic   string
	group   string
	logger  *slog.Logger

	mu     sync.Mutex
	reader *kafkago.Reader // nil until the first read or after a nack
	closed bool
}

var _ Source = (*Kafka)(nil)

// NewKafka returns a source reading topic in group; it connects on the
// first ReadBatch.
func NewKafka(cluster kafka.Config, topic, group string, logger *slog.Logger) (*Kafka, error) {
	if topic == "" || group == "" {
		return nil, errors.New("alert kafka source: a topic and a consumer group are required")
	}
	dialer, err := cluster.Dialer()
	if err != nil {
		return nil, fmt.Errorf("alert kafka source: %w", err)
	}
	client, err := cluster.Client()
	if err != nil {
		return nil, fmt.Errorf("alert kafka source: %w", err)
	}
	return &Kafka{cluster: cluster, dialer: dialer, client: client, topic: topic, group: group,
		logger: logger.With("component", "alert-source", "topic", topic, "group", group)}, nil
}

func (k *Kafka) current() (*kafkago.Reader, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, errors.New("alert kafka source closed")
	}
	if k.reader == nil {
		k.reader = kafkago.NewReader(kafkago.ReaderConfig{Brokers: k.cluster.Brokers, Dialer: k.dialer, GroupID: k.group, Topic: k.topic,
			MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond, CommitInterval: 0, StartOffset: kafkago.LastOffset,
			SessionTimeout: 10 * time.Second, HeartbeatInterval: 3 * time.Second,
			ErrorLogger: kafkago.LoggerFunc(func(msg string, args ...any) { k.logger.Warn(fmt.Sprintf(msg, args...)) })})
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
		return nil, nil, fmt.Errorf("fetch from %s: %w", k.topic, err)
	}
	raw := []kafkago.Message{first}
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
	last := map[int]kafkago.Message{}
	starts := map[int]kafkago.Message{}
	for i := range raw {
		msgs[i] = Message{Body: raw[i].Value, Timestamp: raw[i].Time}
		if l, ok := last[raw[i].Partition]; !ok || raw[i].Offset > l.Offset {
			last[raw[i].Partition] = raw[i]
		}
		if f, ok := starts[raw[i].Partition]; !ok || raw[i].Offset < f.Offset {
			starts[raw[i].Partition] = raw[i]
		}
	}
	commits := make([]kafkago.Message, 0, len(last))
	for _, m := range last {
		commits = append(commits, m)
	}
	// A nack commits the batch's start (CommitMessages commits offset+1),
	// so the next reader resumes there even in a group that had committed
	// nothing yet and would otherwise start at the end of the topic.
	rewind := make([]kafkago.Message, 0, len(starts))
	for _, m := range starts {
		m.Offset--
		rewind = append(rewind, m)
	}
	return msgs, k.ackFunc(r, commits, rewind), nil
}

func (k *Kafka) ackFunc(r *kafkago.Reader, commits, rewind []kafkago.Message) AckFunc {
	return func(err error) error {
		k.mu.Lock()
		stale := k.reader != r
		if err != nil && !stale {
			k.reader = nil // the next read resumes from the committed offsets
		}
		k.mu.Unlock()
		if stale {
			return ErrStale
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err != nil {
			if cerr := r.CommitMessages(ctx, rewind...); cerr != nil {
				k.logger.Warn("record the failed batch's start", "err", cerr)
			}
			if cerr := r.Close(); cerr != nil {
				k.logger.Warn("close reader after a failed batch", "err", cerr)
			}
			return nil
		}
		if cerr := r.CommitMessages(ctx, commits...); cerr != nil {
			return fmt.Errorf("commit offsets: %w", cerr)
		}
		return nil
	}
}

// Check implements Source: the cluster answers a metadata request for the
// topic.
func (k *Kafka) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return kafka.TopicReady(ctx, k.client, k.topic)
}

// Close implements Source: leaves the group.
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
