package engine

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
)

const snapRules = `settings: {allowed_lateness: 2m}
rules:
  - {name: Hot, kind: threshold, expr: temp_cell_max_c > 55, severity: critical}
  - {name: Drop, kind: aggregate, field: soc_pct, func: delta, window: 10m, expr: value < -20, severity: critical}
  - {name: Mean, kind: aggregate, field: soc_pct, func: mean, window: 5m, expr: value < 10, severity: warning}
`

func socAt(t0 time.Time, at time.Duration, soc float64) []telemetry.Record {
	return []telemetry.Record{{Unit: "U1", Site: "s", TimeMs: t0.Add(at).UnixMilli(), Has: telemetry.HasSoC, SoC: soc}}
}

// An engine restored from TakeDirty's records holds the same windows as
// the one that wrote them, and evaluates the next readings identically;
// windows of rules no longer defined are skipped, reordered rules find
// theirs by name.
func TestWindowSnapshotRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0.Add(time.Hour) }
	a := New(mustRules(t, snapRules), Options{Now: now})
	for m := 0; m <= 5; m++ {
		a.Observe(socAt(t0, time.Duration(m)*time.Minute, 80-2.5*float64(m)))
	}
	recs := a.TakeCheckpoint()
	if len(recs) != 1 || len(recs[0].Windows) != 1+(1+4+6+1+6*8)+(1+4+6+1+6*8) {
		t.Fatalf("records %+v: want one unit with two windows of 6 samples", recs)
	}
	if again := a.TakeCheckpoint(); len(again) != 0 {
		t.Fatalf("unit still dirty after TakeCheckpoint: %+v", again)
	}
	if again := a.TakeDirty(); len(again) != 0 {
		t.Fatalf("unit dirty for TakeDirty after TakeCheckpoint: %+v", again)
	}
	// Rules reordered, Hot removed, a new aggregate added.
	b := New(mustRules(t, `rules:
  - {name: Mean, kind: aggregate, field: soc_pct, func: mean, window: 5m, expr: value < 10, severity: warning}
  - {name: New, kind: aggregate, field: soc_pct, func: min, window: 5m, expr: value < 10, severity: warning}
  - {name: Drop, kind: aggregate, field: soc_pct, func: delta, window: 10m, expr: value < -20, severity: critical}
`), Options{Now: now})
	if _, bad := b.Restore(recs, nil); len(bad) != 0 {
		t.Fatal(bad)
	}
	ua, ub := a.units["U1"], b.units["U1"]
	if !slices.Equal(ua.slots[1].win.s, ub.slots[2].win.s) || ua.slots[1].win.base != ub.slots[2].win.base ||
		!slices.Equal(ua.slots[2].win.s, ub.slots[0].win.s) || ub.slots[1].win != nil {
		t.Fatalf("windows differ after restore")
	}
	for m := 6; m <= 9; m++ {
		r := socAt(t0, time.Duration(m)*time.Minute, 80-2.5*float64(m))
		a.Observe(r)
		b.Observe(r)
	}
	ca, cb := a.Drain(), b.Drain()
	if len(ca) != 1 || len(cb) != 1 || ca[0].Rule != "Drop" || cb[0].Rule != "Drop" || ca[0].FiredAt != cb[0].FiredAt || ca[0].Value != cb[0].Value {
		t.Fatalf("uninterrupted %+v, restored %+v: want the same Drop firing", ca, cb)
	}
	wa, wb := a.TakeCheckpoint(), b.TakeCheckpoint()
	// b's record has the New window too; Drop and Mean are byte-identical.
	if !bytes.Contains(wb[0].Windows, wa[0].Windows[1:1+1+4+6+1+6*8]) {
		t.Fatalf("windows of the restored engine diverged")
	}
}

// A malformed snapshot is reported with the unit and where it broke; the
// unit is still restored (frontier), with empty windows.
func TestWindowSnapshotMalformed(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0.Add(time.Hour) }
	a := New(mustRules(t, snapRules), Options{Now: now})
	a.Observe(socAt(t0, 0, 50))
	a.Observe(socAt(t0, time.Minute, 40))
	good := a.TakeCheckpoint()[0]
	for name, w := range map[string][]byte{
		"truncated": good.Windows[:len(good.Windows)-3],
		"version":   append([]byte{9}, good.Windows[1:]...),
		"too many":  {1, 4, 'D', 'r', 'o', 'p', 0, 0xff, 0x7f},
	} {
		rec := good
		rec.Windows = w
		b := New(mustRules(t, snapRules), Options{Now: now})
		_, bad := b.Restore([]UnitRecord{rec}, nil)
		if len(bad) != 1 || !strings.Contains(bad[0].Error(), "unit U1") {
			t.Errorf("%s: errors %v, want one naming unit U1", name, bad)
			continue
		}
		u := b.units["U1"]
		if u.frontier != good.FrontierMs || u.slots[1].win != nil || u.slots[2].win != nil {
			t.Errorf("%s: unit restored as frontier %d, windows %v %v", name, u.frontier, u.slots[1].win, u.slots[2].win)
		}
	}
}

// A late reading changes a window: its unit is written at the next
// checkpoint although its frontier did not move.
func TestLateReadingMarksDirty(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := New(mustRules(t, snapRules), Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	a.Observe(socAt(t0, time.Minute, 50))
	before := a.TakeCheckpoint()[0]
	a.Observe(socAt(t0, 30*time.Second, 60))
	after := a.TakeCheckpoint()
	if len(after) != 1 || after[0].FrontierMs != before.FrontierMs || bytes.Equal(after[0].Windows, before.Windows) {
		t.Fatalf("late reading: dirty %+v", after)
	}
}

// TakeDirty carries no windows and leaves the unit due for the next
// checkpoint; a unit whose window emptied is checkpointed as empty, not nil.
func TestTakeDirtyLeavesCheckpoint(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := New(mustRules(t, snapRules), Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	a.Observe(socAt(t0, 0, 50))
	if d := a.TakeDirty(); len(d) != 1 || d[0].Windows != nil {
		t.Fatalf("TakeDirty: %+v, want one unit without windows", d)
	}
	if c := a.TakeCheckpoint(); len(c) != 1 || len(c[0].Windows) == 0 {
		t.Fatalf("TakeCheckpoint after TakeDirty: %+v, want the unit with its windows", c)
	}
	a.Observe([]telemetry.Record{{Unit: "U1", Site: "s", TimeMs: t0.Add(time.Minute).UnixMilli(), Has: telemetry.HasSoC, SoC: 40}})
	e := New(mustRules(t, `rules:
  - {name: Idle, kind: aggregate, field: soc_pct, func: mean, window: 5m, when: mode == idle, expr: value < 10, severity: warning}
`), Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	e.Observe([]telemetry.Record{{Unit: "U1", Site: "s", TimeMs: t0.UnixMilli(), Has: telemetry.HasSoC, SoC: 40, Mode: telemetry.ModeIdle}})
	e.TakeCheckpoint()
	e.Observe([]telemetry.Record{{Unit: "U1", Site: "s", TimeMs: t0.Add(time.Minute).UnixMilli(), Has: telemetry.HasSoC, SoC: 40, Mode: telemetry.ModeCharging}})
	if c := e.TakeCheckpoint(); len(c) != 1 || c[0].Windows == nil || len(c[0].Windows) != 0 {
		t.Fatalf("emptied window checkpointed as %+v, want empty and not nil", c)
	}
}
