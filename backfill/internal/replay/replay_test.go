package replay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/backfill/internal/spill"
	"github.com/flexipack/cutover/backfill/internal/throttle"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/window"
)

// slowWriter records what was written, taking a random time per batch so
// that concurrent batches finish out of order. The integration tests in
// backfill/internal/cmd cover the real InfluxDB writer.
type slowWriter struct {
	mu      sync.Mutex
	written map[telemetry.Key]int
}

func (w *slowWriter) Write(_ context.Context, recs []telemetry.Record) error {
	time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range recs {
		w.written[recs[i].Key()]++
	}
	return nil
}

type checkpoints struct {
	w    *slowWriter
	t    *testing.T
	done map[window.Key]int64
}

// WindowDone checks that every reading of the window was written before
// the window is checkpointed.
func (c *checkpoints) WindowDone(_ context.Context, _ string, unit string, from, to time.Time, points int64) error {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	for ms := from.UnixMilli(); points > 0 && ms < to.UnixMilli(); ms += 1000 {
		if c.w.written[telemetry.Key{Unit: unit, TimeMs: ms}] != 1 {
			return fmt.Errorf("window (%s, %s) checkpointed before its reading at %d was written", unit, from, ms)
		}
	}
	c.done[window.Key{Unit: unit, Start: from}] = points
	return nil
}

func TestRunWritesTargetsOnlyAndCheckpointsInOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	s := spill.New(t.TempDir(), 64<<10)
	defer s.Close()
	var ord uint64
	for _, u := range []string{"A", "B"} {
		for sec := 0; sec < 3600; sec++ {
			ord++
			r := telemetry.Record{Unit: u, Schema: "2.1", TimeMs: t0.Add(time.Duration(sec) * time.Second).UnixMilli()}
			if err := s.Add([]byte(u), r.TimeMs, ord, spill.AppendRecord(nil, &r)); err != nil {
				t.Fatal(err)
			}
		}
	}
	w := 10 * time.Minute
	targets := map[window.Key]bool{}
	for i := 0; i < 6; i += 2 { // A and B at 00:00, 00:20, 00:40
		targets[window.Key{Unit: "A", Start: t0.Add(time.Duration(i) * w)}] = true
		targets[window.Key{Unit: "B", Start: t0.Add(time.Duration(i) * w)}] = true
	}
	// A@00:20 was finished by an earlier attempt.
	done := map[cutover.WindowKey]bool{{Unit: "A", Start: t0.Add(2 * w)}: true}
	// An empty target (a ledger window no snapshot covers) is done with 0.
	targets[window.Key{Unit: "C", Start: t0}] = true

	wr := &slowWriter{written: map[telemetry.Key]int{}}
	cp := &checkpoints{w: wr, t: t, done: map[window.Key]int64{}}
	th := throttle.New(throttle.Config{})
	res, err := Run(context.Background(), s, Config{RunID: "r", Window: w, Targets: targets, Done: done, Concurrency: 4,
		Writer: wr, Checkpoints: cp, Throttle: th, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if res.PointsWritten != 5*600 || res.WindowsDone != 6 || res.WindowsResumed != 1 {
		t.Fatalf("result %+v: want 3000 points, 6 windows done, 1 skipped", res)
	}
	for k := range wr.written {
		wk := window.Key{Unit: k.Unit, Start: window.Align(time.UnixMilli(k.TimeMs), w)}
		if !targets[wk] || done[cutover.WindowKey(wk)] {
			t.Fatalf("reading %v outside the targets written", k)
		}
	}
	if n, ok := cp.done[window.Key{Unit: "C", Start: t0}]; !ok || n != 0 {
		t.Fatalf("empty target window not checkpointed with 0 points: %v", cp.done)
	}
}
