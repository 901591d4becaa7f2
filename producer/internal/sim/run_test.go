package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/bus"
)

// memPublisher records what it is given; failEvery makes every n-th
// Publish fail, to exercise retries.
type memPublisher struct {
	mu        sync.Mutex
	msgs      []bus.Message
	calls     int
	failEvery int
}

func (p *memPublisher) Publish(_ context.Context, msgs []bus.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.failEvery > 0 && p.calls%p.failEvery == 0 {
		return errors.New("injected failure")
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *memPublisher) Close() error { return nil }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRunCountUnpaced(t *testing.T) {
	pub := &memPublisher{failEvery: 7}
	cfg := RunConfig{Fleet: Config{Units: 50, Gen1Share: 0.3, Seed: 1, BadRatio: 0.1}, Count: 5000, TimeScale: 0}
	now := time.Now()
	s, err := Run(context.Background(), cfg, pub, discard, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if s.Messages != 5000 {
		t.Fatalf("summary says %d messages, want 5000", s.Messages)
	}
	if s.Retries == 0 {
		t.Fatal("no retries counted despite injected failures")
	}
	// Retried batches may have been stored twice; count distinct ids.
	ids := map[string]bool{}
	for _, m := range pub.msgs {
		ids[m.ID] = true
	}
	if len(ids) != 5000 {
		t.Fatalf("%d distinct messages published, want 5000", len(ids))
	}
	if s.SimEnd.After(time.Now()) || s.SimStart.After(now) {
		t.Fatalf("simulated %s..%s runs past now", s.SimStart, s.SimEnd)
	}
	if s.Readings == 0 || s.BadMessages == 0 || s.Gen1Messages == 0 || s.Gen2Messages == 0 {
		t.Fatalf("summary %+v", s)
	}
	// Each unit's messages arrive in seq order (one worker per unit).
	last := map[string]int64{}
	for _, m := range pub.msgs {
		if m.Headers["sim_bad"] != "" || m.Headers[bus.HeaderSamples] != "1" {
			continue
		}
		seq, _ := strconv.ParseInt(m.ID[len(m.Key)+1:], 10, 64)
		if seq < last[m.Key] {
			t.Fatalf("%s: seq %d after %d", m.Key, seq, last[m.Key])
		}
		last[m.Key] = seq
	}
}

func TestRunTimeScaleDuration(t *testing.T) {
	pub := &memPublisher{}
	// One simulated hour in 1.5 s: 360 ticks of 10 s for 4 units.
	cfg := RunConfig{Fleet: Config{Units: 4, Seed: 2, OfflineProb: -1}, Duration: 1500 * time.Millisecond, TimeScale: 2400}
	begin := time.Now()
	s, err := Run(context.Background(), cfg, pub, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	if took < 1400*time.Millisecond || took > 4*time.Second {
		t.Fatalf("run took %s, want about 1.5 s", took)
	}
	span := s.SimEnd.Sub(s.SimStart)
	if span < 50*time.Minute || span > 61*time.Minute {
		t.Fatalf("simulated %s, want about an hour", span)
	}
	if s.SimEnd.After(time.Now()) {
		t.Fatalf("simulated end %s is in the future", s.SimEnd)
	}
	if s.Messages != int64(len(pub.msgs)) || s.Messages < 4*300 {
		t.Fatalf("%d messages (%d published)", s.Messages, len(pub.msgs))
	}
}

func TestRunRateCap(t *testing.T) {
	pub := &memPublisher{}
	cfg := RunConfig{Fleet: Config{Units: 10, Seed: 3}, Count: 300, Rate: 500}
	begin := time.Now()
	s, err := Run(context.Background(), cfg, pub, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 450*time.Millisecond {
		t.Fatalf("300 messages at 500/s took %s", took)
	}
	if s.Messages != 300 {
		t.Fatalf("%d messages", s.Messages)
	}
}

func TestRunInterruptedStillCounts(t *testing.T) {
	pub := &memPublisher{}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Real time from now: nothing can be generated before a tick ends.
	cfg := RunConfig{Fleet: Config{Units: 3, Seed: 4, Cadence: time.Second}, TimeScale: 1}
	s, err := Run(ctx, cfg, pub, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Interrupted || s.Messages != int64(len(pub.msgs)) {
		t.Fatalf("summary %+v, %d published", s, len(pub.msgs))
	}
}

func TestRunRejectsStartBefore2015(t *testing.T) {
	_, err := Run(context.Background(), RunConfig{Fleet: Config{Units: 1}, Count: 1e9}, &memPublisher{}, discard, nil)
	if err == nil {
		t.Fatal("want an error for a start before 2015")
	}
}
