package control

import (
	"context"
	"fmt"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/gates"
)

// StateReader is what status reads of the state store.
type StateReader interface {
	Current(ctx context.Context) (cutover.State, error)
	gates.Consumers
	gates.Ledger
	gates.Verifications
}

// Plan is what advance would do next and each gate's result now.
type Plan struct {
	Phase       cutover.State        `json:"state"`
	Next        cutover.Phase        `json:"next,omitempty"`
	Previous    cutover.Phase        `json:"previous,omitempty"`
	Gates       []cutover.GateResult `json:"gates"`
	GatesPassed bool                 `json:"gates_passed"`
	Command     string               `json:"command,omitempty"`
	Note        string               `json:"note,omitempty"`
}

// MakePlan reads the phase and evaluates the gates into the next one.
func MakePlan(ctx context.Context, ph interface {
	Current(ctx context.Context) (cutover.State, error)
}, checker *gates.Checker) (Plan, error) {
	st, err := ph.Current(ctx)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Phase: st, Gates: []cutover.GateResult{}}
	p.Previous, _ = st.Phase.Prev()
	next, ok := st.Phase.Next()
	if !ok {
		p.GatesPassed = true
		p.Note = fmt.Sprintf("%s is the last phase: the cutover is complete; 'migrate rollback --execute' steps back to %s", st.Phase, p.Previous)
		return p, nil
	}
	p.Next = next
	p.Gates = checker.Check(ctx, next)
	if p.Gates == nil {
		p.Gates = []cutover.GateResult{}
	}
	p.GatesPassed = gates.Passed(p.Gates)
	p.Command = "migrate advance --to " + string(next) + " --execute"
	if next == cutover.InfluxOnly {
		p.Command += " --confirm " + string(next)
	}
	if !p.GatesPassed {
		p.Note = "the gates refuse for now (see each gate's detail for what to do); --force skips them and is recorded as forced"
	}
	return p, nil
}

// ConsumerStatus is one live consumer as status shows it.
type ConsumerStatus struct {
	cutover.Heartbeat
	Current bool   `json:"applies_current_phase"`
	Age     string `json:"beat_age"`
}

// Status is everything 'migrate status' shows.
type Status struct {
	At         time.Time           `json:"at"`
	State      cutover.State       `json:"state"`
	LegacyRole string              `json:"legacy_role"`
	InfluxRole string              `json:"influx_role"`
	Consumers  []ConsumerStatus    `json:"consumers"`
	OpenGaps   map[string]int64    `json:"open_gaps"`
	OldestGaps []cutover.Gap       `json:"oldest_open_gaps"`
	LastVerify *cutover.VerifyRun  `json:"last_verify"`
	Plan       Plan                `json:"plan"`
	LastChange *cutover.AuditEntry `json:"last_change,omitempty"`
	Shadow     *ShadowStatus       `json:"shadow_reads,omitempty"`
}

// ShadowStatus is what the query service's shadow reads found: in the
// current phase version, over every version, and the latest mismatches.
type ShadowStatus struct {
	Current  cutover.ShadowStats      `json:"current_phase"`
	All      cutover.ShadowStats      `json:"all_phases"`
	Examples []cutover.ShadowMismatch `json:"latest_mismatches"`
}

// ShadowReader reads the shadow comparisons (cutover.Store does); status
// shows them when its state reader is one.
type ShadowReader interface {
	ShadowStats(ctx context.Context, version int64) (cutover.ShadowStats, error)
	ShadowMismatches(ctx context.Context, version int64, limit int) ([]cutover.ShadowMismatch, error)
}

// ReadShadowStatus reads the shadow comparisons of phase version version
// and of every version, with the latest 3 mismatches.
func ReadShadowStatus(ctx context.Context, r ShadowReader, version int64) (*ShadowStatus, error) {
	var out ShadowStatus
	var err error
	if out.Current, err = r.ShadowStats(ctx, version); err != nil {
		return nil, err
	}
	if out.All, err = r.ShadowStats(ctx, 0); err != nil {
		return nil, err
	}
	if out.Examples, err = r.ShadowMismatches(ctx, 0, 3); err != nil {
		return nil, err
	}
	return &out, nil
}

// History reads the audit log.
type History interface {
	History(ctx context.Context, limit int) ([]cutover.AuditEntry, error)
}

// ReadStatus gathers the status: phase, live consumers, open gaps, the
// last verify, the last change, and the plan for the next step.
func ReadStatus(ctx context.Context, s StateReader, h History, checker *gates.Checker, liveFor time.Duration, now func() time.Time) (Status, error) {
	if now == nil {
		now = time.Now
	}
	if liveFor <= 0 {
		liveFor = 15 * time.Second
	}
	var st Status
	st.At = now().UTC()
	p, err := MakePlan(ctx, s, checker)
	if err != nil {
		return st, err
	}
	st.Plan, st.State = p, p.Phase
	l, i := st.State.Phase.Roles()
	st.LegacyRole, st.InfluxRole = l.String(), i.String()
	hbs, err := s.Heartbeats(ctx, liveFor)
	if err != nil {
		return st, err
	}
	// Ages are taken now, not at st.At: the plan's recent verify may have
	// taken seconds, and beats written meanwhile would look in the future.
	read := now().UTC()
	st.Consumers = []ConsumerStatus{}
	for _, hb := range hbs {
		st.Consumers = append(st.Consumers, ConsumerStatus{Heartbeat: hb, Current: Followed(hb, st.State.Phase, st.State.Version),
			Age: read.Sub(hb.BeatAt).Round(100 * time.Millisecond).String()})
	}
	st.OpenGaps = map[string]int64{}
	for _, sink := range []string{cutover.SinkLegacy, cutover.SinkInflux} {
		if st.OpenGaps[sink], err = s.OpenGapCount(ctx, sink); err != nil {
			return st, err
		}
	}
	if st.OldestGaps, err = s.Gaps(ctx, cutover.GapFilter{OnlyOpen: true, Limit: 5}); err != nil {
		return st, err
	}
	if st.OldestGaps == nil {
		st.OldestGaps = []cutover.Gap{}
	}
	if st.LastVerify, err = s.LastVerify(ctx); err != nil {
		return st, err
	}
	if sr, ok := s.(ShadowReader); ok {
		if st.Shadow, err = ReadShadowStatus(ctx, sr, st.State.Version); err != nil {
			return st, err
		}
	}
	if h != nil {
		last, err := h.History(ctx, 1)
		if err != nil {
			return st, err
		}
		if len(last) > 0 {
			st.LastChange = &last[0]
		}
	}
	return st, nil
}
