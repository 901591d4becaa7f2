package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/backfill/internal/gaps"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/rollup"
	"github.com/flexipack/cutover/shared/window"
)

const (
	flagFollow   = "follow"
	flagLookback = "lookback"
	flagDelay    = "delay"
	flagNoRollup = "no-rollup"
)

const rollupDescription = `Builds the 5-minute rollups the fleet dashboards read for long ranges
(measurements bsu_5m and bsu_site_5m) from the raw readings, on InfluxDB 1.x, 2.x
or 3.x: it reads with InfluxQL GROUP BY time(5m) and writes with line protocol,
exactly what the former continuous queries wrote. Rolling a range up again
rewrites the same points: it is safe to repeat.

Two modes:
  backfill rollup --from 2026-10-01T00:00:00Z --to 2026-11-01T00:00:00Z
      rolls up a range (widened to whole 5-minute windows), a day at a time,
      and exits: for history (the migration, a restore).
  backfill rollup --follow [--lookback 1h] [--delay 30s]
      runs until stopped: after every 5-minute boundary (plus --delay, so
      readings stamped just before it have landed) it rolls up the --lookback
      before the boundary, so late readings are folded in, as the continuous
      queries' RESAMPLE EVERY 5m FOR 1h did. It serves /metrics, /-/healthy
      and /-/ready on --http-addr. docker-compose runs it as service rollup.

backfill run --execute rolls up the windows it repaired itself.`

func rollupCommand() *cli.Command {
	return &cli.Command{
		Name:        "rollup",
		Usage:       "build the dashboards' 5-minute rollups of a range, or keep recent ones current (--follow)",
		Description: rollupDescription,
		Flags: cliapp.Merge(cliapp.InfluxFlags(), []cli.Flag{
			&cli.StringFlag{Name: flagFrom, Value: "24h", Usage: "start of the range: RFC 3339 time, or a duration before now such as 24h", Category: "Range"},
			&cli.StringFlag{Name: flagTo, Value: "now", Usage: "end of the range (exclusive): RFC 3339 time, a duration before now, or now", Category: "Range"},
			&cli.BoolFlag{Name: flagFollow, EnvVars: []string{"ROLLUP_FOLLOW"}, Usage: "keep the recent windows current until stopped, instead of rolling up --from..--to", Category: "Follow"},
			&cli.DurationFlag{Name: flagLookback, EnvVars: []string{"ROLLUP_LOOKBACK"}, Value: time.Hour, Usage: "with --follow: how far back each pass rolls up (late readings within it are folded in)", Category: "Follow"},
			&cli.DurationFlag{Name: flagDelay, EnvVars: []string{"ROLLUP_DELAY"}, Value: 30 * time.Second, Usage: "with --follow: wait this long after each 5-minute boundary", Category: "Follow"},
			cliapp.HTTPAddrFlag("127.0.0.1:9104"),
			cliapp.OutputFlag(),
		}),
		Action: cliapp.Action(func(c *cli.Context) (rollupConfig, error) { return rollupConfigFromCLI(c, time.Now()) }, runRollup),
	}
}

// rollupConfig is what the rollup command runs with.
type rollupConfig struct {
	Influx          influx.Config
	From, To        time.Time
	Follow          bool
	Lookback, Delay time.Duration
	HTTPAddr        string
	Output          string
}

func rollupConfigFromCLI(c *cli.Context, now time.Time) (rollupConfig, error) {
	cfg := rollupConfig{Influx: cliapp.InfluxConfig(c), Follow: c.Bool(flagFollow), Lookback: c.Duration(flagLookback),
		Delay: c.Duration(flagDelay), HTTPAddr: c.String(cliapp.FlagHTTPAddr)}
	var err error
	if cfg.Output, err = cliapp.Output(c); err != nil {
		return cfg, err
	}
	if cfg.Follow {
		return cfg, nil
	}
	if cfg.From, cfg.To, err = window.ParseRange(c.String(flagFrom), c.String(flagTo), now); err != nil {
		return cfg, cliapp.Exit(err, cliapp.ExitFailure)
	}
	return cfg, nil
}

func runRollup(ctx context.Context, env cliapp.Env, cfg rollupConfig) error {
	job, closeJob, err := newRollupJob(cfg.Influx, env.Logger)
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	defer closeJob()
	if cfg.Follow {
		pc, err := influx.NewClient(cfg.Influx)
		if err != nil {
			return cliapp.Exit(err, cliapp.ExitFailure)
		}
		defer pc.Close()
		ping := func(ctx context.Context) error { _, err := pc.Ping(ctx); return err }
		return followRollups(ctx, cfg, job, ping, env.Logger)
	}
	res, err := job.Range(ctx, cfg.From, cfg.To)
	if err != nil {
		return err
	}
	doc := rollupDoc{From: res.From, To: res.To, Points: res.Points, Took: res.Elapsed.Round(time.Millisecond).String()}
	if cfg.Output == "json" {
		return writeJSON(env.Out, doc)
	}
	fmt.Fprintf(env.Out, "rolled up [%s, %s): %d points in %s\n", doc.From.Format(time.RFC3339), doc.To.Format(time.RFC3339), doc.Points, doc.Took)
	return nil
}

// rollupDoc is a range rollup's --output json.
type rollupDoc struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Points int64     `json:"points"`
	Took   string    `json:"took"`
}

// newRollupJob opens the InfluxQL client and the writer a rollup needs.
func newRollupJob(cfg influx.Config, logger *slog.Logger) (*rollup.Job, func(), error) {
	q, err := influx.NewClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	w, err := influx.NewWriter(cfg, logger)
	if err != nil {
		q.Close()
		return nil, nil, err
	}
	return rollup.New(q, w, logger), func() { q.Close(); w.Close() }, nil
}

// followRollups runs the follow loop with the HTTP endpoints alongside.
func followRollups(ctx context.Context, cfg rollupConfig, job *rollup.Job, ping func(context.Context) error, logger *slog.Logger) error {
	reg := obs.NewRegistry()
	job.WithMetrics(reg)
	srv := obs.NewServer(cfg.HTTPAddr, reg, logger)
	srv.AddReadiness(obs.ReadinessCheck{Name: "influxdb", Check: ping})
	if err := srv.Listen(); err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	logger.Info("rollup following", "lookback", cfg.Lookback, "delay", cfg.Delay)
	err := job.Follow(ctx, cfg.Lookback, cfg.Delay, nil, retry.Sleep, func(r rollup.Result) {
		logger.Info("rolled up", "from", r.From, "to", r.To, "points", r.Points, "took", r.Elapsed.Round(time.Millisecond))
	})
	stop()
	if serr := <-done; err == nil && serr != nil && ctx.Err() == nil {
		err = serr
	}
	return err
}

// rollupAfterRun rebuilds the dashboards' rollups over the windows a run
// repaired: the rollup job's follow mode looks back only an hour.
func rollupAfterRun(ctx context.Context, cfg influx.Config, a *gaps.Analysis, runID string, logger *slog.Logger) (int64, error) {
	targets := a.Targets()
	starts := make([]time.Time, 0, len(targets))
	for k := range targets {
		starts = append(starts, k.Start)
	}
	n, err := rollupRepaired(ctx, cfg, starts, a.Window, logger)
	if err != nil {
		return n, fmt.Errorf("run %s wrote its readings, but rebuilding the dashboards' rollups failed (repeat with: backfill rollup --from %s --to %s): %w",
			runID, a.From.Format(time.RFC3339), a.To.Format(time.RFC3339), err)
	}
	return n, nil
}

// rollupRepaired rolls up the windows backfill run wrote into (their
// starts, each w wide), merged into contiguous spans, and returns the
// points written.
func rollupRepaired(ctx context.Context, cfg influx.Config, starts []time.Time, w time.Duration, logger *slog.Logger) (int64, error) {
	if len(starts) == 0 {
		return 0, nil
	}
	job, closeJob, err := newRollupJob(cfg, logger)
	if err != nil {
		return 0, err
	}
	defer closeJob()
	starts = slices.SortedFunc(slices.Values(starts), time.Time.Compare)
	starts = slices.CompactFunc(starts, time.Time.Equal)
	var points int64
	from, to := starts[0], starts[0].Add(w)
	flush := func() error {
		res, err := job.Range(ctx, from, to)
		points += res.Points
		return err
	}
	for _, s := range starts[1:] {
		if s.After(to) {
			if err := flush(); err != nil {
				return points, err
			}
			from = s
		}
		to = s.Add(w)
	}
	return points, flush()
}
