package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/telemetry"
)

// Sink stores records durably. Write must be idempotent: the same reading
// written twice is stored once. It returns nil only when every record is
// durable.
type Sink interface {
	Write(ctx context.Context, recs []telemetry.Record) error
}

// Pinger is implemented by sinks that can say whether they answer; the
// pipeline pings a repairable sink that failed to learn when it is back.
type Pinger interface {
	Ping(ctx context.Context) error
}

// SinkSpec is one store the pipeline writes.
type SinkSpec struct {
	// Name is the ledger's sink name: cutover.SinkLegacy or cutover.SinkInflux.
	Name string
	Sink Sink
	// Attempts is how many times a repairable write is tried before the
	// failure goes to the gap ledger (default 1: for sinks that retry on
	// their own, like the InfluxDB writer).
	Attempts int
}

// sinkState is a sink with its health: down after a failed write, up again
// after a successful write or ping.
type sinkState struct {
	SinkSpec
	role func(cutover.Phase) cutover.Role

	mu        sync.Mutex
	down      bool
	downSince time.Time
	lastErr   error
}

func (s *sinkState) setDown(err error, now time.Time) (changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err
	if s.down {
		return false
	}
	s.down, s.downSince = true, now
	return true
}

func (s *sinkState) setUp() (changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return false
	}
	s.down, s.lastErr = false, nil
	return true
}

// health returns whether the sink is down and why.
func (s *sinkState) health() (down bool, since time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down, s.downSince, s.lastErr
}

func (s *sinkState) check() error {
	down, since, err := s.health()
	if !down {
		return nil
	}
	return fmt.Errorf("%s store down since %s: %w", s.Name, since.UTC().Format(time.RFC3339), err)
}

// roleFor returns the role of the named sink in phase p.
func roleFor(name string) func(cutover.Phase) cutover.Role {
	return func(p cutover.Phase) cutover.Role {
		l, i := p.Roles()
		if name == cutover.SinkLegacy {
			return l
		}
		return i
	}
}

// errSinkDown is the ledger reason while a repairable sink's breaker is open.
var errSinkDown = errors.New("store down")
