package gaps

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/window"
)

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func TestAlignedRange(t *testing.T) {
	for _, tc := range []struct {
		from, to         time.Time
		wantFrom, wantTo time.Time
	}{
		{t0, t0.Add(2 * time.Hour), t0, t0.Add(2 * time.Hour)},
		{t0.Add(10 * time.Minute), t0.Add(70 * time.Minute), t0, t0.Add(2 * time.Hour)},
	} {
		f, to := AlignedRange(tc.from, tc.to, time.Hour)
		if !f.Equal(tc.wantFrom) || !to.Equal(tc.wantTo) {
			t.Errorf("AlignedRange(%s, %s) = %s, %s", tc.from, tc.to, f, to)
		}
	}
}

func TestCompare(t *testing.T) {
	h := time.Hour
	snap := []window.Count{{Unit: "B", Start: t0, N: 10}, {Unit: "A", Start: t0, N: 5}, {Unit: "A", Start: t0.Add(h), N: 7}, {Unit: "C", Start: t0, N: 3}}
	influx := []window.Count{{Unit: "A", Start: t0, N: 5}, {Unit: "A", Start: t0.Add(h), N: 2}, {Unit: "C", Start: t0, N: 4}}
	gaps, ahead := Compare(snap, influx, h)
	if ahead != 1 {
		t.Errorf("influx ahead in %d windows, want 1 (C)", ahead)
	}
	want := []Gap{
		{Unit: "A", Start: t0.Add(h), End: t0.Add(2 * h), Snapshot: 7, Influx: 2, Missing: 5},
		{Unit: "B", Start: t0, End: t0.Add(h), Snapshot: 10, Influx: 0, Missing: 10},
	}
	if len(gaps) != len(want) {
		t.Fatalf("gaps %+v, want %+v", gaps, want)
	}
	for i := range want {
		g := gaps[i]
		if g.Unit != want[i].Unit || !g.Start.Equal(want[i].Start) || !g.End.Equal(want[i].End) || g.Missing != want[i].Missing || g.Influx != want[i].Influx {
			t.Errorf("gap %d = %+v, want %+v", i, g, want[i])
		}
	}
}

func TestFromLedger(t *testing.T) {
	h := time.Hour
	p := FromLedger([]cutover.Gap{
		{ID: 1, Unit: "A", From: t0.Add(30 * time.Minute), To: t0.Add(90 * time.Minute)},
		{ID: 2, Unit: "A", From: t0.Add(80 * time.Minute), To: t0.Add(2 * h)}, // ends exactly on a boundary: that window holds the reading
	}, h)
	if len(p.Windows) != 3 {
		t.Fatalf("windows %v, want A@0h, A@1h, A@2h", p.Windows)
	}
	if ids := p.Windows[window.Key{Unit: "A", Start: t0.Add(h)}]; len(ids) != 2 {
		t.Fatalf("window A@1h repairs %v, want entries 1 and 2", ids)
	}
	if !p.From.Equal(t0) || !p.To.Equal(t0.Add(3*h)) {
		t.Fatalf("range [%s, %s)", p.From, p.To)
	}
	keep := p.Keep(h)
	if !keep("A", t0.Add(2*h+time.Minute).UnixMilli()) || keep("A", t0.Add(3*h).UnixMilli()) || keep("B", t0.UnixMilli()) {
		t.Fatal("Keep selects the wrong readings")
	}
}

func TestCovered(t *testing.T) {
	h := time.Hour
	spans := []window.Span{{From: t0.Add(2 * h), To: t0.Add(4 * h)}, {From: t0, To: t0.Add(2 * h)}}
	for _, tc := range []struct {
		from, to time.Time
		want     bool
	}{
		{t0, t0.Add(3 * h), true},
		{t0.Add(h), t0.Add(4*h - time.Millisecond), true},
		{t0.Add(h), t0.Add(4 * h), false}, // to is inclusive and 4h is outside
		{t0.Add(-time.Millisecond), t0.Add(h), false},
	} {
		if got := Covered(spans, tc.from, tc.to); got != tc.want {
			t.Errorf("Covered(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
	if Covered([]window.Span{{From: t0, To: t0.Add(h)}, {From: t0.Add(2 * h), To: t0.Add(3 * h)}}, t0, t0.Add(150*time.Minute)) {
		t.Error("a hole between spans was called covered")
	}
}
