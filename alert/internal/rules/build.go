package rules

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	yaml "go.yaml.in/yaml/v4"
)

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Labels the engine sets itself; rules may not override them.
var reservedLabels = map[string]bool{"alertname": true, "unit": true, "site": true, "severity": true, "scope": true}

// ruleBuilder collects the problems of one rule.
type ruleBuilder struct {
	file string
	n    *yaml.Node
	y    *ruleYAML
	r    *Rule
	errs []error
}

func (b *ruleBuilder) fail(key, format string, args ...any) {
	b.errs = append(b.errs, &Error{File: b.file, Line: keyLine(b.n, key), Msg: fmt.Sprintf("rule %q: ", b.y.Name) + fmt.Sprintf(format, args...)})
}

func (b *ruleBuilder) duration(key, s string, required bool, max time.Duration) time.Duration {
	if s == "" {
		if required {
			b.fail(key, "%s is required for a %s rule", key, b.y.Kind)
		}
		return 0
	}
	d, err := parseDuration(s)
	if err != nil || d > max {
		b.fail(key, "%s %q: want a duration such as 90s, 10m or 2h, at most %s", key, s, max)
	}
	return d
}

func (b *ruleBuilder) expr(key, s string, required, allowValue bool) *Expr {
	if s == "" {
		if required {
			b.fail(key, "%s is required for a %s rule", key, b.y.Kind)
		}
		return nil
	}
	e, err := ParseExpr(s, allowValue)
	if err != nil {
		b.fail(key, "%s: %v", key, err)
	}
	return e
}

// unused reports keys set that the rule's kind does not read.
func (b *ruleBuilder) unused(allowed ...string) {
	ok := map[string]bool{"name": true, "kind": true, "severity": true, "labels": true, "annotations": true}
	for _, a := range allowed {
		ok[a] = true
	}
	for i := 0; i+1 < len(b.n.Content); i += 2 {
		if k := b.n.Content[i].Value; !ok[k] {
			b.fail(k, "%s does not apply to a %s rule", k, b.y.Kind)
		}
	}
}

func build(file string, n *yaml.Node, y *ruleYAML) (*Rule, []error) {
	b := &ruleBuilder{file: file, n: n, y: y, r: &Rule{Name: y.Name, Kind: Kind(y.Kind), Line: n.Line, File: file, Severity: y.Severity}}
	switch {
	case y.Name == "":
		b.fail("name", "name is required")
	case len(y.Name) > MaxNameLen || !nameRE.MatchString(y.Name):
		b.fail("name", "name must match %s and be at most %d characters", nameRE, MaxNameLen)
	}
	switch y.Severity {
	case "critical", "warning", "info":
	case "":
		b.fail("severity", "severity is required: critical, warning or info")
	default:
		b.fail("severity", "severity %q: want critical, warning or info", y.Severity)
	}
	r := b.r
	switch r.Kind {
	case KindThreshold:
		b.unused("expr", "clear", "for")
		r.Expr = b.expr("expr", y.Expr, true, false)
		r.Clear = b.expr("clear", y.Clear, false, false)
		r.For = b.duration("for", y.For, false, 24*time.Hour)
	case KindAggregate:
		b.aggregate()
	case KindAbsence:
		b.unused("for")
		r.For = b.duration("for", y.For, true, 7*24*time.Hour)
		if y.For != "" && r.For < time.Second {
			b.fail("for", "for must be at least 1s for an absence rule")
		}
	case KindAlarm:
		b.alarm()
	case KindShare:
		b.share()
	case "":
		b.fail("kind", "kind is required: threshold, aggregate, absence, alarm or share")
	default:
		b.fail("kind", "kind %q: want threshold, aggregate, absence, alarm or share", y.Kind)
	}
	r.Labels, r.LabelNames = b.templates("labels", y.Labels, true)
	r.Annotations, r.AnnotNames = b.templates("annotations", y.Annotations, false)
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	return r, nil
}

func (b *ruleBuilder) aggregate() {
	r, y := b.r, b.y
	b.unused("field", "func", "window", "when", "expr", "clear", "for")
	if y.Field == "" {
		b.fail("field", "field is required for an aggregate rule")
	} else if f, err := ParseNumField(y.Field); err != nil {
		b.fail("field", "%v", err)
	} else {
		r.Field = f
	}
	switch Func(y.Func) {
	case FuncMean, FuncMin, FuncMax, FuncDelta, FuncRate:
		r.Func = Func(y.Func)
	case "":
		b.fail("func", "func is required: mean, min, max, delta or rate")
	default:
		b.fail("func", "func %q: want mean, min, max, delta or rate", y.Func)
	}
	r.Window = b.duration("window", y.Window, true, MaxWindow)
	if y.Window != "" && r.Window < time.Second {
		b.fail("window", "window must be at least 1s")
	}
	r.When = b.expr("when", y.When, false, false)
	r.Expr = b.expr("expr", y.Expr, true, true)
	r.Clear = b.expr("clear", y.Clear, false, true)
	r.For = b.duration("for", y.For, false, 24*time.Hour)
}

func (b *ruleBuilder) alarm() {
	r, y := b.r, b.y
	b.unused("alarm_severity", "alarm_code", "resolve_after")
	if y.AlarmSev == "" {
		b.fail("alarm_severity", "alarm_severity is required for an alarm rule (the alarm's severity attribute, e.g. critical)")
	}
	r.AlarmSev = y.AlarmSev
	if y.AlarmCode != "" {
		re, err := regexp.Compile("^(?:" + y.AlarmCode + ")$")
		if err != nil {
			b.fail("alarm_code", "alarm_code %q: %v", y.AlarmCode, err)
		}
		r.AlarmCode = re
	}
	r.ResolveAfter = b.duration("resolve_after", y.ResolveAfter, false, 7*24*time.Hour)
	if r.ResolveAfter == 0 {
		r.ResolveAfter = 10 * time.Minute
	}
}

func (b *ruleBuilder) share() {
	r, y := b.r, b.y
	b.unused("match", "scope", "min_units", "expr", "clear", "for")
	r.Match = b.expr("match", y.Match, true, false)
	r.Expr = b.expr("expr", y.Expr, true, true)
	r.Clear = b.expr("clear", y.Clear, false, true)
	r.For = b.duration("for", y.For, false, 24*time.Hour)
	switch y.Scope {
	case ScopeSite, ScopeFleet:
		r.Scope = y.Scope
	case "":
		r.Scope = ScopeSite
	default:
		b.fail("scope", "scope %q: want site or fleet", y.Scope)
	}
	if y.MinUnits < 0 {
		b.fail("min_units", "min_units must not be negative")
	}
	r.MinUnits = max(y.MinUnits, 1)
}

func (b *ruleBuilder) templates(key string, m map[string]string, isLabel bool) (map[string]*template.Template, []string) {
	out := map[string]*template.Template{}
	names := make([]string, 0, len(m))
	for k, v := range m {
		if !labelRE.MatchString(k) {
			b.fail(key, "%s name %q must match %s", key, k, labelRE)
			continue
		}
		if isLabel && reservedLabels[k] {
			b.fail(key, "label %q is set by the engine; choose another name", k)
			continue
		}
		t, err := template.New(k).Option("missingkey=error").Funcs(funcs).Parse(v)
		if err != nil {
			b.fail(key, "%s %q: template: %v", key, k, strings.TrimPrefix(err.Error(), "template: "))
			continue
		}
		if err := t.Execute(discard{}, SampleData()); err != nil {
			b.fail(key, "%s %q: template: %v", key, k, strings.TrimPrefix(err.Error(), "template: "))
			continue
		}
		out[k] = t
		names = append(names, k)
	}
	sort.Strings(names)
	return out, names
}

// funcs are the template functions besides Go's built-ins.
var funcs = template.FuncMap{
	// pct formats a share (0..1) as a whole percentage.
	"pct": func(v float64) string { return fmt.Sprintf("%.0f", v*100) },
}

// TemplateData is what label and annotation templates see.
type TemplateData struct {
	Rule     string
	Unit     string // "" for share rules
	Site     string // "" for fleet-wide share rules
	Severity string
	Value    float64 // the reading's field, the aggregate, the share, or the minutes of silence
	Labels   map[string]string
}

// SampleData is used to check templates when a file is loaded.
func SampleData() TemplateData {
	return TemplateData{Rule: "R", Unit: "FP2-000001", Site: "north-yard", Severity: "warning", Value: 1, Labels: map[string]string{}}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
