package reader

import (
	"context"
	"errors"
	"sync"
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
		pts, err := c.points(context.Background(), k, k.step, from, to, now, 0, fill)
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

// TestStepCacheServesStaleWhileRefilling: a step read between ttl and
// twice ttl ago is answered at once from the cache while one refill runs
// in the background; the refill's points serve the next request.
func TestStepCacheServesStaleWhileRefilling(t *testing.T) {
	c := newFleetCache(time.Minute)
	k := fleetKey{step: time.Hour}
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	units := int64(1)
	release := make(chan struct{})
	fill := func(_ context.Context, from, to time.Time) ([]FleetPoint, error) {
		mu.Lock()
		n := units
		units++
		mu.Unlock()
		if n > 1 {
			<-release // the background refill waits until told
		}
		var out []FleetPoint
		for s := from; s.Before(to); s = s.Add(time.Hour) {
			out = append(out, FleetPoint{Site: "a", Time: s, Units: n})
		}
		return out, nil
	}
	get := func(now time.Time) int64 {
		pts, err := c.points(context.Background(), k, k.step, t0, t0.Add(3*time.Hour), now, 0, fill)
		if err != nil || len(pts) != 3 {
			t.Fatalf("%d points, %v", len(pts), err)
		}
		return pts[0].Units
	}
	now := t0.Add(48 * time.Hour)
	if u := get(now); u != 1 {
		t.Fatalf("cold: units %d", u)
	}
	if u := get(now.Add(90 * time.Second)); u != 1 {
		t.Fatalf("stale: got the refill's points (%d) instead of the cached ones at once", u)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for get(now.Add(91*time.Second)) == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the background refill never landed")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStepCacheFillOutlivesItsRequest: a request whose context ends while
// the first fill runs gets its context's error at once; the fill goes on
// and serves the next request without reading again.
func TestStepCacheFillOutlivesItsRequest(t *testing.T) {
	c := newFleetCache(time.Minute)
	k := fleetKey{step: time.Hour}
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(48 * time.Hour)
	release, filled := make(chan struct{}), make(chan struct{})
	var fills int
	fill := func(ctx context.Context, from, to time.Time) ([]FleetPoint, error) {
		fills++
		<-release
		defer close(filled)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return []FleetPoint{{Site: "a", Time: from}}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.points(ctx, k, k.step, t0, t0.Add(time.Hour), now, 0, fill); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request past its deadline: %v, want its context's error", err)
	}
	close(release)
	<-filled
	pts, err := c.points(context.Background(), k, k.step, t0, t0.Add(time.Hour), now, 0, fill)
	if err != nil || len(pts) != 1 || fills != 1 {
		t.Fatalf("after the fill: %d points, %d fills, %v", len(pts), fills, err)
	}
}

// TestStepCacheFillsInSpans: with a fill span, a cold range is read a span
// at a time, and the spans read before a failure are kept: the next
// request reads only what is still missing.
func TestStepCacheFillsInSpans(t *testing.T) {
	c := newFleetCache(time.Minute)
	c.fillSpan = 24 * time.Hour
	k := fleetKey{step: time.Hour}
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(10 * 24 * time.Hour)
	var fills [][2]time.Time
	failAt := t0.Add(48 * time.Hour)
	fill := func(_ context.Context, from, to time.Time) ([]FleetPoint, error) {
		fills = append(fills, [2]time.Time{from, to})
		if from.Equal(failAt) {
			return nil, errors.New("planted failure")
		}
		var out []FleetPoint
		for s := from; s.Before(to); s = s.Add(time.Hour) {
			out = append(out, FleetPoint{Site: "a", Time: s})
		}
		return out, nil
	}
	// 3 days and 5 hours: spans of a day, the last one short; the third fails.
	end := t0.Add(77 * time.Hour)
	if _, err := c.points(context.Background(), k, k.step, t0, end, now, 0, fill); err == nil || len(fills) != 3 {
		t.Fatalf("first read: err %v, fills %v", err, fills)
	}
	for i, f := range fills {
		if want := t0.Add(time.Duration(i) * 24 * time.Hour); !f[0].Equal(want) || f[1].Sub(f[0]) != 24*time.Hour {
			t.Fatalf("fill %d read %v, want a day from %v", i, f, want)
		}
	}
	failAt = time.Time{}
	fills = nil
	pts, err := c.points(context.Background(), k, k.step, t0, end, now, 0, fill)
	if err != nil || len(pts) != 77 {
		t.Fatalf("second read: %d points, %v", len(pts), err)
	}
	if len(fills) != 2 || !fills[0][0].Equal(t0.Add(48*time.Hour)) || !fills[1][1].Equal(end) || fills[1][1].Sub(fills[1][0]) != 5*time.Hour {
		t.Fatalf("second read filled %v, want only the two spans still missing", fills)
	}
}

// TestStepCacheConcurrentFillsShareSpans: a request that comes while
// another fills a month a day at a time, after the first days are kept,
// waits for the same reads instead of reading the remaining days again.
func TestStepCacheConcurrentFillsShareSpans(t *testing.T) {
	c := newFleetCache(time.Minute)
	c.fillSpan = 24 * time.Hour
	k := fleetKey{step: time.Hour}
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(10 * 24 * time.Hour)
	day2 := t0.Add(24 * time.Hour)
	var mu sync.Mutex
	reads := map[time.Time]int{}
	inDay2, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fill := func(_ context.Context, from, to time.Time) ([]FleetPoint, error) {
		mu.Lock()
		reads[from]++
		mu.Unlock()
		if from.Equal(day2) {
			once.Do(func() { close(inDay2) })
			<-release
		}
		var out []FleetPoint
		for s := from; s.Before(to); s = s.Add(time.Hour) {
			out = append(out, FleetPoint{Site: "a", Time: s})
		}
		return out, nil
	}
	end := t0.Add(72 * time.Hour)
	get := func() error {
		pts, err := c.points(context.Background(), k, k.step, t0, end, now, 0, fill)
		if err == nil && len(pts) != 72 {
			err = errors.New("not every step")
		}
		return err
	}
	first := make(chan error, 1)
	go func() { first <- get() }()
	<-inDay2 // the first day is kept, the second is being read
	second := make(chan error, 1)
	go func() { second <- get() }()
	time.Sleep(50 * time.Millisecond) // the second request reaches the read it shares
	close(release)
	if err1, err2 := <-first, <-second; err1 != nil || err2 != nil {
		t.Fatalf("requests: %v, %v", err1, err2)
	}
	for d := range 3 {
		if n := reads[t0.Add(time.Duration(d)*24*time.Hour)]; n != 1 {
			t.Errorf("day %d read %d times, want once (reads %v)", d+1, n, reads)
		}
	}
}

// BenchmarkFleetCacheHit: a month of 20 sites at 1 h (14,400 points), all
// cached, as every fleet request reads it.
func BenchmarkFleetCacheHit(b *testing.B) {
	c := newFleetCache(time.Hour)
	k := fleetKey{step: time.Hour}
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	to := t0.Add(30 * 24 * time.Hour)
	fill := func(_ context.Context, from, to time.Time) ([]FleetPoint, error) {
		var out []FleetPoint
		for s := from; s.Before(to); s = s.Add(time.Hour) {
			for site := range 20 {
				out = append(out, FleetPoint{Site: string(rune('a' + site)), Time: s, SoCCount: 1})
			}
		}
		return out, nil
	}
	now := to.Add(2 * time.Hour)
	if _, err := c.points(context.Background(), k, k.step, t0, to, now, 0, fill); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if pts, err := c.points(context.Background(), k, k.step, t0, to, now, 0, fill); err != nil || len(pts) != 14400 {
			b.Fatalf("%d points, %v", len(pts), err)
		}
	}
}
