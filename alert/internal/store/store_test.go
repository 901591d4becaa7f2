package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// State written with Apply comes back with Load; resolutions stay in the
// outbox until delivered.
func TestApplyLoadRoundTrip(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	s, err := Open(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	firing := engine.Alert{Rule: "Hot", Key: "U1", State: engine.Firing, Severity: "critical", ActiveAt: t0, FiredAt: t0.Add(time.Minute),
		Value: 60, Labels: map[string]string{"alertname": "Hot", "unit": "U1"}, Annotations: map[string]string{"summary": "hot"}}
	pending := engine.Alert{Rule: "Low", Key: "U2", State: engine.Pending, Severity: "warning", ActiveAt: t0, Value: 3,
		Labels: map[string]string{"alertname": "Low"}, Annotations: map[string]string{}}
	units := []engine.UnitRecord{{Unit: "U1", Site: "s1", FrontierMs: t0.UnixMilli(), Matches: []string{"SiteFaults"}, LastAlarms: map[string]int64{"Crit": 5}},
		{Unit: "U2", Site: "North Yard, Bay 3", FrontierMs: 7}}
	if _, err := s.Apply(ctx, []engine.Change{{Alert: firing, From: engine.Pending}, {Alert: pending}}, units); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Units) != 2 || len(snap.Alerts) != 2 || len(snap.Outbox) != 0 {
		t.Fatalf("loaded %d units, %d alerts, %d outbox; want 2, 2, 0", len(snap.Units), len(snap.Alerts), len(snap.Outbox))
	}
	for _, a := range snap.Alerts {
		if a.Rule == "Hot" && (a.State != engine.Firing || !a.FiredAt.Equal(firing.FiredAt) || a.Labels["unit"] != "U1" || a.Annotations["summary"] != "hot") {
			t.Errorf("firing alert came back as %+v", a)
		}
		if a.Rule == "Low" && (a.State != engine.Pending || !a.ActiveAt.Equal(t0) || !a.FiredAt.IsZero()) {
			t.Errorf("pending alert came back as %+v", a)
		}
	}
	for _, u := range snap.Units {
		if u.Unit == "U1" && (len(u.Matches) != 1 || u.LastAlarms["Crit"] != 5 || u.FrontierMs != t0.UnixMilli()) {
			t.Errorf("unit came back as %+v", u)
		}
	}
	resolved := firing
	resolved.State, resolved.ResolvedAt = engine.Inactive, t0.Add(2*time.Minute)
	out, err := s.Apply(ctx, []engine.Change{{Alert: resolved, From: engine.Firing}}, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("resolve: %v, %d outbox entries", err, len(out))
	}
	snap, _ = s.Load(ctx)
	if len(snap.Alerts) != 1 || len(snap.Outbox) != 1 || !snap.Outbox[0].Alert.ResolvedAt.Equal(resolved.ResolvedAt) {
		t.Fatalf("after resolve: %d alerts, outbox %+v", len(snap.Alerts), snap.Outbox)
	}
	if err := s.Delivered(ctx, []int64{out[0].ID}); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Load(ctx)
	if len(snap.Outbox) != 0 {
		t.Fatalf("outbox not cleared: %+v", snap.Outbox)
	}
}

// An engine checkpointed to PostgreSQL mid-window and restored from it
// holds the same windows, byte for byte, and fires at the same reading as
// an engine that never stopped; a frontier-only write keeps them, a later
// checkpoint overwrites them and an emptied window is written as empty.
func TestWindowsCheckpointRestore(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	s, err := Open(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	set, err := rules.Parse("w.yml", []byte(`rules:
  - {name: Drop, kind: aggregate, field: soc_pct, func: delta, window: 10m, when: mode == idle, expr: value < -20, severity: critical}
`))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0.Add(time.Hour) }
	rec := func(m int, mode string) []telemetry.Record {
		return []telemetry.Record{{Unit: "U1", Site: "s1", TimeMs: t0.Add(time.Duration(m) * time.Minute).UnixMilli(),
			Has: telemetry.HasSoC, SoC: 80 - 2.5*float64(m), Mode: mode}}
	}
	a := engine.New(set, engine.Options{Now: now})
	for m := 0; m <= 5; m++ {
		a.Observe(rec(m, telemetry.ModeIdle))
	}
	written := a.TakeCheckpoint()
	if _, err := s.Apply(ctx, a.Drain(), written); err != nil {
		t.Fatal(err)
	}
	// A frontier-only write (TakeDirty, with an alert change) keeps the stored windows.
	frontierOnly := written[0]
	frontierOnly.Windows = nil
	if _, err := s.Apply(ctx, nil, []engine.UnitRecord{frontierOnly}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Units) != 1 || !bytes.Equal(snap.Units[0].Windows, written[0].Windows) || len(written[0].Windows) == 0 {
		t.Fatalf("windows came back as %x, wrote %x", snap.Units[0].Windows, written[0].Windows)
	}
	b := engine.New(set, engine.Options{Now: now})
	if _, bad := b.Restore(snap.Units, snap.Alerts); len(bad) != 0 {
		t.Fatal(bad)
	}
	for m := 6; m <= 9; m++ {
		a.Observe(rec(m, telemetry.ModeIdle))
		b.Observe(rec(m, telemetry.ModeIdle))
		ca, cb := a.Drain(), b.Drain()
		if len(ca) != len(cb) || len(cb) > 0 && (cb[0].State != engine.Firing || m != 9 || cb[0].Value != ca[0].Value) {
			t.Fatalf("at %dm: uninterrupted %+v, restored %+v", m, ca, cb)
		}
	}
	// A reading that is not idle empties the window: the next checkpoint says so.
	b.Observe(rec(10, telemetry.ModeCharging))
	if _, err := s.Apply(ctx, b.Drain(), b.TakeCheckpoint()); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Load(ctx)
	if len(snap.Units) != 1 || len(snap.Units[0].Windows) != 0 || snap.Units[0].FrontierMs != t0.Add(10*time.Minute).UnixMilli() {
		t.Fatalf("after the window emptied: %+v", snap.Units)
	}
}
