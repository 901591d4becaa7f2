// Package deploy holds the deployment files (Grafana, Prometheus, InfluxDB);
// its tests check that the dashboards agree with what the code and the
// downsampling actually produce, so a renamed metric, field or data source
// fails here instead of as an empty panel.
package deploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v4"

	"github.com/flexipack/cutover/deploy/influxdb"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/rollup"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

const dashboardsDir = "grafana/dashboards"

// panel is the part of a Grafana panel the checks read.
type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
		Query      string      `json:"query"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardFile struct {
	path  string
	UID   string  `json:"uid"`
	Title string  `json:"title"`
	Panel []panel `json:"panels"`
	Templ struct {
		List []struct {
			Name       string      `json:"name"`
			Type       string      `json:"type"`
			Query      any         `json:"query"`
			Datasource *datasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

// panels returns every panel, rows' nested panels included, rows excluded.
func (d dashboardFile) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				out = append(out, p)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panel)
	return out
}

func loadDashboards(t *testing.T) map[string]dashboardFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s: %v", dashboardsDir, err)
	}
	out := map[string]dashboardFile{}
	uids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboardFile
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: not valid JSON: %v", f, err)
		}
		d.path = f
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: dashboard needs a uid and a title", f)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", f, other, d.UID)
		}
		uids[d.UID] = f
		ids := map[int]bool{}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("%s: panel id %d used twice", f, p.ID)
				}
				ids[p.ID] = true
				walk(p.Panels)
			}
		}
		walk(d.Panel)
		out[filepath.Base(f)] = d
	}
	return out
}

// provisionedDatasources reads the data sources' uid → type from the
// provisioning YAML docker-compose.yml mounts into Grafana.
func provisionedDatasources(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("grafana/provisioning/datasources/datasources.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Datasources []struct {
			Name, UID, Type string
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("datasources.yml: %v", err)
	}
	out := map[string]string{}
	for _, d := range cfg.Datasources {
		if d.UID == "" {
			t.Fatalf("datasources.yml: data source %q has no uid; dashboards reference data sources by uid", d.Name)
		}
		out[d.UID] = d.Type
	}
	return out
}

func TestDashboardsAreTheTwoExpected(t *testing.T) {
	ds := loadDashboards(t)
	var names []string
	for n := range ds {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"cutover.json", "fleet.json"}; !slices.Equal(names, want) {
		t.Errorf("dashboards %v, want %v", names, want)
	}
}

func TestDashboardDatasourcesAreProvisioned(t *testing.T) {
	prov := provisionedDatasources(t)
	check := func(where string, d *datasource) {
		t.Helper()
		if d == nil {
			t.Errorf("%s: no datasource (Grafana would use the default, which may change)", where)
			return
		}
		typ, ok := prov[d.UID]
		switch {
		case !ok:
			t.Errorf("%s: datasource uid %q is not provisioned (have %v)", where, d.UID, prov)
		case typ != d.Type:
			t.Errorf("%s: datasource %q has type %q here, %q in datasources.yml", where, d.UID, d.Type, typ)
		}
	}
	for name, d := range loadDashboards(t) {
		for _, p := range d.panels() {
			where := fmt.Sprintf("%s panel %d %q", name, p.ID, p.Title)
			check(where, p.Datasource)
			if len(p.Targets) == 0 {
				t.Errorf("%s: no queries", where)
			}
			for _, tg := range p.Targets {
				check(where+" target "+tg.RefID, tg.Datasource)
				if tg.Datasource != nil && p.Datasource != nil && tg.Datasource.UID != p.Datasource.UID {
					t.Errorf("%s target %s: datasource %q differs from the panel's %q", where, tg.RefID, tg.Datasource.UID, p.Datasource.UID)
				}
				if strings.TrimSpace(tg.Expr+tg.Query) == "" {
					t.Errorf("%s target %s: empty query", where, tg.RefID)
				}
			}
		}
		for _, v := range d.Templ.List {
			if v.Type == "query" {
				check(fmt.Sprintf("%s variable %s", name, v.Name), v.Datasource)
			}
		}
	}
}

// --- Prometheus metric names ------------------------------------------------

// exposedMetrics returns every metric name the binaries' code registers,
// read from the Go source: prometheus.{Counter,Gauge,Histogram,Summary}Opts
// literals, with Namespace/Subsystem/Name resolved through string constants
// and through the small "counter := func(n, help string)" helpers the
// publishers use. Histograms and summaries add their _bucket/_sum/_count
// series.
func exposedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, root := range []string{"../consumer", "../backfill", "../migrate", "../producer", "../shared"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			for _, m := range metricsInFile(t, fset, f) {
				out[m] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// shared/obs.NewRegistry registers the Go and process collectors; their
	// names are client_golang's, so only their prefixes are checked.
	out["go_*"], out["process_*"] = true, true
	out["up"] = true // added by Prometheus to every scrape
	return out
}

func metricsInFile(t *testing.T, fset *token.FileSet, f *ast.File) []string {
	consts := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if s, ok := stringLit(vs.Values[i]); ok {
						consts[name.Name] = s
					}
				}
			}
		}
		return true
	})
	var out []string
	// Walk with a stack so an Opts literal inside a func literal can find
	// the helper's name and its call sites in the enclosing function.
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		sel, ok := cl.Type.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "prometheus" {
			return true
		}
		kind := strings.TrimSuffix(sel.Sel.Name, "Opts")
		if kind == sel.Sel.Name || !slices.Contains([]string{"Counter", "Gauge", "Histogram", "Summary"}, kind) {
			return true
		}
		parts := map[string][]string{"Namespace": {""}, "Subsystem": {""}, "Name": nil}
		for _, e := range cl.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			key := kv.Key.(*ast.Ident).Name
			if _, want := parts[key]; !want {
				continue
			}
			vals := resolve(kv.Value, consts, stack)
			if len(vals) == 0 {
				t.Errorf("%s: cannot resolve the metric %s %s; extend deploy's exposedMetrics", fset.Position(kv.Pos()), key, render(kv.Value))
				return true
			}
			parts[key] = vals
		}
		for _, ns := range parts["Namespace"] {
			for _, sub := range parts["Subsystem"] {
				for _, name := range parts["Name"] {
					full := strings.Join(slices.DeleteFunc([]string{ns, sub, name}, func(s string) bool { return s == "" }), "_")
					out = append(out, full)
					if kind == "Histogram" || kind == "Summary" {
						out = append(out, full+"_sum", full+"_count")
					}
					if kind == "Histogram" {
						out = append(out, full+"_bucket")
					}
				}
			}
		}
		return true
	})
	return out
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// resolve returns the string values e can take: a literal, a constant, or a
// parameter of an enclosing func literal assigned to a variable, in which
// case the matching argument of every call of that variable.
func resolve(e ast.Expr, consts map[string]string, stack []ast.Node) []string {
	if s, ok := stringLit(e); ok {
		return []string{s}
	}
	id, ok := e.(*ast.Ident)
	if !ok {
		return nil
	}
	if s, ok := consts[id.Name]; ok {
		return []string{s}
	}
	for i := len(stack) - 1; i > 0; i-- {
		fl, ok := stack[i].(*ast.FuncLit)
		if !ok {
			continue
		}
		pos := -1
		n := 0
		for _, field := range fl.Type.Params.List {
			for _, name := range field.Names {
				if name.Name == id.Name {
					pos = n
				}
				n++
			}
		}
		if pos < 0 {
			continue
		}
		// The helper's variable: `name := func(...)`.
		as, ok := stack[i-1].(*ast.AssignStmt)
		if !ok || len(as.Lhs) != 1 {
			return nil
		}
		helper := as.Lhs[0].(*ast.Ident).Name
		var outer ast.Node
		for j := i - 1; j >= 0; j-- {
			if fd, ok := stack[j].(*ast.FuncDecl); ok {
				outer = fd
				break
			}
		}
		var vals []string
		ast.Inspect(outer, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if fn, ok := call.Fun.(*ast.Ident); ok && fn.Name == helper && pos < len(call.Args) {
				if s, ok := stringLit(call.Args[pos]); ok {
					vals = append(vals, s)
				}
			}
			return true
		})
		return vals
	}
	return nil
}

func render(e ast.Expr) string {
	var b strings.Builder
	ast.Fprint(&b, token.NewFileSet(), e, nil)
	return strings.Join(strings.Fields(b.String()), " ")
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promLabelList = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVars      = regexp.MustCompile(`\$\{?\w+\}?`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords  = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
)

// promMetricNames returns the metric names a PromQL expression selects.
func promMetricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promLabelList.ReplaceAllString(s, " ")
	s = promVars.ReplaceAllString(s, " ")
	var out []string
	for _, m := range promIdent.FindAllStringSubmatch(s, -1) {
		if m[1] != "" || promKeywords[strings.ToLower(m[0])] { // a function call or a keyword
			continue
		}
		out = append(out, m[0])
	}
	return out
}

func TestPromMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (outcome) (rate(consumer_deliveries_total{outcome!="x"}[$__rate_interval]))`:                  {"consumer_deliveries_total"},
		`histogram_quantile(0.99, sum by (le, sink) (rate(consumer_sink_write_duration_seconds_bucket[5m])))`: {"consumer_sink_write_duration_seconds_bucket"},
		`max by (phase) (consumer_phase) == 1`:                                                                {"consumer_phase"},
		`sum(rate(a_sum[1m])) / sum(rate(a_count[1m]))`:                                                       {"a_sum", "a_count"},
		`up{job=~"producer|consumer"}`:                                                                        {"up"},
	} {
		if got := promMetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("promMetricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}

func TestCutoverDashboardUsesExistingMetrics(t *testing.T) {
	known := exposedMetrics(t)
	for _, must := range []string{"consumer_phase", "consumer_lag_messages", "consumer_sink_write_duration_seconds_bucket", "backfill_points_written_total", "rabbitmq_publisher_confirmed_total", "kafka_publisher_published_total"} {
		if !known[must] {
			t.Fatalf("the metric extraction missed %s (have %d names): it is broken, not the dashboard", must, len(known))
		}
	}
	d := loadDashboards(t)["cutover.json"]
	used := map[string]bool{}
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			names := promMetricNames(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q target %s: no metric in %q", p.Title, tg.RefID, tg.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !known[n] && !known[strings.SplitN(n, "_", 2)[0]+"_*"] {
					t.Errorf("panel %q target %s: metric %s is not registered by any binary (%q)", p.Title, tg.RefID, n, tg.Expr)
				}
			}
		}
	}
	// The cutover's own signals must be on the dashboard.
	for _, n := range []string{"consumer_phase", "consumer_lag_messages", "consumer_deliveries_total", "consumer_sink_write_duration_seconds_bucket",
		"consumer_gap_ledger_entries_total", "backfill_points_written_total", "backfill_windows_done_total", "backfill_throttle_effective_points_per_second",
		"backfill_paused", "rabbitmq_publisher_published_total", "rabbitmq_publisher_confirmed_total"} {
		if !used[n] {
			t.Errorf("cutover dashboard does not show %s", n)
		}
	}
}

// --- InfluxDB measurements and fields -----------------------------------------

var (
	qlMeasurement = regexp.MustCompile(`FROM (?:"([^"]+)"|/\^([\w]+)\$/)`)
	qlField       = regexp.MustCompile(`\b(?:mean|max|min|sum|count|last)\("([^"]+)"\)`)
	qlFieldRegex  = regexp.MustCompile(`\b(?:mean|max|min|sum|count|last)\(/((?:[^/\\]|\\.)*)/\)`)
	qlAlias       = regexp.MustCompile(`AS "([^"]+)"`)
)

// sources are the values of the dashboard's resolution variables.
var sources = map[string][]string{"${fleet_source}": {"bsu", "bsu_site_5m"}, "${unit_source}": {"bsu", "bsu_5m"}}

// interpolations returns q with the resolution variables replaced by each
// of their values ("raw" first, then "5m").
func interpolations(q string) []string {
	out := []string{q, q}
	for v, vals := range sources {
		out[0] = strings.ReplaceAll(out[0], v, vals[0])
		out[1] = strings.ReplaceAll(out[1], v, vals[1])
	}
	return out
}

// rawFields returns the bsu and bsu_alarm field keys the consumer writes:
// those of AppendLineProtocol on a record with every value, plus the
// pattern of temperature fields (any sensor name).
func rawFields(t *testing.T) map[string]bool {
	t.Helper()
	r := telemetry.Record{Unit: "U", Site: "S", Model: "M", Firmware: "2.4.1", Schema: "2.1", Seq: 1, HasSeq: true, TimeMs: 1,
		Has: telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
		SoC: 1, SoH: 1, Voltage: 1, Current: 1, Power: 1, Mode: "idle",
		Temps:  []telemetry.Temp{{Sensor: "ambient", C: 1}, {Sensor: "cell_max", C: 1}, {Sensor: "cell_min", C: 1}},
		Alarms: []telemetry.Alarm{{Code: "C", Severity: "warning", Text: "t"}}}
	out := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(telemetry.AppendLineProtocol(nil, &r))), "\n") {
		// measurement,tags fields time; no spaces in these test values.
		f := strings.Split(line, " ")
		for _, kv := range strings.Split(f[1], ",") {
			out[strings.SplitN(kv, "=", 2)[0]] = true
		}
	}
	return out
}

// rollupFields derives the downsampled measurements' fields from the CQ
// text: aggregate(/regex/) gives aggregate_<each raw field matching>,
// `AS "alias"` gives alias.
func rollupFields(t *testing.T, raw map[string]bool) map[string]map[string]bool {
	t.Helper()
	cqs, err := influxdb.ContinuousQueries(influxdb.ContinuousQueriesText)
	if err != nil {
		t.Fatal(err)
	}
	into := regexp.MustCompile(`INTO "([^"]+)"`)
	alias := regexp.MustCompile(`AS "([^"]+)"`)
	wild := regexp.MustCompile(`(\w+)\(/((?:[^/\\]|\\.)*)/\)`)
	out := map[string]map[string]bool{}
	for _, q := range cqs {
		m := into.FindStringSubmatch(q.Select)
		if m == nil {
			t.Fatalf("CQ %s: no INTO", q.Name)
		}
		fields := out[m[1]]
		if fields == nil {
			fields = map[string]bool{}
			out[m[1]] = fields
		}
		for _, a := range alias.FindAllStringSubmatch(q.Select, -1) {
			fields[a[1]] = true
		}
		for _, w := range wild.FindAllStringSubmatch(q.Select, -1) {
			re := regexp.MustCompile(w[2])
			src := raw
			if !strings.Contains(q.Select, `FROM "bsu" `) {
				src = out[influxdb.MeasurementUnit5m]
			}
			for f := range src {
				if re.MatchString(f) {
					fields[w[1]+"_"+f] = true
				}
			}
		}
	}
	return out
}

func TestFleetDashboardUsesExistingMeasurementsAndFields(t *testing.T) {
	raw := rawFields(t)
	for _, f := range []string{"soc_pct", "power_kw", "temp_cell_max_c", "alarm_count", "schema", "text"} {
		if !raw[f] {
			t.Fatalf("raw fields %v lack %s: the extraction is broken", raw, f)
		}
	}
	fields := rollupFields(t, raw)
	fields["bsu"], fields["bsu_alarm"] = raw, raw
	for _, f := range []string{"mean_soc_pct", "max_temp_cell_max_c"} {
		if !fields[influxdb.MeasurementUnit5m][f] {
			t.Fatalf("bsu_5m fields %v lack %s", fields[influxdb.MeasurementUnit5m], f)
		}
	}
	for _, f := range []string{"soc_pct_sum", "soc_pct_count", "power_kw", "units", "alarms"} {
		if !fields[influxdb.MeasurementSite5m][f] {
			t.Fatalf("bsu_site_5m fields %v lack %s", fields[influxdb.MeasurementSite5m], f)
		}
	}
	d := loadDashboards(t)["fleet.json"]
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			for _, v := range []string{"$timeFilter"} {
				if !strings.Contains(tg.Query, v) {
					t.Errorf("panel %q %s: the query does not use %s", p.Title, tg.RefID, v)
				}
			}
			if strings.Contains(tg.Query, "|>") || strings.Contains(tg.Query, "from(bucket") {
				t.Errorf("panel %q %s: Flux in an InfluxQL panel", p.Title, tg.RefID)
			}
			// In one of the resolutions every field the target aggregates
			// is a field of the measurement it reads (in the other, the
			// target reads nothing: that is how it switches off).
			ok := false
			var problems []string
			for _, q := range interpolations(tg.Query) {
				if missing := missingFields(q, fields); len(missing) == 0 {
					ok = true
				} else {
					problems = append(problems, strings.Join(missing, ", "))
				}
			}
			if !ok {
				t.Errorf("panel %q %s: fields not written: %v", p.Title, tg.RefID, problems)
			}
		}
	}
}

// missingFields lists what q aggregates that the measurements it reads do
// not have (aliases of a subquery's columns are not fields).
func missingFields(q string, fields map[string]map[string]bool) []string {
	var ms []string
	for _, m := range qlMeasurement.FindAllStringSubmatch(q, -1) {
		ms = append(ms, m[1]+m[2])
	}
	aliases := map[string]bool{"mean": true}
	for _, a := range qlAlias.FindAllStringSubmatch(q, -1) {
		aliases[a[1]] = true
	}
	var missing []string
	if len(ms) == 0 {
		return []string{"no measurement"}
	}
	has := func(match func(string) bool) bool {
		for _, m := range ms {
			for f := range fields[m] {
				if match(f) {
					return true
				}
			}
		}
		return false
	}
	for _, m := range ms {
		if fields[m] == nil {
			missing = append(missing, "measurement "+m)
		}
	}
	for _, f := range qlField.FindAllStringSubmatch(q, -1) {
		if !aliases[f[1]] && !has(func(x string) bool { return x == f[1] }) {
			missing = append(missing, f[1])
		}
	}
	for _, f := range qlFieldRegex.FindAllStringSubmatch(q, -1) {
		re := regexp.MustCompile(f[1])
		if !has(re.MatchString) {
			missing = append(missing, "/"+f[1]+"/")
		}
	}
	return missing
}

// Every fleet panel's query runs on the real InfluxDB at both resolutions:
// two hours of readings of four units on two sites, rolled up by the
// rollup job. Of a panel's raw and 5m targets exactly one answers rows.
func TestFleetPanelsRunOnInfluxDB(t *testing.T) {
	db := testenv.Influx(t)
	ctx := testenv.Context(t, 3*time.Minute)
	to := time.Now().UTC().Truncate(time.Hour)
	from := to.Add(-2 * time.Hour)
	var recs []telemetry.Record
	for u := range 4 {
		for ts := from.Add(time.Duration(u) * time.Second); ts.Before(to); ts = ts.Add(30 * time.Second) {
			r := telemetry.Record{Unit: fmt.Sprintf("U%d", u), Site: []string{"North Yard, Bay 3", "South"}[u%2], Model: "FP", Schema: "2.1",
				TimeMs: ts.UnixMilli(), Has: telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
				SoC: 50, SoH: 97, Voltage: 800, Current: -3, Power: -2.4, Mode: "discharging",
				Temps: []telemetry.Temp{{Sensor: "ambient", C: 20}, {Sensor: "cell_max", C: 31}, {Sensor: "cell_min", C: 29}}}
			if ts.Minute()%20 == 0 && ts.Second() < 30 {
				r.Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: "hot"}}
			}
			recs = append(recs, r)
		}
	}
	cfg := influx.Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket}
	w, err := influx.NewWriter(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	qc, err := influx.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.Close()
	if _, err := rollup.New(qc, w, nil).Range(ctx, from, to); err != nil {
		t.Fatal(err)
	}
	timeFilter := fmt.Sprintf("time >= '%s' AND time < '%s'", from.Format(time.RFC3339), to.Format(time.RFC3339))
	for _, p := range loadDashboards(t)["fleet.json"].panels() {
		for res := range 2 {
			var answered []string
			for _, tg := range p.Targets {
				q := strings.NewReplacer("$timeFilter", timeFilter, "$__interval", "10m", "${unit}", "U2").Replace(interpolations(tg.Query)[res])
				n := 0
				if err := qc.Query(ctx, q, func(s *influx.Series) error { n += len(s.Values); return nil }); err != nil {
					t.Errorf("panel %q %s (resolution %d): %v\n%s", p.Title, tg.RefID, res, err, q)
				}
				if n > 0 {
					answered = append(answered, tg.RefID)
				}
			}
			if len(answered) != 1 {
				t.Errorf("panel %q at resolution %d: targets %v answered rows, want exactly one", p.Title, res, answered)
			}
		}
	}
}
