package cmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/backfill/internal/gaps"
	"github.com/flexipack/cutover/backfill/internal/progress"
	"github.com/flexipack/cutover/backfill/internal/replay"
	"github.com/flexipack/cutover/backfill/internal/throttle"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/snapshot"
)

const (
	flagExecute          = "execute"
	flagRate             = "rate"
	flagMaxWriteLatency  = "max-write-latency"
	flagMaxQueueDepth    = "max-queue-depth"
	flagQueue            = "queue"
	flagVhost            = "vhost"
	flagControlFile      = "control-file"
	flagResume           = "resume"
	flagRunID            = "run-id"
	flagProgressInterval = "progress-interval"
	flagConcurrency      = "write-concurrency"
	flagPprof            = "pprof"
)

func runFlags() []cli.Flag {
	return cliapp.Merge(sourceFlags(), cliapp.InfluxFlags(), cliapp.StateFlags(), rangeFlags(), []cli.Flag{
		&cli.BoolFlag{Name: flagExecute, Usage: "write to InfluxDB; without it the command is a dry run that only says what it would write"},
		&cli.Float64Flag{Name: flagRate, EnvVars: []string{"BACKFILL_RATE"}, Usage: "target write rate in readings per second (0 = as fast as InfluxDB takes them); changeable at run time", Category: "Throttling"},
		&cli.DurationFlag{Name: flagMaxWriteLatency, Value: 2 * time.Second, Usage: "slow down while the moving average of InfluxDB write latency exceeds this (0 = ignore latency)", Category: "Throttling"},
		&cli.IntFlag{Name: flagConcurrency, Value: replay.DefaultConcurrency, Usage: "write requests in flight at once (the rate limit applies to all together)", Category: "Throttling"},
		&cli.Int64Flag{Name: flagMaxQueueDepth, Usage: "slow down while the live ingest queue holds more messages than this (0 = do not watch the queue)", Category: "Throttling"},
		&cli.StringFlag{Name: flagQueue, Value: "telemetry.ingest", Usage: "the live ingest queue --max-queue-depth watches", Category: "Throttling"},
		&cli.StringFlag{Name: flagVhost, Value: "/", Usage: "RabbitMQ virtual host of --queue", Category: "Throttling"},
		cliapp.AMQPManagementFlag(),
		&cli.StringFlag{Name: flagControlFile, Usage: "watch this file for commands, one per line: pause, resume, rate N (applied when the file changes)", Category: "Control"},
		cliapp.HTTPAddrFlag("127.0.0.1:9102"),
		cliapp.ControlTokenFlag(),
		&cli.BoolFlag{Name: flagNoRollup, EnvVars: []string{"BACKFILL_NO_ROLLUP"}, Usage: "do not rebuild the dashboards' 5-minute rollups over the repaired windows (then run backfill rollup yourself)", Category: "Control"},
		&cli.BoolFlag{Name: flagPprof, EnvVars: []string{"BACKFILL_PPROF"}, Usage: "also serve /debug/pprof/ (goroutine dumps, CPU profiles) on --http-addr; keep --http-addr on loopback then", Category: "Control"},
		&cli.BoolFlag{Name: flagResume, Usage: "continue an interrupted run (the latest unfinished one, or --run-id) with its original range and selection, skipping the windows it finished", Category: "Control"},
		&cli.StringFlag{Name: flagRunID, Usage: "the run to continue with --resume", Category: "Control"},
		&cli.DurationFlag{Name: flagProgressInterval, Value: 10 * time.Second, Usage: "how often progress is logged when stderr is not a terminal (on a terminal a bar is drawn)", Category: "Control"},
		cliapp.OutputFlag(),
	})
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "replay the snapshot readings of the gap windows into InfluxDB (dry run unless --execute)",
		Description: `run finds the gap windows exactly as 'backfill gaps' does (or takes them from the gap
ledger with --from-ledger) and writes every snapshot reading of those (unit, window) pairs
to InfluxDB, through the consumer's codec and writer: the same points with the same
timestamps, so rewriting a reading InfluxDB already has changes nothing. Readings outside
the gap windows are never written. Without --execute nothing is written: the command says
what it would do.

Throttling: --rate sets a target in readings per second (a token bucket). The run also
slows down by itself while InfluxDB's write latency (moving average) is over
--max-write-latency or the live ingest queue is deeper than --max-queue-depth (read from
the RabbitMQ management API), and shows why in the progress line and in /control/status.

Control without a restart, on --http-addr (next to /metrics, /-/healthy, /-/ready):
  curl -X POST -H "Authorization: Bearer $CONTROL_TOKEN" localhost:9102/control/pause
  curl -X POST -H "Authorization: Bearer $CONTROL_TOKEN" localhost:9102/control/resume
  curl -X POST -H "Authorization: Bearer $CONTROL_TOKEN" 'localhost:9102/control/rate?points_per_second=2000'   (0 = unlimited)
  curl localhost:9102/control/status
The POST endpoints need --control-token (or --control-token-file) and refuse cross-origin
requests; without a token they are disabled and only the control file and signals work.
or with --control-file: write "pause", "resume" or "rate 2000" into the file. SIGUSR1
pauses and SIGUSR2 resumes.

Every finished (unit, window) is checkpointed in the state store. If the run is killed,
'backfill run --execute --resume' continues it (same range and selection) and never
rewrites a finished window. With --from-ledger, the ledger entries are marked repaired
once all their windows are written; entries no snapshot covers stay open.

Progress: a bar with rate and ETA on a terminal, a log line every --progress-interval
otherwise. The run ends with a summary: windows checked, gaps found, readings written,
parts and lines skipped and why.

Exit status: 0 clean, 3 if anything was skipped (corrupt parts, bad lines, readings
outside a manifest's range, readings InfluxDB refused), 1 on errors or interruption.

Examples:
  backfill run --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z            (dry run)
  backfill run --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z --execute --rate 5000
  backfill run --execute --resume
  backfill run --from-ledger --from 720h --execute --max-queue-depth 10000`,
		Flags:  runFlags(),
		Action: cliapp.Action(runConfigFrom, runRun),
	}
}

// summary is the final report of a run (and the JSON of --output json).
type summary struct {
	RunID   string `json:"run_id,omitempty"`
	Execute bool   `json:"execute"`
	Resumed bool   `json:"resumed"`
	// DoneBefore are the windows the run had checkpointed before this
	// attempt (resume): never written again.
	DoneBefore      int           `json:"windows_done_before_resume"`
	Params          params        `json:"params"`
	WindowsChecked  int           `json:"windows_checked"`
	GapsFound       int           `json:"gaps_found"`
	MissingReadings int64         `json:"missing_readings"`
	PointsPlanned   int64         `json:"points_planned"`
	WindowsPlanned  int64         `json:"windows_planned"`
	Result          replay.Result `json:"result"`
	Snapshots       any           `json:"snapshots"`
	Damage          any           `json:"damage"`
	LedgerRepaired  []int64       `json:"ledger_repaired,omitempty"`
	LedgerOpen      []cutover.Gap `json:"ledger_not_covered,omitempty"`
	Took            string        `json:"took"`
	PointsPerSecond float64       `json:"points_per_second"`
	// ReplayTook and ReplayPointsPerSecond cover the writing phase only
	// (after the snapshots were read and the gaps found).
	ReplayTook            string           `json:"replay_took"`
	ReplayPointsPerSecond float64          `json:"replay_points_per_second"`
	Throttle              *throttle.Status `json:"throttle,omitempty"`
	Skipped               bool             `json:"skipped_anything"`
	// PeakRSSMiB is the process's peak memory (Linux), for capacity planning.
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
	// RollupPoints are the dashboards' 5-minute rollup points rebuilt over
	// the repaired windows (shared/rollup).
	RollupPoints int64 `json:"rollup_points"`
}

func newRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "bf-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// runConfig is what run runs with.
type runConfig struct {
	Output   string
	Execute  bool
	Resume   bool
	RunID    string // the run --resume continues ("": the latest unfinished)
	Params   params // the selection of a new run (unused with Resume)
	StateDSN string
	Analysis analysisConfig
	// Throttle, with MgmtURL and Vhost for the queue depth it watches.
	Throttle         throttle.Config
	MgmtURL, Vhost   string
	Concurrency      int
	HTTPAddr         string
	ControlToken     string
	ControlFile      string
	Pprof            bool
	ProgressInterval time.Duration
	// NoRollup leaves the dashboards' rollups of the repaired windows alone.
	NoRollup bool
}

func runConfigFrom(c *cli.Context) (runConfig, error) {
	output, err := cliapp.Output(c)
	if err != nil {
		return runConfig{}, err
	}
	cfg := runConfig{Output: output, Execute: c.Bool(flagExecute), Resume: c.Bool(flagResume), RunID: c.String(flagRunID),
		StateDSN: c.String(cliapp.FlagStateDSN), Analysis: analysisConfigFrom(c),
		Throttle: throttle.Config{Rate: c.Float64(flagRate), MaxWriteLatency: c.Duration(flagMaxWriteLatency),
			MaxQueueDepth: c.Int64(flagMaxQueueDepth), QueueName: c.String(flagQueue)},
		MgmtURL: c.String(cliapp.FlagAMQPMgmtURL), Vhost: c.String(flagVhost), Concurrency: c.Int(flagConcurrency),
		HTTPAddr: c.String(cliapp.FlagHTTPAddr), ControlToken: c.String(cliapp.FlagControlToken), ControlFile: c.String(flagControlFile),
		Pprof: c.Bool(flagPprof), ProgressInterval: c.Duration(flagProgressInterval), NoRollup: c.Bool(flagNoRollup)}
	if !cfg.Resume {
		if cfg.Params, err = paramsFromCLI(c, time.Now(), cfg.Analysis.Snapshots.name()); err != nil {
			return runConfig{}, err
		}
	} else {
		cfg.Params.FromLedger = c.Bool(flagFromLedger)
	}
	return cfg, nil
}

// job is the run being made: new, or resumed with its stored selection.
type job struct {
	p     params
	runID string                     // "" for a new run until it starts
	done  map[cutover.WindowKey]bool // windows finished before a resume
}

// resumeJob loads the run to resume: its parameters and finished windows.
func resumeJob(ctx context.Context, cfg runConfig, state *cutover.Store, logger *slog.Logger) (job, error) {
	var run cutover.BackfillRun
	var err error
	if cfg.RunID != "" {
		run, err = state.BackfillRunByID(ctx, cfg.RunID)
	} else {
		run, err = state.LatestUnfinishedBackfillRun(ctx)
	}
	if err != nil {
		return job{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	if run.FinishedAt != nil {
		return job{}, cliapp.Exitf(cliapp.ExitFailure, "run %s finished at %s: nothing to resume", run.RunID, run.FinishedAt.Format(time.RFC3339))
	}
	j := job{runID: run.RunID}
	if err := json.Unmarshal(run.Params, &j.p); err != nil {
		return job{}, fmt.Errorf("run %s: stored parameters: %w", run.RunID, err)
	}
	if j.p.window() <= 0 {
		return job{}, fmt.Errorf("run %s: stored window %q is not a duration", run.RunID, j.p.Window)
	}
	if cur := cfg.Analysis.Snapshots.name(); cur != j.p.Source {
		logger.Warn("resuming with another snapshot source than the run started with", "run_source", j.p.Source, "now", cur)
	}
	if j.done, err = state.DoneWindows(ctx, j.runID); err != nil {
		return job{}, err
	}
	logger.Info("resuming backfill run", "run_id", j.runID, "from", j.p.From, "to", j.p.To, "window", j.p.Window, "windows_done", len(j.done))
	return j, nil
}

func runRun(ctx context.Context, env cliapp.Env, cfg runConfig) error {
	logger := env.Logger
	started := time.Now()
	var state *cutover.Store
	if cfg.Execute || cfg.Resume || cfg.Params.FromLedger {
		var err error
		if state, err = cutover.Open(ctx, cfg.StateDSN); err != nil {
			return err
		}
		defer state.Close()
	}
	j := job{p: cfg.Params}
	if cfg.Resume {
		var err error
		if j, err = resumeJob(ctx, cfg, state, logger); err != nil {
			return err
		}
	}
	a, err := analyse(ctx, cfg.Analysis, j.p, state, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	sum, doc := plan(cfg, j, a)
	if !cfg.Execute {
		return dryRun(env.Out, cfg.Output, sum, doc, j, a, started)
	}
	if !cfg.Resume {
		j.runID = newRunID(started)
		sum.RunID = j.runID
		if err := state.StartBackfillRun(ctx, j.runID, j.p); err != nil {
			return err
		}
		logger.Info("backfill run started", "run_id", j.runID, "resume_with", "backfill run --execute --resume --run-id "+j.runID)
	}
	replayStart := time.Now()
	res, th, err := execRun(ctx, env, cfg, a, state, j, sum.PointsPlanned, sum.WindowsPlanned)
	sum.Result = res
	st := th.Status()
	sum.Throttle = &st
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return cliapp.Exitf(cliapp.ExitFailure, "run %s interrupted after %d readings in %d windows; continue with: backfill run --execute --resume --run-id %s", j.runID, res.PointsWritten, res.WindowsDone, j.runID)
		}
		return fmt.Errorf("run %s failed after %d readings in %d windows (continue with --resume --run-id %s): %w", j.runID, res.PointsWritten, res.WindowsDone, j.runID, err)
	}
	if err := markLedgerRepaired(ctx, state, a, j.runID, &sum); err != nil {
		return err
	}
	if res.PointsWritten > 0 && !cfg.NoRollup {
		if sum.RollupPoints, err = rollupAfterRun(ctx, cfg.Analysis.Influx, a, j.runID, logger); err != nil {
			return err
		}
	}
	return finishRun(ctx, env, cfg, state, a, sum, started, replayStart)
}

// plan sums up what the run will write: the gap windows not done before.
func plan(cfg runConfig, j job, a *gaps.Analysis) (summary, gaps.Doc) {
	var pointsPlanned, windowsPlanned int64
	for _, g := range a.Gaps {
		if !j.done[cutover.WindowKey(g.Key())] {
			pointsPlanned += g.Snapshot
			windowsPlanned++
		}
	}
	doc := a.Doc(j.p.Source)
	return summary{RunID: j.runID, Execute: cfg.Execute, Resumed: cfg.Resume, DoneBefore: len(j.done), Params: j.p, WindowsChecked: a.Checked,
		GapsFound: len(a.Gaps), MissingReadings: doc.MissingTotal, PointsPlanned: pointsPlanned, WindowsPlanned: windowsPlanned,
		Snapshots: doc.Snapshots, LedgerOpen: a.Uncovered}, doc
}

// dryRun prints what the run would write.
func dryRun(w io.Writer, output string, sum summary, doc gaps.Doc, j job, a *gaps.Analysis, started time.Time) error {
	sum.Damage = a.Damage.Summary()
	sum.Skipped = a.Damage.Skipped()
	sum.Took = time.Since(started).Round(time.Millisecond).String()
	if output == "json" {
		if err := writeJSON(w, struct {
			summary
			DryRun bool `json:"dry_run"`
			Gaps   any  `json:"gaps"`
		}{sum, true, doc.Gaps}); err != nil {
			return err
		}
	} else {
		printGaps(w, doc)
		fmt.Fprintf(w, "dry run: would write %d readings in %d windows", sum.PointsPlanned, sum.WindowsPlanned)
		if len(j.done) > 0 {
			fmt.Fprintf(w, " (%d windows already done by run %s)", len(j.done), j.runID)
		}
		fmt.Fprintln(w, "; nothing written. Add --execute to write.")
	}
	return exitFor(sum.Skipped, "dry run")
}

// markLedgerRepaired marks the ledger entries repaired: those whose windows
// were all written and whose whole span the snapshots covered.
func markLedgerRepaired(ctx context.Context, state *cutover.Store, a *gaps.Analysis, runID string, sum *summary) error {
	if a.Ledger == nil {
		return nil
	}
	open := map[int64]bool{}
	for _, e := range a.Uncovered {
		open[e.ID] = true
	}
	for _, e := range a.Ledger.Entries {
		if !open[e.ID] {
			sum.LedgerRepaired = append(sum.LedgerRepaired, e.ID)
		}
	}
	sort.Slice(sum.LedgerRepaired, func(i, j int) bool { return sum.LedgerRepaired[i] < sum.LedgerRepaired[j] })
	return state.MarkRepaired(ctx, sum.LedgerRepaired, runID)
}

// finishRun records the run as finished and prints its summary.
func finishRun(ctx context.Context, env cliapp.Env, cfg runConfig, state *cutover.Store, a *gaps.Analysis, sum summary, started, replayStart time.Time) error {
	res := sum.Result
	replayTook := time.Since(replayStart)
	sum.ReplayTook = replayTook.Round(time.Millisecond).String()
	sum.ReplayPointsPerSecond = float64(res.PointsWritten) / replayTook.Seconds()
	took := time.Since(started)
	sum.Took = took.Round(time.Millisecond).String()
	if took > 0 {
		sum.PointsPerSecond = float64(res.PointsWritten) / took.Seconds()
	}
	dmg := a.Damage.Summary()
	sum.Damage = dmg
	sum.Skipped = dmg.Skipped || res.PointsRejected > 0
	sum.PeakRSSMiB = peakRSSMiB()
	if err := state.FinishBackfillRun(ctx, sum.RunID, sum); err != nil {
		return err
	}
	env.Logger.Info("backfill run finished", "run_id", sum.RunID, "windows_checked", sum.WindowsChecked, "gaps_found", sum.GapsFound,
		"points_written", res.PointsWritten, "windows_done", res.WindowsDone, "windows_skipped_as_done", res.WindowsResumed,
		"parts_skipped", a.Collect.PartsCorrupt, "points_rejected", res.PointsRejected, "took", sum.Took)
	if cfg.Output == "json" {
		if err := writeJSON(env.Out, sum); err != nil {
			return err
		}
	} else {
		printSummary(env.Out, cfg.NoRollup, sum, a, dmg.Counts, dmg.Details)
	}
	return exitFor(sum.Skipped, "run")
}

// execRun replays the targets with throttling, control, progress and the
// HTTP endpoints running alongside.
func execRun(ctx context.Context, env cliapp.Env, cfg runConfig, a *gaps.Analysis, state *cutover.Store, j job, points, windows int64) (replay.Result, *throttle.Throttler, error) {
	logger := env.Logger
	tcfg := cfg.Throttle
	if tcfg.MaxQueueDepth > 0 {
		mgmt, vhost, queue := cfg.MgmtURL, cfg.Vhost, tcfg.QueueName
		tcfg.QueueDepth = func(ctx context.Context) (int64, error) { return rabbit.QueueDepth(ctx, mgmt, vhost, queue) }
	}
	th := throttle.New(tcfg)
	targets := a.Targets()
	if a.Sorter == nil || len(targets) == 0 && windows == 0 {
		return replay.Result{}, th, nil
	}

	reg := obs.NewRegistry()
	w, err := influx.NewWriter(cfg.Analysis.Influx, logger)
	if err != nil {
		return replay.Result{}, th, cliapp.Exit(err, cliapp.ExitFailure)
	}
	defer w.Close()
	w.WithMetrics(reg)
	metrics := replay.NewMetrics(reg)
	tracker := progress.NewTracker(points, windows)
	srv, err := controlServer(cfg, reg, th, tracker, w.Ping, logger)
	if err != nil {
		return replay.Result{}, th, err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return th.Run(gctx) })
	if path := cfg.ControlFile; path != "" {
		g.Go(func() error { return th.WatchFile(gctx, path, time.Second, logger) })
	}
	g.Go(func() error { watchSignals(gctx, th, logger); return nil })
	g.Go(func() error {
		note := func() string {
			s := th.Status()
			metrics.Paused.Set(map[bool]float64{true: 1}[s.State == "paused"])
			if s.Reason != "" {
				return s.State + ": " + s.Reason
			}
			return ""
		}
		progress.Report(gctx, tracker, obs.IsTerminal(env.Err), env.Err, logger, cfg.ProgressInterval, note)
		return nil
	})
	g.Go(func() error { reportProgress(gctx, state, j.runID, tracker, th, 2*time.Second, logger); return nil })
	var res replay.Result
	g.Go(func() error {
		defer stop() // replay done: stop the helpers
		var err error
		res, err = replay.Run(gctx, a.Sorter, replay.Config{
			RunID: j.runID, Window: a.Window, Targets: targets, Done: j.done, Concurrency: cfg.Concurrency,
			Writer: w, Checkpoints: state, Throttle: th, Progress: tracker, Metrics: metrics, Logger: logger,
		})
		return err
	})
	err = g.Wait()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return res, th, err
}

// controlServer is the run's HTTP server: /metrics, health, readiness
// (InfluxDB answers), the control endpoints and, with --pprof, profiles.
func controlServer(cfg runConfig, reg *prometheus.Registry, th *throttle.Throttler, tracker *progress.Tracker, ping func(context.Context) error, logger *slog.Logger) (*obs.Server, error) {
	srv := obs.NewServer(cfg.HTTPAddr, reg, logger)
	srv.Handle("/control/", obs.RequireToken(cfg.ControlToken, th.Handler(logger, func() any { return tracker.Snapshot() })))
	srv.AddReadiness(obs.ReadinessCheck{Name: "influxdb", Check: ping})
	if cfg.Pprof {
		// Profiles of a long run, for the operator who wonders where time goes.
		srv.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
		srv.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	}
	if err := srv.Listen(); err != nil {
		return nil, cliapp.Exit(err, cliapp.ExitFailure)
	}
	return srv, nil
}

// reportProgress writes the run's progress and throttle state to the state
// store every interval, and once more at the end, so that the console shows
// a running backfill without reaching this process. A failed write is
// logged and retried at the next tick: progress reports never stop a run.
func reportProgress(ctx context.Context, state *cutover.Store, runID string, tracker *progress.Tracker, th *throttle.Throttler, interval time.Duration, logger *slog.Logger) {
	save := func(ctx context.Context) {
		s, ts := tracker.Snapshot(), th.Status()
		p := cutover.BackfillProgress{PointsTotal: s.PointsTotal, PointsDone: s.PointsDone, WindowsTotal: s.WindowsTotal, WindowsDone: s.WindowsDone,
			Rate: s.Rate, ETASeconds: s.ETASeconds, ThrottleState: ts.State, ThrottleReason: ts.Reason, RateLimit: ts.EffectiveRate}
		if err := state.SaveBackfillProgress(ctx, runID, p); err != nil {
			logger.Warn("could not record backfill progress in the state store", "run_id", runID, "err", err)
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			save(final)
			cancel()
			return
		case <-tick.C:
			save(ctx)
		}
	}
}

// watchSignals pauses on SIGUSR1 and resumes on SIGUSR2.
func watchSignals(ctx context.Context, th *throttle.Throttler, logger interface{ Info(string, ...any) }) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			if s == syscall.SIGUSR1 {
				th.Pause("paused by operator (SIGUSR1)")
				logger.Info("paused by operator", "via", "SIGUSR1")
			} else {
				th.Resume()
				logger.Info("resumed by operator", "via", "SIGUSR2")
			}
		}
	}
}

func printSummary(w io.Writer, noRollup bool, s summary, a *gaps.Analysis, counts map[string]int64, details []snapshot.Damage) {
	fmt.Fprintf(w, "backfill run %s finished in %s (peak memory %.0f MiB)\n", s.RunID, s.Took, s.PeakRSSMiB)
	fmt.Fprintf(w, "  range             [%s, %s), window %s\n", a.From.Format(time.RFC3339), a.To.Format(time.RFC3339), s.Params.Window)
	fmt.Fprintf(w, "  snapshots read    %d (%d parts, %d skipped)\n", len(a.Collect.SnapshotsRead), a.Collect.PartsRead, a.Collect.PartsCorrupt)
	fmt.Fprintf(w, "  windows checked   %d\n", s.WindowsChecked)
	fmt.Fprintf(w, "  gaps found        %d (%d readings missing)\n", s.GapsFound, s.MissingReadings)
	fmt.Fprintf(w, "  readings written  %d in %d windows (%.0f/s overall, %.0f/s while writing)\n", s.Result.PointsWritten, s.Result.WindowsDone, s.PointsPerSecond, s.ReplayPointsPerSecond)
	if s.DoneBefore > 0 {
		fmt.Fprintf(w, "  windows skipped   %d, finished before the resume\n", s.DoneBefore)
	}
	if s.Result.PointsWritten > 0 {
		if noRollup {
			fmt.Fprintf(w, "  dashboards        rollups not rebuilt (--no-rollup); run: backfill rollup --from %s --to %s\n", a.From.Format(time.RFC3339), a.To.Format(time.RFC3339))
		} else {
			fmt.Fprintf(w, "  dashboards        %d 5-minute rollup points rebuilt over the repaired windows\n", s.RollupPoints)
		}
	}
	if s.Result.PointsRejected > 0 {
		fmt.Fprintf(w, "  refused by InfluxDB %d readings, e.g. %v\n", s.Result.PointsRejected, s.Result.Rejected[:min(3, len(s.Result.Rejected))])
	}
	if len(s.LedgerRepaired) > 0 {
		fmt.Fprintf(w, "  ledger repaired   %d entries\n", len(s.LedgerRepaired))
	}
	for _, e := range s.LedgerOpen {
		fmt.Fprintf(w, "  ledger entry %d (%s) left open: no snapshot covers %s..%s\n", e.ID, e.Unit, e.From.Format(time.RFC3339), e.To.Format(time.RFC3339))
	}
	printDamage(w, counts, details)
}

// printDamage lists what was skipped and why.
func printDamage(w io.Writer, counts map[string]int64, details []snapshot.Damage) {
	if len(counts) == 0 {
		return
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintln(w, "snapshot damage:")
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-22s %d\n", k, counts[k])
	}
	for _, d := range details {
		fmt.Fprintf(w, "  - %s\n", d)
	}
}
