// Package pipelinetest holds in-memory implementations of everything the
// consumer pipeline talks to — a bus (Source), stores (Sink), the cutover
// state store, the gap ledger and the dead-letter writer — so that the
// pipeline's ordering, phase and failure logic is tested in seconds without
// services. Each can be switched down and up, and records what it saw.
package pipelinetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/telemetry"
)

// ErrDown is what a component switched down returns.
var ErrDown = errors.New("in-memory store down")

// Settlement is one ack or nack the Source received, in the order received.
type Settlement struct {
	Batch uint64   // the batch's number, from 1 in read order
	IDs   []string // its messages' IDs
	Err   error    // nil: acked; otherwise nacked with this error
}

// Source is an in-memory bus. Publish queues messages; ReadBatch hands
// them out in numbered batches; an ack removes a batch for good and a nack
// puts its messages back at the head of the queue (the bus redelivers them).
// It records every settlement and every one made out of read order.
type Source struct {
	mu          sync.Mutex
	queue       []source.Message
	arrived     chan struct{} // closed and replaced when messages arrive
	read        uint64        // batches handed out
	lastSettled uint64
	settlements []Settlement
	outOfOrder  []string
	acked       map[string]int // message ID -> times acked
	unsettled   map[uint64][]source.Message
	closed      bool
}

var _ source.Source = (*Source)(nil)

// NewSource returns an empty bus.
func NewSource() *Source {
	return &Source{arrived: make(chan struct{}), acked: map[string]int{}, unsettled: map[uint64][]source.Message{}}
}

// Publish queues msgs at the tail.
func (s *Source) Publish(msgs ...source.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, msgs...)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// ReadBatch returns up to max queued messages, waiting for the first one
// until ctx ends and for more up to linger. With an ended ctx it returns
// ctx's error and hands out nothing.
func (s *Source) ReadBatch(ctx context.Context, max int, linger time.Duration) ([]source.Message, source.AckFunc, error) {
	var lingerEnd <-chan time.Time
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		s.mu.Lock()
		arrived := s.arrived
		n := len(s.queue)
		if n > 0 && (n >= max || linger <= 0 || (lingerEnd != nil && expired(lingerEnd))) {
			return s.take(max)
		}
		s.mu.Unlock()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if n > 0 && lingerEnd == nil {
			lingerEnd = time.After(linger)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-arrived:
		case <-lingerEnd:
		}
	}
}

func expired(c <-chan time.Time) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// take hands out a batch; s.mu is held and released.
func (s *Source) take(max int) ([]source.Message, source.AckFunc, error) {
	defer s.mu.Unlock()
	n := min(max, len(s.queue))
	msgs := slices.Clone(s.queue[:n])
	s.queue = s.queue[n:]
	s.read++
	batch := s.read
	s.unsettled[batch] = msgs
	return msgs, func(_ context.Context, err error) error { return s.settle(batch, msgs, err) }, nil
}

func (s *Source) settle(batch uint64, msgs []source.Message, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if batch != s.lastSettled+1 {
		s.outOfOrder = append(s.outOfOrder, fmt.Sprintf("batch %d settled after batch %d", batch, s.lastSettled))
	}
	s.lastSettled = max(s.lastSettled, batch)
	delete(s.unsettled, batch)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	s.settlements = append(s.settlements, Settlement{Batch: batch, IDs: ids, Err: err})
	if err != nil {
		s.queue = append(slices.Clone(msgs), s.queue...)
		close(s.arrived)
		s.arrived = make(chan struct{})
		return nil
	}
	for _, id := range ids {
		s.acked[id]++
	}
	return nil
}

// Lag returns how many messages wait.
func (s *Source) Lag(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.queue)), nil
}

// Check fails once the source is closed.
func (s *Source) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("source closed")
	}
	return nil
}

// Close marks the source closed; the messages of batches not settled go
// back to the queue, as a broker returns a closed channel's deliveries.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for b := uint64(1); b <= s.read; b++ {
		if msgs, ok := s.unsettled[b]; ok {
			s.queue = append(s.queue, msgs...)
			delete(s.unsettled, b)
		}
	}
	return nil
}

// Closed reports whether Close was called.
func (s *Source) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Settlements returns the acks and nacks so far, in the order received.
func (s *Source) Settlements() []Settlement {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.settlements)
}

// OutOfOrder describes every settlement made out of read order.
func (s *Source) OutOfOrder() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outOfOrder)
}

// Acked returns how many distinct messages were acked, and how many acks
// were for a message acked before.
func (s *Source) Acked() (distinct, again int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.acked {
		distinct++
		again += n - 1
	}
	return distinct, again
}

// WasAcked reports whether the message with this ID was acked.
func (s *Source) WasAcked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[id] > 0
}

// Queued returns how many messages wait.
func (s *Source) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// switchable is the down/up switch the stores share.
type switchable struct {
	mu   sync.Mutex
	down bool
}

// SetDown makes every call fail with ErrDown until SetUp.
func (w *switchable) SetDown() { w.mu.Lock(); w.down = true; w.mu.Unlock() }

// SetUp makes calls succeed again.
func (w *switchable) SetUp() { w.mu.Lock(); w.down = false; w.mu.Unlock() }

// Sink is an in-memory store: idempotent by reading key, switchable down,
// with an optional hook run before every write (to block or slow one).
type Sink struct {
	switchable
	// Hook, if set, runs before each write with its records, outside any
	// lock; set it before the pipeline starts.
	Hook     func(ctx context.Context, recs []telemetry.Record)
	records  map[telemetry.Key]int // key -> times written
	writes   int                   // Write calls
	failures int                   // Write calls that failed
	pings    int
}

// NewSink returns an empty store that is up.
func NewSink() *Sink { return &Sink{records: map[telemetry.Key]int{}} }

// Write stores recs, or fails with ErrDown.
func (s *Sink) Write(ctx context.Context, recs []telemetry.Record) error {
	if s.Hook != nil {
		s.Hook(ctx, recs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.down {
		s.failures++
		return ErrDown
	}
	if err := ctx.Err(); err != nil {
		s.failures++
		return err
	}
	for i := range recs {
		s.records[recs[i].Key()]++
	}
	return nil
}

// Ping fails while the store is down.
func (s *Sink) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pings++
	if s.down {
		return ErrDown
	}
	return nil
}

// Has reports whether the reading is stored.
func (s *Sink) Has(k telemetry.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[k] > 0
}

// Len returns how many distinct readings are stored.
func (s *Sink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

// Writes returns the Write calls so far and how many of them failed.
func (s *Sink) Writes() (calls, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes, s.failures
}

// Pings returns the Ping calls so far.
func (s *Sink) Pings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings
}

// State is an in-memory cutover state store.
type State struct {
	switchable
	st     cutover.State
	reads  int
	beats  []cutover.Heartbeat
	forgot []string
}

// NewState returns a state store in phase.
func NewState(phase cutover.Phase) *State {
	return &State{st: cutover.State{Phase: phase, Version: 1, Actor: "test"}}
}

// SetPhase changes the phase, as 'migrate advance' does.
func (s *State) SetPhase(phase cutover.Phase) cutover.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = cutover.State{Phase: phase, Version: s.st.Version + 1, Actor: "test", Since: time.Now()}
	return s.st
}

// Current returns the state.
func (s *State) Current(context.Context) (cutover.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.down {
		return cutover.State{}, ErrDown
	}
	return s.st, nil
}

// Reads returns how many times Current was called.
func (s *State) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// Beat records a heartbeat.
func (s *State) Beat(_ context.Context, hb cutover.Heartbeat) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return ErrDown
	}
	s.beats = append(s.beats, hb)
	return nil
}

// LastBeat returns the latest heartbeat (ok false before the first).
func (s *State) LastBeat() (hb cutover.Heartbeat, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.beats) == 0 {
		return cutover.Heartbeat{}, false
	}
	return s.beats[len(s.beats)-1], true
}

// Forget records that a consumer removed its heartbeat.
func (s *State) Forget(_ context.Context, consumerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgot = append(s.forgot, consumerID)
	return nil
}

// Forgotten returns the consumers that removed their heartbeat.
func (s *State) Forgotten() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.forgot)
}

// Ledger is an in-memory gap ledger.
type Ledger struct {
	switchable
	gaps     []cutover.Gap
	failures int
}

// RecordGaps records gaps, or fails while down.
func (l *Ledger) RecordGaps(_ context.Context, gaps []cutover.Gap) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		l.failures++
		return ErrDown
	}
	l.gaps = append(l.gaps, gaps...)
	return nil
}

// Gaps returns the recorded gaps.
func (l *Ledger) Gaps() []cutover.Gap {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.gaps)
}

// Failures returns how many RecordGaps calls failed.
func (l *Ledger) Failures() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures
}

// Readings returns how many readings the gaps of sink cover.
func (l *Ledger) Readings(sink string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, g := range l.gaps {
		if g.Sink == sink {
			n += g.Readings
		}
	}
	return n
}

// DeadLetters is an in-memory dead-letter writer.
type DeadLetters struct {
	switchable
	letters []dlq.Letter
}

var _ dlq.Writer = (*DeadLetters)(nil)

// Write records letters, or fails while down.
func (d *DeadLetters) Write(_ context.Context, letters []dlq.Letter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return ErrDown
	}
	d.letters = append(d.letters, letters...)
	return nil
}

// Letters returns the letters written.
func (d *DeadLetters) Letters() []dlq.Letter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.letters)
}
