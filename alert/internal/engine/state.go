package engine

import (
	"fmt"
	"sort"
	"time"

	"github.com/flexipack/cutover/alert/internal/rules"
)

// UnitRecord is what survives a restart of one unit: its site, its
// frontier (lateness and absence rules measure from it), the share rules
// its latest reading matched (so site shares are right from the first
// reading after a restart), its alarm times and its aggregate windows, so
// that a restarted engine evaluates the next reading exactly as the old
// one would have.
type UnitRecord struct {
	Unit       string
	Site       string
	FrontierMs int64
	Matches    []string         // names of share rules matched
	LastAlarms map[string]int64 // alarm rules: the newest matching alarm, ms
	// Windows is the unit's aggregate windows (compact binary, see
	// snapshot.go): nil when the record does not carry them (TakeDirty),
	// empty when the unit holds no samples.
	Windows []byte
}

// TakeDirty returns the units changed since the last TakeDirty or
// TakeCheckpoint, without their windows: cheap enough to write with every
// batch that changes an alert.
func (e *Engine) TakeDirty() []UnitRecord {
	out := make([]UnitRecord, 0, len(e.dirty))
	for _, u := range e.dirty {
		if u.dirty {
			u.dirty = false
			out = append(out, e.unitRecord(u))
		}
	}
	e.dirty = e.dirty[:0]
	return out
}

// TakeCheckpoint returns the units changed since the last TakeCheckpoint,
// with their windows (about 8 bytes a windowed sample). Their snapshots
// share one buffer, allocated per call.
func (e *Engine) TakeCheckpoint() []UnitRecord {
	out := make([]UnitRecord, 0, len(e.ckpt))
	ends := make([]int, 0, len(e.ckpt))
	buf := make([]byte, 0, e.windowsSize(e.ckpt))
	for _, u := range e.ckpt {
		u.ckpt, u.dirty = false, false
		buf = e.appendWindows(buf, u)
		ends = append(ends, len(buf))
		out = append(out, e.unitRecord(u))
	}
	start := 0
	for i, end := range ends {
		out[i].Windows = buf[start:end:end]
		start = end
	}
	e.ckpt = e.ckpt[:0]
	e.dirty = e.dirty[:0] // every dirty unit was in ckpt too
	return out
}

func (e *Engine) unitRecord(u *unitState) UnitRecord {
	rec := UnitRecord{Unit: u.id, Site: u.site, FrontierMs: u.frontier}
	for i, rule := range e.set.Rules {
		s := &u.slots[i]
		switch {
		case rule.Kind == rules.KindShare && s.match:
			rec.Matches = append(rec.Matches, rule.Name)
		case rule.Kind == rules.KindAlarm && s.lastAlarm != 0:
			if rec.LastAlarms == nil {
				rec.LastAlarms = map[string]int64{}
			}
			rec.LastAlarms[rule.Name] = s.lastAlarm
		}
	}
	return rec
}

// Active returns every pending and firing alert, sorted by rule and key.
func (e *Engine) Active() []Alert {
	var out []Alert
	for _, u := range e.units {
		for i, rule := range e.set.Rules {
			if s := &u.slots[i]; s.state != Inactive {
				out = append(out, e.alertOf(rule, u.id, s))
			}
		}
	}
	for i, gs := range e.groups {
		for key, g := range gs {
			if g.slot.state != Inactive {
				out = append(out, e.alertOf(e.set.Rules[i], key, &g.slot))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func (e *Engine) alertOf(rule *rules.Rule, key string, s *slot) Alert {
	return Alert{Rule: rule.Name, Key: key, State: s.state, Severity: rule.Severity, Value: s.value,
		ActiveAt: msTime(s.activeAt), FiredAt: msTime(s.firedAt), Labels: e.fullLabels(rule, key, s), Annotations: copyMap(s.annots),
		LastAlarm: msTime(s.lastAlarm)}
}

// Restore loads persisted state into an empty engine: units first (with
// their aggregate windows), then alerts (pending ones keep their ActiveAt,
// so a for: in progress goes on where it was). Alerts of rules no longer
// defined are returned, resolved at the watermark, for the caller to
// deliver. A unit whose window snapshot is malformed starts with empty
// windows (they refill from the stream); each such unit is reported in bad
// and loses nothing else.
func (e *Engine) Restore(units []UnitRecord, alerts []Alert) (gone []Change, bad []error) {
	idx := e.ruleIndex()
	for _, ur := range units {
		u := e.unit(ur.Unit, ur.Site)
		u.frontier = max(u.frontier, ur.FrontierMs)
		if err := e.restoreWindows(u, ur.Windows, idx); err != nil {
			bad = append(bad, fmt.Errorf("unit %s: %w", ur.Unit, err))
		}
		e.watermark = max(e.watermark, min(ur.FrontierMs, e.now().UnixMilli()))
		for _, name := range ur.Matches {
			if i, ok := idx[name]; ok && e.set.Rules[i].Kind == rules.KindShare {
				u.slots[i].match = true
			}
		}
		for name, ms := range ur.LastAlarms {
			if i, ok := idx[name]; ok && e.set.Rules[i].Kind == rules.KindAlarm {
				u.slots[i].lastAlarm = max(u.slots[i].lastAlarm, ms)
			}
		}
		for i, rule := range e.set.Rules {
			if rule.Kind == rules.KindShare {
				e.join(i, rule, u)
			}
		}
	}
	for _, a := range alerts {
		i, ok := idx[a.Rule]
		if !ok {
			gone = append(gone, e.goneChange(a))
			continue
		}
		rule := e.set.Rules[i]
		var s *slot
		if rule.Kind == rules.KindShare {
			s = &e.group(i, a.Key).slot
		} else {
			s = &e.unit(a.Key, a.Labels["site"]).slots[i]
		}
		s.state, s.value = a.State, a.Value
		s.activeAt, s.firedAt = a.ActiveAt.UnixMilli(), timeMs(a.FiredAt)
		s.lastAlarm = max(s.lastAlarm, timeMs(a.LastAlarm))
		s.labels, s.annots = ruleLabels(rule, a.Labels), copyMap(a.Annotations)
	}
	return gone, bad
}

func timeMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// ruleLabels strips the labels the engine adds itself.
func ruleLabels(rule *rules.Rule, all map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range rule.LabelNames {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	return out
}

func (e *Engine) join(i int, rule *rules.Rule, u *unitState) {
	key := groupKey(rule, u.site)
	s := &u.slots[i]
	if key == "" || s.member {
		return
	}
	g := e.group(i, key)
	s.member = true
	g.units++
	if s.match {
		g.matching++
	}
}

func (e *Engine) ruleIndex() map[string]int {
	idx := make(map[string]int, len(e.set.Rules))
	for i, r := range e.set.Rules {
		idx[r.Name] = i
	}
	return idx
}

func (e *Engine) goneChange(a Alert) Change {
	from := a.State
	a.State = Inactive
	a.ResolvedAt = e.Watermark()
	if a.ResolvedAt.IsZero() {
		a.ResolvedAt = e.now().UTC()
	}
	a.Annotations = copyMap(a.Annotations)
	a.Annotations["resolved_by"] = "rule removed"
	return Change{Alert: a, From: from}
}

// Reload replaces the rules, keeping the state (windows, pending and
// firing alerts) of every rule whose name and kind stay the same. Alerts of
// rules removed or changed in kind resolve (returned in the next Drain).
func (e *Engine) Reload(set *rules.Set) {
	old := e.set
	oldGroups := e.groups
	e.setRules(set)
	newIdx := e.ruleIndex()
	keep := make([]int, len(old.Rules)) // old index -> new index, or -1
	for i, r := range old.Rules {
		keep[i] = -1
		if j, ok := newIdx[r.Name]; ok && set.Rules[j].Kind == r.Kind && (r.Kind != rules.KindShare || r.Scope == set.Rules[j].Scope) {
			keep[i] = j
		}
	}
	for i, r := range old.Rules {
		if keep[i] >= 0 {
			if r.Kind == rules.KindShare {
				e.groups[keep[i]] = oldGroups[i]
			}
			continue
		}
		for key, g := range oldGroups[i] {
			if g.slot.state != Inactive {
				e.changes = append(e.changes, e.goneChange(e.alertOfRule(old, r, key, &g.slot)))
			}
		}
	}
	for _, u := range e.units {
		slots := make([]slot, len(set.Rules))
		for i, r := range old.Rules {
			if j := keep[i]; j >= 0 {
				slots[j] = u.slots[i]
			} else if s := &u.slots[i]; s.state != Inactive {
				e.changes = append(e.changes, e.goneChange(e.alertOfRule(old, r, u.id, s)))
			}
		}
		u.slots = slots
	}
}

func (e *Engine) alertOfRule(set *rules.Set, rule *rules.Rule, key string, s *slot) Alert {
	cur := e.set
	e.set = set
	a := e.alertOf(rule, key, s)
	e.set = cur
	return a
}
