package influxdb

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/rollup"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

func TestContinuousQueriesParse(t *testing.T) {
	cqs, err := ContinuousQueries(ContinuousQueriesText)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range cqs {
		names = append(names, q.Name)
		if q.Database != Database {
			t.Errorf("CQ %s is ON %q, want %q (what scripts/services.sh creates)", q.Name, q.Database, Database)
		}
		if !strings.Contains(q.Select, "GROUP BY time(5m)") {
			t.Errorf("CQ %s: want GROUP BY time(5m) (Interval), have %q", q.Name, q.Select)
		}
	}
	// Order matters: the site power reads bsu_5m.
	if want := []string{CQUnit5m, CQSite5m, CQSitePower}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("CQs %v, want %v in this order", names, want)
	}
	if got := cqs[0].OnDatabase("other"); !strings.Contains(got, `ON "other" RESAMPLE`) || strings.Contains(got, `ON "telemetry"`) {
		t.Errorf("OnDatabase: %s", got)
	}
}

func TestContinuousQueriesRejectsBadLines(t *testing.T) {
	for name, text := range map[string]string{
		"empty":          "-- only a comment\n",
		"split over two": "CREATE CONTINUOUS QUERY \"a\" ON \"telemetry\" RESAMPLE EVERY 5m FOR 1h BEGIN\nSELECT mean(x) INTO y FROM bsu GROUP BY time(5m) END\n",
		"no group by":    `CREATE CONTINUOUS QUERY "a" ON "telemetry" RESAMPLE EVERY 5m FOR 1h BEGIN SELECT mean(x) INTO y FROM bsu END`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ContinuousQueries(text); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestResample(t *testing.T) {
	cqs, err := ContinuousQueries(ContinuousQueriesText)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	got, err := cqs[1].Resample(t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := `FROM "bsu" WHERE time >= '2026-11-01T00:00:00Z' AND time < '2026-11-01T01:00:00Z' GROUP BY time(5m), "site"`; !strings.Contains(got, want) {
		t.Errorf("Resample = %s\nwant it to contain %s", got, want)
	}
	for _, r := range [][2]time.Time{{t0.Add(time.Minute), t0.Add(time.Hour)}, {t0, t0.Add(61 * time.Minute)}, {t0, t0}} {
		if _, err := cqs[1].Resample(r[0], r[1]); err == nil {
			t.Errorf("Resample(%s, %s): no error for an unaligned or empty range", r[0], r[1])
		}
	}
	// 26 hours, widened to 5-minute boundaries, in one-day chunks: 2 chunks × 3 CQs, in order.
	stmts, err := ResampleStatements(cqs, t0.Add(-2*time.Minute), t0.Add(26*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 6 || !strings.Contains(stmts[0], `INTO "bsu_5m"`) || !strings.Contains(stmts[0], "time >= '2026-10-31T23:55:00Z'") ||
		!strings.Contains(stmts[5], `FROM "bsu_5m"`) || !strings.Contains(stmts[5], "time < '2026-11-02T02:00:00Z'") {
		t.Errorf("ResampleStatements:\n%s", strings.Join(stmts, "\n"))
	}
	if _, err := ResampleStatements(cqs, t0, t0.Add(time.Hour), 7*time.Minute); err == nil {
		t.Error("ResampleStatements accepted a chunk that is not a multiple of 5m")
	}
}

// testFleet writes 40 minutes of irregular readings of 6 units on 2 sites:
// generation-1 units without power or ambient sensor, some readings without
// SoC, occasional alarms, one unit that stops reporting half way.
func testFleet(t *testing.T, db testenv.InfluxDB, t0 time.Time) []telemetry.Record {
	t.Helper()
	var recs []telemetry.Record
	var lp []byte
	for u := range 6 {
		for k := 0; ; k++ {
			ts := t0.Add(time.Duration(k)*10*time.Second + time.Duration(u*1700)*time.Millisecond)
			if ts.After(t0.Add(40*time.Minute)) || (u == 5 && ts.After(t0.Add(17*time.Minute))) {
				break
			}
			r := telemetry.Record{Unit: fmt.Sprintf("U%d", u), Site: []string{"North Yard, Bay 3", "South=2"}[u%2], Model: "FP", Schema: "2.1",
				TimeMs: ts.UnixMilli(), Has: telemetry.HasVoltage | telemetry.HasCurrent,
				Voltage: 800 + float64(k%7), Current: float64(k%13) - 6,
				Temps: []telemetry.Temp{{Sensor: "cell_max", C: 25 + float64((k*u)%11)}, {Sensor: "cell_min", C: 24}}}
			if k%7 != 3 {
				r.Has |= telemetry.HasSoC
				r.SoC = float64((k*3+u*11)%100) + 0.5
			}
			if u >= 2 {
				r.Has |= telemetry.HasPower | telemetry.HasSoH
				r.Power, r.SoH = float64(k%17)-8.25, 97
				r.Temps = append(r.Temps, telemetry.Temp{Sensor: "ambient", C: 20})
			} else {
				r.Schema = "1.0"
			}
			if (k+u)%23 == 0 {
				r.Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: "hot"}}
			}
			recs = append(recs, r)
			lp = telemetry.AppendLineProtocol(lp, &r)
		}
	}
	resp, err := http.Post(db.URL+"/write?precision=ms&db="+url.QueryEscape(db.DB), "text/plain", strings.NewReader(string(lp)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s: %s", resp.Status, body)
	}
	return recs
}

// influxQL runs stmt in db's database and fails the test on any error.
func influxQL(t *testing.T, db testenv.InfluxDB, stmt string) {
	t.Helper()
	resp, err := http.PostForm(db.URL+"/query", url.Values{"db": {db.DB}, "q": {stmt}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"error"`) {
		t.Fatalf("influxql %q: %s: %s", stmt, resp.Status, body)
	}
}

// point is one downsampled value, keyed by measurement, tags, field and time.
type point = map[string]float64

func pointKey(measurement, site, unit, model, field string, ts time.Time) string {
	return fmt.Sprintf("%s site=%q unit=%q model=%q %s @%s", measurement, site, unit, model, field, ts.UTC().Format(time.RFC3339))
}

// influxQLPoints reads a downsampled measurement back with InfluxQL.
func influxQLPoints(t *testing.T, db testenv.InfluxDB, measurement string, into point) {
	t.Helper()
	q := url.Values{"db": {db.DB}, "q": {fmt.Sprintf("SELECT * FROM %q GROUP BY *", measurement)}, "epoch": {"ms"}}
	resp, err := http.Get(db.URL + "/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Results []struct {
			Error  string
			Series []struct {
				Tags    map[string]string
				Columns []string
				Values  [][]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Results {
		if r.Error != "" {
			t.Fatal(r.Error)
		}
		for _, s := range r.Series {
			for _, row := range s.Values {
				ts := time.UnixMilli(int64(row[0].(float64)))
				for i, c := range s.Columns[1:] {
					if v, ok := row[i+1].(float64); ok {
						into[pointKey(measurement, s.Tags["site"], s.Tags["unit"], s.Tags["model"], c, ts)] = v
					}
				}
			}
		}
	}
}

// fieldTypes returns "measurement field" → type of every field of db.
func fieldTypes(t *testing.T, db testenv.InfluxDB) map[string]string {
	t.Helper()
	q := url.Values{"db": {db.DB}, "q": {"SHOW FIELD KEYS"}}
	resp, err := http.Get(db.URL + "/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Results []struct {
			Series []struct {
				Name   string
				Values [][]string
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range res.Results {
		for _, s := range r.Series {
			for _, v := range s.Values {
				out[s.Name+" "+v[0]] = v[1]
			}
		}
	}
	return out
}

// On the real InfluxDB 1.8: the Go rollup job (shared/rollup) writes
// exactly the points the continuous queries wrote — same measurements,
// tags, fields, field types and values — and those points are right (site
// SoC and power checked against the readings themselves). The continuous
// queries are no longer deployed: continuous_queries.influxql is kept as
// this test's reference and the benchmark's baseline.
func TestRollupMatchesContinuousQueries(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	from, to := t0, t0.Add(45*time.Minute)

	cqDB := testenv.Influx(t)
	recs := testFleet(t, cqDB, t0)
	cqs, err := ContinuousQueries(ContinuousQueriesText)
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := ResampleStatements(cqs, from, to, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		influxQL(t, cqDB, s)
	}
	cq := point{}
	influxQLPoints(t, cqDB, MeasurementUnit5m, cq)
	influxQLPoints(t, cqDB, MeasurementSite5m, cq)

	goDB := testenv.Influx(t)
	testFleet(t, goDB, t0)
	cfg := influx.Config{URL: goDB.URL, Token: goDB.Token, Org: goDB.Org, Bucket: goDB.Bucket}
	qc, err := influx.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := influx.NewWriter(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rollup.New(qc, w, nil).Range(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	job := point{}
	influxQLPoints(t, goDB, MeasurementUnit5m, job)
	influxQLPoints(t, goDB, MeasurementSite5m, job)

	if len(cq) < 100 || res.Points == 0 {
		t.Fatalf("the continuous queries wrote only %d values, the job %d points", len(cq), res.Points)
	}
	for k, v := range cq {
		if w, ok := job[k]; !ok || w != v {
			t.Errorf("%s: CQ %g, job %g (present %v)", k, v, w, ok)
		}
	}
	for k, v := range job {
		if _, ok := cq[k]; !ok {
			t.Errorf("the job wrote %s = %g, the CQs did not", k, v)
		}
	}
	cqTypes, jobTypes := fieldTypes(t, cqDB), fieldTypes(t, goDB)
	for k, typ := range cqTypes {
		if strings.HasPrefix(k, "bsu_") && !strings.HasPrefix(k, "bsu_alarm ") && jobTypes[k] != typ {
			t.Errorf("field %s: CQ type %s, job type %q", k, typ, jobTypes[k])
		}
	}

	checkSiteRollup(t, cq, recs)
}

// checkSiteRollup checks the site rollup against the readings themselves:
// sum and count of SoC, power as the sum of the units' 5-minute means.
func checkSiteRollup(t *testing.T, cq point, recs []telemetry.Record) {
	t.Helper()
	type agg struct{ sum, n float64 }
	type siteWindow struct {
		site string
		w    time.Time
	}
	soc := map[siteWindow]*agg{}
	unitPower := map[string]*agg{}
	for _, r := range recs {
		w := r.Time().Truncate(Interval)
		if r.Has&telemetry.HasSoC != 0 {
			k := siteWindow{r.Site, w}
			if soc[k] == nil {
				soc[k] = &agg{}
			}
			soc[k].sum += r.SoC
			soc[k].n++
		}
		if r.Has&telemetry.HasPower != 0 {
			k := r.Site + "\x00" + r.Unit + "\x00" + w.Format(time.RFC3339)
			if unitPower[k] == nil {
				unitPower[k] = &agg{}
			}
			unitPower[k].sum += r.Power
			unitPower[k].n++
		}
	}
	for k, a := range soc {
		sum := cq[pointKey(MeasurementSite5m, k.site, "", "", "soc_pct_sum", k.w)]
		n := cq[pointKey(MeasurementSite5m, k.site, "", "", "soc_pct_count", k.w)]
		if math.Abs(sum-a.sum) > 1e-6 || n != a.n {
			t.Errorf("site %q window %s: soc_pct_sum %g, soc_pct_count %g; want %g and %g", k.site, k.w, sum, n, a.sum, a.n)
		}
	}
	sitePower := map[string]float64{}
	for k, a := range unitPower {
		p := strings.Split(k, "\x00")
		ts, _ := time.Parse(time.RFC3339, p[2])
		sitePower[pointKey(MeasurementSite5m, p[0], "", "", "power_kw", ts)] += a.sum / a.n
	}
	for k, want := range sitePower {
		if got, ok := cq[k]; !ok || math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %g (present %v), want %g", k, got, ok, want)
		}
	}
	if len(soc) == 0 || len(sitePower) == 0 {
		t.Fatal("no expected values computed")
	}
}
