package cmd

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/backfill/internal/gaps"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
)

func gapsFlags() []cli.Flag {
	return cliapp.Merge(sourceFlags(), cliapp.InfluxFlags(), cliapp.StateFlags(), rangeFlags(), []cli.Flag{cliapp.OutputFlag()})
}

func gapsCommand() *cli.Command {
	return &cli.Command{
		Name:  "gaps",
		Usage: "list the windows where InfluxDB has fewer readings than the snapshots",
		Description: `gaps reads every complete snapshot (one with a manifest.json) whose range overlaps
--from/--to, verifies each part's size and sha256 against the manifest, and counts the
distinct readings, per unit and --window, that the snapshots hold; a reading in several
snapshots, or on several lines, counts once. It then counts the readings InfluxDB has (the
schema field of measurement bsu) in the same windows and lists every window where InfluxDB
has fewer. The range is widened to whole windows.

With --from-ledger the windows come from the consumer's gap ledger instead: each open
entry for InfluxDB overlapping the range gives the windows holding its readings.

Damaged snapshots are handled as the contract says: a corrupt part (size or sha256
mismatch, invalid or truncated gzip) is skipped whole, a bad line or a reading outside the
manifest's range is skipped; each is reported with its part and line, and the exit status
is then 3. A snapshot folder without a manifest is an unfinished backup: ignored.

Exit status: 0 clean (whether or not gaps were found), 3 if snapshot data was skipped,
1 on errors.

Examples:
  backfill gaps --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z
  backfill gaps --from 48h --units FP2-004211,FP2-000907 --window 15m --output json
  backfill gaps --snapshot-dir /backups/bsu --from 7d
  backfill gaps --from-ledger --from 720h`,
		Flags:  gapsFlags(),
		Action: cliapp.Action(gapsConfigFrom, runGaps),
	}
}

// gapsConfig is what gaps runs with.
type gapsConfig struct {
	Output   string
	Params   params
	Analysis analysisConfig
	StateDSN string
}

func gapsConfigFrom(c *cli.Context) (gapsConfig, error) {
	output, err := cliapp.Output(c)
	if err != nil {
		return gapsConfig{}, err
	}
	a := analysisConfigFrom(c)
	p, err := paramsFromCLI(c, time.Now(), a.Snapshots.name())
	if err != nil {
		return gapsConfig{}, err
	}
	return gapsConfig{Output: output, Params: p, Analysis: a, StateDSN: c.String(cliapp.FlagStateDSN)}, nil
}

func runGaps(ctx context.Context, env cliapp.Env, cfg gapsConfig) error {
	var state *cutover.Store
	if cfg.Params.FromLedger {
		var err error
		if state, err = cutover.Open(ctx, cfg.StateDSN); err != nil {
			return err
		}
		defer state.Close()
	}
	a, err := analyse(ctx, cfg.Analysis, cfg.Params, state, env.Logger)
	if err != nil {
		return err
	}
	defer a.Close()
	doc := a.Doc(cfg.Params.Source)
	if cfg.Output == "json" {
		if err := writeJSON(env.Out, doc); err != nil {
			return err
		}
	} else {
		printGaps(env.Out, doc)
	}
	return exitFor(a.Damage.Skipped(), "gaps")
}

func printGaps(w io.Writer, d gaps.Doc) {
	fmt.Fprintf(w, "range [%s, %s), window %s, snapshots from %s\n", d.From.Format(time.RFC3339), d.To.Format(time.RFC3339), d.Window, d.Source)
	fmt.Fprintf(w, "snapshots read: %d of %d complete (%d parts, %d skipped); %d readings in range\n",
		len(d.Snapshots.SnapshotsRead), d.Snapshots.SnapshotsFound, d.Snapshots.PartsRead, d.Snapshots.PartsCorrupt, d.Snapshots.Records)
	if len(d.Gaps) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "UNIT\tWINDOW START\tWINDOW END\tSNAPSHOTS\tINFLUXDB\tMISSING")
		for _, g := range d.Gaps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", g.Unit, g.Start.Format(time.RFC3339), g.End.Format(time.RFC3339), g.Snapshot, g.Influx, g.Missing)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "windows checked: %d; gaps found: %d; readings missing from InfluxDB: %d", d.WindowsChecked, d.GapsFound, d.MissingTotal)
	if d.InfluxAhead > 0 {
		fmt.Fprintf(w, "; windows where InfluxDB has more (newer than the snapshots): %d", d.InfluxAhead)
	}
	fmt.Fprintln(w)
	for _, e := range d.Uncovered {
		fmt.Fprintf(w, "ledger entry %d (%s, %s..%s) is not covered by any snapshot: cannot be repaired yet\n",
			e.ID, e.Unit, e.From.Format(time.RFC3339), e.To.Format(time.RFC3339))
	}
	printDamage(w, d.Damage.Counts, d.Damage.Details)
}
