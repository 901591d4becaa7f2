package cmd

import (
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/control"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/telemetry"
)

// TestRepairLegacyRange copies what only InfluxDB has (influx-only) into
// the legacy store: dry run first, then for real, then idempotently again.
func TestRepairLegacyRange(t *testing.T) {
	e := newEnv(t)
	units := []string{"FP2-000001", "FP2-000002"}
	before := readings(units, vt0, vt0.Add(time.Hour), time.Minute)                     // both stores
	during := readings(units, vt0.Add(time.Hour), vt0.Add(90*time.Minute), time.Minute) // influx-only
	e.write(true, true, before)
	e.write(false, true, during)
	args := []string{"--from", vt0.Add(time.Hour).Format(time.RFC3339), "--to", vt0.Add(90 * time.Minute).Format(time.RFC3339), "--batch", "7"}

	r := e.mustRun(0, "repair-legacy", append(args, "-o", "json")...)
	res := decodeJSON[control.RepairResult](t, r.stdout)
	if res.Executed || res.Read != 60 || res.Written != 0 {
		t.Fatalf("dry run = %+v; want 60 read, nothing written", res)
	}
	if n, _ := e.legacy.Total(e.ctx, vt0, vt0.Add(2*time.Hour)); n != 120 {
		t.Fatalf("the dry run wrote: legacy has %d readings, want 120", n)
	}
	r = e.mustRun(0, "repair-legacy", append(args, "--execute")...)
	if !strings.Contains(r.stdout, "copied 60 readings from InfluxDB into the legacy store") {
		t.Fatalf("output:\n%s", r.stdout)
	}
	e.mustRun(0, "repair-legacy", append(args, "--execute")...) // idempotent
	if n, _ := e.legacy.Total(e.ctx, vt0, vt0.Add(2*time.Hour)); n != 180 {
		t.Fatalf("legacy has %d readings, want 180", n)
	}
	e.mustRun(0, "verify", "--from", vt0.Format(time.RFC3339), "--to", vt0.Add(2*time.Hour).Format(time.RFC3339), "--shadow=false")

	r = e.mustRun(1, "repair-legacy", "--execute")
	if !strings.Contains(r.stderr, "give either --from (with --to) or --from-ledger") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

// TestRepairLegacyFromLedger repairs legacy gap-ledger entries (recorded in
// influx-primary) and marks them repaired; an entry InfluxDB cannot fully
// fill stays open.
func TestRepairLegacyFromLedger(t *testing.T) {
	e := newEnv(t)
	all := readings([]string{"FP2-000001", "FP2-000002"}, vt0, vt0.Add(time.Hour), time.Minute)
	e.write(false, true, all)
	var legacyHas []telemetry.Record
	for _, r := range all {
		m := r.Time().Sub(vt0)
		if r.Unit == "FP2-000001" && m >= 10*time.Minute && m < 20*time.Minute {
			continue // the legacy store missed these 10
		}
		legacyHas = append(legacyHas, r)
	}
	e.write(true, false, legacyHas)
	err := e.state.RecordGaps(e.ctx, []cutover.Gap{
		{Sink: cutover.SinkLegacy, Unit: "FP2-000001", From: vt0.Add(10 * time.Minute), To: vt0.Add(19 * time.Minute), Readings: 10, Reason: "pg down"},
		// InfluxDB has 1 reading in this range, the entry says 3.
		{Sink: cutover.SinkLegacy, Unit: "FP2-000002", From: vt0.Add(30*time.Minute + time.Second), To: vt0.Add(31 * time.Minute), Readings: 3, Reason: "pg down"},
		{Sink: cutover.SinkInflux, Unit: "FP2-000002", From: vt0, To: vt0, Readings: 1, Reason: "not ours"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(0, "repair-legacy", "--from-ledger", "--execute", "-o", "json")
	res := decodeJSON[control.RepairResult](t, r.stdout)
	if len(res.Ranges) != 2 || res.Read != 11 || res.Written != 11 {
		t.Fatalf("result = %+v; want 2 entries, 11 readings", res)
	}
	if !res.Ranges[0].Closed || res.Ranges[1].Closed || res.Ranges[1].Missing != 2 {
		t.Fatalf("ranges = %+v; want the first closed, the second open with 2 missing", res.Ranges)
	}
	open, _ := e.state.OpenGapCount(e.ctx, cutover.SinkLegacy)
	if open != 1 {
		t.Fatalf("%d open legacy entries, want 1", open)
	}
	if n, _ := e.legacy.Total(e.ctx, vt0, vt0.Add(time.Hour)); n != 120 {
		t.Fatalf("legacy has %d readings, want 120", n)
	}
	e.mustRun(0, "verify", "--from", vt0.Format(time.RFC3339), "--to", vt0.Add(time.Hour).Format(time.RFC3339), "--shadow=false")
}
