package reader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// stepCache keeps the closed steps of an aggregate read from the rollups
// (the fleet per site, a unit's series), keyed by K: a step is closed once
// it ended longer ago than the rollups recompute (ClosedAfter), so nothing
// they still change is cached. What a backfill repairs (and the rollups
// resampled after it) changes closed steps: Invalidate drops everything,
// and entries are also read again after ttl (see points). At most maxKeys
// keys are held (then it starts afresh).
type stepCache[K comparable, P any] struct {
	ttl     time.Duration
	maxKeys int
	// fillSpan, if above 0, splits a fill into reads of at most this
	// long, each kept as soon as it is read: a store that computes from
	// raw rows answers a month as a series of bounded queries, and what
	// was read survives a later failure.
	fillSpan time.Duration
	timeOf   func(*P) time.Time
	group    singleflight.Group

	mu   sync.Mutex
	keys map[K]*stepEntry[P]
}

type stepEntry[P any] struct {
	filled map[time.Time]time.Time // step start → when it was read
	points map[time.Time][]P
}

func newStepCache[K comparable, P any](ttl time.Duration, maxKeys int, timeOf func(*P) time.Time) *stepCache[K, P] {
	return &stepCache[K, P]{ttl: ttl, maxKeys: maxKeys, timeOf: timeOf, keys: map[K]*stepEntry[P]{}}
}

// fleetKey: one site ("" for all) at one step.
type fleetKey struct {
	site string
	step time.Duration
}

// maxFleetKeys bounds the (site, step) combinations held.
const maxFleetKeys = 256

func newFleetCache(ttl time.Duration) *stepCache[fleetKey, FleetPoint] {
	return newStepCache[fleetKey](ttl, maxFleetKeys, func(p *FleetPoint) time.Time { return p.Time })
}

// seriesKey: one unit's fields, aggregated one way at one step.
type seriesKey struct {
	unit   string
	fields string // the fields, comma-separated
	agg    Agg
	step   time.Duration
}

// maxSeriesKeys bounds the (unit, fields, aggregate, step) combinations
// held: a 30-day hourly series is some 720 points, about 100 kB.
const maxSeriesKeys = 2048

func newSeriesCache(ttl time.Duration) *stepCache[seriesKey, SeriesPoint] {
	return newStepCache[seriesKey](ttl, maxSeriesKeys, func(p *SeriesPoint) time.Time { return p.Time })
}

// fillTimeout bounds one read of a cache fill, which no request cancels.
const fillTimeout = 5 * time.Minute

// closedThenRest answers [from, to) at step with c's closed whole steps
// (ended ClosedAfter before now) and reads the rest with read; with no
// cache, or no closed step, or from off the step grid, read does it all.
func closedThenRest[K comparable, P any](ctx context.Context, c *stepCache[K, P], k K, step time.Duration, from, to, now time.Time,
	read func(ctx context.Context, from, to time.Time) ([]P, error)) ([]P, error) {
	if c == nil || step.Milliseconds() <= 0 || from.UnixMilli()%step.Milliseconds() != 0 {
		return read(ctx, from, to)
	}
	closed := minTime(bucket(now.Add(-ClosedAfter), step), bucket(to, step))
	if !closed.After(from) {
		return read(ctx, from, to)
	}
	var rest []P
	if closed.Before(to) {
		var err error
		if rest, err = read(ctx, closed, to); err != nil {
			return nil, err
		}
	}
	pts, err := c.points(ctx, k, step, from, closed, now, len(rest), read)
	if err != nil {
		return nil, err
	}
	return append(pts, rest...), nil
}

// Invalidate drops every cached step.
func (c *stepCache[K, P]) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = map[K]*stepEntry[P]{}
}

// points returns the points of the steps in [from, to) (whole steps of
// step), in step order, in a slice with room for spare more (the caller's
// later steps: a month of a fleet is 1 MB to copy again). Missing steps,
// and steps read more than twice ttl ago, are read first: the span from
// the first to the last of them, with fill, once for concurrent callers.
// Steps read between ttl and twice ttl ago are served as they are while
// one refill runs in the background (they are closed: only a backfill
// changes them, and it invalidates), so expiry never stalls the requests
// that find it.
func (c *stepCache[K, P]) points(ctx context.Context, k K, step time.Duration, from, to, now time.Time, spare int,
	fill func(ctx context.Context, from, to time.Time) ([]P, error)) ([]P, error) {
	stale, expired := c.missing(k, step, from, to, now)
	// A fill outlives the request that started it, so that a long first
	// read still fills the cache for the next requests; the request itself
	// waits only as long as its own context allows.
	refill := func(sp span) error {
		done := make(chan error, 1)
		go func() { done <- c.fill(context.WithoutCancel(ctx), k, step, sp, now, fill) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return Unavailable(ctx, "cache fill", ctx.Err())
		}
	}
	if expired.ok {
		if err := refill(expired); err != nil {
			return nil, err
		}
	} else if stale.ok {
		go func() { _ = refill(stale) }() // its error: the next request reads it again
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[k]
	if e == nil {
		return nil, nil
	}
	// Sized first: a month of a fleet is some 14,000 points, and growing
	// the slice step by step was most of a cached request's CPU.
	n := 0
	for t := from; t.Before(to); t = t.Add(step) {
		n += len(e.points[t])
	}
	out := make([]P, 0, n+spare)
	for t := from; t.Before(to); t = t.Add(step) {
		out = append(out, e.points[t]...)
	}
	return out, nil
}

// fill reads the steps of sp and keeps them: in one read, or with a fill
// span in chunks of at most fillSpan on a grid of whole steps, each kept as
// soon as it is read. A chunk is read once for concurrent fills (one
// singleflight key per chunk; the grid gives overlapping spans the same
// chunks), and not at all if another fill has read it meanwhile: keyed by
// the span instead, a fill that had kept its first day no longer matched
// the next request's span, and every request started another read of the
// remaining days. Each read is bounded by fillTimeout.
func (c *stepCache[K, P]) fill(ctx context.Context, k K, step time.Duration, sp span, now time.Time,
	read func(ctx context.Context, from, to time.Time) ([]P, error)) error {
	end := sp.last.Add(step)
	for from := sp.first; from.Before(end); {
		to := end
		if n := c.fillSpan / step; n > 0 {
			if next := bucket(from, n*step).Add(n * step); next.Before(end) {
				to = next
			}
		}
		_, err, _ := c.group.Do(fmt.Sprintf("%v/%d/%d", k, from.UnixMilli(), to.UnixMilli()), func() (any, error) {
			if stale, _ := c.missing(k, step, from, to, now); !stale.ok {
				return nil, nil // read by another fill since this one began
			}
			rctx, cancel := context.WithTimeout(ctx, fillTimeout)
			defer cancel()
			pts, err := read(rctx, from, to)
			if err != nil {
				return nil, err
			}
			c.store(k, step, from, to, pts, now)
			return nil, nil
		})
		if err != nil {
			return err
		}
		from = to
	}
	return nil
}

// span is the first and last step start of a run of steps to read.
type span struct {
	first, last time.Time
	ok          bool
}

func (s *span) add(t time.Time) {
	if !s.ok {
		s.first, s.ok = t, true
	}
	s.last = t
}

// missing returns the steps of [from, to) read more than ttl ago (stale)
// and those never read or read more than twice ttl ago (expired).
func (c *stepCache[K, P]) missing(k K, step time.Duration, from, to, now time.Time) (stale, expired span) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[k]
	for t := from; t.Before(to); t = t.Add(step) {
		at, have := time.Time{}, false
		if e != nil {
			at, have = e.filled[t]
		}
		switch age := now.Sub(at); {
		case !have || age >= 2*c.ttl:
			expired.add(t)
			stale.add(t)
		case age >= c.ttl:
			stale.add(t)
		}
	}
	return stale, expired
}

func (c *stepCache[K, P]) store(k K, step time.Duration, from, to time.Time, pts []P, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[k]
	if e == nil {
		if len(c.keys) >= c.maxKeys {
			c.keys = map[K]*stepEntry[P]{}
		}
		e = &stepEntry[P]{filled: map[time.Time]time.Time{}, points: map[time.Time][]P{}}
		c.keys[k] = e
	}
	for t := from; t.Before(to); t = t.Add(step) {
		e.filled[t] = now
		delete(e.points, t)
	}
	for i := range pts {
		t := c.timeOf(&pts[i])
		e.points[t] = append(e.points[t], pts[i])
	}
}
