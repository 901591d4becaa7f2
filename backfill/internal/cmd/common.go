package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/backfill/internal/gaps"
	"github.com/flexipack/cutover/backfill/internal/spill"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/window"
)

// Flag names of backfill's own flags.
const (
	flagSnapshotDir = "snapshot-dir"
	flagFrom        = "from"
	flagTo          = "to"
	flagWindow      = "window"
	flagUnits       = "units"
	flagSites       = "sites"
	flagFromLedger  = "from-ledger"
	flagSpillDir    = "spill-dir"
	flagSpillMemory = "spill-memory"
)

// sourceFlags select where snapshots are: S3 (the default) or a folder.
func sourceFlags() []cli.Flag {
	return append(cliapp.S3Flags(),
		&cli.StringFlag{Name: flagSnapshotDir, EnvVars: []string{"SNAPSHOT_DIR"}, Category: "Snapshots",
			Usage: "read/write snapshots in this local folder (holding SNAPSHOT_ID/ folders, the S3 layout below the prefix) instead of S3"},
	)
}

// rangeFlags select the readings to compare and repair.
func rangeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagFrom, Value: "24h", Usage: "start of the range: RFC 3339 time, or a duration before now such as 24h", Category: "Range"},
		&cli.StringFlag{Name: flagTo, Value: "now", Usage: "end of the range (exclusive): RFC 3339 time, a duration before now, or now", Category: "Range"},
		&cli.DurationFlag{Name: flagWindow, Value: time.Hour, Usage: "width of the windows counts are compared and repaired in, aligned to the epoch (1h windows start on the hour, UTC)", Category: "Range"},
		&cli.StringSliceFlag{Name: flagUnits, Usage: "only these units (comma-separated unit ids)", Category: "Range"},
		&cli.StringSliceFlag{Name: flagSites, Usage: "only readings of these sites (comma-separated)", Category: "Range"},
		&cli.BoolFlag{Name: flagFromLedger, Usage: "take the windows from the consumer's gap ledger (open entries for InfluxDB overlapping the range) instead of comparing counts", Category: "Range"},
		&cli.StringFlag{Name: flagSpillDir, Usage: "folder for temporary files (verified parts, de-duplication runs); default the system temp folder", Category: "Range"},
		&cli.IntFlag{Name: flagSpillMemory, Value: spill.DefaultChunkBytes >> 20, Usage: "MiB of readings held in memory before spilling to disk (memory stays bounded whatever the range)", Category: "Range"},
	}
}

// params are a run's inputs, stored with the run so that --resume repeats
// exactly the same selection.
type params struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Window     string    `json:"window"`
	Units      []string  `json:"units,omitempty"`
	Sites      []string  `json:"sites,omitempty"`
	FromLedger bool      `json:"from_ledger,omitempty"`
	Source     string    `json:"source"`
}

func (p params) window() time.Duration {
	d, _ := time.ParseDuration(p.Window)
	return d
}

func paramsFromCLI(c *cli.Context, now time.Time, source string) (params, error) {
	from, to, err := window.ParseRange(c.String(flagFrom), c.String(flagTo), now)
	if err != nil {
		return params{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	w := c.Duration(flagWindow)
	if w < time.Second || w%time.Millisecond != 0 {
		return params{}, cliapp.Exitf(cliapp.ExitFailure, "--window %s: want at least 1s, a whole number of milliseconds", w)
	}
	return params{
		From: from, To: to, Window: w.String(),
		Units: cleanList(c.StringSlice(flagUnits)), Sites: cleanList(c.StringSlice(flagSites)),
		FromLedger: c.Bool(flagFromLedger), Source: source,
	}, nil
}

func cleanList(xs []string) []string {
	var out []string
	for _, x := range xs {
		for _, y := range strings.Split(x, ",") {
			if y = strings.TrimSpace(y); y != "" {
				out = append(out, y)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// openSnapshots returns the snapshot store and the prefix the snapshots
// are under, and a description for logs.
func openSnapshots(ctx context.Context, c *cli.Context) (snapshot.Store, string, string, error) {
	if dir := c.String(flagSnapshotDir); dir != "" {
		st, err := snapshot.NewDirStore(dir)
		if err != nil {
			return nil, "", "", cliapp.Exitf(cliapp.ExitFailure, "--%s: %w", flagSnapshotDir, err)
		}
		return st, "", st.String(), nil
	}
	bucket := c.String(cliapp.FlagS3Bucket)
	if bucket == "" {
		return nil, "", "", cliapp.Exitf(cliapp.ExitFailure, "no snapshot store: set --%s (or %s), or --%s for a local folder", cliapp.FlagS3Bucket, cliapp.EnvS3Bucket, flagSnapshotDir)
	}
	st, err := snapshot.NewS3Store(ctx, snapshot.S3Config{Endpoint: c.String(cliapp.FlagS3Endpoint), Bucket: bucket, Region: c.String(cliapp.FlagAWSRegion),
		AccessKeyID: c.String(cliapp.FlagAWSKeyID), SecretAccessKey: c.String(cliapp.FlagAWSSecret), CAFile: c.String(cliapp.FlagS3CAFile)})
	if err != nil {
		return nil, "", "", err
	}
	prefix := strings.Trim(c.String(cliapp.FlagS3Prefix), "/")
	return st, prefix, st.String() + "/" + prefix, nil
}

// analysis is what gap detection found.
type analysis struct {
	p        params
	w        time.Duration
	from, to time.Time // whole windows
	sorter   *spill.Sorter
	collect  gaps.CollectStats
	damage   *gaps.Damage
	gaps     []gaps.Gap
	checked  int // (unit, window) pairs with snapshot readings
	ahead    int // windows where InfluxDB has more than the snapshots
	ledger   *gaps.LedgerPlan
	// uncovered are ledger entries no snapshot covers: left open.
	uncovered []cutover.Gap
}

func (a *analysis) targets() map[window.Key]bool {
	t := make(map[window.Key]bool, len(a.gaps))
	for _, g := range a.gaps {
		t[g.Key()] = true
	}
	return t
}

func (a *analysis) close() {
	if a.sorter != nil {
		_ = a.sorter.Close()
	}
}

// analyse collects the snapshots' readings for p and finds the gap
// windows: by comparing counts with InfluxDB, or from the gap ledger.
func analyse(ctx context.Context, c *cli.Context, logger *slog.Logger, p params, state *cutover.Store) (*analysis, error) {
	a := &analysis{p: p, w: p.window(), damage: gaps.NewDamage(logger)}
	a.from, a.to = gaps.AlignedRange(p.From, p.To, a.w)
	store, prefix, desc, err := openSnapshots(ctx, c)
	if err != nil {
		return nil, err
	}
	reader, err := influx.NewReader(cliapp.InfluxConfig(c), logger)
	if err != nil {
		return nil, cliapp.Exit(err, cliapp.ExitFailure)
	}
	defer reader.Close()

	q := gaps.Query{From: a.from, To: a.to, Window: a.w, Units: p.Units, Sites: p.Sites}
	countUnits := p.Units
	if p.FromLedger {
		if state == nil {
			return nil, fmt.Errorf("--%s needs the state store", flagFromLedger)
		}
		entries, err := state.Gaps(ctx, cutover.GapFilter{Sink: cutover.SinkInflux, OnlyOpen: true, Units: p.Units, From: p.From, To: p.To})
		if err != nil {
			return nil, err
		}
		plan := gaps.FromLedger(entries, a.w)
		a.ledger = &plan
		logger.Info("gap ledger read", "open_entries", len(entries), "windows", len(plan.Windows))
		if len(entries) == 0 {
			return a, nil
		}
		a.from, a.to = plan.From, plan.To
		q.From, q.To, q.Keep = plan.From, plan.To, plan.Keep(a.w)
		countUnits = nil
		seen := map[string]bool{}
		for _, e := range entries {
			if !seen[e.Unit] {
				seen[e.Unit] = true
				countUnits = append(countUnits, e.Unit)
			}
		}
	}

	a.sorter = spill.New(c.String(flagSpillDir), c.Int(flagSpillMemory)<<20)
	start := time.Now()
	logger.Info("reading snapshots", "source", desc, "from", a.from, "to", a.to, "window", a.w.String())
	snapReader := snapshot.NewReader(store, prefix, snapshot.ReaderOptions{TempDir: c.String(flagSpillDir)})
	a.collect, err = gaps.Collect(ctx, snapReader, q, a.sorter, a.damage, logger)
	if err != nil {
		a.close()
		return nil, err
	}
	snapCounts, err := gaps.SnapshotCounts(a.sorter, a.w)
	if err != nil {
		a.close()
		return nil, err
	}
	var distinct int64
	for _, sc := range snapCounts {
		distinct += sc.N
	}
	logger.Info("snapshots read", "snapshots", len(a.collect.SnapshotsRead), "parts", a.collect.PartsRead,
		"parts_skipped", a.collect.PartsCorrupt, "readings", a.collect.Records, "distinct_readings", distinct,
		"spill_runs", a.sorter.Runs(), "took", time.Since(start).Round(time.Millisecond))

	influxCounts, err := reader.Counts(ctx, a.from, a.to, a.w, countUnits)
	if err != nil {
		a.close()
		return nil, err
	}
	if a.ledger == nil {
		a.checked = len(snapCounts)
		a.gaps, a.ahead = gaps.Compare(snapCounts, influxCounts, a.w)
		return a, nil
	}
	// Ledger mode: every ledger window is repaired, whatever the counts.
	snapBy := map[window.Key]int64{}
	for _, sc := range snapCounts {
		snapBy[sc.Key()] = sc.N
	}
	influxBy := map[window.Key]int64{}
	for _, ic := range influxCounts {
		influxBy[window.Key{Unit: ic.Unit, Start: ic.Start.UTC()}] = ic.N
	}
	for k, ids := range a.ledger.Windows {
		g := gaps.Gap{Unit: k.Unit, Start: k.Start, End: k.Start.Add(a.w), Snapshot: snapBy[k], Influx: influxBy[k], LedgerIDs: ids}
		g.Missing = max(g.Snapshot-g.Influx, 0)
		a.gaps = append(a.gaps, g)
	}
	slices.SortFunc(a.gaps, func(x, y gaps.Gap) int {
		if c := strings.Compare(x.Unit, y.Unit); c != 0 {
			return c
		}
		return x.Start.Compare(y.Start)
	})
	a.checked = len(a.gaps)
	for _, e := range a.ledger.Entries {
		if !gaps.Covered(a.collect.Spans, e.From, e.To) {
			a.uncovered = append(a.uncovered, e)
			logger.Warn("gap-ledger entry not covered by any snapshot; left open", "id", e.ID, "unit", e.Unit, "from", e.From, "to", e.To)
		}
	}
	return a, nil
}

// gapsDoc is the JSON document of `gaps --output json`.
type gapsDoc struct {
	From           time.Time          `json:"from"`
	To             time.Time          `json:"to"`
	Window         string             `json:"window"`
	Source         string             `json:"source"`
	FromLedger     bool               `json:"from_ledger"`
	WindowsChecked int                `json:"windows_checked"`
	GapsFound      int                `json:"gaps_found"`
	MissingTotal   int64              `json:"missing_readings"`
	InfluxAhead    int                `json:"windows_influx_has_more"`
	Snapshots      gaps.CollectStats  `json:"snapshots"`
	Damage         gaps.DamageSummary `json:"damage"`
	Gaps           []gaps.Gap         `json:"gaps"`
	Uncovered      []cutover.Gap      `json:"ledger_entries_not_covered,omitempty"`
}

func (a *analysis) doc() gapsDoc {
	d := gapsDoc{From: a.from, To: a.to, Window: a.w.String(), Source: a.p.Source, FromLedger: a.p.FromLedger,
		WindowsChecked: a.checked, GapsFound: len(a.gaps), InfluxAhead: a.ahead, Snapshots: a.collect,
		Damage: a.damage.Summary(), Gaps: a.gaps, Uncovered: a.uncovered}
	if d.Gaps == nil {
		d.Gaps = []gaps.Gap{}
	}
	if d.Snapshots.SnapshotsRead == nil {
		d.Snapshots.SnapshotsRead = []string{}
	}
	for _, g := range a.gaps {
		d.MissingTotal += g.Missing
	}
	return d
}

func writeJSON(c *cli.Context, v any) error {
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exitFor returns the exit error for a finished command: ExitNoRecords
// when anything was skipped.
func exitFor(skipped bool, what string) error {
	if skipped {
		return cliapp.Exitf(cliapp.ExitNoRecords, "some snapshot data was skipped (%s); see the damage above", what)
	}
	return nil
}

// sourceName describes where the snapshots are, for run params.
func sourceName(c *cli.Context) string {
	if dir := c.String(flagSnapshotDir); dir != "" {
		return "dir:" + dir
	}
	return "s3://" + c.String(cliapp.FlagS3Bucket) + "/" + strings.Trim(c.String(cliapp.FlagS3Prefix), "/")
}
