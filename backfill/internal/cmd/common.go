package cmd

import (
	"context"
	"encoding/json"
	"io"
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
	return append(cliapp.UnitFlags("Range", "only these units"), []cli.Flag{
		&cli.StringFlag{Name: flagFrom, Value: "24h", Usage: "start of the range: RFC 3339 time, or a duration before now such as 24h", Category: "Range"},
		&cli.StringFlag{Name: flagTo, Value: "now", Usage: "end of the range (exclusive): RFC 3339 time, a duration before now, or now", Category: "Range"},
		&cli.DurationFlag{Name: flagWindow, Value: time.Hour, Usage: "width of the windows counts are compared and repaired in, aligned to the epoch (1h windows start on the hour, UTC)", Category: "Range"},
		&cli.StringSliceFlag{Name: flagSites, Usage: "only readings of these sites (comma-separated)", Category: "Range"},
		&cli.BoolFlag{Name: flagFromLedger, Usage: "take the windows from the consumer's gap ledger (open entries for InfluxDB overlapping the range) instead of comparing counts", Category: "Range"},
		&cli.StringFlag{Name: flagSpillDir, Usage: "folder for temporary files (verified parts, de-duplication runs); default the system temp folder", Category: "Range"},
		&cli.IntFlag{Name: flagSpillMemory, Value: spill.DefaultChunkBytes >> 20, Usage: "MiB of readings held in memory before spilling to disk (memory stays bounded whatever the range)", Category: "Range"},
	}...)
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
	units, err := cliapp.Units(c)
	if err != nil {
		return params{}, cli.Exit(err.Error(), cliapp.ExitFailure)
	}
	return params{
		From: from, To: to, Window: w.String(),
		Units: units, Sites: cleanList(c.StringSlice(flagSites)),
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

// snapshotSource says where the snapshots are: a local folder, or S3.
type snapshotSource struct {
	Dir    string
	S3     snapshot.S3Config
	Prefix string
}

func snapshotSourceFrom(c *cli.Context) snapshotSource {
	return snapshotSource{Dir: c.String(flagSnapshotDir), Prefix: strings.Trim(c.String(cliapp.FlagS3Prefix), "/"),
		S3: snapshot.S3Config{Endpoint: c.String(cliapp.FlagS3Endpoint), Bucket: c.String(cliapp.FlagS3Bucket), Region: c.String(cliapp.FlagAWSRegion),
			AccessKeyID: c.String(cliapp.FlagAWSKeyID), SecretAccessKey: c.String(cliapp.FlagAWSSecret), CAFile: c.String(cliapp.FlagS3CAFile)}}
}

// name describes where the snapshots are, for run params.
func (s snapshotSource) name() string {
	if s.Dir != "" {
		return "dir:" + s.Dir
	}
	return "s3://" + s.S3.Bucket + "/" + s.Prefix
}

// openSnapshots returns the snapshot store and the prefix the snapshots
// are under, and a description for logs.
func openSnapshots(ctx context.Context, src snapshotSource) (snapshot.Store, string, string, error) {
	if src.Dir != "" {
		st, err := snapshot.NewDirStore(src.Dir)
		if err != nil {
			return nil, "", "", cliapp.Exitf(cliapp.ExitFailure, "--%s: %w", flagSnapshotDir, err)
		}
		return st, "", st.String(), nil
	}
	if src.S3.Bucket == "" {
		return nil, "", "", cliapp.Exitf(cliapp.ExitFailure, "no snapshot store: set --%s (or %s), or --%s for a local folder", cliapp.FlagS3Bucket, cliapp.EnvS3Bucket, flagSnapshotDir)
	}
	st, err := snapshot.NewS3Store(ctx, src.S3)
	if err != nil {
		return nil, "", "", err
	}
	return st, src.Prefix, st.String() + "/" + src.Prefix, nil
}

// analysisConfig is where gap analysis reads and spills.
type analysisConfig struct {
	Snapshots      snapshotSource
	Influx         influx.Config
	SpillDir       string
	SpillMemoryMiB int
}

func analysisConfigFrom(c *cli.Context) analysisConfig {
	return analysisConfig{Snapshots: snapshotSourceFrom(c), Influx: cliapp.InfluxConfig(c), SpillDir: c.String(flagSpillDir), SpillMemoryMiB: c.Int(flagSpillMemory)}
}

// analyse opens the snapshots and InfluxDB and runs the gap analysis for
// p; state (nil unless needed) is the gap ledger of --from-ledger.
func analyse(ctx context.Context, cfg analysisConfig, p params, state *cutover.Store, logger *slog.Logger) (*gaps.Analysis, error) {
	store, prefix, desc, err := openSnapshots(ctx, cfg.Snapshots)
	if err != nil {
		return nil, err
	}
	reader, err := influx.NewReader(cfg.Influx, logger)
	if err != nil {
		return nil, cliapp.Exit(err, cliapp.ExitFailure)
	}
	defer reader.Close()
	src := gaps.Sources{Snapshots: snapshot.NewReader(store, prefix, snapshot.ReaderOptions{TempDir: cfg.SpillDir}), SnapshotsDesc: desc, Influx: reader}
	if state != nil {
		src.Ledger = state
	}
	return gaps.Analyse(ctx, src, gaps.Options{From: p.From, To: p.To, Window: p.window(), Units: p.Units, Sites: p.Sites,
		FromLedger: p.FromLedger, SpillDir: cfg.SpillDir, SpillBytes: cfg.SpillMemoryMiB << 20}, logger)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
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
