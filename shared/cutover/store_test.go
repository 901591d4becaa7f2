package cutover

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/redact/secrettest"
	"github.com/flexipack/cutover/shared/testenv"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	dsn := testenv.Postgres(t)
	s, err := Open(testenv.Context(t, 30*time.Second), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, dsn
}

func TestPhaseOrderAndRoles(t *testing.T) {
	tests := []struct {
		p              Phase
		legacy, influx Role
		next           Phase
	}{
		{Legacy, Required, Off, DualWrite},
		{DualWrite, Required, Repairable, ShadowRead},
		{ShadowRead, Required, Repairable, InfluxPrimary},
		{InfluxPrimary, Repairable, Required, InfluxOnly},
		{InfluxOnly, Off, Required, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.p), func(t *testing.T) {
			l, i := tt.p.Roles()
			if l != tt.legacy || i != tt.influx {
				t.Fatalf("Roles() = %v, %v; want %v, %v", l, i, tt.legacy, tt.influx)
			}
			n, ok := tt.p.Next()
			if n != tt.next || ok != (tt.next != "") {
				t.Fatalf("Next() = %q, %v; want %q", n, ok, tt.next)
			}
			if p, err := ParsePhase(string(tt.p)); err != nil || p != tt.p {
				t.Fatalf("ParsePhase(%q) = %q, %v", tt.p, p, err)
			}
		})
	}
	if _, err := ParsePhase("dual_write"); err == nil {
		t.Fatal("ParsePhase accepted an unknown phase")
	}
}

func TestTransitionOptimisticConcurrency(t *testing.T) {
	s, _ := openStore(t)
	ctx := testenv.Context(t, 30*time.Second)
	st, err := s.Current(ctx)
	if err != nil || st.Phase != Legacy || st.Version != 1 {
		t.Fatalf("initial state = %+v, %v; want legacy v1", st, err)
	}
	// Two engineers advance at once from the same read: one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = s.Transition(ctx, Change{Kind: "advance", From: Legacy, To: DualWrite, ExpectVersion: st.Version, Actor: []string{"ann", "bob"}[i]})
		}(i)
	}
	wg.Wait()
	wins, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, ErrConflict):
			conflicts++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if wins != 1 || conflicts != 1 {
		t.Fatalf("wins=%d conflicts=%d; want 1 and 1", wins, conflicts)
	}
	st2, _ := s.Current(ctx)
	if st2.Phase != DualWrite || st2.Version != 2 {
		t.Fatalf("state after advance = %+v", st2)
	}
	h, err := s.History(ctx, 0)
	if err != nil || len(h) != 1 || h[0].From != Legacy || h[0].To != DualWrite {
		t.Fatalf("history = %+v, %v", h, err)
	}
}

func TestOpenTwiceConcurrently(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := testenv.Context(t, 30*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := Open(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
}

func TestLedgerCheckpointsVerify(t *testing.T) {
	s, _ := openStore(t)
	ctx := testenv.Context(t, 30*time.Second)
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	err := s.RecordGaps(ctx, []Gap{
		{Sink: SinkInflux, Unit: "FP2-1", From: t0, To: t0.Add(time.Minute), Readings: 7, Reason: "influx unavailable"},
		{Sink: SinkInflux, Unit: "FP2-2", From: t0.Add(time.Hour), To: t0.Add(time.Hour), Readings: 1, Reason: "influx unavailable"},
		{Sink: SinkLegacy, Unit: "FP2-1", From: t0, To: t0, Readings: 1, Reason: "pg down"},
	})
	if err != nil {
		t.Fatal(err)
	}
	open, err := s.Gaps(ctx, GapFilter{Sink: SinkInflux, OnlyOpen: true})
	if err != nil || len(open) != 2 || open[0].Unit != "FP2-1" || open[0].Readings != 7 {
		t.Fatalf("open influx gaps = %+v, %v", open, err)
	}
	ranged, _ := s.Gaps(ctx, GapFilter{Sink: SinkInflux, From: t0.Add(30 * time.Minute), To: t0.Add(2 * time.Hour)})
	if len(ranged) != 1 || ranged[0].Unit != "FP2-2" {
		t.Fatalf("ranged gaps = %+v", ranged)
	}
	if err := s.MarkRepaired(ctx, []int64{open[0].ID}, "run-1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.OpenGapCount(ctx, SinkInflux); n != 1 {
		t.Fatalf("open influx gaps after repair = %d, want 1", n)
	}
	if n, _ := s.OpenGapCount(ctx, ""); n != 2 {
		t.Fatalf("open gaps after repair = %d, want 2", n)
	}

	if err := s.StartBackfillRun(ctx, "run-1", map[string]string{"from": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.WindowDone(ctx, "run-1", "FP2-1", t0, t0.Add(time.Hour), 10); err != nil {
		t.Fatal(err)
	}
	if err := s.WindowDone(ctx, "run-1", "FP2-1", t0, t0.Add(time.Hour), 10); err != nil {
		t.Fatal("checkpointing a window twice must be harmless:", err)
	}
	done, err := s.DoneWindows(ctx, "run-1")
	if err != nil || !done[WindowKey{"FP2-1", t0}] || len(done) != 1 {
		t.Fatalf("done windows = %v, %v", done, err)
	}
	if r, err := s.LatestUnfinishedBackfillRun(ctx); err != nil || r.RunID != "run-1" {
		t.Fatalf("latest unfinished = %+v, %v", r, err)
	}
	if err := s.FinishBackfillRun(ctx, "run-1", map[string]int{"points": 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LatestUnfinishedBackfillRun(ctx); !errors.Is(err, ErrNoRun) {
		t.Fatalf("after finish, latest unfinished err = %v; want ErrNoRun", err)
	}

	if v, err := s.LastVerify(ctx); err != nil || v != nil {
		t.Fatalf("LastVerify on empty = %+v, %v", v, err)
	}
	if _, err := s.SaveVerify(ctx, VerifyRun{From: t0, To: t0.Add(time.Hour), Window: time.Hour, Windows: 4, Mismatched: 1, Rate: 0.25}); err != nil {
		t.Fatal(err)
	}
	v, err := s.LastVerify(ctx)
	if err != nil || v == nil || v.Mismatched != 1 || v.Window != time.Hour || v.OK {
		t.Fatalf("LastVerify = %+v, %v", v, err)
	}

	if err := s.Beat(ctx, Heartbeat{ConsumerID: "c1", Phase: DualWrite, PhaseVersion: 2, StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	hbs, err := s.Heartbeats(ctx, time.Minute)
	if err != nil || len(hbs) != 1 || hbs[0].Phase != DualWrite {
		t.Fatalf("heartbeats = %+v, %v", hbs, err)
	}
	_ = s.Forget(ctx, "c1")
	if hbs, _ := s.Heartbeats(ctx, time.Minute); len(hbs) != 0 {
		t.Fatalf("heartbeats after Forget = %+v", hbs)
	}
}

// A gap reason carrying a URL with a password is stored without it.
func TestGapReasonHidesPasswords(t *testing.T) {
	s, _ := openStore(t)
	ctx := testenv.Context(t, 30*time.Second)
	reason := "influx refused: write at http://admin:" + secrettest.Secret + "@127.0.0.1:8086 failed"
	now := time.Now().UTC().Truncate(time.Second)
	if err := s.RecordGaps(ctx, []Gap{{Sink: "influx", Unit: "U1", From: now, To: now, Readings: 1, Reason: reason, ConsumerID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	gaps, err := s.Gaps(ctx, GapFilter{})
	if err != nil || len(gaps) != 1 {
		t.Fatalf("gaps = %+v, %v", gaps, err)
	}
	secrettest.Check(t, "gap_ledger.reason", gaps[0].Reason)
	if !strings.Contains(gaps[0].Reason, "http://admin:xxxxx@127.0.0.1:8086") {
		t.Fatalf("reason lost its meaning: %q", gaps[0].Reason)
	}
}
