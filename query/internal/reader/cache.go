package reader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// fleetCache keeps the fleet's closed steps read from the site rollup: a
// step is closed once it ended longer ago than the continuous queries
// recompute (their RESAMPLE FOR, 1 h) plus a margin, so nothing the
// rollups still change is cached. What a backfill repairs (and the rollups
// resampled after it) changes closed steps: Invalidate drops everything,
// and entries also expire after ttl.
type fleetCache struct {
	ttl   time.Duration
	group singleflight.Group

	mu   sync.Mutex
	keys map[fleetKey]*fleetEntry
}

type fleetKey struct {
	site string
	step time.Duration
}

type fleetEntry struct {
	filled map[time.Time]time.Time // step start → when it was read
	points map[time.Time][]FleetPoint
}

// maxFleetKeys bounds the (site, step) combinations held.
const maxFleetKeys = 256

func newFleetCache(ttl time.Duration) *fleetCache {
	return &fleetCache{ttl: ttl, keys: map[fleetKey]*fleetEntry{}}
}

// Invalidate drops every cached step.
func (c *fleetCache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = map[fleetKey]*fleetEntry{}
}

// points returns the steps in [from, to) (whole steps), reading the span
// from the first to the last missing or expired step with fill, once for
// concurrent callers.
func (c *fleetCache) points(ctx context.Context, k fleetKey, from, to, now time.Time,
	fill func(ctx context.Context, from, to time.Time) ([]FleetPoint, error)) ([]FleetPoint, error) {
	first, last, ok := c.missing(k, from, to, now)
	if ok {
		sf := fmt.Sprintf("%q/%d/%d/%d", k.site, k.step, first.UnixMilli(), last.UnixMilli())
		_, err, _ := c.group.Do(sf, func() (any, error) {
			pts, err := fill(context.WithoutCancel(ctx), first, last.Add(k.step))
			if err != nil {
				return nil, err
			}
			c.store(k, first, last.Add(k.step), pts, now)
			return nil, nil
		})
		if err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[k]
	var out []FleetPoint
	for t := from; t.Before(to); t = t.Add(k.step) {
		if e != nil {
			out = append(out, e.points[t]...)
		}
	}
	return out, nil
}

func (c *fleetCache) missing(k fleetKey, from, to, now time.Time) (first, last time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[k]
	for t := from; t.Before(to); t = t.Add(k.step) {
		at, have := time.Time{}, false
		if e != nil {
			at, have = e.filled[t]
		}
		if have && now.Sub(at) < c.ttl {
			continue
		}
		if !ok {
			first, ok = t, true
		}
		last = t
	}
	return first, last, ok
}

func (c *fleetCache) store(k fleetKey, from, to time.Time, pts []FleetPoint, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[k]
	if e == nil {
		if len(c.keys) >= maxFleetKeys {
			c.keys = map[fleetKey]*fleetEntry{}
		}
		e = &fleetEntry{filled: map[time.Time]time.Time{}, points: map[time.Time][]FleetPoint{}}
		c.keys[k] = e
	}
	for t := from; t.Before(to); t = t.Add(k.step) {
		e.filled[t] = now
		delete(e.points, t)
	}
	for _, p := range pts {
		e.points[p.Time] = append(e.points[p.Time], p)
	}
}
