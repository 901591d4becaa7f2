package engine

import (
	"strings"

	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/shared/telemetry"
)

func groupKey(rule *rules.Rule, site string) string {
	if rule.Scope == rules.ScopeFleet {
		return FleetKey
	}
	return site
}

func (e *Engine) group(i int, key string) *group {
	g := e.groups[i][key]
	if g == nil {
		g = &group{}
		e.groups[i][key] = g
	}
	return g
}

// share updates the unit's membership in its group and evaluates the
// group's share of matching units.
func (e *Engine) share(i int, rule *rules.Rule, u *unitState, s *slot, r *telemetry.Record) {
	key := groupKey(rule, u.site)
	if key == "" {
		return // a site-scoped rule cannot place a unit without a site
	}
	g := e.group(i, key)
	m, known := rule.Match.Eval(r, 0, false)
	if !s.member {
		s.member = true
		g.units++
	}
	if known && m != s.match {
		s.match = m
		if m {
			g.matching++
		} else {
			g.matching--
		}
	}
	v := float64(g.matching) / float64(g.units)
	hasV := g.units >= rule.MinUnits
	cond, condKnown := rule.Expr.Eval(r, v, hasV)
	clear := false
	if g.slot.state == Firing {
		clear = clearOf(rule, r, v, hasV, cond, condKnown)
	}
	site := key
	if key == FleetKey {
		site = ""
	}
	e.step(rule, key, site, &g.slot, r.TimeMs, cond, condKnown, clear, v)
}

// moveSite moves a unit whose site changed between its share groups.
func (e *Engine) moveSite(u *unitState, site string) {
	for i, rule := range e.set.Rules {
		s := &u.slots[i]
		if rule.Kind != rules.KindShare || rule.Scope != rules.ScopeSite || !s.member {
			continue
		}
		if g := e.groups[i][u.site]; g != nil {
			g.units--
			if s.match {
				g.matching--
			}
		}
		s.member, s.match = false, false
	}
	u.site = strings.Clone(site)
	e.markDirty(u)
}
