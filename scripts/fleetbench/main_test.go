package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

const testDashboard = "../../deploy/grafana/dashboards/fleet.json"

// A small run end to end against the real InfluxDB: it loads, downsamples,
// passes its raw-versus-downsampled check, times every query, and drops its
// database.
func TestRunSmallFleet(t *testing.T) {
	base := testenv.Influx(t).URL // fails loudly when InfluxDB is not up
	db := testenv.Name(t, "fleetbench")
	var out, errb bytes.Buffer
	args := []string{"-url", base, "-db", db, "-dashboard", testDashboard, "-units", "12", "-sites", "3", "-days", "2",
		"-cadence", "5m", "-ranges", "48h,24h", "-runs", "1", "-output", "json"}
	if err := run(testenv.Context(t, 5*time.Minute), args, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errb.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out.String())
	}
	if rep.Readings != 12*2*288 || rep.Database != db {
		t.Errorf("readings %d in %s, want %d in %s", rep.Readings, rep.Database, 12*2*288, db)
	}
	if !strings.HasPrefix(rep.Check, "fleet SoC raw = downsampled") {
		t.Errorf("check: %q", rep.Check)
	}
	// Per range: the fleet panel and the unit panel.
	if len(rep.Queries) != 4 {
		t.Fatalf("%d query timings, want 4: %+v", len(rep.Queries), rep.Queries)
	}
	for _, q := range rep.Queries {
		if q.RawRows == 0 || q.RollupRows == 0 || q.RawSeconds <= 0 || q.RollupSeconds <= 0 {
			t.Errorf("%+v: want rows and times on both sides", q)
		}
	}
	if len(rep.Downsample) != 1 || rep.Downsample[0].Days != 2 {
		t.Errorf("downsample timings %+v", rep.Downsample)
	}
	cl := &influx{base: base, hc: http.DefaultClient}
	if exists, err := cl.databaseExists(context.Background(), db); err != nil || exists {
		t.Errorf("database %s still exists (%v) after the run", db, err)
	}
}

func TestRunRefusesAnExistingDatabase(t *testing.T) {
	d := testenv.Influx(t)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"-url", d.URL, "-db", d.DB, "-dashboard", testDashboard}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("run into an existing database: %v", err)
	}
	// And it left that database alone.
	cl := &influx{base: d.URL, hc: http.DefaultClient}
	if exists, err := cl.databaseExists(context.Background(), d.DB); err != nil || !exists {
		t.Errorf("database %s gone after a refused run (%v)", d.DB, err)
	}
}

func TestFlagErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"range longer than the data": {"-days", "7", "-ranges", "720h"},
		"sub-second cadence":         {"-cadence", "500ms"},
		"more sites than units":      {"-units", "3", "-sites", "4"},
		"bad output":                 {"-output", "yaml"},
		"stray argument":             {"extra"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestGrafanaInterval(t *testing.T) {
	for span, want := range map[time.Duration]time.Duration{
		30 * 24 * time.Hour: 2 * time.Hour,
		7 * 24 * time.Hour:  30 * time.Minute,
		24 * time.Hour:      5 * time.Minute,
		time.Hour:           10 * time.Second,
	} {
		if got := grafanaInterval(span, 300); got != want {
			t.Errorf("grafanaInterval(%s, 300) = %s, want %s", span, got, want)
		}
	}
}

func TestInterpolateLikeGrafana(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	q := `SELECT mean("soc_pct") FROM /^${fleet_source}$/ WHERE "unit" = '$unit' AND $timeFilter GROUP BY time($__interval)`
	got := interpolate(q, from, from.Add(time.Hour), 90*time.Second, "5m", map[string]string{"unit": "U1"})
	want := `SELECT mean("soc_pct") FROM /^bsu_site_5m$/ WHERE "unit" = 'U1' AND time >= '2026-11-01T00:00:00Z' AND time < '2026-11-01T01:00:00Z' GROUP BY time(90000ms)`
	if got != want {
		t.Errorf("interpolate:\n got %s\nwant %s", got, want)
	}
}
