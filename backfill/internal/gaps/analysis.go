package gaps

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/flexipack/cutover/backfill/internal/spill"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/window"
)

// Options select what Analyse compares.
type Options struct {
	From, To   time.Time
	Window     time.Duration
	Units      []string // only these units (nil: all)
	Sites      []string // only readings of these sites (nil: all)
	FromLedger bool     // take the windows from the gap ledger instead of comparing counts
	SpillDir   string   // temporary files ("" for the system's)
	SpillBytes int      // readings held in memory before spilling
}

// InfluxCounter counts InfluxDB's readings per unit and window.
type InfluxCounter interface {
	Counts(ctx context.Context, from, to time.Time, w time.Duration, units []string) ([]window.Count, error)
}

// LedgerReader reads the open gap-ledger entries.
type LedgerReader interface {
	Gaps(ctx context.Context, f cutover.GapFilter) ([]cutover.Gap, error)
}

// Sources are where Analyse reads: the snapshots (SnapshotsDesc names them
// in logs), InfluxDB's counts, and the gap ledger (needed with FromLedger).
type Sources struct {
	Snapshots     *snapshot.Reader
	SnapshotsDesc string
	Influx        InfluxCounter
	Ledger        LedgerReader
}

// Analysis is what gap detection found. Close releases its spill files.
type Analysis struct {
	Window     time.Duration
	From, To   time.Time // whole windows
	FromLedger bool
	Sorter     *spill.Sorter // the snapshots' readings in range, sorted; nil when nothing was read
	Collect    CollectStats
	Damage     *Damage
	Gaps       []Gap
	Checked    int // (unit, window) pairs with snapshot readings
	Ahead      int // windows where InfluxDB has more than the snapshots
	Ledger     *LedgerPlan
	// Uncovered are ledger entries no snapshot covers: left open.
	Uncovered []cutover.Gap
}

// Targets returns the gap windows.
func (a *Analysis) Targets() map[window.Key]bool {
	t := make(map[window.Key]bool, len(a.Gaps))
	for _, g := range a.Gaps {
		t[g.Key()] = true
	}
	return t
}

// Close removes the spill files.
func (a *Analysis) Close() {
	if a.Sorter != nil {
		_ = a.Sorter.Close()
	}
}

// Analyse collects the snapshots' readings for opts and finds the gap
// windows: by comparing counts with InfluxDB, or from the gap ledger.
func Analyse(ctx context.Context, src Sources, opts Options, logger *slog.Logger) (_ *Analysis, err error) {
	a := &Analysis{Window: opts.Window, FromLedger: opts.FromLedger, Damage: NewDamage(logger)}
	a.From, a.To = AlignedRange(opts.From, opts.To, a.Window)
	q := Query{From: a.From, To: a.To, Window: a.Window, Units: opts.Units, Sites: opts.Sites}
	countUnits := opts.Units
	if opts.FromLedger {
		units, ok, err := a.readLedger(ctx, src.Ledger, opts, &q, logger)
		if err != nil {
			return nil, err
		}
		if !ok {
			return a, nil // no open entries: nothing to read
		}
		countUnits = units
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	snapCounts, err := a.collectSnapshots(ctx, src, q, opts, logger)
	if err != nil {
		return nil, err
	}
	influxCounts, err := src.Influx.Counts(ctx, a.From, a.To, a.Window, countUnits)
	if err != nil {
		return nil, err
	}
	if a.Ledger == nil {
		a.Checked = len(snapCounts)
		a.Gaps, a.Ahead = Compare(snapCounts, influxCounts, a.Window)
		return a, nil
	}
	a.ledgerGaps(snapCounts, influxCounts, logger)
	return a, nil
}

// readLedger narrows q to the open InfluxDB ledger entries; ok is false
// when there are none. It returns the units the entries name.
func (a *Analysis) readLedger(ctx context.Context, ledger LedgerReader, opts Options, q *Query, logger *slog.Logger) (units []string, ok bool, err error) {
	if ledger == nil {
		return nil, false, fmt.Errorf("--from-ledger needs the state store")
	}
	entries, err := ledger.Gaps(ctx, cutover.GapFilter{Sink: cutover.SinkInflux, OnlyOpen: true, Units: opts.Units, From: opts.From, To: opts.To})
	if err != nil {
		return nil, false, err
	}
	plan := FromLedger(entries, a.Window)
	a.Ledger = &plan
	logger.Info("gap ledger read", "open_entries", len(entries), "windows", len(plan.Windows))
	if len(entries) == 0 {
		return nil, false, nil
	}
	a.From, a.To = plan.From, plan.To
	q.From, q.To, q.Keep = plan.From, plan.To, plan.Keep(a.Window)
	seen := map[string]bool{}
	for _, e := range entries {
		if !seen[e.Unit] {
			seen[e.Unit] = true
			units = append(units, e.Unit)
		}
	}
	return units, true, nil
}

// collectSnapshots reads the snapshots' readings of q into a spill sorter
// and counts them per unit and window.
func (a *Analysis) collectSnapshots(ctx context.Context, src Sources, q Query, opts Options, logger *slog.Logger) ([]window.Count, error) {
	a.Sorter = spill.New(opts.SpillDir, opts.SpillBytes)
	start := time.Now()
	logger.Info("reading snapshots", "source", src.SnapshotsDesc, "from", a.From, "to", a.To, "window", a.Window.String())
	var err error
	a.Collect, err = Collect(ctx, src.Snapshots, q, a.Sorter, a.Damage, logger)
	if err != nil {
		return nil, err
	}
	snapCounts, err := SnapshotCounts(a.Sorter, a.Window)
	if err != nil {
		return nil, err
	}
	var distinct int64
	for _, sc := range snapCounts {
		distinct += sc.N
	}
	logger.Info("snapshots read", "snapshots", len(a.Collect.SnapshotsRead), "parts", a.Collect.PartsRead,
		"parts_skipped", a.Collect.PartsCorrupt, "readings", a.Collect.Records, "distinct_readings", distinct,
		"spill_runs", a.Sorter.Runs(), "took", time.Since(start).Round(time.Millisecond))
	return snapCounts, nil
}

// ledgerGaps makes every ledger window a gap to repair, whatever the
// counts, and sets aside the entries no snapshot covers.
func (a *Analysis) ledgerGaps(snapCounts, influxCounts []window.Count, logger *slog.Logger) {
	snapBy := map[window.Key]int64{}
	for _, sc := range snapCounts {
		snapBy[sc.Key()] = sc.N
	}
	influxBy := map[window.Key]int64{}
	for _, ic := range influxCounts {
		influxBy[window.Key{Unit: ic.Unit, Start: ic.Start.UTC()}] = ic.N
	}
	for k, ids := range a.Ledger.Windows {
		g := Gap{Unit: k.Unit, Start: k.Start, End: k.Start.Add(a.Window), Snapshot: snapBy[k], Influx: influxBy[k], LedgerIDs: ids}
		g.Missing = max(g.Snapshot-g.Influx, 0)
		a.Gaps = append(a.Gaps, g)
	}
	slices.SortFunc(a.Gaps, func(x, y Gap) int {
		if c := strings.Compare(x.Unit, y.Unit); c != 0 {
			return c
		}
		return x.Start.Compare(y.Start)
	})
	a.Checked = len(a.Gaps)
	for _, e := range a.Ledger.Entries {
		if !Covered(a.Collect.Spans, e.From, e.To) {
			a.Uncovered = append(a.Uncovered, e)
			logger.Warn("gap-ledger entry not covered by any snapshot; left open", "id", e.ID, "unit", e.Unit, "from", e.From, "to", e.To)
		}
	}
}

// Doc is the JSON document of 'backfill gaps --output json'.
type Doc struct {
	From           time.Time     `json:"from"`
	To             time.Time     `json:"to"`
	Window         string        `json:"window"`
	Source         string        `json:"source"`
	FromLedger     bool          `json:"from_ledger"`
	WindowsChecked int           `json:"windows_checked"`
	GapsFound      int           `json:"gaps_found"`
	MissingTotal   int64         `json:"missing_readings"`
	InfluxAhead    int           `json:"windows_influx_has_more"`
	Snapshots      CollectStats  `json:"snapshots"`
	Damage         DamageSummary `json:"damage"`
	Gaps           []Gap         `json:"gaps"`
	Uncovered      []cutover.Gap `json:"ledger_entries_not_covered,omitempty"`
}

// Doc returns the analysis as a document; source names the snapshots.
func (a *Analysis) Doc(source string) Doc {
	d := Doc{From: a.From, To: a.To, Window: a.Window.String(), Source: source, FromLedger: a.FromLedger,
		WindowsChecked: a.Checked, GapsFound: len(a.Gaps), InfluxAhead: a.Ahead, Snapshots: a.Collect,
		Damage: a.Damage.Summary(), Gaps: a.Gaps, Uncovered: a.Uncovered}
	if d.Gaps == nil {
		d.Gaps = []Gap{}
	}
	if d.Snapshots.SnapshotsRead == nil {
		d.Snapshots.SnapshotsRead = []string{}
	}
	for _, g := range a.Gaps {
		d.MissingTotal += g.Missing
	}
	return d
}
