package engine

import (
	"bytes"
	"strings"
	"time"

	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/shared/telemetry"
)

// FleetKey is the key of fleet-wide share alerts.
const FleetKey = "fleet"

// step moves a slot's state machine at event time t: cond is the firing
// condition, clear the resolving one (both tri-state: known false is not
// the same as unknown).
func (e *Engine) step(rule *rules.Rule, key, site string, s *slot, t int64, cond, condKnown, clear bool, v float64) {
	switch s.state {
	case Inactive:
		if !cond {
			return
		}
		s.state, s.activeAt, s.firedAt, s.value = Pending, t, 0, v
		e.render(rule, key, site, s)
		if rule.For > 0 {
			e.emit(rule, key, s, Inactive, 0)
			return
		}
		s.state, s.firedAt = Firing, t
		e.emit(rule, key, s, Inactive, 0)
	case Pending:
		s.value = v
		switch {
		case cond && t-s.activeAt >= rule.For.Milliseconds():
			s.state, s.firedAt = Firing, t
			e.render(rule, key, site, s) // annotations show the value at firing; labels do not change
			e.emit(rule, key, s, Pending, 0)
		case !cond && condKnown:
			s.state = Inactive
			e.emit(rule, key, s, Pending, t)
			s.reset()
		}
	case Firing:
		if cond || condKnown || clear {
			s.value = v
		}
		if clear {
			s.state = Inactive
			e.emit(rule, key, s, Firing, t)
			s.reset()
		}
	}
}

func (s *slot) reset() {
	s.activeAt, s.firedAt, s.labels, s.annots = 0, 0, nil, nil
}

// clearOf evaluates the clear condition: the rule's own, or "expr is known
// to be false".
func clearOf(rule *rules.Rule, r *telemetry.Record, v float64, hasV, cond, condKnown bool) bool {
	if rule.Clear == nil {
		return condKnown && !cond
	}
	c, known := rule.Clear.Eval(r, v, hasV)
	return c && known
}

func (e *Engine) threshold(rule *rules.Rule, u *unitState, s *slot, r *telemetry.Record) {
	cond, known := rule.Expr.Eval(r, 0, false)
	if s.state == Inactive && !cond {
		return
	}
	v, _ := rule.Expr.Subject(r)
	clear := false
	if s.state == Firing {
		clear = clearOf(rule, r, 0, false, cond, known)
	}
	e.step(rule, u.id, u.site, s, r.TimeMs, cond, known, clear, v)
}

func (e *Engine) aggregate(rule *rules.Rule, u *unitState, s *slot, r *telemetry.Record, late bool) {
	if rule.When != nil {
		ok, _ := rule.When.Eval(r, 0, false)
		if !ok {
			if late {
				return
			}
			// The window covers one unbroken stretch of readings that pass when.
			if s.win != nil {
				s.win.reset()
			}
			if s.state != Inactive {
				e.step(rule, u.id, u.site, s, r.TimeMs, false, true, s.state == Firing, s.value)
			}
			return
		}
	}
	x, ok := rule.Field.Read(r)
	if !ok {
		return
	}
	if s.win == nil {
		s.win = &window{}
	}
	s.win.add(r.TimeMs, x, rule.Window.Milliseconds())
	if late {
		return
	}
	v, hasV := s.win.aggregate(rule.Func)
	cond, known := rule.Expr.Eval(r, v, hasV)
	clear := false
	if s.state == Firing {
		clear = clearOf(rule, r, v, hasV, cond, known)
	}
	e.step(rule, u.id, u.site, s, r.TimeMs, cond, known, clear, v)
}

// absenceSeen resolves a unit's absence alert when a reading shows it has
// reported within for of the absence clock.
func (e *Engine) absenceSeen(rule *rules.Rule, u *unitState, s *slot, t int64) {
	if s.state != Firing {
		return
	}
	if e.absenceClock()-t < rule.For.Milliseconds() {
		s.value = 0
		s.state = Inactive
		e.emit(rule, u.id, s, Firing, t)
		s.reset()
	}
}

func (e *Engine) absenceClock() int64 {
	w := min(e.watermark, e.now().UnixMilli())
	return w - e.lateMs
}

func (e *Engine) alarm(rule *rules.Rule, u *unitState, s *slot, r *telemetry.Record, late bool) {
	t := r.TimeMs
	for i := range r.Alarms {
		a := &r.Alarms[i]
		if a.Severity != rule.AlarmSev || rule.AlarmCode != nil && !rule.AlarmCode.MatchString(a.Code) {
			continue
		}
		s.lastAlarm = max(s.lastAlarm, t)
		if s.state == Inactive && !late {
			s.state, s.activeAt, s.firedAt, s.value = Firing, t, t, float64(len(r.Alarms))
			e.render(rule, u.id, u.site, s)
			s.annots = withAlarm(s.annots, a)
			e.emit(rule, u.id, s, Inactive, 0)
		}
		return
	}
	if s.state == Firing && !late && t-s.lastAlarm >= rule.ResolveAfter.Milliseconds() {
		e.step(rule, u.id, u.site, s, t, false, true, true, 0)
	}
}

func withAlarm(m map[string]string, a *telemetry.Alarm) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m["alarm_code"] = strings.Clone(a.Code)
	if a.Text != "" {
		m["alarm_text"] = strings.Clone(a.Text)
	}
	return m
}

// Tick fires absence alerts for units silent for longer than their rule's
// for, measured on the absence clock. Call it periodically.
func (e *Engine) Tick() {
	if e.watermark == 0 {
		return
	}
	clock := e.absenceClock()
	for i, rule := range e.set.Rules {
		if rule.Kind != rules.KindAbsence {
			continue
		}
		forMs := rule.For.Milliseconds()
		for _, u := range e.units {
			s := &u.slots[i]
			if s.state != Inactive || u.frontier == 0 || clock-u.frontier < forMs {
				continue
			}
			s.state, s.activeAt, s.firedAt = Firing, u.frontier, clock
			s.value = float64(clock-u.frontier) / 60000
			e.render(rule, u.id, u.site, s)
			e.emit(rule, u.id, s, Inactive, 0)
		}
	}
}

// render fills a slot's labels and annotations when it becomes active; they
// stay fixed for the alert's life so that Alertmanager sees one alert.
func (e *Engine) render(rule *rules.Rule, key, site string, s *slot) {
	data := rules.TemplateData{Rule: rule.Name, Site: site, Severity: rule.Severity, Value: s.value}
	if rule.Kind != rules.KindShare {
		data.Unit = key
	}
	labels := map[string]string{}
	var buf bytes.Buffer
	for _, k := range rule.LabelNames {
		buf.Reset()
		if err := rule.Labels[k].Execute(&buf, data); err == nil {
			labels[k] = buf.String()
		}
	}
	data.Labels = labels
	annots := map[string]string{}
	for _, k := range rule.AnnotNames {
		buf.Reset()
		if err := rule.Annotations[k].Execute(&buf, data); err == nil {
			annots[k] = buf.String()
		}
	}
	s.labels, s.annots = labels, annots
}

// emit records a transition from `from` to the slot's current state;
// resolvedAt is set when the alert leaves pending or firing.
func (e *Engine) emit(rule *rules.Rule, key string, s *slot, from State, resolvedAt int64) {
	a := Alert{Rule: rule.Name, Key: key, State: s.state, Severity: rule.Severity, Value: s.value,
		ActiveAt: msTime(s.activeAt), FiredAt: msTime(s.firedAt), ResolvedAt: msTime(resolvedAt), LastAlarm: msTime(s.lastAlarm)}
	a.Labels, a.Annotations = e.fullLabels(rule, key, s), copyMap(s.annots)
	e.changes = append(e.changes, Change{Alert: a, From: from})
}

func (e *Engine) fullLabels(rule *rules.Rule, key string, s *slot) map[string]string {
	l := copyMap(s.labels)
	l["alertname"] = rule.Name
	l["severity"] = rule.Severity
	switch {
	case rule.Kind != rules.KindShare:
		l["unit"] = key
		if u := e.units[key]; u != nil && u.site != "" {
			l["site"] = u.site
		}
	case key == FleetKey:
		l["scope"] = rules.ScopeFleet
	default:
		l["scope"] = rules.ScopeSite
		l["site"] = key
	}
	return l
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
