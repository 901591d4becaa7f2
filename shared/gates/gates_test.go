package gates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/verify"
	"github.com/flexipack/cutover/shared/window"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type fakeState struct {
	gaps     []cutover.Gap // open entries
	gapErr   error
	last     *cutover.VerifyRun
	beats    []cutover.Heartbeat
	run      *cutover.BackfillRun
	recent   verify.Result
	recentTo time.Time
	phase    cutover.Phase
	shadow   cutover.ShadowStats
}

func (f *fakeState) Current(context.Context) (cutover.State, error) {
	ph := f.phase
	if ph == "" {
		ph = cutover.ShadowRead
	}
	return cutover.State{Phase: ph, Version: 3}, nil
}

func (f *fakeState) ShadowStats(_ context.Context, version int64) (cutover.ShadowStats, error) {
	if version != 3 {
		return cutover.ShadowStats{}, nil
	}
	return f.shadow, nil
}

func (f *fakeState) OpenGapCount(_ context.Context, sink string) (int64, error) {
	if f.gapErr != nil {
		return 0, f.gapErr
	}
	var n int64
	for _, g := range f.gaps {
		if sink == "" || g.Sink == sink {
			n++
		}
	}
	return n, nil
}

func (f *fakeState) Gaps(_ context.Context, flt cutover.GapFilter) ([]cutover.Gap, error) {
	var out []cutover.Gap
	for _, g := range f.gaps {
		if flt.Sink == "" || g.Sink == flt.Sink {
			out = append(out, g)
		}
	}
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[:flt.Limit]
	}
	return out, nil
}

func (f *fakeState) LastVerify(context.Context) (*cutover.VerifyRun, error) { return f.last, nil }

func (f *fakeState) Heartbeats(context.Context, time.Duration) ([]cutover.Heartbeat, error) {
	return f.beats, nil
}

func (f *fakeState) LatestFinishedBackfillRun(context.Context) (cutover.BackfillRun, error) {
	if f.run == nil {
		return cutover.BackfillRun{}, fmt.Errorf("%w: none", cutover.ErrNoRun)
	}
	return *f.run, nil
}

func (f *fakeState) checker(cfg Config) *Checker {
	return &Checker{Ledger: f, Verifies: f, Consumers: f, Backfills: f, Shadows: f, Config: cfg, Now: func() time.Time { return now },
		Recent: func(_ context.Context, from, to time.Time, w time.Duration) (verify.Result, error) {
			f.recentTo = to
			return f.recent, nil
		}}
}

var (
	bfFrom = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	bfTo   = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
)

func backfillRun() *cutover.BackfillRun {
	p, _ := json.Marshal(map[string]any{"from": bfFrom, "to": bfTo, "units": []string{}})
	return &cutover.BackfillRun{RunID: "bf-1", Params: p}
}

func cleanVerify(from, to time.Time) *cutover.VerifyRun {
	return &cutover.VerifyRun{ID: 7, At: now, From: from, To: to, Windows: 100, OK: true}
}

func TestGates(t *testing.T) {
	gap := cutover.Gap{ID: 3, Sink: "influx", Unit: "FP2-0007", From: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), Readings: 12}
	live := []cutover.Heartbeat{{ConsumerID: "c1", LagSeconds: 1}, {ConsumerID: "c2", LagSeconds: 2}}
	tests := []struct {
		name  string
		to    cutover.Phase
		state fakeState
		cfg   Config
		// gate name → substring its detail must hold; "" means it passes.
		want map[string]string
	}{
		{name: "dual-write has no gates", to: cutover.DualWrite, want: map[string]string{}},
		{name: "shadow-read passes", to: cutover.ShadowRead,
			state: fakeState{run: backfillRun(), last: cleanVerify(bfFrom.Add(-time.Hour), bfTo)},
			want:  map[string]string{NoOpenGaps: "", VerifyBackfilled: ""}},
		{name: "shadow-read: an open gap", to: cutover.ShadowRead,
			state: fakeState{run: backfillRun(), last: cleanVerify(bfFrom, bfTo), gaps: []cutover.Gap{gap, gap}},
			want:  map[string]string{NoOpenGaps: "2 open gap-ledger entries (oldest FP2-0007 2026-11-21T08:00Z, 12 readings, sink influx); run: backfill run --from-ledger --execute", VerifyBackfilled: ""}},
		{name: "shadow-read: no verify", to: cutover.ShadowRead, state: fakeState{run: backfillRun()},
			want: map[string]string{NoOpenGaps: "", VerifyBackfilled: "no verify recorded; the backfilled range is [2026-11-01T00:00:00Z, 2026-11-20T00:00:00Z) (backfill run bf-1); run: migrate verify --from 2026-11-01T00:00:00Z --to 2026-11-20T00:00:00Z"}},
		{name: "shadow-read: verify does not cover", to: cutover.ShadowRead,
			state: fakeState{run: backfillRun(), last: cleanVerify(bfFrom.Add(time.Hour), bfTo)},
			want:  map[string]string{NoOpenGaps: "", VerifyBackfilled: "not the backfilled range"}},
		{name: "shadow-read: verify found mismatches", to: cutover.ShadowRead,
			state: fakeState{run: backfillRun(), last: &cutover.VerifyRun{ID: 8, From: bfFrom, To: bfTo, Windows: 100, Mismatched: 2, Rate: 0.02}},
			want:  map[string]string{NoOpenGaps: "", VerifyBackfilled: "found 2 mismatching windows of 100"}},
		{name: "shadow-read: no backfill run", to: cutover.ShadowRead, state: fakeState{last: cleanVerify(bfFrom, bfTo)},
			want: map[string]string{NoOpenGaps: "", VerifyBackfilled: "no finished backfill run is recorded; run backfill, or pass --backfilled-range"}},
		{name: "shadow-read: range given by the operator", to: cutover.ShadowRead, state: fakeState{last: cleanVerify(bfFrom, bfTo)},
			cfg:  Config{BackfilledRange: &window.Span{From: bfFrom, To: bfTo}},
			want: map[string]string{NoOpenGaps: "", VerifyBackfilled: ""}},
		{name: "shadow-read: store error", to: cutover.ShadowRead, state: fakeState{gapErr: errors.New("connection refused"), run: backfillRun(), last: cleanVerify(bfFrom, bfTo)},
			want: map[string]string{NoOpenGaps: "could not evaluate: connection refused", VerifyBackfilled: ""}},
		{name: "influx-primary passes", to: cutover.InfluxPrimary, state: fakeState{beats: live, recent: verify.Result{Windows: 50}},
			want: map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", ShadowReads: ""}},
		{name: "influx-primary: legacy gaps do not block", to: cutover.InfluxPrimary,
			state: fakeState{beats: live, recent: verify.Result{Windows: 50}, gaps: []cutover.Gap{{Sink: "legacy", Unit: "U"}}},
			want:  map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", ShadowReads: ""}},
		{name: "influx-primary: recent verify over threshold", to: cutover.InfluxPrimary,
			state: fakeState{beats: live, recent: verify.Result{Windows: 50, Mismatched: 2, Rate: 0.04,
				Mismatches: []verify.Mismatch{{Unit: "U1", Start: now.Add(-time.Hour), Kind: verify.CountDiffers, Legacy: verify.Sum{N: 3}, Influx: verify.Sum{N: 2}}}}},
			cfg:  Config{MaxMismatchRate: 0.01},
			want: map[string]string{NoOpenGaps: "", VerifyRecent: "2 of 50 windows mismatch (rate 0.04, at most 0.01 allowed", ConsumerLag: "", ShadowReads: ""}},
		{name: "influx-primary: rate under threshold", to: cutover.InfluxPrimary,
			state: fakeState{beats: live, recent: verify.Result{Windows: 50, Mismatched: 2, Rate: 0.04}}, cfg: Config{MaxMismatchRate: 0.05},
			want: map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", ShadowReads: ""}},
		{name: "influx-primary: a consumer lags", to: cutover.InfluxPrimary,
			state: fakeState{beats: append(live, cutover.Heartbeat{ConsumerID: "c3", LagSeconds: 45, LagMessages: 9000}), recent: verify.Result{Windows: 1}},
			want:  map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "1 of 3 live consumers lag more than 30s: c3 lags 45.0s (9000 messages)", ShadowReads: ""}},
		{name: "influx-primary: no consumers", to: cutover.InfluxPrimary, state: fakeState{recent: verify.Result{Windows: 1}},
			want: map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "no consumer sent a heartbeat in the last 15s", ShadowReads: ""}},
		{name: "influx-primary: enough agreeing shadow reads", to: cutover.InfluxPrimary,
			state: fakeState{beats: live, recent: verify.Result{Windows: 1}, shadow: cutover.ShadowStats{Comparisons: 1500, Mismatches: 1, Rate: 1.0 / 1500}},
			cfg:   Config{MinShadowReads: 1000, MaxMismatchRate: 0.001},
			want:  map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", ShadowReads: ""}},
		{name: "influx-primary: too few shadow reads", to: cutover.InfluxPrimary,
			state: fakeState{beats: live, recent: verify.Result{Windows: 1}, shadow: cutover.ShadowStats{Comparisons: 10}},
			cfg:   Config{MinShadowReads: 1000},
			want:  map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", ShadowReads: "10 shadow comparisons in shadow-read (version 3), 0 mismatch (rate 0, at most 0 allowed), 0 shadow errors; at least 1000 required"}},
		{name: "influx-primary: shadow reads disagree", to: cutover.InfluxPrimary,
			state: fakeState{beats: live, recent: verify.Result{Windows: 1}, shadow: cutover.ShadowStats{Comparisons: 2000, Mismatches: 20, Rate: 0.01}},
			cfg:   Config{MinShadowReads: 1000, MaxMismatchRate: 0.001},
			want:  map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", ShadowReads: "20 mismatch (rate 0.01, at most 0.001 allowed)"}},
		{name: "influx-primary: not from shadow-read", to: cutover.InfluxPrimary,
			state: fakeState{beats: live, recent: verify.Result{Windows: 1}, phase: cutover.DualWrite, shadow: cutover.ShadowStats{Comparisons: 5000}},
			cfg:   Config{MinShadowReads: 1000},
			want:  map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", ShadowReads: "shadow reads count only in shadow-read"}},
		{name: "influx-only needs the confirmation", to: cutover.InfluxOnly, state: fakeState{beats: live, recent: verify.Result{Windows: 1}},
			want: map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", Confirm: "type --confirm influx-only"}},
		{name: "influx-only: wrong confirmation", to: cutover.InfluxOnly, state: fakeState{beats: live, recent: verify.Result{Windows: 1}},
			cfg:  Config{Confirm: "yes"},
			want: map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", Confirm: `--confirm "yes" does not match`}},
		{name: "influx-only passes", to: cutover.InfluxOnly, state: fakeState{beats: live, recent: verify.Result{Windows: 1}},
			cfg:  Config{Confirm: "influx-only"},
			want: map[string]string{NoOpenGaps: "", VerifyRecent: "", ConsumerLag: "", Confirm: ""}},
		{name: "influx-only: an open influx gap", to: cutover.InfluxOnly,
			state: fakeState{beats: live, recent: verify.Result{Windows: 1}, gaps: []cutover.Gap{gap}}, cfg: Config{Confirm: "influx-only"},
			want: map[string]string{NoOpenGaps: "1 open gap-ledger entries for influx", VerifyRecent: "", ConsumerLag: "", Confirm: ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.state
			rs := st.checker(tt.cfg).Check(context.Background(), tt.to)
			if len(rs) != len(tt.want) {
				t.Fatalf("got %d gates %+v, want %d", len(rs), rs, len(tt.want))
			}
			pass := true
			for _, r := range rs {
				want, ok := tt.want[r.Name]
				if !ok {
					t.Fatalf("unexpected gate %q", r.Name)
				}
				if (want == "") != r.OK {
					t.Errorf("gate %s: ok = %v (%s), want ok = %v", r.Name, r.OK, r.Detail, want == "")
				}
				if want != "" && !strings.Contains(r.Detail, want) {
					t.Errorf("gate %s: detail %q\ndoes not contain %q", r.Name, r.Detail, want)
				}
				pass = pass && want == ""
			}
			if Passed(rs) != pass {
				t.Errorf("Passed = %v, want %v", Passed(rs), pass)
			}
			if tt.to == cutover.InfluxPrimary && !st.recentTo.IsZero() && !st.recentTo.Equal(now.Add(-30*time.Second)) {
				t.Errorf("recent verify ends %s, want max-lag (30s) before now", st.recentTo)
			}
		})
	}
}

func TestRunRange(t *testing.T) {
	tests := []struct {
		params string
		err    string
	}{
		{`{"from":"2026-11-01T00:00:00Z","to":"2026-11-20T00:00:00Z"}`, ""},
		{`{"From":"2026-11-01T00:00:00Z","To":"2026-11-20T00:00:00Z"}`, ""},
		{`{"to":"2026-11-20T00:00:00Z"}`, `no "from"`},
		{`{"from":"yesterday","to":"2026-11-20T00:00:00Z"}`, `"from" = yesterday: not an RFC 3339 time`},
		{`{"from":"2026-11-20T00:00:00Z","to":"2026-11-01T00:00:00Z"}`, "is empty"},
		{`[1]`, "not a JSON object"},
	}
	for _, tt := range tests {
		sp, err := RunRange(json.RawMessage(tt.params))
		if tt.err == "" {
			if err != nil || !sp.From.Equal(bfFrom) || !sp.To.Equal(bfTo) {
				t.Errorf("RunRange(%s) = %v, %v", tt.params, sp, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("RunRange(%s) error = %v, want %q", tt.params, err, tt.err)
		}
	}
}

// TestForListsWhatCheckEvaluates: the gates For announces (plan, the audit
// log) are exactly those Check evaluates, in the same order, for every phase.
func TestForListsWhatCheckEvaluates(t *testing.T) {
	want := map[cutover.Phase][]string{
		cutover.Legacy:        nil,
		cutover.DualWrite:     nil,
		cutover.ShadowRead:    {NoOpenGaps, VerifyBackfilled},
		cutover.InfluxPrimary: {NoOpenGaps, VerifyRecent, ShadowReads, ConsumerLag},
		cutover.InfluxOnly:    {NoOpenGaps, VerifyRecent, ConsumerLag, Confirm},
	}
	for _, p := range cutover.Phases {
		st := fakeState{}
		var checked []string
		for _, r := range st.checker(Config{}).Check(context.Background(), p) {
			checked = append(checked, r.Name)
		}
		if !slices.Equal(For(p), want[p]) || !slices.Equal(checked, want[p]) {
			t.Errorf("into %s: For %v, Check evaluated %v; want %v", p, For(p), checked, want[p])
		}
	}
}
