package cutoverapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/gates"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/verify"
)

func openState(t *testing.T) *cutover.Store {
	t.Helper()
	s, err := cutover.Open(testenv.Context(t, 30*time.Second), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, h http.Handler, path string, into any) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	if into != nil {
		if err := json.NewDecoder(res.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %d, body not JSON: %v", path, res.StatusCode, err)
		}
	}
	return res
}

func TestOverviewFollowsTheStateStore(t *testing.T) {
	ctx := testenv.Context(t, 60*time.Second)
	s := openState(t)
	now := time.Now()
	api := New(Config{Gates: gates.Config{LiveFor: 5 * time.Second, MaxLag: 10 * time.Second}}, Deps{State: s, Now: func() time.Time { return now }})
	defer api.Close()
	h := api.Handler()

	st, _ := s.Current(ctx)
	if _, err := s.Transition(ctx, cutover.Change{Kind: "advance", From: st.Phase, To: cutover.DualWrite, ExpectVersion: st.Version, Actor: "alice", Reason: "start"}); err != nil {
		t.Fatal(err)
	}
	for _, hb := range []cutover.Heartbeat{
		{ConsumerID: "c-ok", Host: "h1", Phase: cutover.DualWrite, PhaseVersion: 2, StartedAt: now},
		{ConsumerID: "c-behind", Host: "h2", Phase: cutover.Legacy, PhaseVersion: 1, StartedAt: now},
		{ConsumerID: "c-slow", Host: "h3", Phase: cutover.DualWrite, PhaseVersion: 2, LagSeconds: 42, LagMessages: 9000, StartedAt: now},
	} {
		if err := s.Beat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	gap := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	if err := s.RecordGaps(ctx, []cutover.Gap{{Sink: cutover.SinkInflux, Unit: "bsu-7", From: gap, To: gap.Add(time.Minute), Readings: 7, Reason: "influx down"}}); err != nil {
		t.Fatal(err)
	}

	var o Overview
	if res := get(t, h, "/v1/cutover/overview", &o); res.StatusCode != 200 {
		t.Fatalf("overview: %d", res.StatusCode)
	}
	if o.State.Phase != cutover.DualWrite || o.State.Actor != "alice" || o.State.InfluxRole != "repairable" {
		t.Fatalf("state = %+v; want dual-write by alice, influx repairable", o.State)
	}
	if len(o.Timeline) != 1 || o.Timeline[0].To != cutover.DualWrite {
		t.Fatalf("timeline = %+v; want the one advance", o.Timeline)
	}
	if o.Next == nil || o.Next.To != cutover.ShadowRead || o.Next.GatesPassed || o.Next.Command != "migrate advance --to shadow-read --execute" {
		t.Fatalf("next = %+v; want a refused step into shadow-read with its command", o.Next)
	}
	if g := o.Next.Gates[0]; g.Name != gates.NoOpenGaps || g.Status != GateFail || !strings.Contains(g.Detail, "backfill run --from-ledger") {
		t.Fatalf("first gate = %+v; want no-open-gaps failing with the repair command", g)
	}
	flags := map[string]bool{}
	for _, c := range o.Consumers.Consumers {
		flags[c.ConsumerID] = c.Laggard
	}
	if flags["c-ok"] || !flags["c-behind"] || !flags["c-slow"] || o.Consumers.Laggards != 2 {
		t.Fatalf("laggards = %v (%d); want c-behind and c-slow flagged", flags, o.Consumers.Laggards)
	}
	if o.Gaps.Open[cutover.SinkInflux] != 1 || len(o.Gaps.Entries) != 1 || o.Gaps.Entries[0].Unit != "bsu-7" {
		t.Fatalf("gaps = %+v; want the one open influx entry", o.Gaps)
	}
	if o.Shadow == nil || o.Shadow.Recording {
		t.Fatalf("shadow = %+v; want a section saying nothing is recorded", o.Shadow)
	}

	// The consumers stop beating: past live-for they are stale laggards.
	now = now.Add(6 * time.Second)
	var cv ConsumersView
	get(t, h, "/v1/cutover/consumers", &cv)
	if cv.Stale != 3 || !cv.Consumers[0].Stale || !cv.Consumers[0].Laggard {
		t.Fatalf("after 6s without beats: %+v; want every consumer stale and flagged", cv)
	}
}

func TestBackfillViewStates(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	api := New(Config{}, Deps{Now: func() time.Time { return now }})
	recent, old := now.Add(-2*time.Second), now.Add(-time.Minute)
	fin := now.Add(-time.Hour)
	run := func(progressAt *time.Time, finished *time.Time, summary string) cutover.BackfillRunStatus {
		return cutover.BackfillRunStatus{BackfillRun: cutover.BackfillRun{RunID: "bf", StartedAt: now.Add(-2 * time.Hour), Params: json.RawMessage(`{"from":"2026-11-01T00:00:00Z","to":"2026-11-02T00:00:00Z"}`),
			FinishedAt: finished, Summary: json.RawMessage(summary)}, ProgressAt: progressAt,
			Progress: &cutover.BackfillProgress{PointsTotal: 1000, PointsDone: 250, Rate: 50, ETASeconds: 15, ThrottleState: "throttled", ThrottleReason: "write latency 3s > 2s"}}
	}
	tests := []struct {
		name  string
		r     cutover.BackfillRunStatus
		state string
		frac  float64
		cmd   bool
	}{
		{"running", run(&recent, nil, ""), "running", 0.25, false},
		{"stopped reporting", run(&old, nil, ""), "not-reporting", 0.25, true},
		{"finished", run(&old, &fin, `{"points_planned":1000,"windows_planned":4,"result":{"points_written":1000,"windows_done":4}}`), "finished", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := api.backfillView(tt.r, now)
			if v.State != tt.state || v.Fraction != tt.frac || (v.Command != "") != tt.cmd {
				t.Fatalf("view = %+v; want state %s, fraction %g, command %v", v, tt.state, tt.frac, tt.cmd)
			}
			if tt.state == "running" && (v.ETASeconds == nil || *v.ETASeconds != 15 || v.ThrottleReason == "") {
				t.Fatalf("running view = %+v; want ETA 15s and the throttle reason", v)
			}
		})
	}
}

func TestRecentGateIsCachedNotRunPerRequest(t *testing.T) {
	s := openState(t)
	ctx := testenv.Context(t, 60*time.Second)
	for _, to := range []cutover.Phase{cutover.DualWrite, cutover.ShadowRead} {
		st, _ := s.Current(ctx)
		if _, err := s.Transition(ctx, cutover.Change{Kind: "advance", From: st.Phase, To: to, ExpectVersion: st.Version, Actor: "t", Forced: true}); err != nil {
			t.Fatal(err)
		}
	}
	calls := make(chan struct{}, 100)
	api := New(Config{RecentVerifyTTL: time.Hour}, Deps{State: s, Recent: func(ctx context.Context, from, to time.Time, w time.Duration) (verify.Result, error) {
		calls <- struct{}{}
		return verify.Result{From: from, To: to, Windows: 12}, nil
	}})
	defer api.Close()
	h := api.Handler()
	status := func() string {
		var n NextStep
		get(t, h, "/v1/cutover/gates", &n)
		for _, g := range n.Gates {
			if g.Name == gates.VerifyRecent {
				return g.Status
			}
		}
		t.Fatalf("no %s gate in %+v", gates.VerifyRecent, n)
		return ""
	}
	if got := status(); got != GatePending {
		t.Fatalf("first look: %s; want pending while it runs in the background", got)
	}
	testenv.Eventually(t, 10*time.Second, "the recent verify to be evaluated", func() error {
		if got := status(); got != GatePass {
			return errorf("status %s", got)
		}
		return nil
	})
	for range 5 {
		status()
	}
	if n := len(calls); n != 1 {
		t.Fatalf("the recent verify ran %d times; want once within its TTL", n)
	}
}

func TestBadParametersAndReadOnly(t *testing.T) {
	api := New(Config{}, Deps{State: openState(t)})
	h := api.Handler()
	for _, tt := range []struct {
		method, path string
		status       int
		detail       string
	}{
		{"GET", "/v1/cutover/timeline?limit=0", 400, "limit"},
		{"GET", "/v1/cutover/gaps?limit=abc", 400, "limit"},
		{"GET", "/v1/cutover/shadow?examples=999", 400, "examples"},
		{"GET", "/v1/cutover/state?limit=5", 400, "takes no parameters"},
		{"GET", "/v1/cutover/gaps?sink=influx", 400, "parameter sink: unknown; this endpoint takes limit"},
		{"GET", "/v1/cutover/timeline?limit=1&limit=2", 400, "given 2 times"},
		{"POST", "/v1/cutover/advance", 405, "read-only"},
		{"GET", "/v1/cutover/nope", 404, "no such"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.status || rec.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(rec.Body.String(), tt.detail) {
			t.Errorf("%s %s = %d %s %q; want %d problem naming %q", tt.method, tt.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String(), tt.status, tt.detail)
		}
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
