package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/window"
)

const (
	flagPartRecords = "part-records"
	flagSnapshotID  = "snapshot-id"
)

func snapshotFlags() []cli.Flag {
	return cliapp.Merge(sourceFlags(), cliapp.LegacyFlags(), cliapp.UnitFlags("", "only these units; default all"), []cli.Flag{
		&cli.StringFlag{Name: flagFrom, Value: "24h", Usage: "start of the range: RFC 3339 time, or a duration before now such as 24h"},
		&cli.StringFlag{Name: flagTo, Value: "now", Usage: "end of the range (exclusive): RFC 3339 time, a duration before now, or now"},
		&cli.Int64Flag{Name: flagPartRecords, Value: snapshot.DefaultPartRecords, Usage: "records per part"},
		&cli.StringFlag{Name: flagSnapshotID, Usage: "snapshot id, YYYYMMDDTHHMMSSZ (default: now, UTC)"},
		&cli.StringFlag{Name: flagSpillDir, Usage: "folder for the part being written (default the system temp folder)"},
		cliapp.OutputFlag(),
	})
}

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "export the legacy store's readings for a range as a snapshot (what the legacy backup job does)",
		Description: `snapshot streams the legacy store's readings with time in [--from, --to) into a new
snapshot in the contract's format (SNAPSHOTS.md): gzip'd JSON-lines parts of
--part-records records, each spooled to a temporary file while its size and sha256 are
computed and then uploaded (multipart for large parts), and manifest.json written last, so
the snapshot becomes visible to readers only when complete. Memory stays bounded whatever
the range. A run that dies leaves a folder without a manifest, which readers ignore.

Examples:
  backfill snapshot --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z
  backfill snapshot --from 24h --snapshot-dir /backups/bsu --output json`,
		Flags:  snapshotFlags(),
		Action: cliapp.Action(snapshotConfigFrom, runSnapshot),
	}
}

// snapshotConfig is what snapshot runs with.
type snapshotConfig struct {
	Output    string
	From, To  time.Time
	ID        string
	Snapshots snapshotSource
	Writer    snapshot.WriterOptions
	LegacyDSN string
	Units     []string
	Started   time.Time
}

func snapshotConfigFrom(c *cli.Context) (snapshotConfig, error) {
	output, err := cliapp.Output(c)
	if err != nil {
		return snapshotConfig{}, err
	}
	now := time.Now()
	from, to, err := window.ParseRange(c.String(flagFrom), c.String(flagTo), now)
	if err != nil {
		return snapshotConfig{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	id := c.String(flagSnapshotID)
	if id == "" {
		id = snapshot.NewID(now)
	}
	units, err := cliapp.Units(c)
	if err != nil {
		return snapshotConfig{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	return snapshotConfig{Output: output, From: from, To: to, ID: id, Snapshots: snapshotSourceFrom(c), LegacyDSN: c.String(cliapp.FlagPGDSN),
		Writer: snapshot.WriterOptions{PartRecords: c.Int64(flagPartRecords), TempDir: c.String(flagSpillDir)},
		Units:  units, Started: now}, nil
}

func runSnapshot(ctx context.Context, env cliapp.Env, cfg snapshotConfig) error {
	logger, id, from, to, now := env.Logger, cfg.ID, cfg.From, cfg.To, cfg.Started
	store, prefix, desc, err := openSnapshots(ctx, cfg.Snapshots)
	if err != nil {
		return err
	}
	w, err := snapshot.NewWriter(store, prefix, id, from, to, cfg.Writer)
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	src, err := legacy.Open(ctx, cfg.LegacyDSN, logger)
	if err != nil {
		return err
	}
	defer src.Close()

	logger.Info("writing snapshot", "snapshot_id", id, "to", desc, "from", from, "to", to)
	var n int64
	lastLog := time.Now()
	err = src.Stream(ctx, from, to, cfg.Units, func(rec *telemetry.Record) error {
		n++
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			logger.Info("snapshot progress", "snapshot_id", id, "records", n)
		}
		return w.Add(ctx, rec)
	})
	if err != nil {
		w.Abort()
		return fmt.Errorf("snapshot %s: %w (parts uploaded so far stay without a manifest and are ignored)", id, err)
	}
	m, err := w.Close(ctx)
	if err != nil {
		return err
	}
	logger.Info("snapshot written", "snapshot_id", id, "records", m.Records, "parts", len(m.Parts), "took", time.Since(now).Round(time.Millisecond))
	if cfg.Output == "json" {
		return writeJSON(env.Out, m)
	}
	fmt.Fprintf(env.Out, "snapshot %s written to %s: %d records in %d parts, [%s, %s)\n",
		id, desc, m.Records, len(m.Parts), m.From.Format(time.RFC3339), m.To.Format(time.RFC3339))
	return nil
}
