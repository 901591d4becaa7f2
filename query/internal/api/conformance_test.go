package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/flexipack/cutover/deploy/influxdb"
	"github.com/flexipack/cutover/query/internal/querytest"
	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/verify"
)

// loadInflux writes recs into a fresh InfluxDB database, downsamples them
// with the continuous queries' statements (as after a backfill), and
// returns a client of the database.
func loadInflux(t *testing.T, recs []telemetry.Record) *influx.Client {
	t.Helper()
	ctx := testenv.Context(t, 2*time.Minute)
	db := testenv.Influx(t)
	cfg := influx.Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket, MaxRetries: 1}
	w, err := influx.NewWriter(cfg, testLogger)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := querytest.Load(ctx, w, recs); err != nil {
		t.Fatal(err)
	}
	c, err := influx.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cqs, err := influxdb.ContinuousQueries(influxdb.ContinuousQueriesText)
	if err != nil {
		t.Fatal(err)
	}
	first, last := recs[0].Time(), recs[0].Time()
	for _, r := range recs {
		first, last = minTime(first, r.Time()), maxTime(last, r.Time())
	}
	stmts, err := influxdb.ResampleStatements(cqs, first, last.Add(time.Millisecond), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if err := c.Query(ctx, s, func(*influx.Series) error { return nil }); err != nil {
			t.Fatalf("downsample: %v", err)
		}
	}
	return c
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// conformanceRequests are requests of every endpoint, over the test fleet.
func conformanceRequests() []string {
	from := testFleet.From
	day := fmt.Sprintf("from=%s&to=%s", ts(from), ts(from.Add(24*time.Hour)))
	two := fmt.Sprintf("from=%s&to=%s", ts(from), ts(from.Add(48*time.Hour)))
	odd := fmt.Sprintf("from=%s&to=%s", url.QueryEscape(from.Add(97*time.Minute+13*time.Second).Format(time.RFC3339)), ts(from.Add(30*time.Hour)))
	var out []string
	for _, u := range []string{querytest.UnitName(0), querytest.UnitName(5), "bsu-9999"} {
		p := "/v1/units/" + u
		out = append(out,
			p+"/latest",
			p+"/readings?"+two+"&limit=100",
			p+"/readings?"+odd,
			p+"/series?"+two+"&step=1h",
			p+"/series?"+two+"&step=30m&fields=soc_pct,power_kw,voltage_v",
			p+"/series?"+odd+"&step=5m&fields=power_kw",
			p+"/series?"+day+"&step=1h&agg=max&fields=temp_cell_max_c,temp_cell_min_c",
			p+"/series?"+day+"&step=7m&agg=min",
			p+"/series?"+day+"&step=1h&agg=last&fields=soc_pct,temp_cell_max_c",
			p+"/series?"+day+"&step=20m&agg=max",
			p+"/series?"+day+"&step=1h&fields=soc_pct,temp_cell_min_c",
		)
	}
	return append(out,
		"/v1/units",
		"/v1/units?site="+url.QueryEscape(querytest.SiteName(1)),
		"/v1/units?model=BSU-400",
		"/v1/fleet?"+two,
		"/v1/fleet?"+two+"&step=5m",
		"/v1/fleet?"+odd+"&step=15m&site="+url.QueryEscape(querytest.SiteName(1)),
		"/v1/fleet?"+two+"&step=2h&site=",
		"/v1/alarms?"+two,
		"/v1/alarms?"+two+"&limit=5",
		"/v1/alarms?"+odd+"&severity=critical",
		"/v1/alarms?"+two+"&unit="+querytest.UnitName(3),
		"/v1/alarms?"+two+"&site="+url.QueryEscape(querytest.SiteName(1))+"&limit=3",
	)
}

// TestConformance loads the same readings into PostgreSQL and InfluxDB and
// requires byte-identical answers from every endpoint, with InfluxDB
// reading its rollups, raw readings only, and both (the rollups' cover
// ending inside the range): what makes the switch invisible to clients.
func TestConformance(t *testing.T) {
	recs := testFleet.Records()
	pg, st := loadPG(t, recs)
	pgPool := st.Pool()
	c := loadInflux(t, recs)
	end := testFleet.From.Add(time.Duration(testFleet.Steps) * testFleet.Cadence)
	variants := []struct {
		name, source string
		lag          time.Duration
		now          time.Time
		cache        bool // each request twice: filling the fleet cache, then from it
	}{
		{"rollups", "rollup", reader.DefaultRollupLag, end.Add(24 * time.Hour), false},
		{"raw", "raw", 100 * 365 * 24 * time.Hour, end, false},
		{"rollups and raw", "rollup+raw", reader.DefaultRollupLag, testFleet.From.Add(19*time.Hour + 17*time.Minute), false},
		{"rollups cached", "rollup", reader.DefaultRollupLag, end.Add(24 * time.Hour), true},
		{"rollups and raw cached", "rollup+raw", reader.DefaultRollupLag, testFleet.From.Add(29*time.Hour + 47*time.Minute), true},
	}
	hp := newHarness(t, DefaultConfig(), pg, nil, cutover.Legacy, nil, nil)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ir := reader.NewInflux(c, v.lag, func() time.Time { return v.now })
			hp := hp
			if v.cache {
				ir = ir.WithFleetCache(time.Hour)
				// PostgreSQL's cache too, at the same clock.
				hp = newHarness(t, DefaultConfig(), reader.NewPostgres(pgPool).WithCache(time.Hour, func() time.Time { return v.now }), nil, cutover.Legacy, nil, nil)
			}
			hi := newHarness(t, DefaultConfig(), nil, ir, cutover.InfluxOnly, nil, nil)
			q := reader.FleetQuery{From: testFleet.From, To: end.Truncate(time.Hour), Step: time.Hour}
			if f, err := ir.Fleet(context.Background(), q); err != nil || f.Source != v.source || len(f.Points) == 0 {
				t.Fatalf("fleet from %q (%d points, %v), want %q", f.Source, len(f.Points), err, v.source)
			}
			sq := reader.SeriesQuery{Unit: querytest.UnitName(2), From: testFleet.From, To: end.Truncate(time.Hour), Step: time.Hour, Fields: []string{"soc_pct"}, Agg: reader.AggMean}
			if s, err := ir.Series(context.Background(), sq); err != nil || s.Source != v.source || len(s.Points) == 0 {
				t.Fatalf("series from %q (%d points, %v), want %q", s.Source, len(s.Points), err, v.source)
			}
			paths := conformanceRequests()
			if v.cache {
				paths = append(paths, paths...)
			}
			for _, path := range paths {
				rp, bp := hp.get(t, path)
				started := time.Now()
				ri, bi := hi.get(t, path)
				if d := time.Since(started); d > time.Second {
					t.Logf("%s: InfluxDB answered in %s", path, d)
				}
				if rp.StatusCode != ri.StatusCode || string(bp) != string(bi) {
					d, _ := verify.CompareAnswers(bp, bi, 0)
					t.Errorf("%s: postgres %d, influxdb %d; first difference %+v\npostgres: %.600s\ninfluxdb: %.600s", path, rp.StatusCode, ri.StatusCode, d, bp, bi)
					continue
				}
				if rp.StatusCode != 200 && rp.StatusCode != 404 {
					t.Errorf("%s: status %d: %s", path, rp.StatusCode, bp)
				}
			}
		})
	}
}

// TestPostgresCacheKeepsOnlyClosedSteps: with its cache, the PostgreSQL
// reader answers closed steps (ended ClosedAfter before now) from memory
// and reads the newer ones, as the InfluxDB reader does. Rows deleted
// behind its back show in the open steps at once and in the closed ones
// only without the cache.
func TestPostgresCacheKeepsOnlyClosedSteps(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	_, st := loadPG(t, testFleet.Records())
	now := testFleet.From.Add(30 * time.Hour)
	cached := newHarness(t, DefaultConfig(), reader.NewPostgres(st.Pool()).WithCache(time.Hour, func() time.Time { return now }), nil, cutover.Legacy, nil, nil)
	plain := newHarness(t, DefaultConfig(), reader.NewPostgres(st.Pool()), nil, cutover.Legacy, nil, nil)
	two := fmt.Sprintf("from=%s&to=%s&step=1h", ts(testFleet.From), ts(testFleet.From.Add(48*time.Hour)))
	paths := []string{"/v1/fleet?" + two, "/v1/units/" + querytest.UnitName(1) + "/series?" + two + "&fields=soc_pct,power_kw"}
	// hour returns the answer's points of hour h, as JSON.
	hour := func(h *harness, path string, hr int) string {
		t.Helper()
		resp, body := h.get(t, path)
		var a struct{ Points []map[string]any }
		if resp.StatusCode != 200 || json.Unmarshal(body, &a) != nil {
			t.Fatalf("%s: %d %.300s", path, resp.StatusCode, body)
		}
		want := fmtTime(testFleet.From.Add(time.Duration(hr) * time.Hour))
		var out []map[string]any
		for _, p := range a.Points {
			if p["time"] == want {
				out = append(out, p)
			}
		}
		b, _ := json.Marshal(out) // null when there is none
		return string(b)
	}
	before := map[string]string{}
	for _, p := range paths {
		for _, hr := range []int{2, 40} {
			c, u := hour(cached, p, hr), hour(plain, p, hr)
			if c == "null" || c != u {
				t.Fatalf("%s hour %d: cached %s, uncached %s", p, hr, c, u)
			}
			before[fmt.Sprint(p, hr)] = c
		}
	}
	// Unit 1's readings of hour 2 (closed) and hour 40 (open) go.
	for _, hr := range []int{2, 40} {
		from := testFleet.From.Add(time.Duration(hr) * time.Hour)
		if _, err := st.Pool().Exec(ctx, `DELETE FROM legacy.readings WHERE unit = $1 AND ts >= $2 AND ts < $3`, querytest.UnitName(1), from, from.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range paths {
		for _, hr := range []int{2, 40} {
			if hour(plain, p, hr) == before[fmt.Sprint(p, hr)] {
				t.Fatalf("%s hour %d: deleting its readings changed nothing: the test checks nothing", p, hr)
			}
		}
		if c := hour(cached, p, 2); c != before[fmt.Sprint(p, 2)] {
			t.Errorf("%s: a closed step was read again, not served from the cache: %s", p, c)
		}
		if c, u := hour(cached, p, 40), hour(plain, p, 40); c != u {
			t.Errorf("%s: an open step came from the cache: %s, PostgreSQL has %s", p, c, u)
		}
	}
}
