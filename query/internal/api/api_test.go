package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/flexipack/cutover/query/internal/querytest"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/telemetry"
)

func ts(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339)) }

// endpointsFixture is the legacy store holding testFleet, served in phase
// legacy, and one unit's readings.
type endpointsFixture struct {
	h    *harness
	recs []telemetry.Record
	unit string
	mine []telemetry.Record
}

func TestEndpointsOnPostgres(t *testing.T) {
	recs := testFleet.Records()
	pg, _ := loadPG(t, recs)
	f := &endpointsFixture{h: newHarness(t, DefaultConfig(), pg, nil, cutover.Legacy, nil, nil), recs: recs, unit: querytest.UnitName(1)}
	for _, r := range recs {
		if r.Unit == f.unit {
			f.mine = append(f.mine, r)
		}
	}
	t.Run("units", f.testUnits)
	t.Run("latest", f.testLatest)
	t.Run("readings pages", f.testReadingsPages)
	t.Run("readings stream", f.testReadingsStream)
	t.Run("series", f.testSeries)
	t.Run("fleet", f.testFleet)
	t.Run("alarms pages", f.testAlarmsPages)
}

func (f *endpointsFixture) testUnits(t *testing.T) {
	h, unit := f.h, f.unit
	var out struct{ Units []unitJSON }
	resp := h.getJSON(t, "/v1/units", 200, &out)
	if resp.Header.Get("X-Served-By") != "postgres" || resp.Header.Get("X-Cutover-Phase") != "legacy" {
		t.Fatalf("headers %v", resp.Header)
	}
	if len(out.Units) != testFleet.Units {
		t.Fatalf("%d units, want %d", len(out.Units), testFleet.Units)
	}
	last := testFleet.Record(1, testFleet.Steps-1)
	if u := out.Units[1]; u.Unit != unit || u.Site != last.Site || u.Model != last.Model || u.LastReading != fmtTime(last.Time()) {
		t.Fatalf("unit 1: %+v, want site %q model %q last %s", u, last.Site, last.Model, last.Time())
	}
	h.getJSON(t, "/v1/units?site="+url.QueryEscape(querytest.SiteName(1)), 200, &out)
	for _, u := range out.Units {
		if u.Site != querytest.SiteName(1) {
			t.Fatalf("site filter let %+v through", u)
		}
	}
	if len(out.Units) == 0 {
		t.Fatal("site filter: no unit")
	}
}

func (f *endpointsFixture) testLatest(t *testing.T) {
	h, unit, mine := f.h, f.unit, f.mine
	_, body := h.get(t, "/v1/units/"+unit+"/latest")
	want := appendRecord(nil, &mine[len(mine)-1])
	if !bytes.Equal(body, want) {
		t.Fatalf("latest:\n got %s\nwant %s", body, want)
	}
	h.getJSON(t, "/v1/units/nope/latest", 404, nil)
}

func (f *endpointsFixture) testReadingsPages(t *testing.T) {
	h, unit, mine := f.h, f.unit, f.mine
	from, to := testFleet.From, testFleet.From.Add(48*time.Hour)
	var got []json.RawMessage
	path := fmt.Sprintf("/v1/units/%s/readings?from=%s&to=%s&limit=50", unit, ts(from), ts(to))
	for pages := 0; ; pages++ {
		var page struct {
			Readings   []json.RawMessage
			NextCursor string `json:"next_cursor"`
		}
		h.getJSON(t, path, 200, &page)
		got = append(got, page.Readings...)
		if page.NextCursor == "" {
			break
		}
		if pages > 10 {
			t.Fatal("too many pages")
		}
		path = fmt.Sprintf("/v1/units/%s/readings?from=%s&to=%s&limit=50&cursor=%s", unit, ts(from), ts(to), page.NextCursor)
	}
	if len(got) != len(mine) {
		t.Fatalf("%d readings over the pages, want %d", len(got), len(mine))
	}
	for i := range mine {
		if want := appendRecord(nil, &mine[i]); !bytes.Equal(got[i], want) {
			t.Fatalf("reading %d: %s, want %s", i, got[i], want)
		}
	}
	h.getJSON(t, "/v1/units/nope/readings", 404, nil)
}

func (f *endpointsFixture) testReadingsStream(t *testing.T) {
	h, unit, mine := f.h, f.unit, f.mine
	resp, body := h.get(t, fmt.Sprintf("/v1/units/%s/readings?from=%s&to=%s", unit, ts(testFleet.From), ts(testFleet.From.Add(48*time.Hour))), "Accept", NDJSON)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != NDJSON {
		t.Fatalf("status %d, type %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	n := 0
	for sc.Scan() {
		if want := appendRecord(nil, &mine[n]); !bytes.Equal(sc.Bytes(), want) {
			t.Fatalf("line %d: %s, want %s", n, sc.Bytes(), want)
		}
		n++
	}
	if n != len(mine) {
		t.Fatalf("%d lines, want %d", n, len(mine))
	}
}

func (f *endpointsFixture) testSeries(t *testing.T) {
	h, unit, mine := f.h, f.unit, f.mine
	from := testFleet.From
	var out struct {
		Points []map[string]any
	}
	h.getJSON(t, fmt.Sprintf("/v1/units/%s/series?from=%s&to=%s&step=1h&fields=soc_pct,temp_cell_max_c&agg=max", unit, ts(from), ts(from.Add(24*time.Hour))), 200, &out)
	if len(out.Points) != 24 {
		t.Fatalf("%d points, want 24", len(out.Points))
	}
	for i, p := range out.Points {
		var soc, temp float64 = math.Inf(-1), math.Inf(-1)
		for _, r := range mine {
			if !r.Time().Before(from.Add(time.Duration(i)*time.Hour)) && r.Time().Before(from.Add(time.Duration(i+1)*time.Hour)) {
				soc, temp = max(soc, r.SoC), max(temp, r.Temps[0].C)
			}
		}
		if p["soc_pct"] != soc || p["temp_cell_max_c"] != temp {
			t.Fatalf("point %d: %v, want soc %g temp %g", i, p, soc, temp)
		}
	}
}

func (f *endpointsFixture) testFleet(t *testing.T) {
	h, recs := f.h, f.recs
	from := testFleet.From
	var out struct {
		Points []fleetPointJSON
	}
	h.getJSON(t, fmt.Sprintf("/v1/fleet?from=%s&to=%s&step=1h", ts(from), ts(from.Add(6*time.Hour))), 200, &out)
	// Every site reports in every hour.
	sites := map[string]bool{}
	for u := 0; u < testFleet.Units; u++ {
		sites[testFleet.Record(u, 0).Site] = true
	}
	if len(out.Points) != 6*len(sites) {
		t.Fatalf("%d points, want %d", len(out.Points), 6*len(sites))
	}
	p := out.Points[0]
	var sum float64
	var n, alarms int64
	units := map[string]bool{}
	for _, r := range recs {
		if r.Site == p.Site && r.Time().Before(from.Add(time.Hour)) {
			sum += r.SoC
			n++
			alarms += int64(len(r.Alarms))
			units[r.Unit] = true
		}
	}
	if p.SoCMean == nil || *p.SoCMean != round6(sum/float64(n)) || p.AlarmCount != alarms {
		t.Fatalf("first point %+v, want mean %g alarms %d", p, round6(sum/float64(n)), alarms)
	}
}

func (f *endpointsFixture) testAlarmsPages(t *testing.T) {
	h, recs := f.h, f.recs
	from, to := testFleet.From, testFleet.From.Add(48*time.Hour)
	var want []alarmJSON
	for _, r := range recs {
		for _, a := range r.Alarms {
			want = append(want, alarmJSON{Time: fmtTime(r.Time()), Unit: r.Unit, Site: r.Site, Code: a.Code, Severity: a.Severity, Text: a.Text})
		}
	}
	slices.SortFunc(want, func(a, b alarmJSON) int {
		for _, p := range [][2]string{{a.Time, b.Time}, {a.Unit, b.Unit}, {a.Code, b.Code}, {a.Severity, b.Severity}, {a.Text, b.Text}} {
			if p[0] != p[1] {
				if p[0] < p[1] {
					return -1
				}
				return 1
			}
		}
		return 0
	})
	var got []alarmJSON
	path := fmt.Sprintf("/v1/alarms?from=%s&to=%s&limit=7", ts(from), ts(to))
	for {
		var page struct {
			Alarms     []alarmJSON
			NextCursor string `json:"next_cursor"`
		}
		h.getJSON(t, path, 200, &page)
		got = append(got, page.Alarms...)
		if page.NextCursor == "" {
			break
		}
		path = fmt.Sprintf("/v1/alarms?from=%s&to=%s&limit=7&cursor=%s", ts(from), ts(to), page.NextCursor)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%d alarms over the pages, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	var crit struct{ Alarms []alarmJSON }
	h.getJSON(t, fmt.Sprintf("/v1/alarms?from=%s&to=%s&severity=critical&limit=10000", ts(from), ts(to)), 200, &crit)
	if len(crit.Alarms) == 0 {
		t.Fatal("no critical alarm")
	}
	for _, a := range crit.Alarms {
		if a.Severity != "critical" {
			t.Fatalf("severity filter let %+v through", a)
		}
	}
}

func firstDiff(a, b []alarmJSON) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
