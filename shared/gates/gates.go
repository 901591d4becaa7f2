// Package gates decides whether the cutover may move into a phase: each
// phase has safety gates (no open gap-ledger entries, a clean verify over the
// backfilled range, a recent verify under a mismatch threshold, consumer lag
// under a bound, a typed confirmation), each evaluated now and reported with
// what failed and what to do next.
package gates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/verify"
	"github.com/flexipack/cutover/shared/window"
)

// Gate names, as recorded in the audit log.
const (
	NoOpenGaps       = "no-open-gaps"
	VerifyBackfilled = "verify-backfilled-range"
	VerifyRecent     = "verify-recent"
	ConsumerLag      = "consumer-lag"
	Confirm          = "confirm"
	ShadowReads      = "shadow-reads"
)

// Ledger reads the gap ledger.
type Ledger interface {
	OpenGapCount(ctx context.Context, sink string) (int64, error)
	Gaps(ctx context.Context, f cutover.GapFilter) ([]cutover.Gap, error)
}

// Verifications reads the recorded verify results.
type Verifications interface {
	LastVerify(ctx context.Context) (*cutover.VerifyRun, error)
}

// Consumers reads the live consumers' heartbeats.
type Consumers interface {
	Heartbeats(ctx context.Context, liveFor time.Duration) ([]cutover.Heartbeat, error)
}

// Backfills finds the most recent finished backfill run.
type Backfills interface {
	LatestFinishedBackfillRun(ctx context.Context) (cutover.BackfillRun, error)
}

// Shadows reads the phase and the query service's shadow comparisons.
type Shadows interface {
	Current(ctx context.Context) (cutover.State, error)
	ShadowStats(ctx context.Context, version int64) (cutover.ShadowStats, error)
}

// RecentVerifier compares both stores over [from, to) with windows of width w.
type RecentVerifier func(ctx context.Context, from, to time.Time, w time.Duration) (verify.Result, error)

// Config holds the gates' thresholds and the operator's inputs.
type Config struct {
	// MaxMismatchRate is the highest mismatch rate the recent verify may
	// have (0: every window must match), and the highest share of shadow
	// reads that may disagree.
	MaxMismatchRate float64
	// MinShadowReads is how many shadow comparisons the query service must
	// have recorded in the current shadow-read phase before influx-primary
	// (0: not required).
	MinShadowReads int64
	// Recent is how far back the recent verify looks (default 1h).
	Recent time.Duration
	// RecentWindow is the recent verify's window width (default 5m).
	RecentWindow time.Duration
	// MaxLag bounds each live consumer's lag (default 30s). The recent
	// verify also stops MaxLag before now: newer readings may still be in
	// flight to one store.
	MaxLag time.Duration
	// LiveFor is how fresh a heartbeat must be to count (default 15s).
	LiveFor time.Duration
	// Confirm is what the operator typed with --confirm.
	Confirm string
	// BackfilledRange overrides the backfilled range taken from the latest
	// finished backfill run.
	BackfilledRange *window.Span
}

// Checker evaluates gates against the state store and both data stores.
type Checker struct {
	Ledger    Ledger
	Verifies  Verifications
	Consumers Consumers
	Backfills Backfills
	// Shadows reads the shadow comparisons; nil fails the shadow-reads
	// gate when MinShadowReads is set.
	Shadows Shadows
	// Recent runs the recent verify; nil fails the verify-recent gate
	// (the data stores were not configured).
	Recent RecentVerifier
	Config Config
	Now    func() time.Time
}

func (c *Checker) cfg() Config {
	cfg := c.Config
	if cfg.Recent <= 0 {
		cfg.Recent = time.Hour
	}
	if cfg.RecentWindow <= 0 {
		cfg.RecentWindow = 5 * time.Minute
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = 30 * time.Second
	}
	if cfg.LiveFor <= 0 {
		cfg.LiveFor = 15 * time.Second
	}
	return cfg
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

// gate is one gate: its name and how it is evaluated for the move into a phase.
type gate struct {
	name string
	eval func(c *Checker, ctx context.Context, to cutover.Phase) (ok bool, detail string, err error)
}

// Each gate, once.
var (
	gateNoOpenGaps       = gate{NoOpenGaps, (*Checker).noOpenGaps}
	gateVerifyBackfilled = gate{VerifyBackfilled, func(c *Checker, ctx context.Context, _ cutover.Phase) (bool, string, error) {
		return c.verifyBackfilled(ctx)
	}}
	gateVerifyRecent = gate{VerifyRecent, func(c *Checker, ctx context.Context, _ cutover.Phase) (bool, string, error) {
		return c.verifyRecent(ctx)
	}}
	gateConsumerLag = gate{ConsumerLag, func(c *Checker, ctx context.Context, _ cutover.Phase) (bool, string, error) {
		return c.consumerLag(ctx)
	}}
	gateShadowReads = gate{ShadowReads, func(c *Checker, ctx context.Context, _ cutover.Phase) (bool, string, error) {
		return c.shadowReads(ctx)
	}}
	gateConfirm = gate{Confirm, func(c *Checker, _ context.Context, to cutover.Phase) (bool, string, error) {
		ok, detail := c.confirm(to)
		return ok, detail, nil
	}}
)

// phaseGates is the one table of which gates guard the move into each
// phase, in the order they are evaluated and reported. A phase not listed
// has none.
var phaseGates = map[cutover.Phase][]gate{
	cutover.ShadowRead:    {gateNoOpenGaps, gateVerifyBackfilled},
	cutover.InfluxPrimary: {gateNoOpenGaps, gateVerifyRecent, gateShadowReads, gateConsumerLag},
	cutover.InfluxOnly:    {gateNoOpenGaps, gateVerifyRecent, gateConsumerLag, gateConfirm},
}

// For lists the gates guarding the move into phase to.
func For(to cutover.Phase) []string {
	var names []string
	for _, g := range phaseGates[to] {
		names = append(names, g.name)
	}
	return names
}

// Check evaluates every gate guarding the move into phase to. A gate that
// cannot be evaluated (a store does not answer) fails with the reason; the
// result is never an error.
func (c *Checker) Check(ctx context.Context, to cutover.Phase) []cutover.GateResult {
	var out []cutover.GateResult
	for _, g := range phaseGates[to] {
		r := cutover.GateResult{Name: g.name}
		var err error
		r.OK, r.Detail, err = g.eval(c, ctx, to)
		if err != nil {
			r.OK, r.Detail = false, "could not evaluate: "+err.Error()
		}
		out = append(out, r)
	}
	return out
}

// Passed reports whether every gate passed.
func Passed(rs []cutover.GateResult) bool {
	for _, r := range rs {
		if !r.OK {
			return false
		}
	}
	return true
}

// Failures formats the failed gates, one per line.
func Failures(rs []cutover.GateResult) string {
	var b strings.Builder
	for _, r := range rs {
		if !r.OK {
			fmt.Fprintf(&b, "gate %s: %s\n", r.Name, r.Detail)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// gapSink is the ledger the gate into phase to looks at: into shadow-read
// every open entry blocks (only InfluxDB is repairable before it); later,
// InfluxDB's, because it becomes the store of record.
func gapSink(to cutover.Phase) string {
	if to == cutover.ShadowRead {
		return ""
	}
	return cutover.SinkInflux
}

func (c *Checker) noOpenGaps(ctx context.Context, to cutover.Phase) (bool, string, error) {
	sink := gapSink(to)
	n, err := c.Ledger.OpenGapCount(ctx, sink)
	if err != nil {
		return false, "", err
	}
	what := "gap-ledger entries"
	if sink != "" {
		what += " for " + sink
	}
	if n == 0 {
		return true, "no open " + what, nil
	}
	oldest, err := c.Ledger.Gaps(ctx, cutover.GapFilter{Sink: sink, OnlyOpen: true, Limit: 1})
	if err != nil {
		return false, "", err
	}
	var first string
	if len(oldest) > 0 {
		g := oldest[0]
		first = fmt.Sprintf(" (oldest %s %s, %d readings, sink %s)", g.Unit, g.From.UTC().Format("2006-01-02T15:04Z"), g.Readings, g.Sink)
	}
	return false, fmt.Sprintf("%d open %s%s; run: backfill run --from-ledger --execute", n, what, first), nil
}

// ErrNoBackfilledRange means the backfilled range is not known.
var ErrNoBackfilledRange = errors.New("the backfilled range is not known")

// BackfilledRange returns the range the gate into shadow-read needs a clean
// verify over: the override if given, else the from/to parameters of the
// latest finished backfill run.
func (c *Checker) BackfilledRange(ctx context.Context) (window.Span, string, error) {
	if c.Config.BackfilledRange != nil {
		return *c.Config.BackfilledRange, "--backfilled-range", nil
	}
	run, err := c.Backfills.LatestFinishedBackfillRun(ctx)
	if errors.Is(err, cutover.ErrNoRun) {
		return window.Span{}, "", fmt.Errorf("%w: no finished backfill run is recorded; run backfill, or pass --backfilled-range FROM,TO", ErrNoBackfilledRange)
	}
	if err != nil {
		return window.Span{}, "", err
	}
	sp, err := RunRange(run.Params)
	if err != nil {
		return window.Span{}, "", fmt.Errorf("%w: backfill run %s: %v; pass --backfilled-range FROM,TO", ErrNoBackfilledRange, run.RunID, err)
	}
	return sp, "backfill run " + run.RunID, nil
}

// RunRange reads the range a backfill run covered from its parameters: an
// object with "from" and "to" RFC 3339 times (also accepted: "From"/"To",
// "range_from"/"range_to").
func RunRange(params json.RawMessage) (window.Span, error) {
	var m map[string]any
	if err := json.Unmarshal(params, &m); err != nil {
		return window.Span{}, fmt.Errorf("parameters are not a JSON object: %w", err)
	}
	get := func(keys ...string) (time.Time, error) {
		for _, k := range keys {
			if v, ok := m[k]; ok {
				s, _ := v.(string)
				t, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					return time.Time{}, fmt.Errorf("parameter %q = %v: not an RFC 3339 time", k, v)
				}
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("parameters have no %q", keys[0])
	}
	from, err := get("from", "From", "range_from")
	if err != nil {
		return window.Span{}, err
	}
	to, err := get("to", "To", "range_to")
	if err != nil {
		return window.Span{}, err
	}
	if !from.Before(to) {
		return window.Span{}, fmt.Errorf("range %s is empty", window.Span{From: from, To: to})
	}
	return window.Span{From: from, To: to}, nil
}

func (c *Checker) verifyBackfilled(ctx context.Context) (bool, string, error) {
	sp, src, err := c.BackfilledRange(ctx)
	if err != nil {
		return false, err.Error(), nil
	}
	cmd := fmt.Sprintf("run: migrate verify --from %s --to %s", sp.From.Format(time.RFC3339), sp.To.Format(time.RFC3339))
	last, err := c.Verifies.LastVerify(ctx)
	if err != nil {
		return false, "", err
	}
	if last == nil {
		return false, fmt.Sprintf("no verify recorded; the backfilled range is %s (%s); %s", sp, src, cmd), nil
	}
	lastSpan := window.Span{From: last.From.UTC(), To: last.To.UTC()}
	if last.From.After(sp.From) || last.To.Before(sp.To) {
		return false, fmt.Sprintf("the last verify (#%d at %s) covered %s, not the backfilled range %s (%s); %s",
			last.ID, last.At.UTC().Format(time.RFC3339), lastSpan, sp, src, cmd), nil
	}
	if last.Mismatched > 0 {
		return false, fmt.Sprintf("the last verify (#%d at %s) over %s found %d mismatching windows of %d (rate %.4g); repair them (backfill), then %s",
			last.ID, last.At.UTC().Format(time.RFC3339), lastSpan, last.Mismatched, last.Windows, last.Rate, cmd), nil
	}
	return true, fmt.Sprintf("verify #%d at %s over %s: %d windows, all match (backfilled range %s from %s)",
		last.ID, last.At.UTC().Format(time.RFC3339), lastSpan, last.Windows, sp, src), nil
}

// RecentRange is the range the recent verify covers at now: the last Recent
// before now, ending MaxLag before now, in whole windows.
func RecentRange(now time.Time, cfg Config) window.Span {
	to := window.Align(now.Add(-cfg.MaxLag), time.Second)
	return window.Span{From: to.Add(-cfg.Recent), To: to}
}

func (c *Checker) verifyRecent(ctx context.Context) (bool, string, error) {
	if c.Recent == nil {
		return false, "the data stores are not configured, so the recent windows cannot be compared", nil
	}
	cfg := c.cfg()
	sp := RecentRange(c.now(), cfg)
	res, err := c.Recent(ctx, sp.From, sp.To, cfg.RecentWindow)
	if err != nil {
		return false, "", err
	}
	summary := fmt.Sprintf("over %s in %s windows: %d of %d windows mismatch (rate %.4g, at most %.4g allowed; %d legacy, %d InfluxDB readings)",
		sp, cfg.RecentWindow, res.Mismatched, res.Windows, res.Rate, cfg.MaxMismatchRate, res.LegacyReadings, res.InfluxReadings)
	if res.Rate > cfg.MaxMismatchRate {
		var ex []string
		for i, m := range res.Mismatches {
			if i == 3 {
				break
			}
			ex = append(ex, fmt.Sprintf("%s %s %s (legacy %d, influx %d)", m.Unit, m.Start.Format("15:04Z"), m.Kind, m.Legacy.N, m.Influx.N))
		}
		return false, fmt.Sprintf("%s; e.g. %s; run: migrate verify --from %s --to %s for the full list",
			summary, strings.Join(ex, "; "), sp.From.Format(time.RFC3339), sp.To.Format(time.RFC3339)), nil
	}
	return true, summary, nil
}

func (c *Checker) consumerLag(ctx context.Context) (bool, string, error) {
	cfg := c.cfg()
	hbs, err := c.Consumers.Heartbeats(ctx, cfg.LiveFor)
	if err != nil {
		return false, "", err
	}
	if len(hbs) == 0 {
		return false, fmt.Sprintf("no consumer sent a heartbeat in the last %s, so their lag is unknown; start the consumers (or widen --live-for)", cfg.LiveFor), nil
	}
	var slow []string
	worst := 0.0
	for _, h := range hbs {
		worst = max(worst, h.LagSeconds)
		if time.Duration(h.LagSeconds*float64(time.Second)) > cfg.MaxLag {
			slow = append(slow, fmt.Sprintf("%s lags %.1fs (%d messages)", h.ConsumerID, h.LagSeconds, h.LagMessages))
		}
	}
	if len(slow) > 0 {
		return false, fmt.Sprintf("%d of %d live consumers lag more than %s: %s; wait for them to catch up or scale them out",
			len(slow), len(hbs), cfg.MaxLag, strings.Join(slow, ", ")), nil
	}
	return true, fmt.Sprintf("%d live consumers, worst lag %.1fs (at most %s allowed)", len(hbs), worst, cfg.MaxLag), nil
}

func (c *Checker) confirm(to cutover.Phase) (bool, string) {
	if c.Config.Confirm == string(to) {
		return true, "confirmed with --confirm " + string(to)
	}
	if c.Config.Confirm == "" {
		return false, fmt.Sprintf("%s stops writing the legacy store; type --confirm %s to confirm", to, to)
	}
	return false, fmt.Sprintf("--confirm %q does not match; type --confirm %s to confirm", c.Config.Confirm, to)
}

// shadowReads requires evidence from real reads: at least MinShadowReads
// comparisons recorded by the query service during the current shadow-read
// phase, at most MaxMismatchRate of them mismatching.
func (c *Checker) shadowReads(ctx context.Context) (bool, string, error) {
	cfg := c.cfg()
	if c.Shadows == nil {
		if cfg.MinShadowReads <= 0 {
			return true, "not required (--min-shadow-reads 0)", nil
		}
		return false, "the state store is not configured, so the shadow reads cannot be counted", nil
	}
	st, err := c.Shadows.Current(ctx)
	if err != nil {
		return false, "", err
	}
	if st.Phase != cutover.ShadowRead {
		if cfg.MinShadowReads <= 0 {
			return true, "not required (--min-shadow-reads 0)", nil
		}
		return false, fmt.Sprintf("the phase is %s: shadow reads count only in shadow-read (advance to it and run query serve with --shadow-rate > 0)", st.Phase), nil
	}
	stats, err := c.Shadows.ShadowStats(ctx, st.Version)
	if err != nil {
		return false, "", err
	}
	summary := fmt.Sprintf("%d shadow comparisons in shadow-read (version %d), %d mismatch (rate %.4g, at most %.4g allowed), %d shadow errors",
		stats.Comparisons, st.Version, stats.Mismatches, stats.Rate, cfg.MaxMismatchRate, stats.Errors)
	switch {
	case stats.Comparisons < cfg.MinShadowReads:
		return false, fmt.Sprintf("%s; at least %d required: keep query serve answering reads (--shadow-rate) until then", summary, cfg.MinShadowReads), nil
	case stats.Rate > cfg.MaxMismatchRate:
		return false, summary + "; see the latest examples in migrate status, fix the cause, and compare again", nil
	}
	return true, summary, nil
}
