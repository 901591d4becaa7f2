package rules

import (
	"strings"
	"testing"

	"github.com/flexipack/cutover/shared/telemetry"
)

func TestDefaultRulesLoad(t *testing.T) {
	set, err := Load("../../rules/default.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Rules) < 8 || set.Settings.AllowedLateness == 0 {
		t.Fatalf("default rules: %d rules, lateness %s", len(set.Rules), set.Settings.AllowedLateness)
	}
}

// Every problem is reported with the file and the line it is on.
func TestErrorsNameFileAndLine(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"unknown field": {"rules:\n  - name: A\n    kind: threshold\n    expr: tmp_c > 3\n    severity: info\n",
			`f.yml:4: rule "A": expr: "tmp_c > 3": unknown field "tmp_c"`},
		"bad kind":               {"rules:\n  - name: A\n    kind: thresh\n    severity: info\n", `f.yml:3: rule "A": kind "thresh"`},
		"missing for on absence": {"rules:\n  - name: A\n    kind: absence\n    severity: info\n", `f.yml:2: rule "A": for is required`},
		"unknown key":            {"rules:\n  - name: A\n    kind: absence\n    for: 1m\n    fro: 2m\n    severity: info\n", `f.yml:5:`},
		"key of another kind": {"rules:\n  - name: A\n    kind: absence\n    for: 1m\n    window: 2m\n    severity: info\n",
			`f.yml:5: rule "A": window does not apply to a absence rule`},
		"duplicate name": {"rules:\n  - {name: A, kind: absence, for: 1m, severity: info}\n  - {name: A, kind: absence, for: 2m, severity: info}\n",
			`f.yml:3: rule "A" is already defined at line 2`},
		"bad template": {"rules:\n  - name: A\n    kind: absence\n    for: 1m\n    severity: info\n    annotations:\n      summary: \"{{ .Nope }}\"\n",
			`f.yml:6: rule "A": annotations "summary": template`},
		"reserved label":          {"rules:\n  - name: A\n    kind: absence\n    for: 1m\n    severity: info\n    labels: {unit: x}\n", `label "unit" is set by the engine`},
		"value outside aggregate": {"rules:\n  - name: A\n    kind: threshold\n    expr: value > 1\n    severity: info\n", `"value" exists only in aggregate and share rules`},
		"text compared with <":    {"rules:\n  - name: A\n    kind: threshold\n    expr: mode < idle\n    severity: info\n", "mode is text"},
		"bad mode":                {"rules:\n  - name: A\n    kind: threshold\n    expr: mode == sleeping\n    severity: info\n", `mode "sleeping"`},
		"bad severity":            {"rules:\n  - name: A\n    kind: absence\n    for: 1m\n    severity: page\n", `f.yml:5: rule "A": severity "page"`},
		"not yaml":                {"rules: [\n", "f.yml:"},
		"no rules":                {"settings: {}\n", "no rules"},
		"bad window":              {"rules:\n  - name: A\n    kind: aggregate\n    field: soc_pct\n    func: delta\n    window: 10x\n    expr: value < 1\n    severity: info\n", `f.yml:6: rule "A": window "10x"`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("f.yml", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestExprTriState(t *testing.T) {
	e, err := ParseExpr("soc_pct < 5 and mode != charging or temp_cell_max_c>=60", false)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(soc float64, hasSoC bool, mode string, temp float64) *telemetry.Record {
		r := &telemetry.Record{Mode: mode}
		if hasSoC {
			r.SoC, r.Has = soc, telemetry.HasSoC
		}
		if temp != 0 {
			r.Temps = []telemetry.Temp{{Sensor: "cell_max", C: temp}}
		}
		return r
	}
	cases := []struct {
		r             *telemetry.Record
		result, known bool
	}{
		{rec(3, true, "idle", 20), true, true},
		{rec(3, true, "charging", 20), false, true},
		{rec(0, false, "idle", 20), false, false}, // SoC unknown, temperature known false: unknown
		{rec(0, false, "idle", 61), true, true},
		{rec(50, true, "idle", 0), false, false}, // no temperature: unknown
		{rec(50, true, "", 30), false, true},     // first clause known false via SoC
	}
	for i, c := range cases {
		got, known := e.Eval(c.r, 0, false)
		if got != c.result || known != c.known {
			t.Errorf("case %d: got %v/%v, want %v/%v", i, got, known, c.result, c.known)
		}
	}
}
