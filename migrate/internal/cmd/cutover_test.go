package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/control"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/gates"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// TestGatesOnRealStores walks the cutover from legacy to influx-only on real
// PostgreSQL and InfluxDB, making each gate refuse for a real reason (an open
// gap, a failing verify, a lagging consumer, a missing confirmation) and pass
// once the reason is fixed.
func TestGatesOnRealStores(t *testing.T) {
	e := newEnv(t)
	units := []string{"FP2-000001", "FP2-000002"}
	// Backfilled history, and recent readings inside the recent window.
	history := readings(units, vt0, vt0.Add(2*time.Hour), 10*time.Minute)
	now := time.Now().UTC()
	recent := readings(units, now.Add(-50*time.Minute).Truncate(time.Second), now.Add(-2*time.Minute), time.Minute)
	e.write(true, true, history)
	e.write(true, true, recent)
	noWait := []string{"--consumer-timeout", "0"}

	// legacy → dual-write: no gates.
	r := e.mustRun(0, "advance", "--execute", "--reason", "TICKET-1")
	if st := e.phase(); st.Phase != cutover.DualWrite || st.Version != 2 {
		t.Fatalf("phase = %+v, want dual-write v2", st)
	}
	if !strings.Contains(r.stdout, "advanced legacy → dual-write (version 2)") {
		t.Fatalf("advance output:\n%s", r.stdout)
	}

	// Into shadow-read: no finished backfill run and no verify, and an open gap.
	err := e.state.RecordGaps(e.ctx, []cutover.Gap{{Sink: cutover.SinkInflux, Unit: "FP2-000007", From: vt0, To: vt0.Add(time.Minute), Readings: 2, Reason: "influx down", ConsumerID: "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(2, "advance", "--execute")
	for _, want := range []string{
		"gate no-open-gaps: 1 open gap-ledger entries (oldest FP2-000007 2025-11-20T00:00Z, 2 readings, sink influx); run: backfill run --from-ledger --execute",
		"gate verify-backfilled-range: the backfilled range is not known: no finished backfill run is recorded",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("refusal does not say %q:\n%s", want, r.stderr)
		}
	}
	if e.phase().Phase != cutover.DualWrite {
		t.Fatal("a refused advance changed the phase")
	}
	// The backfill finishes; the gap is repaired; InfluxDB still lacks a reading.
	if err := e.state.StartBackfillRun(e.ctx, "bf-1", map[string]any{"from": vt0, "to": vt0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := e.state.FinishBackfillRun(e.ctx, "bf-1", map[string]any{"points": len(history)}); err != nil {
		t.Fatal(err)
	}
	gaps, _ := e.state.Gaps(e.ctx, cutover.GapFilter{OnlyOpen: true})
	if err := e.state.MarkRepaired(e.ctx, []int64{gaps[0].ID}, "bf-1"); err != nil {
		t.Fatal(err)
	}
	extra := reading("FP2-000001", "North Yard, Bay 3", vt0.Add(15*time.Minute), 99)
	e.write(true, false, []telemetry.Record{extra})
	vargs := []string{"--from", vt0.Format(time.RFC3339), "--to", vt0.Add(2 * time.Hour).Format(time.RFC3339), "--shadow=false"}
	e.mustRun(2, "verify", vargs...)
	r = e.mustRun(2, "plan")
	if !strings.Contains(r.stdout, "[FAIL] verify-backfilled-range") || !strings.Contains(r.stdout, "found 1 mismatching windows of 4") {
		t.Fatalf("plan does not show the failing verify:\n%s", r.stdout)
	}
	// Fixed: verify is clean, the gates pass.
	e.write(false, true, []telemetry.Record{extra})
	e.mustRun(0, "verify", vargs...)
	r = e.mustRun(0, "plan", "-o", "json")
	if p := decodeJSON[control.Plan](t, r.stdout); !p.GatesPassed || p.Next != cutover.ShadowRead || p.Command != "migrate advance --to shadow-read --execute" {
		t.Fatalf("plan = %+v", p)
	}
	e.mustRun(0, "advance", "--to", "shadow-read", "--execute")

	// Into influx-primary: no live consumer, then one that lags, then a
	// recent reading only in the legacy store.
	r = e.mustRun(2, "advance", "--execute")
	if !strings.Contains(r.stderr, "gate consumer-lag: no consumer sent a heartbeat in the last 15s") {
		t.Fatalf("refusal:\n%s", r.stderr)
	}
	e.beat("c1", cutover.ShadowRead, 3, 0.5)
	e.beat("c2", cutover.ShadowRead, 3, 95)
	lagging := recent[5]
	lagging.TimeMs += 500
	e.write(true, false, []telemetry.Record{lagging})
	r = e.mustRun(2, "advance", "--execute")
	for _, want := range []string{
		"gate consumer-lag: 1 of 2 live consumers lag more than 30s: c2 lags 95.0s",
		"gate verify-recent: over [",
		"in 5m0s windows: 1 of ",
		"at most 0 allowed",
		"e.g. FP2-000001 ", " count-differs (legacy ",
		"gate shadow-reads: 0 shadow comparisons in shadow-read (version 3), 0 mismatch (rate 0, at most 0 allowed), 0 shadow errors; at least 1000 required",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("refusal does not say %q:\n%s", want, r.stderr)
		}
	}
	// A threshold of 0.2 tolerates that one window (of about 20).
	e.beat("c1", cutover.ShadowRead, 3, 0.5)
	e.beat("c2", cutover.ShadowRead, 3, 1)
	r = e.mustRun(2, "plan", "--max-mismatch-rate", "0.2")
	if !strings.Contains(r.stdout, "[PASS] verify-recent") {
		t.Fatalf("plan:\n%s", r.stdout)
	}
	e.write(false, true, []telemetry.Record{lagging})
	e.beat("c1", cutover.ShadowRead, 3, 0.5)
	e.beat("c2", cutover.ShadowRead, 3, 1)
	// The query service's shadow reads: one mismatch in 1000 refuses at
	// rate 0, passes at 0.001; comparisons of another phase version do not count.
	err = e.state.RecordShadow(e.ctx, []cutover.ShadowCount{
		{Phase: cutover.ShadowRead, PhaseVersion: 3, Endpoint: "latest", Comparisons: 600, Mismatches: 1},
		{Phase: cutover.ShadowRead, PhaseVersion: 3, Endpoint: "fleet", Comparisons: 400},
		{Phase: cutover.DualWrite, PhaseVersion: 2, Endpoint: "fleet", Comparisons: 5000},
	}, []cutover.ShadowMismatch{{Phase: cutover.ShadowRead, PhaseVersion: 3, Endpoint: "latest", Params: "/v1/units/FP2-000001/latest",
		PrimaryStore: "postgres", ShadowStore: "influxdb", Path: "soc_pct", PrimaryValue: `{"soc_pct":50}`, ShadowValue: `{"soc_pct":51}`}})
	if err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(2, "advance", "--execute")
	if !strings.Contains(r.stderr, "gate shadow-reads: 1000 shadow comparisons in shadow-read (version 3), 1 mismatch (rate 0.001, at most 0 allowed)") {
		t.Fatalf("refusal:\n%s", r.stderr)
	}
	r = e.mustRun(0, "status")
	for _, want := range []string{"shadow reads (query serve): 1000 comparisons in this phase, 1 mismatch (rate 0.001), 0 errors; 6000 comparisons in all phases",
		"/v1/units/FP2-000001/latest differs at soc_pct"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("status does not say %q:\n%s", want, r.stdout)
		}
	}
	e.mustRun(0, "advance", append(noWait, "--execute", "--to", "influx-primary", "--max-mismatch-rate", "0.001")...)

	// Into influx-only: the confirmation.
	e.beat("c1", cutover.InfluxPrimary, 4, 0.5)
	e.beat("c2", cutover.InfluxPrimary, 4, 0.5)
	r = e.mustRun(2, "advance", "--execute")
	if !strings.Contains(r.stderr, "gate confirm: influx-only stops writing the legacy store; type --confirm influx-only to confirm") {
		t.Fatalf("refusal:\n%s", r.stderr)
	}
	e.beat("c1", cutover.InfluxPrimary, 4, 0.5)
	e.beat("c2", cutover.InfluxPrimary, 4, 0.5)
	e.mustRun(0, "advance", append(noWait, "--execute", "--confirm", "influx-only")...)
	if st := e.phase(); st.Phase != cutover.InfluxOnly || st.Version != 5 {
		t.Fatalf("phase = %+v, want influx-only v5", st)
	}
	e.mustRun(1, "advance", "--execute") // nothing to advance

	// The audit log holds every change with its gates.
	r = e.mustRun(0, "history", "-o", "json")
	hist := decodeJSON[[]cutover.AuditEntry](t, r.stdout)
	if len(hist) != 4 {
		t.Fatalf("history has %d entries, want 4", len(hist))
	}
	if hist[3].Reason != "TICKET-1" || hist[3].Actor == "" || hist[3].From != cutover.Legacy {
		t.Fatalf("oldest entry = %+v", hist[3])
	}
	if g := hist[0].Gates; len(g) != 4 || g[3].Name != gates.Confirm || !g[3].OK || hist[0].Forced {
		t.Fatalf("newest entry gates = %+v", hist[0])
	}
	r = e.mustRun(0, "status")
	for _, want := range []string{"phase:      influx-only (version 5)", "legacy off, InfluxDB required", "consumers (2 live)", "c1", "not yet on the current phase",
		"last verify: #", "next step: none"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("status does not show %q:\n%s", want, r.stdout)
		}
	}
	st := decodeJSON[control.Status](t, e.mustRun(0, "status", "-o", "json").stdout)
	if st.State.Phase != cutover.InfluxOnly || len(st.Consumers) != 2 || st.LastVerify == nil || !st.LastVerify.OK || st.OpenGaps["influx"] != 0 {
		t.Fatalf("status json = %+v", st)
	}
}

// TestForceIsRecorded checks that --force skips a failing gate and that the
// audit log says so.
func TestForceIsRecorded(t *testing.T) {
	e := newEnv(t)
	e.mustRun(0, "advance", "--execute")
	r := e.mustRun(0, "advance", "--execute", "--force", "--reason", "drill")
	if !strings.Contains(r.stdout, "FORCED") {
		t.Fatalf("output does not say forced:\n%s", r.stdout)
	}
	h, err := e.state.History(e.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !h[0].Forced || h[0].To != cutover.ShadowRead || gates.Passed(h[0].Gates) || len(h[0].Gates) != 2 {
		t.Fatalf("audit entry = %+v; want forced into shadow-read with the failed gates", h[0])
	}
	r = e.mustRun(0, "history")
	if !strings.Contains(r.stdout, "advance dual-write → shadow-read (version 3) FORCED") || !strings.Contains(r.stdout, "[FAIL] verify-backfilled-range") {
		t.Fatalf("history:\n%s", r.stdout)
	}
}

// TestDryRunChangesNothing checks that advance and rollback without
// --execute leave the phase alone.
func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t)
	r := e.mustRun(0, "advance")
	if !strings.Contains(r.stdout, "dry run: would advance legacy → dual-write (version 1); re-run with --execute") {
		t.Fatalf("dry run output:\n%s", r.stdout)
	}
	e.mustRun(0, "advance", "--execute")
	e.mustRun(0, "rollback")
	if st := e.phase(); st.Phase != cutover.DualWrite || st.Version != 2 {
		t.Fatalf("dry runs changed the phase: %+v", st)
	}
	e.mustRun(1, "advance", "--to", "influx-only") // more than one step
	e.mustRun(1, "advance", "--to", "sideways")    // no such phase
}

// TestConcurrentAdvances runs two advances at once from the CLI: one wins,
// the other exits 2 saying another change won.
func TestConcurrentAdvances(t *testing.T) {
	e := newEnv(t)
	for round := range 3 {
		rs := e.parallelRuns(2, "advance", "--to", "dual-write", "--execute", "--consumer-timeout", "0")
		var wins, refused int
		for _, r := range rs {
			switch r.code {
			case 0:
				wins++
			case 2:
				refused++
				if !strings.Contains(r.stderr, "another change won") && !strings.Contains(r.stderr, "already in dual-write (version 2, by") {
					t.Fatalf("round %d: the loser's message is not clear:\n%s", round, r.stderr)
				}
			default:
				t.Fatalf("round %d: exit %d:\n%s", round, r.code, r.stderr)
			}
		}
		if wins != 1 || refused != 1 {
			t.Fatalf("round %d: %d won, %d refused; want 1 and 1", round, wins, refused)
		}
		h, _ := e.state.History(e.ctx, 0)
		if len(h) != 2*round+1 {
			t.Fatalf("round %d: %d audit entries, want %d", round, len(h), 2*round+1)
		}
		e.mustRun(0, "rollback", "--execute", "--consumer-timeout", "0")
	}
}

// barrierPhases lets two advances both read the phase before either
// changes it, so the store's version check must decide.
type barrierPhases struct {
	*cutover.Store
	wg *sync.WaitGroup
}

func (b barrierPhases) Current(ctx context.Context) (cutover.State, error) {
	st, err := b.Store.Current(ctx)
	b.wg.Done()
	b.wg.Wait()
	return st, err
}

func TestConcurrentAdvancesSameRead(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	wg.Add(2)
	checker := &gates.Checker{Ledger: e.state, Verifies: e.state, Consumers: e.state, Backfills: e.state}
	errs := make([]error, 2)
	var done sync.WaitGroup
	for i := range 2 {
		done.Add(1)
		go func() {
			defer done.Done()
			// Only the first Current call waits at the barrier; the
			// conflict message reads the state again without it.
			ph := &onceBarrier{barrierPhases: barrierPhases{e.state, &wg}}
			_, errs[i] = control.Advance(e.ctx, ph, nil, checker, control.Options{Actor: []string{"ann", "bob"}[i], Execute: true})
		}()
	}
	done.Wait()
	var conflict error
	for _, err := range errs {
		if err != nil {
			conflict = err
		}
	}
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(conflict, control.ErrConflict) {
		t.Fatalf("errors = %v; want exactly one ErrConflict", errs)
	}
	if !strings.Contains(conflict.Error(), "another change won: the cutover is now in dual-write (version 2, by ") {
		t.Fatalf("conflict message: %v", conflict)
	}
}

type onceBarrier struct {
	barrierPhases
	passed bool
}

func (o *onceBarrier) Current(ctx context.Context) (cutover.State, error) {
	if o.passed {
		return o.Store.Current(ctx)
	}
	o.passed = true
	return o.barrierPhases.Current(ctx)
}

// TestRollbackFromEveryPhase rolls back one step from each phase after the
// first, checking the audit log, and from influx-only the recorded legacy
// window and the printed repair command.
func TestRollbackFromEveryPhase(t *testing.T) {
	for _, from := range cutover.Phases[1:] {
		t.Run(string(from), func(t *testing.T) {
			e := newEnv(t)
			for e.phase().Phase != from {
				e.mustRun(0, "advance", "--execute", "--force", "--consumer-timeout", "0", "--confirm", "influx-only")
			}
			st := e.phase()
			prev, _ := from.Prev()
			r := e.mustRun(0, "rollback", "--to", string(prev), "--execute", "--reason", "drill", "--consumer-timeout", "0", "-o", "json")
			out := decodeJSON[control.Outcome](t, r.stdout)
			if got := e.phase(); got.Phase != prev || got.Version != st.Version+1 || out.Version != got.Version {
				t.Fatalf("after rollback: %+v (outcome %+v), want %s v%d", got, out, prev, st.Version+1)
			}
			h, err := e.state.History(e.ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if h[0].Kind != "rollback" || h[0].From != from || h[0].To != prev || h[0].Reason != "drill" || h[0].Forced {
				t.Fatalf("audit entry = %+v", h[0])
			}
			if from != cutover.InfluxOnly {
				if out.LegacyGap != nil || len(h[0].Detail) != 0 {
					t.Fatalf("rollback from %s recorded a legacy gap: %+v / %s", from, out.LegacyGap, h[0].Detail)
				}
				return
			}
			var detail struct {
				From   time.Time `json:"legacy_gap_from"`
				To     time.Time `json:"legacy_gap_to"`
				Repair string    `json:"repair_command"`
			}
			if err := json.Unmarshal(h[0].Detail, &detail); err != nil {
				t.Fatal(err)
			}
			if !detail.From.Equal(st.Since) || detail.To.After(h[0].At) || h[0].At.Sub(detail.To) > 5*time.Second {
				t.Fatalf("legacy gap [%s, %s), want [%s (influx-only since), %s (rollback))", detail.From, detail.To, st.Since, h[0].At)
			}
			wantFrom := st.Since.Add(-time.Hour).Truncate(time.Minute).Format(time.RFC3339)
			if !strings.HasPrefix(detail.Repair, "migrate repair-legacy --from "+wantFrom+" --to ") || !strings.HasSuffix(detail.Repair, " --execute") ||
				out.RepairCommand != detail.Repair {
				t.Fatalf("repair command %q (printed %q)", detail.Repair, out.RepairCommand)
			}
			r = e.mustRun(0, "rollback", "--consumer-timeout", "0") // dry run from influx-primary
			if strings.Contains(r.stdout, "repair-legacy --from") {
				t.Fatalf("a rollback from influx-primary printed a repair window:\n%s", r.stdout)
			}
		})
	}
	t.Run("legacy", func(t *testing.T) {
		e := newEnv(t)
		r := e.mustRun(1, "rollback", "--execute")
		if !strings.Contains(r.stderr, "legacy is the first phase; nothing to roll back") {
			t.Fatalf("stderr: %s", r.stderr)
		}
	})
}

// beatEvery writes heartbeats every 50 ms until stop closes: consumer-a
// (host h1) applies the current phase; with laggard, consumer-b (host h2)
// keeps applying legacy version 1.
func (e *env) beatEvery(wg *sync.WaitGroup, stop <-chan struct{}, laggard bool) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			st, err := e.state.Current(e.ctx)
			if err != nil {
				return
			}
			_ = e.state.Beat(e.ctx, cutover.Heartbeat{ConsumerID: "consumer-a", Host: "h1", Phase: st.Phase, PhaseVersion: st.Version, StartedAt: time.Now()})
			if laggard {
				_ = e.state.Beat(e.ctx, cutover.Heartbeat{ConsumerID: "consumer-b", Host: "h2", Phase: cutover.Legacy, PhaseVersion: 1, StartedAt: time.Now()})
			}
		}
	}()
}

// TestAdvanceWaitsForConsumers writes fake heartbeats: one consumer follows
// the new phase, one keeps the old one; advance times out naming the
// laggard, and succeeds when both follow.
func TestAdvanceWaitsForConsumers(t *testing.T) {
	e := newEnv(t)
	e.beat("consumer-a", cutover.Legacy, 1, 0)
	e.beat("consumer-b", cutover.Legacy, 1, 0)
	// consumer-a follows as soon as the phase changes; consumer-b never does.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	e.beatEvery(&wg, stop, true)
	t.Cleanup(func() { close(stop); wg.Wait() })
	started := time.Now()
	r := e.mustRun(2, "advance", "--execute", "--consumer-timeout", "2s")
	if time.Since(started) < 2*time.Second {
		t.Fatalf("advance returned after %s, before the 2s time-out", time.Since(started))
	}
	if !strings.Contains(r.stderr, "the phase is now dual-write (version 2), but 1 of 2 live consumers did not apply it within 2s: consumer-b (host h2, still applies legacy version 1") {
		t.Fatalf("time-out message:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "consumer-a (") {
		t.Fatalf("the message names consumer-a, which followed:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "consumer consumer-b (h2): legacy v1 — DID NOT FOLLOW") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	if e.phase().Phase != cutover.DualWrite {
		t.Fatal("the change was undone on time-out; it must stay")
	}

	// A consumer that stops beating stops counting: wait until consumer-b's
	// heartbeat is older than --live-for, then both "live" ones follow.
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	if err := e.state.Forget(e.ctx, "consumer-b"); err != nil {
		t.Fatal(err)
	}
	e.beatEvery(&wg, stop, false)
	r = e.mustRun(0, "advance", "--execute", "--force", "--consumer-timeout", "10s", "-o", "json")
	out := decodeJSON[control.Outcome](t, r.stdout)
	if out.Follow == nil || len(out.Follow.Consumers) != 1 || !out.Follow.Consumers[0].Followed || out.Follow.Version != 3 {
		t.Fatalf("follow = %+v", out.Follow)
	}
}

// TestWaitForConsumersNoneLive returns at once without consumers.
func TestWaitForConsumersNoneLive(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 10*time.Second)
	f, err := control.WaitForConsumers(ctx, e.state, cutover.DualWrite, 2, control.Options{ConsumerTimeout: 5 * time.Second})
	if err != nil || len(f.Consumers) != 0 {
		t.Fatalf("wait = %+v, %v", f, err)
	}
}

// TestStatusWatch runs 'status --watch' as a process, sees it refresh, and
// stops it with SIGINT (exit 0).
func TestStatusWatch(t *testing.T) {
	e := newEnv(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(e.ctx, self, append([]string{"status", "--watch", "--interval", "100ms"}, e.conn()...)...)
	cmd.Env = append(os.Environ(), "MIGRATE_TEST_AS_CLI=1")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "status refreshes", func() error {
		if n := strings.Count(out.String(), "cutover status at"); n < 3 {
			return fmt.Errorf("%d refreshes so far", n)
		}
		return nil
	})
	e.mustRun(0, "advance", "--execute")
	testenv.Eventually(t, 30*time.Second, "status shows the new phase", func() error {
		if !strings.Contains(out.String(), "phase:      dual-write (version 2)") {
			return errors.New("not yet")
		}
		return nil
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("status --watch after Ctrl-C: %v\n%s", err, out.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
