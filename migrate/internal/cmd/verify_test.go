package cmd

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/verify"
)

var vt0 = time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC)

// TestVerifyFindsExactlyTheMismatchingWindows writes the same readings into
// both real stores except one missing reading and one changed value, and
// checks that verify names exactly those two windows with the right rate,
// that the shadow-read dashboard queries disagree there, and that all agree
// once InfluxDB is repaired.
func TestVerifyFindsExactlyTheMismatchingWindows(t *testing.T) {
	e := newEnv(t)
	units := []string{"FP2-000001", "FP2-000002", "FP2-000003"}
	all := readings(units, vt0, vt0.Add(3*time.Hour), 5*time.Minute) // 36 per unit
	missing := telemetry.Key{Unit: "FP2-000002", TimeMs: vt0.Add(80 * time.Minute).UnixMilli()}
	changed := telemetry.Key{Unit: "FP2-000003", TimeMs: vt0.Add(170 * time.Minute).UnixMilli()}
	var toInflux []telemetry.Record
	for _, r := range all {
		switch r.Key() {
		case missing:
			continue
		case changed:
			r.SoC += 1
		}
		toInflux = append(toInflux, r)
	}
	e.write(true, false, all)
	e.write(false, true, toInflux)

	args := []string{"--from", vt0.Format(time.RFC3339), "--to", vt0.Add(3 * time.Hour).Format(time.RFC3339), "--window", "1h",
		"--shadow-unit", "FP2-000003", "-o", "json"}
	r := e.mustRun(2, "verify", args...)
	rep := decodeJSON[verifyReport](t, r.stdout)
	type mm struct {
		unit  string
		start time.Time
		kind  string
	}
	var got []mm
	for _, m := range rep.Result.Mismatches {
		got = append(got, mm{m.Unit, m.Start.UTC(), m.Kind})
	}
	want := []mm{{"FP2-000002", vt0.Add(time.Hour), verify.CountDiffers}, {"FP2-000003", vt0.Add(2 * time.Hour), verify.ValuesDiffer}}
	if !slices.Equal(got, want) {
		t.Fatalf("mismatches = %v\nwant %v", got, want)
	}
	if rep.Result.Windows != 9 || rep.Result.Mismatched != 2 || rep.Result.Rate != 2.0/9 {
		t.Fatalf("windows %d mismatched %d rate %g; want 9, 2, 2/9", rep.Result.Windows, rep.Result.Mismatched, rep.Result.Rate)
	}
	if rep.Result.LegacyReadings != 108 || rep.Result.InfluxReadings != 107 {
		t.Fatalf("readings %d / %d, want 108 / 107", rep.Result.LegacyReadings, rep.Result.InfluxReadings)
	}
	if !strings.Contains(r.stderr, "verify: 1/1 chunks") || !strings.Contains(r.stderr, "2 of 9 windows mismatch") {
		t.Fatalf("no progress line on stderr:\n%s", r.stderr)
	}
	// Shadow read: the fleet average differs in the two 5-minute windows
	// of the missing and the changed reading; FP2-000003's soc_pct series
	// at the changed reading only.
	if rep.Shadow == nil || rep.Shadow.OK {
		t.Fatalf("shadow = %+v; want disagreement", rep.Shadow)
	}
	diffs := map[string]int{}
	for _, q := range rep.Shadow.Queries {
		diffs[q.Name] = q.Differences
		if q.LegacyRows == 0 {
			t.Fatalf("query %s returned no rows from the legacy store", q.Name)
		}
	}
	if diffs["fleet-soc"] != 2 || diffs["unit-series/soc_pct"] != 1 || diffs["unit-series/voltage_v"] != 0 {
		t.Fatalf("shadow differences = %v; want fleet-soc 2, unit-series/soc_pct 1, others 0", diffs)
	}
	last, err := e.state.LastVerify(e.ctx)
	if err != nil || last == nil || last.OK || last.Mismatched != 2 || last.Windows != 9 {
		t.Fatalf("recorded verify = %+v, %v; want the failed run", last, err)
	}

	// A threshold above the rate passes the counts, but the dashboards
	// still disagree.
	e.mustRun(0, "verify", slices.Concat(args, []string{"--max-mismatch-rate", "0.25", "--shadow=false"})...)
	r = e.mustRun(2, "verify", slices.Concat(args, []string{"--max-mismatch-rate", "0.25"})...)
	if !strings.Contains(r.stderr, "dashboard queries disagree") {
		t.Fatalf("stderr does not say the dashboards disagree:\n%s", r.stderr)
	}

	// Repair InfluxDB: everything matches.
	e.write(false, true, all)
	r = e.mustRun(0, "verify", args...)
	rep = decodeJSON[verifyReport](t, r.stdout)
	if !rep.OK || rep.Result.Mismatched != 0 || rep.Result.Windows != 9 || !rep.Shadow.OK {
		t.Fatalf("after repair: %+v", rep)
	}
	// Table output names the result.
	r = e.mustRun(0, "verify", args[:len(args)-2]...)
	if !strings.Contains(r.stdout, "0 of 9 (unit, 1h0m0s) windows mismatch") || !strings.Contains(r.stdout, "fleet-soc") {
		t.Fatalf("table output:\n%s", r.stdout)
	}
}

func TestVerifyBadInput(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--from", "yesterday"}, `--from: "yesterday" is neither`},
		{[]string{"--from", "2h", "--to", "3h"}, "is not before --to"},
		{[]string{"--from", "2h", "--window", "0s"}, "--window 0s"},
		{[]string{"--from", "2h", "--max-mismatch-rate", "2"}, "--max-mismatch-rate 2"},
		{[]string{"--from", "2h", "-o", "yaml"}, `--output "yaml"`},
	} {
		r := e.mustRun(1, "verify", tt.args...)
		if !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("verify %v: stderr %q does not name %q", tt.args, r.stderr, tt.msg)
		}
	}
}
