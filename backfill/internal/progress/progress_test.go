package progress

import (
	"strings"
	"testing"
	"time"
)

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		s    Snapshot
		note string
		want []string
	}{
		{Snapshot{PointsTotal: 1000, PointsDone: 250, WindowsTotal: 4, WindowsDone: 1, Rate: 50, ETASeconds: 15}, "",
			[]string{"[=======>", " 25.0% 250/1000 points, 1/4 windows, 50 points/s, ETA 15s"}},
		{Snapshot{PointsTotal: 10, PointsDone: 10, WindowsTotal: 1, WindowsDone: 1}, "throttled: write latency 3s > 2s",
			[]string{"[==============================]", "100.0%", "ETA --", "— throttled: write latency 3s > 2s"}},
	} {
		got := Bar(tc.s, 30, tc.note)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("Bar = %q, want it to contain %q", got, w)
			}
		}
	}
}

func TestTrackerRateAndETA(t *testing.T) {
	tr := NewTracker(1000, 2)
	now := tr.start
	tr.now = func() time.Time { return now }
	tr.AddPoints(100)
	now = now.Add(time.Second)
	s := tr.Snapshot()
	if s.Rate != 100 || s.ETASeconds != 9 || s.PointsDone != 100 {
		t.Fatalf("snapshot %+v: want 100 points/s, ETA 9s", s)
	}
}
