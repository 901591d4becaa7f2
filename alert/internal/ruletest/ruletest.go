// Package ruletest runs rule unit tests, like promtool test rules: a file
// names a rule file and lists steps at given wall-clock offsets (messages of
// readings, with their own reading times, in any order; restarts; expected
// alerts). The engine runs on a simulated clock, so a test of hours runs in
// microseconds.
package ruletest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v4"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/shared/telemetry"
)

// DefaultStart is the simulated wall clock's origin when a file sets none.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fileYAML struct {
	RuleFile string     `yaml:"rule_file"`
	Start    string     `yaml:"start"`
	Tests    []testYAML `yaml:"tests"`
}

type testYAML struct {
	Name  string     `yaml:"name"`
	Steps []stepYAML `yaml:"steps"`
}

type stepYAML struct {
	At       string        `yaml:"at"`
	Unit     string        `yaml:"unit"`
	Units    []string      `yaml:"units"` // the same readings sent by each of these units, one message each
	Site     string        `yaml:"site"`
	Readings []yaml.Node   `yaml:"readings"`
	Series   *seriesYAML   `yaml:"series"`
	Restart  bool          `yaml:"restart"`
	Reload   string        `yaml:"reload"`
	Expect   *[]expectYAML `yaml:"expect"`
}

type seriesYAML struct {
	From   string                `yaml:"from"`
	To     string                `yaml:"to"`
	Every  string                `yaml:"every"`
	Fields map[string]any        `yaml:"fields"`
	Ramp   map[string][2]float64 `yaml:"ramp"`
}

type expectYAML struct {
	Alertname   string            `yaml:"alertname"`
	State       string            `yaml:"state"`
	Unit        string            `yaml:"unit"`
	Site        string            `yaml:"site"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Result is the outcome of one test of a file.
type Result struct {
	File     string   `json:"file"`
	Test     string   `json:"test"`
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
}

// RunFile runs every test of a test file. A non-nil error means the file
// itself (or its rule file) is unusable.
func RunFile(path string) ([]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules test: %w", err)
	}
	var doc fileYAML
	if err := yaml.Load(b, &doc, yaml.WithKnownFields(), yaml.WithUniqueKeys()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.RuleFile == "" {
		return nil, fmt.Errorf("%s: rule_file is required (a path relative to the test file)", path)
	}
	rulePath := filepath.Join(filepath.Dir(path), doc.RuleFile)
	set, err := rules.Load(rulePath)
	if err != nil {
		return nil, err
	}
	start := DefaultStart
	if doc.Start != "" {
		if start, err = time.Parse(time.RFC3339, doc.Start); err != nil {
			return nil, fmt.Errorf("%s: start %q: want RFC 3339", path, doc.Start)
		}
	}
	if len(doc.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", path)
	}
	var out []Result
	for i := range doc.Tests {
		t := &doc.Tests[i]
		r := Result{File: path, Test: t.Name}
		r.Failures = runTest(set, filepath.Dir(path), start, t)
		r.Passed = len(r.Failures) == 0
		out = append(out, r)
	}
	return out, nil
}

// harness is one test's engine with what a store would have persisted.
type harness struct {
	set    *rules.Set
	now    time.Time
	eng    *engine.Engine
	units  map[string]engine.UnitRecord
	alerts map[[2]string]engine.Alert
}

func newHarness(set *rules.Set, start time.Time) *harness {
	h := &harness{set: set, now: start, units: map[string]engine.UnitRecord{}, alerts: map[[2]string]engine.Alert{}}
	h.eng = engine.New(set, engine.Options{Now: func() time.Time { return h.now }})
	return h
}

// persist does what the service does at a unit checkpoint, after each step.
func (h *harness) persist() {
	for _, c := range h.eng.Drain() {
		k := [2]string{c.Rule, c.Key}
		if c.State == engine.Inactive {
			delete(h.alerts, k)
		} else {
			h.alerts[k] = c.Alert
		}
	}
	for _, u := range h.eng.TakeCheckpoint() {
		h.units[u.Unit] = u
	}
}

// restart throws the engine away and builds a new one from what was persisted.
func (h *harness) restart() error {
	h.persist()
	h.eng = engine.New(h.set, engine.Options{Now: func() time.Time { return h.now }})
	units := make([]engine.UnitRecord, 0, len(h.units))
	for _, u := range h.units {
		units = append(units, u)
	}
	alerts := make([]engine.Alert, 0, len(h.alerts))
	for _, a := range h.alerts {
		alerts = append(alerts, a)
	}
	if _, bad := h.eng.Restore(units, alerts); len(bad) > 0 {
		return fmt.Errorf("restart: %w", errors.Join(bad...))
	}
	return nil
}

func runTest(set *rules.Set, dir string, start time.Time, t *testYAML) []string {
	h := newHarness(set, start)
	var fails []string
	for i := range t.Steps {
		st := &t.Steps[i]
		at, err := time.ParseDuration(orZero(st.At))
		if err != nil {
			return append(fails, fmt.Sprintf("step %d: at %q: %v", i+1, st.At, err))
		}
		if w := start.Add(at); w.After(h.now) {
			h.now = w
		}
		if err := h.apply(dir, start, st); err != nil {
			return append(fails, fmt.Sprintf("step %d (at %s): %v", i+1, st.At, err))
		}
		h.eng.Tick()
		h.persist()
		if st.Expect != nil {
			if msg := compare(h.eng.Active(), *st.Expect); msg != "" {
				fails = append(fails, fmt.Sprintf("step %d (at %s): %s", i+1, orZero(st.At), msg))
			}
		}
	}
	return fails
}

func orZero(s string) string {
	if s == "" {
		return "0s"
	}
	return s
}

func (h *harness) apply(dir string, start time.Time, st *stepYAML) error {
	if st.Restart {
		if err := h.restart(); err != nil {
			return err
		}
	}
	if st.Reload != "" {
		set, err := rules.Load(filepath.Join(dir, st.Reload))
		if err != nil {
			return err
		}
		h.set = set
		h.eng.Reload(set)
	}
	var recs []telemetry.Record
	for j := range st.Readings {
		r, err := reading(&st.Readings[j], start, h.now)
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	if st.Series != nil {
		rs, err := series(st.Series, start)
		if err != nil {
			return err
		}
		recs = append(recs, rs...)
	}
	if len(recs) == 0 {
		return nil
	}
	units := st.Units
	if st.Unit != "" {
		units = append(units, st.Unit)
	}
	if len(units) == 0 {
		return errors.New("readings need a unit (unit: or units:)")
	}
	for _, u := range units {
		msg := make([]telemetry.Record, len(recs))
		copy(msg, recs)
		for j := range msg {
			msg[j].Unit, msg[j].Site = u, st.Site
		}
		h.eng.Observe(msg)
	}
	return nil
}

func compare(got []engine.Alert, want []expectYAML) string {
	used := make([]bool, len(got))
	var missing []string
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && matches(g, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, fmt.Sprintf("%s{unit=%q site=%q} %s", w.Alertname, w.Unit, w.Site, w.State))
		}
	}
	var extra []string
	for i, g := range got {
		if !used[i] {
			extra = append(extra, describe(g))
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	var all []string
	for _, g := range got {
		all = append(all, describe(g))
	}
	sort.Strings(all)
	return fmt.Sprintf("expected but not active: [%s]; active but not expected: [%s]; active: [%s]",
		strings.Join(missing, ", "), strings.Join(extra, ", "), strings.Join(all, ", "))
}

func describe(a engine.Alert) string {
	return fmt.Sprintf("%s{unit=%q site=%q} %s (value %g, since %s)", a.Rule, a.Labels["unit"], a.Labels["site"], a.State, a.Value, a.ActiveAt.Format(time.RFC3339))
}

func matches(g engine.Alert, w expectYAML) bool {
	if g.Rule != w.Alertname || g.State.String() != w.State {
		return false
	}
	if w.Unit != "" && g.Labels["unit"] != w.Unit || w.Site != "" && g.Labels["site"] != w.Site {
		return false
	}
	for k, v := range w.Labels {
		if g.Labels[k] != v {
			return false
		}
	}
	for k, v := range w.Annotations {
		if g.Annotations[k] != v {
			return false
		}
	}
	return true
}
