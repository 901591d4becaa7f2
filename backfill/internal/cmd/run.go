package cmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/backfill/internal/progress"
	"github.com/flexipack/cutover/backfill/internal/replay"
	"github.com/flexipack/cutover/backfill/internal/throttle"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/window"
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
		Action: runRun,
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

func runRun(c *cli.Context) error {
	ctx := c.Context
	logger := cliapp.Logger(c)
	output, err := cliapp.Output(c)
	if err != nil {
		return err
	}
	execute, resume := c.Bool(flagExecute), c.Bool(flagResume)
	started := time.Now()

	var state *cutover.Store
	if execute || resume || c.Bool(flagFromLedger) {
		if state, err = cutover.Open(ctx, c.String(cliapp.FlagStateDSN)); err != nil {
			return err
		}
		defer state.Close()
	}

	var (
		p     params
		runID string
		done  map[cutover.WindowKey]bool
	)
	if resume {
		var run cutover.BackfillRun
		if id := c.String(flagRunID); id != "" {
			run, err = state.BackfillRunByID(ctx, id)
		} else {
			run, err = state.LatestUnfinishedBackfillRun(ctx)
		}
		if err != nil {
			return cli.Exit(err.Error(), cliapp.ExitFailure)
		}
		if run.FinishedAt != nil {
			return cli.Exit(fmt.Sprintf("run %s finished at %s: nothing to resume", run.RunID, run.FinishedAt.Format(time.RFC3339)), cliapp.ExitFailure)
		}
		if err := json.Unmarshal(run.Params, &p); err != nil {
			return fmt.Errorf("run %s: stored parameters: %w", run.RunID, err)
		}
		if p.window() <= 0 {
			return fmt.Errorf("run %s: stored window %q is not a duration", run.RunID, p.Window)
		}
		if cur := sourceName(c); cur != p.Source {
			logger.Warn("resuming with another snapshot source than the run started with", "run_source", p.Source, "now", cur)
		}
		runID = run.RunID
		if done, err = state.DoneWindows(ctx, runID); err != nil {
			return err
		}
		logger.Info("resuming backfill run", "run_id", runID, "from", p.From, "to", p.To, "window", p.Window, "windows_done", len(done))
	} else {
		if p, err = paramsFromCLI(c, started, sourceName(c)); err != nil {
			return err
		}
	}

	a, err := analyse(ctx, c, logger, p, state)
	if err != nil {
		return err
	}
	defer a.close()
	targets := a.targets()
	var pointsPlanned, windowsPlanned int64
	for _, g := range a.gaps {
		if !done[cutover.WindowKey(g.Key())] {
			pointsPlanned += g.Snapshot
			windowsPlanned++
		}
	}
	doc := a.doc()
	sum := summary{RunID: runID, Execute: execute, Resumed: resume, DoneBefore: len(done), Params: p, WindowsChecked: a.checked, GapsFound: len(a.gaps),
		MissingReadings: doc.MissingTotal, PointsPlanned: pointsPlanned, WindowsPlanned: windowsPlanned,
		Snapshots: doc.Snapshots, LedgerOpen: a.uncovered}

	if !execute {
		sum.Damage = a.damage.Summary()
		sum.Skipped = a.damage.Skipped()
		sum.Took = time.Since(started).Round(time.Millisecond).String()
		if output == "json" {
			if err := writeJSON(c, struct {
				summary
				DryRun bool `json:"dry_run"`
				Gaps   any  `json:"gaps"`
			}{sum, true, doc.Gaps}); err != nil {
				return err
			}
		} else {
			printGaps(c, doc)
			fmt.Fprintf(c.App.Writer, "dry run: would write %d readings in %d windows", pointsPlanned, windowsPlanned)
			if len(done) > 0 {
				fmt.Fprintf(c.App.Writer, " (%d windows already done by run %s)", len(done), runID)
			}
			fmt.Fprintln(c.App.Writer, "; nothing written. Add --execute to write.")
		}
		return exitFor(sum.Skipped, "dry run")
	}

	if !resume {
		runID = newRunID(started)
		sum.RunID = runID
		if err := state.StartBackfillRun(ctx, runID, p); err != nil {
			return err
		}
		logger.Info("backfill run started", "run_id", runID, "resume_with", "backfill run --execute --resume --run-id "+runID)
	}

	replayStart := time.Now()
	res, th, err := execRun(ctx, c, a, state, runID, targets, done, pointsPlanned, windowsPlanned)
	sum.Result = res
	st := th.Status()
	sum.Throttle = &st
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return cli.Exit(fmt.Sprintf("run %s interrupted after %d readings in %d windows; continue with: backfill run --execute --resume --run-id %s",
				runID, res.PointsWritten, res.WindowsDone, runID), cliapp.ExitFailure)
		}
		return fmt.Errorf("run %s failed after %d readings in %d windows (continue with --resume --run-id %s): %w", runID, res.PointsWritten, res.WindowsDone, runID, err)
	}

	// Ledger entries are repaired when every window of theirs is written
	// and the snapshots covered their whole span.
	if a.ledger != nil {
		open := map[int64]bool{}
		for _, e := range a.uncovered {
			open[e.ID] = true
		}
		for _, e := range a.ledger.Entries {
			if !open[e.ID] {
				sum.LedgerRepaired = append(sum.LedgerRepaired, e.ID)
			}
		}
		sort.Slice(sum.LedgerRepaired, func(i, j int) bool { return sum.LedgerRepaired[i] < sum.LedgerRepaired[j] })
		if err := state.MarkRepaired(ctx, sum.LedgerRepaired, runID); err != nil {
			return err
		}
	}

	if res.PointsWritten > 0 && !c.Bool(flagNoRollup) {
		if sum.RollupPoints, err = rollupAfterRun(ctx, c, a, targets, runID); err != nil {
			return err
		}
	}

	replayTook := time.Since(replayStart)
	sum.ReplayTook = replayTook.Round(time.Millisecond).String()
	sum.ReplayPointsPerSecond = float64(res.PointsWritten) / replayTook.Seconds()
	took := time.Since(started)
	sum.Took = took.Round(time.Millisecond).String()
	if took > 0 {
		sum.PointsPerSecond = float64(res.PointsWritten) / took.Seconds()
	}
	dmg := a.damage.Summary()
	sum.Damage = dmg
	sum.Skipped = dmg.Skipped || res.PointsRejected > 0
	sum.PeakRSSMiB = peakRSSMiB()
	if err := state.FinishBackfillRun(ctx, runID, sum); err != nil {
		return err
	}
	logger.Info("backfill run finished", "run_id", runID, "windows_checked", sum.WindowsChecked, "gaps_found", sum.GapsFound,
		"points_written", res.PointsWritten, "windows_done", res.WindowsDone, "windows_skipped_as_done", res.WindowsResumed,
		"parts_skipped", a.collect.PartsCorrupt, "points_rejected", res.PointsRejected, "took", sum.Took)
	if output == "json" {
		if err := writeJSON(c, sum); err != nil {
			return err
		}
	} else {
		printSummary(c, sum, a, dmg.Counts, dmg.Details)
	}
	return exitFor(sum.Skipped, "run")
}

// execRun replays the targets with throttling, control, progress and the
// HTTP endpoints running alongside.
func execRun(ctx context.Context, c *cli.Context, a *analysis, state *cutover.Store, runID string, targets map[window.Key]bool, done map[cutover.WindowKey]bool, points, windows int64) (replay.Result, *throttle.Throttler, error) {
	logger := cliapp.Logger(c)
	tcfg := throttle.Config{Rate: c.Float64(flagRate), MaxWriteLatency: c.Duration(flagMaxWriteLatency), MaxQueueDepth: c.Int64(flagMaxQueueDepth), QueueName: c.String(flagQueue)}
	if tcfg.MaxQueueDepth > 0 {
		mgmt, vhost, queue := c.String(cliapp.FlagAMQPMgmtURL), c.String(flagVhost), c.String(flagQueue)
		tcfg.QueueDepth = func(ctx context.Context) (int64, error) { return rabbit.QueueDepth(ctx, mgmt, vhost, queue) }
	}
	th := throttle.New(tcfg)
	if a.sorter == nil || len(targets) == 0 && windows == 0 {
		return replay.Result{}, th, nil
	}

	reg := obs.NewRegistry()
	w, err := influx.NewWriter(cliapp.InfluxConfig(c), logger)
	if err != nil {
		return replay.Result{}, th, cli.Exit(err.Error(), cliapp.ExitFailure)
	}
	defer w.Close()
	w.WithMetrics(reg)
	metrics := replay.NewMetrics(reg)
	tracker := progress.NewTracker(points, windows)

	srv := obs.NewServer(c.String(cliapp.FlagHTTPAddr), reg, logger)
	srv.Handle("/control/", obs.RequireToken(c.String(cliapp.FlagControlToken), th.Handler(logger, func() any { return tracker.Snapshot() })))
	srv.AddReadiness(obs.ReadinessCheck{Name: "influxdb", Check: w.Ping})
	if c.Bool(flagPprof) {
		// Profiles of a long run, for the operator who wonders where time goes.
		srv.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
		srv.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	}
	if err := srv.Listen(); err != nil {
		return replay.Result{}, th, cli.Exit(err.Error(), cliapp.ExitFailure)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return th.Run(gctx) })
	if path := c.String(flagControlFile); path != "" {
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
		progress.Report(gctx, tracker, obs.IsTerminal(c.App.ErrWriter), c.App.ErrWriter, logger, c.Duration(flagProgressInterval), note)
		return nil
	})
	var res replay.Result
	g.Go(func() error {
		defer stop() // replay done: stop the helpers
		var err error
		res, err = replay.Run(gctx, a.sorter, replay.Config{
			RunID: runID, Window: a.w, Targets: targets, Done: done, Concurrency: c.Int(flagConcurrency),
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

func printSummary(c *cli.Context, s summary, a *analysis, counts map[string]int64, details []snapshot.Damage) {
	w := c.App.Writer
	fmt.Fprintf(w, "backfill run %s finished in %s (peak memory %.0f MiB)\n", s.RunID, s.Took, s.PeakRSSMiB)
	fmt.Fprintf(w, "  range             [%s, %s), window %s\n", a.from.Format(time.RFC3339), a.to.Format(time.RFC3339), s.Params.Window)
	fmt.Fprintf(w, "  snapshots read    %d (%d parts, %d skipped)\n", len(a.collect.SnapshotsRead), a.collect.PartsRead, a.collect.PartsCorrupt)
	fmt.Fprintf(w, "  windows checked   %d\n", s.WindowsChecked)
	fmt.Fprintf(w, "  gaps found        %d (%d readings missing)\n", s.GapsFound, s.MissingReadings)
	fmt.Fprintf(w, "  readings written  %d in %d windows (%.0f/s overall, %.0f/s while writing)\n", s.Result.PointsWritten, s.Result.WindowsDone, s.PointsPerSecond, s.ReplayPointsPerSecond)
	if s.DoneBefore > 0 {
		fmt.Fprintf(w, "  windows skipped   %d, finished before the resume\n", s.DoneBefore)
	}
	if s.Result.PointsWritten > 0 {
		if c.Bool(flagNoRollup) {
			fmt.Fprintf(w, "  dashboards        rollups not rebuilt (--no-rollup); run: backfill rollup --from %s --to %s\n", a.from.Format(time.RFC3339), a.to.Format(time.RFC3339))
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
	printDamage(c, counts, details)
}

// printDamage lists what was skipped and why.
func printDamage(c *cli.Context, counts map[string]int64, details []snapshot.Damage) {
	if len(counts) == 0 {
		return
	}
	w := c.App.Writer
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
