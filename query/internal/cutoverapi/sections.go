package cutoverapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/query/internal/route"
	"github.com/flexipack/cutover/shared/control"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/gates"
)

// StateView is the current phase and what it asks of each store.
type StateView struct {
	cutover.State
	LegacyRole string `json:"legacy_role"`
	InfluxRole string `json:"influx_role"`
	// ReadsServedBy is the store the query service answers from in this
	// phase; ReadsShadowedBy the one it compares with ("" when none).
	ReadsServedBy   string          `json:"reads_served_by"`
	ReadsShadowedBy string          `json:"reads_shadowed_by"`
	Phases          []cutover.Phase `json:"phases"` // every phase, in order
}

// named stands for a store in route.For, which only needs its name here.
type named struct {
	reader.Reader
	name string
}

func (n named) Name() string { return n.name }

func (a *API) stateView(ctx context.Context) (StateView, error) {
	st, err := a.state.Current(ctx)
	if err != nil {
		return StateView{}, err
	}
	l, i := st.Phase.Roles()
	v := StateView{State: st, LegacyRole: l.String(), InfluxRole: i.String(), Phases: cutover.Phases}
	primary, shadow := route.For(st.Phase, named{name: reader.StorePostgres}, named{name: reader.StoreInflux})
	v.ReadsServedBy = primary.Name()
	if shadow != nil {
		v.ReadsShadowedBy = shadow.Name()
	}
	return v, nil
}

// Gate statuses.
const (
	GatePass         = "pass"
	GateFail         = "fail"
	GatePending      = "pending"       // being evaluated in the background
	GateAtCommand    = "at-command"    // the operator supplies it with the command
	GateNotEvaluated = "not-evaluated" // the console cannot evaluate it (no data store access)
)

// GateView is one gate into the next phase.
type GateView struct {
	Name   string `json:"name"`
	Status string `json:"status"` // pass, fail, pending, at-command, not-evaluated
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	// EvaluatedAt is when an expensive gate was last evaluated (cached).
	EvaluatedAt *time.Time `json:"evaluated_at,omitempty"`
}

// NextStep is what 'migrate advance' would do next, gate by gate, and the
// commands to run.
type NextStep struct {
	From            cutover.Phase `json:"from"`
	To              cutover.Phase `json:"to,omitempty"` // "" in the last phase
	Gates           []GateView    `json:"gates"`
	GatesPassed     bool          `json:"gates_passed"`
	Command         string        `json:"command,omitempty"`
	CheckCommand    string        `json:"check_command"`
	RollbackTo      cutover.Phase `json:"rollback_to,omitempty"`
	RollbackCommand string        `json:"rollback_command,omitempty"`
	Note            string        `json:"note,omitempty"`
}

func (a *API) nextStep(ctx context.Context) (NextStep, error) {
	checker := &gates.Checker{Ledger: a.state, Verifies: a.state, Consumers: a.state, Backfills: a.state, Config: a.cfg.Gates, Now: a.now}
	if a.recent != nil {
		checker.Recent = a.recent.verify
	}
	if a.shadow != nil {
		checker.Shadows = struct {
			StateStore
			ShadowSource
		}{a.state, a.shadow}
	}
	p, err := control.MakePlan(ctx, a.state, checker)
	if err != nil {
		return NextStep{}, err
	}
	n := NextStep{From: p.Phase.Phase, To: p.Next, Command: p.Command, CheckCommand: "migrate plan", RollbackTo: p.Previous, Gates: []GateView{}, GatesPassed: true}
	if p.Previous != "" {
		n.RollbackCommand = "migrate rollback --to " + string(p.Previous) + " --execute"
	}
	for _, g := range p.Gates {
		v := a.gateView(g)
		if v.Status != GatePass && v.Status != GateAtCommand {
			n.GatesPassed = false
		}
		n.Gates = append(n.Gates, v)
	}
	switch {
	case p.Next == "":
		n.Note = p.Note
	case n.GatesPassed:
		n.Note = "every gate passes now; 'migrate advance' re-checks them all before it changes anything"
	default:
		n.Note = "the gates refuse for now: each failed gate says what to do; 'migrate plan' re-evaluates them all at once"
	}
	return n, nil
}

func (a *API) gateView(g cutover.GateResult) GateView {
	v := GateView{Name: g.Name, OK: g.OK, Detail: g.Detail, Status: GateFail}
	if g.OK {
		v.Status = GatePass
	}
	switch g.Name {
	case gates.Confirm:
		v.Status, v.OK = GateAtCommand, false
		v.Detail = "the operator types the confirmation with the command (--confirm " + string(cutover.InfluxOnly) + ")"
	case gates.VerifyRecent:
		if a.recent == nil {
			v.Status = GateNotEvaluated
			v.Detail = "not evaluated by the console: it compares both stores over the last hour; 'migrate plan' evaluates it"
			break
		}
		if strings.Contains(g.Detail, errPending.Error()) {
			v.Status, v.Detail = GatePending, errPending.Error()
		}
		if at, running := a.recent.evaluatedAt(); !at.IsZero() {
			v.EvaluatedAt = &at
			note := fmt.Sprintf(" (evaluated at %s, reused for %s", at.Format(time.RFC3339), a.cfg.RecentVerifyTTL)
			if running {
				note += "; re-evaluating now"
			}
			v.Detail += note + ")"
		}
	}
	return v
}

// ConsumerView is one consumer's heartbeat, flagged when it lags.
type ConsumerView struct {
	cutover.Heartbeat
	BeatAgeSeconds float64 `json:"beat_age_seconds"`
	// AppliesCurrent: the consumer reports the current phase (version).
	AppliesCurrent bool `json:"applies_current_phase"`
	// Stale: no heartbeat for longer than the gates' live-for; the consumer
	// stopped (or cannot reach the state store) and no longer counts.
	Stale bool `json:"stale"`
	// Laggard: stale, behind the current phase, or lagging more than max-lag.
	Laggard bool     `json:"laggard"`
	Flags   []string `json:"flags"`
}

// ConsumersView lists the consumers seen lately.
type ConsumersView struct {
	LiveFor    string         `json:"live_for"`
	MaxLag     string         `json:"max_lag"`
	Live       int            `json:"live"`
	Stale      int            `json:"stale"`
	Laggards   int            `json:"laggards"`
	Consumers  []ConsumerView `json:"consumers"`
	PhaseNow   cutover.Phase  `json:"phase"`
	VersionNow int64          `json:"phase_version"`
}

func (a *API) consumers(ctx context.Context, st cutover.State) (ConsumersView, error) {
	hbs, err := a.state.Heartbeats(ctx, a.cfg.SeenFor)
	if err != nil {
		return ConsumersView{}, err
	}
	now := a.now().UTC()
	v := ConsumersView{LiveFor: a.cfg.Gates.LiveFor.String(), MaxLag: a.cfg.Gates.MaxLag.String(), Consumers: []ConsumerView{},
		PhaseNow: st.Phase, VersionNow: st.Version}
	for _, h := range hbs {
		c := ConsumerView{Heartbeat: h, BeatAgeSeconds: max(0, now.Sub(h.BeatAt).Seconds()), AppliesCurrent: control.Followed(h, st.Phase, st.Version), Flags: []string{}}
		if now.Sub(h.BeatAt) > a.cfg.Gates.LiveFor {
			c.Stale = true
			c.Flags = append(c.Flags, fmt.Sprintf("no heartbeat for %s (live within %s)", now.Sub(h.BeatAt).Round(time.Second), a.cfg.Gates.LiveFor))
		}
		if !c.AppliesCurrent {
			c.Flags = append(c.Flags, fmt.Sprintf("applies %s (version %d), not %s (version %d)", h.Phase, h.PhaseVersion, st.Phase, st.Version))
		}
		if time.Duration(h.LagSeconds*float64(time.Second)) > a.cfg.Gates.MaxLag {
			c.Flags = append(c.Flags, fmt.Sprintf("lags %.1fs (%d messages), over %s", h.LagSeconds, h.LagMessages, a.cfg.Gates.MaxLag))
		}
		c.Laggard = len(c.Flags) > 0
		if c.Stale {
			v.Stale++
		} else {
			v.Live++
		}
		if c.Laggard {
			v.Laggards++
		}
		v.Consumers = append(v.Consumers, c)
	}
	return v, nil
}

// GapsView is the open gap-ledger entries and the commands that repair them.
type GapsView struct {
	Open    map[string]int64  `json:"open"` // per sink
	Entries []cutover.Gap     `json:"entries"`
	Repair  map[string]string `json:"repair_commands"` // per sink
}

func (a *API) gaps(ctx context.Context, limit int) (GapsView, error) {
	v := GapsView{Open: map[string]int64{}, Repair: map[string]string{
		cutover.SinkInflux: "backfill run --from-ledger --execute",
		cutover.SinkLegacy: "migrate repair-legacy --from-ledger --execute",
	}}
	for _, sink := range []string{cutover.SinkLegacy, cutover.SinkInflux} {
		n, err := a.state.OpenGapCount(ctx, sink)
		if err != nil {
			return v, err
		}
		v.Open[sink] = n
	}
	g, err := a.state.Gaps(ctx, cutover.GapFilter{OnlyOpen: true, Limit: limit})
	if err != nil {
		return v, err
	}
	if g == nil {
		g = []cutover.Gap{}
	}
	v.Entries = g
	return v, nil
}

// BackfillView is one backfill run with its progress.
type BackfillView struct {
	RunID      string     `json:"run_id"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	From       *time.Time `json:"from,omitempty"`
	To         *time.Time `json:"to,omitempty"`
	FromLedger bool       `json:"from_ledger"`
	// State is running, finished, or not-reporting (unfinished, and no
	// progress report for a while: the process stopped; resume it).
	State          string     `json:"state"`
	Fraction       float64    `json:"fraction"` // 0..1 of the planned points (windows when no points are planned)
	PointsDone     int64      `json:"points_written"`
	PointsTotal    int64      `json:"points_total"`
	WindowsDone    int64      `json:"windows_done"`
	WindowsTotal   int64      `json:"windows_total"`
	Rate           float64    `json:"points_per_second"`
	ETASeconds     *float64   `json:"eta_seconds,omitempty"`
	ThrottleState  string     `json:"throttle_state,omitempty"`
	ThrottleReason string     `json:"throttle_reason,omitempty"`
	RateLimit      float64    `json:"rate_limit_points_per_second"`
	ProgressAt     *time.Time `json:"progress_at,omitempty"`
	Command        string     `json:"command,omitempty"` // resume command for a stopped run
}

// runSummary is the part of a finished run's summary the view shows.
type runSummary struct {
	PointsPlanned  int64 `json:"points_planned"`
	WindowsPlanned int64 `json:"windows_planned"`
	Result         struct {
		PointsWritten int64 `json:"points_written"`
		WindowsDone   int64 `json:"windows_done"`
	} `json:"result"`
	PointsPerSecond float64 `json:"points_per_second"`
	Throttle        *struct {
		State  string `json:"state"`
		Reason string `json:"reason"`
	} `json:"throttle"`
}

func (a *API) backfills(ctx context.Context, limit int) ([]BackfillView, error) {
	runs, err := a.state.BackfillRuns(ctx, limit)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC()
	out := make([]BackfillView, 0, len(runs))
	for _, r := range runs {
		out = append(out, a.backfillView(r, now))
	}
	return out, nil
}

func (a *API) backfillView(r cutover.BackfillRunStatus, now time.Time) BackfillView {
	v := BackfillView{RunID: r.RunID, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, ProgressAt: r.ProgressAt,
		PointsDone: r.PointsCheckpointed, WindowsDone: r.WindowsCheckpointed}
	var p struct {
		From       *time.Time `json:"from"`
		To         *time.Time `json:"to"`
		FromLedger bool       `json:"from_ledger"`
	}
	if json.Unmarshal(r.Params, &p) == nil {
		v.From, v.To, v.FromLedger = p.From, p.To, p.FromLedger
	}
	if pr := r.Progress; pr != nil {
		v.PointsDone, v.PointsTotal = max(v.PointsDone, pr.PointsDone), pr.PointsTotal
		v.WindowsDone, v.WindowsTotal = max(v.WindowsDone, pr.WindowsDone), pr.WindowsTotal
		v.Rate, v.ThrottleState, v.ThrottleReason, v.RateLimit = pr.Rate, pr.ThrottleState, pr.ThrottleReason, pr.RateLimit
		if pr.Rate > 0 {
			eta := pr.ETASeconds
			v.ETASeconds = &eta
		}
	}
	switch {
	case r.FinishedAt != nil:
		v.State, v.ETASeconds = "finished", nil
		var s runSummary
		if json.Unmarshal(r.Summary, &s) == nil {
			v.PointsDone, v.PointsTotal = s.Result.PointsWritten, s.PointsPlanned
			v.WindowsDone, v.WindowsTotal = s.Result.WindowsDone, s.WindowsPlanned
			v.Rate = s.PointsPerSecond
			if s.Throttle != nil {
				v.ThrottleState, v.ThrottleReason = s.Throttle.State, s.Throttle.Reason
			}
		}
	case r.ProgressAt == nil && now.Sub(r.StartedAt) > a.cfg.StaleProgress, r.ProgressAt != nil && now.Sub(*r.ProgressAt) > a.cfg.StaleProgress:
		v.State, v.ETASeconds = "not-reporting", nil
		v.Command = "backfill run --execute --resume --run-id " + r.RunID
	default:
		v.State = "running"
	}
	switch {
	case v.PointsTotal > 0:
		v.Fraction = min(1, float64(v.PointsDone)/float64(v.PointsTotal))
	case v.WindowsTotal > 0:
		v.Fraction = min(1, float64(v.WindowsDone)/float64(v.WindowsTotal))
	case v.State == "finished":
		v.Fraction = 1
	}
	return v
}

// VerifyView is the latest recorded verify and how old it is.
type VerifyView struct {
	*cutover.VerifyRun
	AgeSeconds float64 `json:"age_seconds"`
	Window     string  `json:"window_text"`
	Command    string  `json:"command"`
}

func (a *API) lastVerify(ctx context.Context) (VerifyView, error) {
	v, err := a.state.LastVerify(ctx)
	if err != nil {
		return VerifyView{}, err
	}
	out := VerifyView{VerifyRun: v, Command: "migrate verify --from 24h --to now"}
	if v != nil {
		out.AgeSeconds = a.now().Sub(v.At).Seconds()
		out.Window = v.Window.String()
		out.Command = fmt.Sprintf("migrate verify --from %s --to %s", v.From.UTC().Format(time.RFC3339), v.To.UTC().Format(time.RFC3339))
	}
	return out, nil
}
