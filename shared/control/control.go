// Package control changes the cutover phase: advance (through the safety
// gates), rollback (one step back, always allowed), and waiting until every
// live consumer applies the new phase. The migrate commands are thin layers
// over it, and tests drive it directly.
package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/gates"
	"github.com/flexipack/cutover/shared/window"
)

// Errors that mean "refused" (exit status 2) rather than "broken".
var (
	// ErrGateRefused means a gate failed and --force was not given.
	ErrGateRefused = errors.New("a safety gate refused the change")
	// ErrConflict means another change won (two engineers at once).
	ErrConflict = cutover.ErrConflict
	// ErrNotFollowed means the phase changed but some live consumers did
	// not report it in time.
	ErrNotFollowed = errors.New("consumers did not follow the new phase in time")
	// ErrNoStep means there is no phase in the asked direction.
	ErrNoStep = errors.New("no phase to move to")
)

// Phases reads and changes the cutover phase.
type Phases interface {
	Current(ctx context.Context) (cutover.State, error)
	Transition(ctx context.Context, c cutover.Change) (cutover.State, error)
}

// Options control one advance or rollback.
type Options struct {
	To      cutover.Phase // "" = one step from the current phase
	Actor   string
	Reason  string
	Force   bool // advance only: skip failed gates (recorded as forced)
	Execute bool // false: a dry run that changes nothing
	// ConsumerTimeout bounds the wait for consumers (default 60s; negative:
	// do not wait).
	ConsumerTimeout time.Duration
	// LiveFor is how fresh a heartbeat must be to count (default 15s).
	LiveFor time.Duration
	// Poll is how often heartbeats are read while waiting (default 500ms).
	Poll time.Duration
	// RepairMargin widens the repair window printed when leaving
	// influx-only, to cover readings that arrive late (default 1h before).
	RepairMargin time.Duration
	// Now is the clock (default time.Now). WaitForConsumers measures
	// ConsumerTimeout with it, so an injected clock must advance.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.ConsumerTimeout == 0 {
		o.ConsumerTimeout = 60 * time.Second
	}
	if o.LiveFor <= 0 {
		o.LiveFor = 15 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.RepairMargin <= 0 {
		o.RepairMargin = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Actor == "" {
		o.Actor = "unknown"
	}
	return o
}

// Outcome is what an advance or rollback did, or would do.
type Outcome struct {
	Kind        string               `json:"kind"` // advance or rollback
	From        cutover.Phase        `json:"from"`
	To          cutover.Phase        `json:"to"`
	FromVersion int64                `json:"from_version"`
	Version     int64                `json:"version,omitempty"` // after the change
	Executed    bool                 `json:"executed"`
	Forced      bool                 `json:"forced"`
	Gates       []cutover.GateResult `json:"gates"`
	GatesPassed bool                 `json:"gates_passed"`
	Follow      *Follow              `json:"consumers,omitempty"`
	// LegacyGap is, when leaving influx-only, the time during which the
	// legacy store received nothing, and RepairCommand the command that
	// copies it back from InfluxDB.
	LegacyGap     *window.Span `json:"legacy_gap,omitempty"`
	RepairCommand string       `json:"repair_command,omitempty"`
	// OpenLegacyGaps counts open legacy gap-ledger entries (recorded while
	// the legacy store was repairable), reported when rolling back.
	OpenLegacyGaps int64  `json:"open_legacy_gaps,omitempty"`
	Message        string `json:"message"`
}

// Advance moves the cutover one phase forward: it checks the gates into
// the next phase and, with Execute, changes the phase (only if nobody else
// changed it since it was read) and waits for the consumers to follow.
func Advance(ctx context.Context, ph Phases, hb gates.Consumers, checker *gates.Checker, opts Options) (Outcome, error) {
	opts = opts.withDefaults()
	st, err := ph.Current(ctx)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Kind: "advance", From: st.Phase, FromVersion: st.Version}
	next, ok := st.Phase.Next()
	if !ok {
		if opts.To == st.Phase {
			return out, fmt.Errorf("%w: the cutover is already in %s (version %d, by %s at %s)", ErrConflict, st.Phase, st.Version, st.Actor, st.Since.UTC().Format(time.RFC3339))
		}
		return out, fmt.Errorf("%w: %s is the last phase; nothing to advance", ErrNoStep, st.Phase)
	}
	if opts.To != "" && opts.To != next {
		if opts.To.Index() >= 0 && opts.To.Index() <= st.Phase.Index() {
			return out, fmt.Errorf("%w: the cutover is already in %s (version %d, by %s at %s), at or past --to %s",
				ErrConflict, st.Phase, st.Version, st.Actor, st.Since.UTC().Format(time.RFC3339), opts.To)
		}
		return out, fmt.Errorf("advance moves one phase at a time: from %s the next phase is %s, not %s", st.Phase, next, opts.To)
	}
	out.To = next
	out.Gates = checker.Check(ctx, next)
	if out.Gates == nil {
		out.Gates = []cutover.GateResult{}
	}
	out.GatesPassed = gates.Passed(out.Gates)
	if !out.GatesPassed && !opts.Force {
		out.Message = fmt.Sprintf("refused: %s → %s\n%s", st.Phase, next, gates.Failures(out.Gates))
		return out, fmt.Errorf("%w: %s → %s:\n%s\n(--force skips the gates and is recorded as forced)", ErrGateRefused, st.Phase, next, gates.Failures(out.Gates))
	}
	out.Forced = opts.Force && !out.GatesPassed
	if !opts.Execute {
		out.Message = fmt.Sprintf("dry run: would advance %s → %s (version %d)%s; re-run with --execute to apply", st.Phase, next, st.Version, forcedNote(out.Forced))
		return out, nil
	}
	change := cutover.Change{Kind: "advance", From: st.Phase, To: next, ExpectVersion: st.Version, Actor: opts.Actor,
		Reason: opts.Reason, Forced: out.Forced, Gates: out.Gates}
	return apply(ctx, ph, hb, change, out, opts)
}

func forcedNote(forced bool) string {
	if forced {
		return ", FORCED past failed gates"
	}
	return ""
}

// Rollback moves the cutover one phase back, which is always allowed. When
// it leaves influx-only it records the window in which the legacy store
// received nothing and returns the command that repairs it.
func Rollback(ctx context.Context, ph Phases, hb gates.Consumers, ledger gates.Ledger, opts Options) (Outcome, error) {
	opts = opts.withDefaults()
	st, err := ph.Current(ctx)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Kind: "rollback", From: st.Phase, FromVersion: st.Version, Gates: []cutover.GateResult{}, GatesPassed: true}
	prev, ok := st.Phase.Prev()
	if !ok {
		if opts.To == st.Phase {
			return out, fmt.Errorf("%w: the cutover is already in %s (version %d, by %s at %s)", ErrConflict, st.Phase, st.Version, st.Actor, st.Since.UTC().Format(time.RFC3339))
		}
		return out, fmt.Errorf("%w: %s is the first phase; nothing to roll back", ErrNoStep, st.Phase)
	}
	if opts.To != "" && opts.To != prev {
		if opts.To.Index() >= st.Phase.Index() {
			return out, fmt.Errorf("%w: the cutover is in %s (version %d, by %s at %s), at or before --to %s",
				ErrConflict, st.Phase, st.Version, st.Actor, st.Since.UTC().Format(time.RFC3339), opts.To)
		}
		return out, fmt.Errorf("rollback moves one phase at a time: from %s the previous phase is %s, not %s", st.Phase, prev, opts.To)
	}
	out.To = prev
	now := opts.Now().UTC()
	detail := map[string]any{}
	if st.Phase == cutover.InfluxOnly {
		// Consumers stop writing the legacy store when they apply
		// influx-only and start again when they apply the rollback; reading
		// times lag consumption, and buffered samples arrive late, hence the
		// margins of the repair command.
		out.LegacyGap = &window.Span{From: st.Since.UTC(), To: now}
		rfrom := st.Since.UTC().Add(-opts.RepairMargin).Truncate(time.Minute)
		rto := now.Add(max(opts.ConsumerTimeout, 0) + time.Minute).Truncate(time.Minute).Add(time.Minute)
		out.RepairCommand = fmt.Sprintf("migrate repair-legacy --from %s --to %s --execute", rfrom.Format(time.RFC3339), rto.Format(time.RFC3339))
		detail["legacy_gap_from"] = out.LegacyGap.From
		detail["legacy_gap_to"] = out.LegacyGap.To
		detail["repair_command"] = out.RepairCommand
	}
	if ledger != nil && (st.Phase == cutover.InfluxPrimary || st.Phase == cutover.InfluxOnly) {
		n, err := ledger.OpenGapCount(ctx, cutover.SinkLegacy)
		if err != nil {
			return out, err
		}
		out.OpenLegacyGaps = n
		if n > 0 {
			detail["open_legacy_gaps"] = n
		}
	}
	if !opts.Execute {
		out.Message = fmt.Sprintf("dry run: would roll back %s → %s (version %d); re-run with --execute to apply", st.Phase, prev, st.Version)
		if out.LegacyGap != nil {
			out.Message += fmt.Sprintf("\nthe legacy store has received nothing since %s; after the rollback, repair it with:\n  %s",
				out.LegacyGap.From.Format(time.RFC3339), out.RepairCommand)
		}
		return out, nil
	}
	if len(detail) == 0 {
		detail = nil
	}
	change := cutover.Change{Kind: "rollback", From: st.Phase, To: prev, ExpectVersion: st.Version, Actor: opts.Actor,
		Reason: opts.Reason, Detail: detail}
	return apply(ctx, ph, hb, change, out, opts)
}

// apply makes the change and waits for the consumers.
func apply(ctx context.Context, ph Phases, hb gates.Consumers, change cutover.Change, out Outcome, opts Options) (Outcome, error) {
	st, err := ph.Transition(ctx, change)
	if errors.Is(err, cutover.ErrConflict) {
		msg := "another change won"
		if now, rerr := ph.Current(ctx); rerr == nil {
			msg = fmt.Sprintf("another change won: the cutover is now in %s (version %d, by %s at %s)", now.Phase, now.Version, now.Actor, now.Since.UTC().Format(time.RFC3339))
		}
		out.Message = msg + "; nothing was changed; run 'migrate status' and decide again"
		return out, fmt.Errorf("%w: %s → %s: %s", err, change.From, change.To, out.Message)
	}
	if err != nil {
		return out, err
	}
	out.Executed, out.Version = true, st.Version
	verb := map[string]string{"advance": "advanced", "rollback": "rolled back"}[change.Kind]
	out.Message = fmt.Sprintf("%s %s → %s (version %d)%s", verb, change.From, change.To, st.Version, forcedNote(change.Forced))
	if out.RepairCommand != "" {
		out.Message += fmt.Sprintf("\nthe legacy store received nothing from %s to %s; once the consumers follow, repair it with:\n  %s",
			out.LegacyGap.From.Format(time.RFC3339), out.LegacyGap.To.Format(time.RFC3339), out.RepairCommand)
	}
	if out.OpenLegacyGaps > 0 {
		out.Message += fmt.Sprintf("\n%d open legacy gap-ledger entries (writes the legacy store missed in influx-primary); repair them with:\n  migrate repair-legacy --from-ledger --execute", out.OpenLegacyGaps)
	}
	if opts.ConsumerTimeout < 0 || hb == nil {
		return out, nil
	}
	f, err := WaitForConsumers(ctx, hb, change.To, st.Version, opts)
	out.Follow = &f
	if err != nil {
		out.Message += "\n" + err.Error()
		return out, err
	}
	out.Message += fmt.Sprintf("\n%d live consumers applied %s in %s", len(f.Consumers), change.To, f.Waited)
	return out, nil
}

// Follow reports which live consumers applied a phase.
type Follow struct {
	Phase     cutover.Phase    `json:"phase"`
	Version   int64            `json:"version"`
	Consumers []ConsumerFollow `json:"consumers"`
	Laggards  []string         `json:"laggards,omitempty"`
	Waited    string           `json:"waited"`
}

// ConsumerFollow is one consumer's state while waiting.
type ConsumerFollow struct {
	ID       string        `json:"consumer_id"`
	Host     string        `json:"host"`
	Phase    cutover.Phase `json:"phase"`
	Version  int64         `json:"phase_version"`
	BeatAt   time.Time     `json:"beat_at"`
	Followed bool          `json:"followed"`
}

// Followed reports whether heartbeat h shows the phase of version applied
// (or a later change). A consumer that reports no version counts by phase.
func Followed(h cutover.Heartbeat, phase cutover.Phase, version int64) bool {
	if h.PhaseVersion > 0 {
		return h.PhaseVersion >= version
	}
	return h.Phase == phase
}

// WaitForConsumers polls the heartbeats until every live consumer reports
// phase (version) or opts.ConsumerTimeout passes; then it returns
// ErrNotFollowed naming the laggards. Consumers that stop beating stop
// counting; with no live consumer it returns at once.
func WaitForConsumers(ctx context.Context, hb gates.Consumers, phase cutover.Phase, version int64, opts Options) (Follow, error) {
	opts = opts.withDefaults()
	start := opts.Now()
	deadline := start.Add(opts.ConsumerTimeout)
	f := Follow{Phase: phase, Version: version}
	for {
		hbs, err := hb.Heartbeats(ctx, opts.LiveFor)
		if err != nil {
			return f, err
		}
		f.Consumers, f.Laggards = f.Consumers[:0], nil
		var lag []string
		for _, h := range hbs {
			ok := Followed(h, phase, version)
			f.Consumers = append(f.Consumers, ConsumerFollow{ID: h.ConsumerID, Host: h.Host, Phase: h.Phase, Version: h.PhaseVersion, BeatAt: h.BeatAt, Followed: ok})
			if !ok {
				f.Laggards = append(f.Laggards, h.ConsumerID)
				lag = append(lag, fmt.Sprintf("%s (host %s, still applies %s version %d, last beat %s)",
					h.ConsumerID, h.Host, h.Phase, h.PhaseVersion, h.BeatAt.UTC().Format(time.RFC3339)))
			}
		}
		now := opts.Now()
		f.Waited = now.Sub(start).Round(time.Millisecond).String()
		if len(lag) == 0 {
			return f, nil
		}
		if !now.Before(deadline) {
			return f, fmt.Errorf("%w: the phase is now %s (version %d), but %d of %d live consumers did not apply it within %s: %s; "+
				"the change is recorded — check those consumers' logs, and 'migrate status' shows when they follow",
				ErrNotFollowed, phase, version, len(lag), len(hbs), opts.ConsumerTimeout, strings.Join(lag, ", "))
		}
		select {
		case <-ctx.Done():
			return f, fmt.Errorf("waiting for consumers to apply %s: %w", phase, ctx.Err())
		case <-time.After(min(opts.Poll, deadline.Sub(now)+time.Millisecond)):
		}
	}
}
