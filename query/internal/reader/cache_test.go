package reader

import (
	"context"
	"testing"
	"time"
)

func TestFleetCache(t *testing.T) {
	c := newFleetCache(time.Minute)
	k := fleetKey{step: time.Hour}
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var fills [][2]time.Time
	fill := func(_ context.Context, from, to time.Time) ([]FleetPoint, error) {
		fills = append(fills, [2]time.Time{from, to})
		var out []FleetPoint
		for s := from; s.Before(to); s = s.Add(time.Hour) {
			out = append(out, FleetPoint{Site: "a", Time: s, SoCCount: 1})
		}
		return out, nil
	}
	get := func(from, to, now time.Time) int {
		pts, err := c.points(context.Background(), k, k.step, from, to, now, fill)
		if err != nil {
			t.Fatal(err)
		}
		return len(pts)
	}
	now := t0.Add(48 * time.Hour)
	if n := get(t0, t0.Add(24*time.Hour), now); n != 24 || len(fills) != 1 {
		t.Fatalf("cold: %d points, %d fills", n, len(fills))
	}
	if n := get(t0, t0.Add(24*time.Hour), now.Add(time.Second)); n != 24 || len(fills) != 1 {
		t.Fatalf("warm: %d points, %d fills", n, len(fills))
	}
	if n := get(t0.Add(time.Hour), t0.Add(26*time.Hour), now); n != 25 || len(fills) != 2 || fills[1] != [2]time.Time{t0.Add(24 * time.Hour), t0.Add(26 * time.Hour)} {
		t.Fatalf("a later range reads only its new steps: %d points, fills %v", n, fills)
	}
	if get(t0, t0.Add(24*time.Hour), now.Add(2*time.Minute)); len(fills) != 3 {
		t.Fatalf("expired steps are read again: %d fills", len(fills))
	}
	c.Invalidate()
	if get(t0, t0.Add(24*time.Hour), now.Add(2*time.Minute)); len(fills) != 4 {
		t.Fatalf("invalidated steps are read again: %d fills", len(fills))
	}
}
