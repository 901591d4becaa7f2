package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// ErrGroupClosed is returned by FetchBatch once the GroupReader is closed.
var ErrGroupClosed = errors.New("kafka group reader closed")

// ErrStaleBatch is returned by Settle for a batch read by a reader that has
// since been replaced (after a failed batch) or closed: its offsets can no
// longer be committed, and its messages will be read again.
var ErrStaleBatch = errors.New("kafka batch from a replaced reader")

// GroupOptions configure a GroupReader.
type GroupOptions struct {
	Topic   string
	GroupID string
	// QueueCapacity is how many fetched messages the reader buffers ahead.
	QueueCapacity int
	// SessionTimeout is how long the group waits for a silent member; the
	// heartbeat is a third of it and the rebalance timeout equals it. Zero
	// keeps kafka-go's defaults.
	SessionTimeout time.Duration
}

// GroupReader reads a topic as a member of a consumer group. It commits a
// batch's offsets (synchronously) only when the batch is settled without
// an error. A batch settled with an error is not committed: the reader is
// closed and a new one opened on the next fetch, which resumes from the
// group's committed offsets, so the batch (and whatever was fetched after
// it) is read again.
type GroupReader struct {
	brokers []string
	opts    GroupOptions
	dialer  *kafkago.Dialer
	logger  *slog.Logger

	mu     sync.Mutex
	reader *kafkago.Reader // nil until the first fetch or after a failed batch
	gen    uint64          // bumped when the reader is replaced
	closed bool
}

// NewGroupReader returns a GroupReader on brokers through dialer; it
// connects on the first FetchBatch. logger receives kafka-go's errors.
func NewGroupReader(brokers []string, dialer *kafkago.Dialer, opts GroupOptions, logger *slog.Logger) *GroupReader {
	return &GroupReader{brokers: brokers, opts: opts, dialer: dialer, logger: logger}
}

// Batch is what one FetchBatch read, with what settling it needs.
type Batch struct {
	Messages []kafkago.Message
	reader   *kafkago.Reader
	gen      uint64
	commits  []kafkago.Message // the newest message per partition
}

func (g *GroupReader) current() (*kafkago.Reader, uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, 0, ErrGroupClosed
	}
	if g.reader == nil {
		g.reader = kafkago.NewReader(kafkago.ReaderConfig{
			Brokers:           g.brokers,
			Dialer:            g.dialer,
			SessionTimeout:    g.opts.SessionTimeout,
			HeartbeatInterval: g.opts.SessionTimeout / 3, // as Kafka recommends
			RebalanceTimeout:  g.opts.SessionTimeout,
			GroupID:           g.opts.GroupID,
			Topic:             g.opts.Topic,
			MinBytes:          1,
			MaxBytes:          16 << 20,
			MaxWait:           250 * time.Millisecond,
			QueueCapacity:     g.opts.QueueCapacity,
			CommitInterval:    0, // synchronous commits: CommitMessages returns once stored
			StartOffset:       kafkago.FirstOffset,
			ErrorLogger:       kafkago.LoggerFunc(func(msg string, args ...any) { g.logger.Warn(fmt.Sprintf(msg, args...)) }),
		})
		g.gen++
	}
	return g.reader, g.gen, nil
}

// FetchBatch waits for one message, then gathers up to max (at least one)
// for at most linger more.
func (g *GroupReader) FetchBatch(ctx context.Context, max int, linger time.Duration) (*Batch, error) {
	if max <= 0 {
		max = 1
	}
	r, gen, err := g.current()
	if err != nil {
		return nil, err
	}
	first, err := r.FetchMessage(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("fetch from %s: %w", g.opts.Topic, err)
	}
	raw := make([]kafkago.Message, 0, max)
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
	last := map[int]kafkago.Message{}
	for i := range raw {
		if l, ok := last[raw[i].Partition]; !ok || raw[i].Offset > l.Offset {
			last[raw[i].Partition] = raw[i]
		}
	}
	commits := make([]kafkago.Message, 0, len(last))
	for _, m := range last {
		commits = append(commits, m)
	}
	return &Batch{Messages: raw, reader: r, gen: gen, commits: commits}, nil
}

// Settle commits b's offsets if failure is nil. Otherwise it closes the
// reader that read b (the group then resumes from the last commit) and
// returns what closing it returned. A batch from a replaced reader gets
// ErrStaleBatch.
func (g *GroupReader) Settle(ctx context.Context, b *Batch, failure error) error {
	g.mu.Lock()
	stale := g.gen != b.gen || g.reader != b.reader
	g.mu.Unlock()
	if stale {
		return ErrStaleBatch
	}
	if failure == nil {
		if err := b.reader.CommitMessages(ctx, b.commits...); err != nil {
			return fmt.Errorf("commit offsets: %w", err)
		}
		return nil
	}
	// Not committing is not enough: the reader has moved past these
	// messages. Replace it so the group resumes from the last commit.
	g.mu.Lock()
	if g.reader == b.reader {
		g.reader = nil
	}
	g.mu.Unlock()
	return b.reader.Close()
}

// Closed reports whether Close was called.
func (g *GroupReader) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Close leaves the group; uncommitted messages are read again by whichever
// member gets their partitions.
func (g *GroupReader) Close() error {
	g.mu.Lock()
	r := g.reader
	g.reader, g.closed = nil, true
	g.mu.Unlock()
	if r != nil {
		if err := r.Close(); err != nil {
			return fmt.Errorf("close kafka reader: %w", err)
		}
	}
	return nil
}
