// Package engine evaluates alerting rules on the live reading stream, in
// event time (the readings' own timestamps), and keeps the state of every
// alert: inactive, pending, firing.
//
// Event time and lateness:
//
//   - Each unit has a frontier: the time of its newest reading seen. The
//     readings of one message are sorted by time before evaluation, so a
//     generation-2 flush of up to 1,000 buffered samples, shuffled or not,
//     is evaluated in order: it is behind the fleet but not behind its own
//     unit, so it is not late.
//   - A reading older than its unit's frontier is late. Within the allowed
//     lateness (rules.Settings.AllowedLateness) it still enters rolling
//     windows in time order; it never moves a threshold's pending or firing
//     state backwards (history already notified is not rewritten). Older
//     than that, it is dropped and counted. A reading at exactly the
//     frontier is a redelivery and is ignored.
//   - A reading more than the allowed lateness ahead of the wall clock is
//     dropped and counted: evaluated, it would move its unit's frontier into
//     the future and make the unit's true readings look late.
//   - The clock absence rules read is the fleet watermark: the newest
//     reading time seen from any unit, never ahead of the wall clock, minus
//     the allowed lateness. A backlog (the alert service catching up after a
//     restart) therefore never makes units look silent, and a unit fires
//     only when the rest of the fleet has moved on by more than for +
//     lateness without it. A late flush resolves an absence alert only if
//     its newest sample is within for of that clock: old samples alone
//     prove nothing about now.
//
// The engine is not safe for concurrent use; the service serialises calls.
package engine

import (
	"slices"
	"strings"
	"time"

	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/shared/telemetry"
)

// State is an alert's state.
type State uint8

// Alert states.
const (
	Inactive State = iota
	Pending
	Firing
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Firing:
		return "firing"
	default:
		return "inactive"
	}
}

// ParseState reads a State's String.
func ParseState(s string) State {
	switch s {
	case "pending":
		return Pending
	case "firing":
		return Firing
	}
	return Inactive
}

// Alert is one alert's state, keyed by (Rule, Key): Key is the unit for
// per-unit rules, the site or "fleet" for share rules.
type Alert struct {
	Rule        string
	Key         string
	State       State
	Severity    string
	ActiveAt    time.Time // event time the condition began (pending or firing)
	FiredAt     time.Time // event time it fired; zero while pending
	ResolvedAt  time.Time // event time it resolved; set on a resolving Change only
	LastAlarm   time.Time // alarm rules: the newest matching alarm
	Value       float64
	Labels      map[string]string
	Annotations map[string]string
}

// Change is a state transition.
type Change struct {
	Alert
	From State
}

// Resolved reports whether the change resolves a firing alert.
func (c *Change) Resolved() bool { return c.From == Firing && c.State == Inactive }

// Stats counts what the engine saw since it started.
type Stats struct {
	Readings    int64 // readings evaluated
	Late        int64 // readings behind their unit's frontier but within the allowed lateness
	TooLate     int64 // readings dropped as later than the allowed lateness
	Duplicates  int64 // readings at their unit's frontier (redeliveries)
	Future      int64 // readings more than the allowed lateness ahead of the wall clock (dropped)
	Evaluations int64 // rule evaluations
}

// Options tune an engine.
type Options struct {
	// Now is the wall clock; the absence clock never runs ahead of it.
	Now func() time.Time
}

// Engine holds the rules and the state of every unit and alert.
type Engine struct {
	set       *rules.Set
	lateMs    int64
	now       func() time.Time
	units     map[string]*unitState
	groups    []map[string]*group // per rule index: share groups by site (or "fleet")
	watermark int64               // newest reading time seen, ms
	changes   []Change
	dirty     []*unitState // changed since the last TakeDirty or TakeCheckpoint
	ckpt      []*unitState // changed since the last TakeCheckpoint
	stats     Stats
	order     []int // scratch: sorted record indices
}

type unitState struct {
	id       string
	site     string
	frontier int64 // newest reading time evaluated, ms; 0 before any
	slots    []slot
	dirty    bool // in Engine.dirty
	ckpt     bool // in Engine.ckpt
}

// slot is one (rule, unit) or (rule, group) alert state.
type slot struct {
	state     State
	match     bool // share rules: the unit's latest reading matched
	member    bool // share rules: the unit is counted in its group
	activeAt  int64
	firedAt   int64
	lastAlarm int64 // alarm rules
	value     float64
	labels    map[string]string // rendered when the alert becomes active
	annots    map[string]string
	win       *window // aggregate rules
}

type group struct {
	units, matching int
	slot            slot
}

// New returns an engine for set.
func New(set *rules.Set, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{now: opts.Now, units: map[string]*unitState{}}
	e.setRules(set)
	return e
}

func (e *Engine) setRules(set *rules.Set) {
	e.set = set
	e.lateMs = set.Settings.AllowedLateness.Milliseconds()
	e.groups = make([]map[string]*group, len(set.Rules))
	for i, r := range set.Rules {
		if r.Kind == rules.KindShare {
			e.groups[i] = map[string]*group{}
		}
	}
}

// Rules returns the rule set in use.
func (e *Engine) Rules() *rules.Set { return e.set }

// Stats returns the counters.
func (e *Engine) Stats() Stats { return e.stats }

// Units returns how many units the engine tracks.
func (e *Engine) Units() int { return len(e.units) }

// Watermark returns the newest reading time seen (zero before any).
func (e *Engine) Watermark() time.Time {
	if e.watermark == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.watermark).UTC()
}

// Drain returns the transitions since the last Drain.
func (e *Engine) Drain() []Change {
	c := e.changes
	e.changes = nil
	return c
}

func (e *Engine) unit(id, site string) *unitState {
	u := e.units[id]
	if u == nil {
		// Records may alias a decoder's buffer: keep copies.
		u = &unitState{id: strings.Clone(id), site: strings.Clone(site), slots: make([]slot, len(e.set.Rules))}
		e.units[u.id] = u // the key must be the copy too
		return u
	}
	if site != "" && site != u.site {
		e.moveSite(u, site)
	}
	return u
}

func (e *Engine) markDirty(u *unitState) {
	if !u.dirty {
		u.dirty = true
		e.dirty = append(e.dirty, u)
	}
	if !u.ckpt {
		u.ckpt = true
		e.ckpt = append(e.ckpt, u)
	}
}

// Observe evaluates the readings of one message (any order, one or more
// units) against every rule.
func (e *Engine) Observe(recs []telemetry.Record) {
	e.order = e.order[:0]
	for i := range recs {
		e.order = append(e.order, i)
	}
	if !slices.IsSortedFunc(e.order, func(a, b int) int { return cmp64(recs[a].TimeMs, recs[b].TimeMs) }) {
		slices.SortStableFunc(e.order, func(a, b int) int { return cmp64(recs[a].TimeMs, recs[b].TimeMs) })
	}
	nowMs := e.now().UnixMilli()
	for _, i := range e.order {
		r := &recs[i]
		if r.TimeMs > nowMs+e.lateMs {
			// A unit whose clock runs ahead would otherwise push its frontier
			// into the future and make its own true readings look late.
			e.stats.Future++
			continue
		}
		if r.TimeMs > e.watermark {
			e.watermark = min(r.TimeMs, nowMs)
		}
		e.observe(r)
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (e *Engine) observe(r *telemetry.Record) {
	u := e.unit(r.Unit, r.Site)
	t := r.TimeMs
	late := false
	switch {
	case t == u.frontier:
		e.stats.Duplicates++
		return
	case t < u.frontier-e.lateMs:
		e.stats.TooLate++
		return
	case t < u.frontier:
		late = true
		e.stats.Late++
	}
	e.stats.Readings++
	for i, rule := range e.set.Rules {
		s := &u.slots[i]
		e.stats.Evaluations++
		switch rule.Kind {
		case rules.KindThreshold:
			if !late {
				e.threshold(rule, u, s, r)
			}
		case rules.KindAggregate:
			e.aggregate(rule, u, s, r, late)
		case rules.KindAbsence:
			if !late {
				e.absenceSeen(rule, u, s, t)
			}
		case rules.KindAlarm:
			e.alarm(rule, u, s, r, late)
		case rules.KindShare:
			if !late {
				e.share(i, rule, u, s, r)
			}
		}
	}
	if !late {
		u.frontier = t
	}
	e.markDirty(u) // a late reading changes windows and alarm times too
}
