package cutover

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

func TestBackfillRunsWithProgress(t *testing.T) {
	s, _ := openStore(t)
	ctx := testenv.Context(t, 30*time.Second)
	if err := s.StartBackfillRun(ctx, "bf-1", map[string]string{"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z"}); err != nil {
		t.Fatal(err)
	}
	runs, err := s.BackfillRuns(ctx, 10)
	if err != nil || len(runs) != 1 || runs[0].Progress != nil || runs[0].WindowsCheckpointed != 0 {
		t.Fatalf("BackfillRuns before progress = %+v, %v; want one run without progress", runs, err)
	}
	w := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, unit := range []string{"u1", "u2"} {
		if err := s.WindowDone(ctx, "bf-1", unit, w, w.Add(time.Hour), int64(10*(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	p := BackfillProgress{PointsTotal: 100, PointsDone: 30, WindowsTotal: 10, WindowsDone: 2, Rate: 12.5, ETASeconds: 5.6,
		ThrottleState: "throttled", ThrottleReason: "write latency 3s > 2s", RateLimit: 500}
	if err := s.SaveBackfillProgress(ctx, "bf-1", p); err != nil {
		t.Fatal(err)
	}
	runs, err = s.BackfillRuns(ctx, 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("BackfillRuns = %+v, %v", runs, err)
	}
	r := runs[0]
	if r.Progress == nil || *r.Progress != p || r.ProgressAt == nil {
		t.Fatalf("progress = %+v at %v; want %+v", r.Progress, r.ProgressAt, p)
	}
	if r.WindowsCheckpointed != 2 || r.PointsCheckpointed != 30 {
		t.Fatalf("checkpointed = %d windows, %d points; want 2, 30", r.WindowsCheckpointed, r.PointsCheckpointed)
	}
}
