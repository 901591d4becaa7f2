package engine

import (
	"testing"
	"time"
	"unsafe"

	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/shared/telemetry"
)

func mustRules(t *testing.T, src string) *rules.Set {
	t.Helper()
	set, err := rules.Parse("test.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// Records alias the decoder's buffer, which the next message overwrites:
// the engine must keep its own copies of unit and site (map keys included).
func TestRecordsMayAliasAReusedBuffer(t *testing.T) {
	set := mustRules(t, "rules:\n  - {name: Hot, kind: threshold, expr: temp_cell_max_c > 55, severity: critical}\n")
	now := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	e := New(set, Options{Now: func() time.Time { return now.Add(time.Hour) }})
	buf := []byte("U1site")
	alias := func(b []byte) string { return unsafe.String(&b[0], len(b)) }
	for i, id := range []string{"U1", "U2", "U1", "U2"} {
		copy(buf, id)
		rec := telemetry.Record{Unit: alias(buf[:2]), Site: alias(buf[2:]), TimeMs: now.Add(time.Duration(i) * time.Second).UnixMilli()}
		e.Observe([]telemetry.Record{rec})
	}
	if e.Units() != 2 {
		t.Fatalf("%d units tracked, want 2", e.Units())
	}
	seen := map[string]bool{}
	for _, u := range e.TakeDirty() {
		if seen[u.Unit] {
			t.Fatalf("unit %s twice among the dirty units", u.Unit)
		}
		seen[u.Unit] = true
	}
}

// A reload keeps the state of rules whose name and kind stay, and resolves
// the alerts of rules that are gone.
func TestReloadKeepsState(t *testing.T) {
	now := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	e := New(mustRules(t, `rules:
  - {name: Hot, kind: threshold, expr: temp_cell_max_c > 55, for: 2m, severity: critical}
  - {name: Warm, kind: threshold, expr: temp_cell_max_c > 40, severity: warning}
`), Options{Now: func() time.Time { return now.Add(time.Hour) }})
	rec := func(at time.Duration, temp float64) []telemetry.Record {
		return []telemetry.Record{{Unit: "U1", Site: "s", TimeMs: now.Add(at).UnixMilli(), Temps: []telemetry.Temp{{Sensor: "cell_max", C: temp}}}}
	}
	e.Observe(rec(0, 60))
	e.Drain()
	e.Reload(mustRules(t, `rules:
  - {name: Hot, kind: threshold, expr: temp_cell_max_c > 50, for: 2m, severity: critical}
`))
	ch := e.Drain()
	if len(ch) != 1 || ch[0].Rule != "Warm" || !ch[0].Resolved() {
		t.Fatalf("reload: changes %+v, want Warm resolved", ch)
	}
	e.Observe(rec(2*time.Minute, 60))
	act := e.Active()
	if len(act) != 1 || act[0].Rule != "Hot" || act[0].State != Firing || !act[0].ActiveAt.Equal(now) {
		t.Fatalf("after reload: %+v, want Hot firing since the first reading", act)
	}
}
