// Package rules reads alerting rules from YAML: per-unit thresholds with a
// for: duration and a separate clear condition (hysteresis), rolling
// aggregates over a window, absence, alarms of a severity, and the share of
// a site's (or the fleet's) units matching a condition. Every error names
// the file and line it comes from.
package rules

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	yaml "go.yaml.in/yaml/v4"
)

// Kind is what a rule watches.
type Kind string

// Rule kinds.
const (
	KindThreshold Kind = "threshold" // a condition on each reading
	KindAggregate Kind = "aggregate" // a condition on a rolling aggregate of one field
	KindAbsence   Kind = "absence"   // no reading for a while
	KindAlarm     Kind = "alarm"     // a reading carries an alarm of a severity
	KindShare     Kind = "share"     // the share of a site's or the fleet's units matching a condition
)

// Func is a rolling aggregate.
type Func string

// Aggregate functions over a window.
const (
	FuncMean  Func = "mean"
	FuncMin   Func = "min"
	FuncMax   Func = "max"
	FuncDelta Func = "delta" // newest minus oldest value in the window
	FuncRate  Func = "rate"  // delta per minute, over the window's time span
)

// Scope of a share rule.
const (
	ScopeSite  = "site"
	ScopeFleet = "fleet"
)

// Limits that bound memory and work per rule.
const (
	MaxRules        = 200
	MaxWindow       = 24 * time.Hour
	MaxWindowPoints = 1024 // samples an aggregate window keeps per unit
	MaxNameLen      = 128
)

// Settings apply to every rule of a file.
type Settings struct {
	// AllowedLateness is how far behind a unit's newest reading a reading
	// may arrive and still count (windows, share); older ones are dropped
	// and counted. It is also the grace absence rules wait before firing.
	AllowedLateness time.Duration
}

// Rule is one validated rule.
type Rule struct {
	Name         string
	Kind         Kind
	Line         int    // where the rule starts in its file
	File         string // the file it came from
	Severity     string
	For          time.Duration // threshold, aggregate, share: how long expr must hold; absence: how long without a reading
	Expr         *Expr         // threshold: on the reading; aggregate/share: on "value"
	Clear        *Expr         // nil: the alert resolves when Expr is false
	When         *Expr         // aggregate: which readings enter the window (others reset it)
	Field        Field         // aggregate
	Func         Func          // aggregate
	Window       time.Duration // aggregate
	Match        *Expr         // share: the per-unit condition
	Scope        string        // share: site or fleet
	MinUnits     int           // share: fewer units known in the group never fire
	AlarmSev     string        // alarm: the severity to match
	AlarmCode    *regexp.Regexp
	ResolveAfter time.Duration // alarm: event time without the alarm before it resolves
	Labels       map[string]*template.Template
	Annotations  map[string]*template.Template
	LabelNames   []string // sorted keys of Labels
	AnnotNames   []string // sorted keys of Annotations
}

// Set is a validated rule file.
type Set struct {
	File     string
	Settings Settings
	Rules    []*Rule
}

// Error is a problem in a rule file at a line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// MaxFileBytes bounds a rule file.
const MaxFileBytes = 4 << 20

// Load reads and validates a rule file. The error, if any, joins one
// *Error per problem found, each with its file and line.
func Load(path string) (*Set, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if st.Size() > MaxFileBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("%d bytes, over the %d-byte limit", st.Size(), MaxFileBytes)}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return Parse(path, b)
}

type fileYAML struct {
	Settings struct {
		AllowedLateness string `yaml:"allowed_lateness"`
	} `yaml:"settings"`
	Rules []yaml.Node `yaml:"rules"`
}

type ruleYAML struct {
	Name         string            `yaml:"name"`
	Kind         string            `yaml:"kind"`
	Severity     string            `yaml:"severity"`
	For          string            `yaml:"for"`
	Expr         string            `yaml:"expr"`
	Clear        string            `yaml:"clear"`
	When         string            `yaml:"when"`
	Field        string            `yaml:"field"`
	Func         string            `yaml:"func"`
	Window       string            `yaml:"window"`
	Match        string            `yaml:"match"`
	Scope        string            `yaml:"scope"`
	MinUnits     int               `yaml:"min_units"`
	AlarmSev     string            `yaml:"alarm_severity"`
	AlarmCode    string            `yaml:"alarm_code"`
	ResolveAfter string            `yaml:"resolve_after"`
	Labels       map[string]string `yaml:"labels"`
	Annotations  map[string]string `yaml:"annotations"`
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// yamlErr turns a YAML library error into Errors with lines.
func yamlErr(file string, err error) error {
	var le *yaml.LoadErrors
	if errors.As(err, &le) {
		var errs []error
		for _, e := range le.Errors {
			errs = append(errs, &Error{File: file, Line: e.Line, Msg: e.Err.Error()})
		}
		return errors.Join(errs...)
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &line)
		msg = strings.TrimSpace(lineRE.ReplaceAllString(msg, ""))
		msg = strings.TrimPrefix(msg, ": ")
	}
	return &Error{File: file, Line: line, Msg: msg}
}

// Parse validates a rule file's contents; file names it in errors.
func Parse(file string, b []byte) (*Set, error) {
	var doc fileYAML
	if err := yaml.Load(b, &doc, yaml.WithKnownFields(), yaml.WithUniqueKeys()); err != nil {
		return nil, yamlErr(file, err)
	}
	set := &Set{File: file}
	var errs []error
	add := func(line int, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	if s := doc.Settings.AllowedLateness; s != "" {
		d, err := parseDuration(s)
		if err != nil || d > time.Hour {
			add(0, "settings.allowed_lateness %q: want a duration from 0s to 1h", s)
		}
		set.Settings.AllowedLateness = d
	}
	if len(doc.Rules) == 0 {
		add(0, "no rules: want a list under \"rules:\"")
	}
	if len(doc.Rules) > MaxRules {
		add(doc.Rules[MaxRules].Line, "more than %d rules", MaxRules)
	}
	seen := map[string]int{}
	for i := range doc.Rules {
		n := &doc.Rules[i]
		var ry ruleYAML
		if err := n.Load(&ry, yaml.WithKnownFields(), yaml.WithUniqueKeys()); err != nil {
			errs = append(errs, yamlErr(file, err))
			continue
		}
		r, rerrs := build(file, n, &ry)
		errs = append(errs, rerrs...)
		if r == nil {
			continue
		}
		if prev, dup := seen[r.Name]; dup {
			add(n.Line, "rule %q is already defined at line %d", r.Name, prev)
			continue
		}
		seen[r.Name] = n.Line
		set.Rules = append(set.Rules, r)
	}
	if len(errs) > 0 {
		return nil, sortedErrors(errs)
	}
	return set, nil
}

// keyLine returns the line of key in mapping node n, or n's line.
func keyLine(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// parseDuration accepts Go durations plus "d" for days.
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && fmt.Sprint(n) == d {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative")
	}
	return d, nil
}

// sortedErrors flattens joined errors and orders them by line.
func sortedErrors(errs []error) error {
	var flat []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		flat = append(flat, e)
	}
	for _, e := range errs {
		walk(e)
	}
	line := func(e error) int {
		var re *Error
		if errors.As(e, &re) {
			return re.Line
		}
		return 0
	}
	sort.SliceStable(flat, func(i, j int) bool { return line(flat[i]) < line(flat[j]) })
	return errors.Join(flat...)
}
