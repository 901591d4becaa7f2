package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/producer/internal/sim"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/obs"
)

func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:      "simulate",
		Usage:     "simulate a fleet of battery storage units and publish its telemetry",
		UsageText: "producer simulate [--units N] [--count N | --duration D] [--time-scale X] [--rate R] [options]",
		Description: `Simulates --units battery storage units reporting every --cadence, and publishes each
message to the bus with publisher confirms. A message counts as sent only once the broker
confirmed it; a batch the broker refuses is sent again, so delivery is at-least-once.

The fleet behaves like one: state of charge integrates current against each unit's capacity,
units charge at night and around midday and discharge in the evening (in their site's local
time), temperatures follow power and the weather, faults and maintenance take units out of
service, alarms fire, and generation-2 units go offline and later flush what they buffered
as one message of up to 1,000 samples, partly out of order. A share of the fleet
(--gen1-share) runs generation-1 firmware; generation-2 units differ in namespace prefix,
schemaVersion, units (V/mV, A/mA, kW/W, C/F/K), time zone and time precision, all within
the contract. Sites include names hostile to escaping ("North Yard, Bay 3",
'Depot & Yard "7"').

Time: the simulated clock starts at --start and advances one cadence per tick, --time-scale
simulated seconds per wall-clock second (1 = real time, 1440 = a day a minute, 0 = as fast
as the bus takes it). It never passes the wall clock: no reading is ever in the future, and
a run that catches up continues in real time. The default --start is now minus what the run
will simulate (--count messages, or --duration × --time-scale), so a run ends near now.
The same --seed and --start produce the same messages.

--bad-ratio mixes in messages the consumer must reject whole (truncated XML, unknown
namespace, no unit, DTD, foreign encoding) and samples it must reject while keeping their
siblings; they come on top of the fleet's good readings, never instead of them.

At the end it prints a summary (--output json for scripts): messages, readings a decoder
accepts, rejected samples, bad messages, rate. While it runs it serves /metrics, /-/healthy
and /-/ready (ready while the broker is connected) on --http-addr.

Examples:
  producer simulate --units 200 --duration 1m --time-scale 1440     # a day of data in a minute
  producer simulate --units 50 --count 100000 --time-scale 0 -o json  # as fast as possible
  producer simulate --units 20 --bad-ratio 0.05 --bus kafka --kafka-brokers 127.0.0.1:9092`,
		Flags:  cliapp.Merge(simulateFlags(), busFlags()),
		Action: cliapp.Action(simulateConfigFrom, runSimulate),
	}
}

func simulateFlags() []cli.Flag {
	const cat = "Simulation"
	return []cli.Flag{
		&cli.IntFlag{Name: "units", EnvVars: []string{"SIM_UNITS"}, Value: 100, Category: cat, Usage: "units in the fleet"},
		&cli.Float64Flag{Name: "gen1-share", EnvVars: []string{"SIM_GEN1_SHARE"}, Value: 0.3, Category: cat, Usage: "share of units on generation-1 firmware, 0..1"},
		&cli.DurationFlag{Name: "cadence", EnvVars: []string{"SIM_CADENCE"}, Value: 10 * time.Second, Category: cat, Usage: "reporting interval of every unit (whole seconds); reports are jittered within it"},
		&cli.Int64Flag{Name: "count", EnvVars: []string{"SIM_COUNT"}, Category: cat, Usage: "stop after this many messages (0: no limit)"},
		&cli.DurationFlag{Name: "duration", EnvVars: []string{"SIM_DURATION"}, Category: cat, Usage: "stop after this much wall-clock time (0: no limit)"},
		&cli.Float64Flag{Name: "rate", EnvVars: []string{"SIM_RATE"}, Category: cat, Usage: "most messages per second (0: as fast as the bus confirms)"},
		&cli.Float64Flag{Name: "time-scale", EnvVars: []string{"SIM_TIME_SCALE"}, Value: 1, Category: cat, Usage: "simulated seconds per wall-clock second; 0 runs unpaced"},
		&cli.StringFlag{Name: "start", EnvVars: []string{"SIM_START"}, Category: cat, Usage: "simulated start time, RFC 3339 (default: now minus the simulated span)"},
		&cli.Uint64Flag{Name: "seed", EnvVars: []string{"SIM_SEED"}, Category: cat, Usage: "random seed for a reproducible fleet (0: pick one and report it)"},
		&cli.Float64Flag{Name: "bad-ratio", EnvVars: []string{"SIM_BAD_RATIO"}, Category: cat, Usage: "bad messages or rejected samples added per good message, 0..1"},
		&cli.Float64Flag{Name: "offline-prob", EnvVars: []string{"SIM_OFFLINE_PROB"}, Value: 0.002, Category: cat, Usage: "chance per cadence that a generation-2 unit goes offline (negative: never)"},
		&cli.Float64Flag{Name: "fault-prob", EnvVars: []string{"SIM_FAULT_PROB"}, Value: 0.0003, Category: cat, Usage: "chance per cadence that a unit goes into fault (mode fault for 10-59 cadences, a critical GND alarm) (0 or negative: never)"},
		&cli.IntFlag{Name: "publishers", EnvVars: []string{"SIM_PUBLISHERS"}, Value: 4, Category: cat, Usage: "concurrent publishing workers (a unit always uses the same one, in order)"},
		&cli.IntFlag{Name: "batch", EnvVars: []string{"SIM_BATCH"}, Value: 256, Category: cat, Usage: "most messages per publish call"},
		&cli.DurationFlag{Name: "progress", EnvVars: []string{"SIM_PROGRESS"}, Value: 10 * time.Second, Category: cat, Usage: "interval of progress log lines"},
		cliapp.OutputFlag(),
		cliapp.HTTPAddrFlag("127.0.0.1:9101"),
	}
}

// simulateConfig is what simulate runs with.
type simulateConfig struct {
	Run      sim.RunConfig
	Output   string
	HTTPAddr string
	Bus      busConfig
}

func simulateConfigFrom(c *cli.Context) (simulateConfig, error) {
	output, err := cliapp.Output(c)
	if err != nil {
		return simulateConfig{}, err
	}
	cfg := sim.RunConfig{
		Fleet: sim.Config{
			Units:       c.Int("units"),
			Gen1Share:   c.Float64("gen1-share"),
			Cadence:     c.Duration("cadence"),
			Seed:        c.Uint64("seed"),
			BadRatio:    c.Float64("bad-ratio"),
			OfflineProb: c.Float64("offline-prob"),
			FaultProb:   c.Float64("fault-prob"),
		},
		Count:      c.Int64("count"),
		Duration:   c.Duration("duration"),
		Rate:       c.Float64("rate"),
		TimeScale:  c.Float64("time-scale"),
		Publishers: c.Int("publishers"),
		Batch:      c.Int("batch"),
		Progress:   c.Duration("progress"),
	}
	if cfg.Fleet.Seed == 0 {
		cfg.Fleet.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.Fleet.OfflineProb == 0 {
		cfg.Fleet.OfflineProb = -1 // 0 on the command line means never
	}
	if cfg.Fleet.FaultProb == 0 {
		cfg.Fleet.FaultProb = -1
	}
	if s := c.String("start"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return simulateConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--start %q: want RFC 3339, e.g. 2026-11-20T00:00:00Z", s)
		}
		cfg.Start = t
	}
	if _, err := sim.NewFleet(cfg.Fleet); err != nil {
		return simulateConfig{}, cliapp.Exitf(cliapp.ExitFailure, "simulate: %w", err)
	}
	bus, err := busConfigFrom(c)
	if err != nil {
		return simulateConfig{}, err
	}
	return simulateConfig{Run: cfg, Output: output, HTTPAddr: c.String(cliapp.FlagHTTPAddr), Bus: bus}, nil
}

func runSimulate(ctx context.Context, env cliapp.Env, sc simulateConfig) error {
	logger := env.Logger.With("command", "simulate")
	reg := obs.NewRegistry()
	srv := obs.NewServer(sc.HTTPAddr, reg, logger)
	if err := srv.Listen(); err != nil {
		return err
	}
	bc, err := openBus(ctx, sc.Bus, "simulate", logger, reg)
	if err != nil {
		return err
	}
	srv.AddReadiness(obs.ReadinessCheck{Name: "bus", Check: bc.ready})

	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	var g errgroup.Group
	g.Go(func() error { return srv.Run(srvCtx) })
	summary, runErr := sim.Run(ctx, sc.Run, bc.pub, logger, reg)
	srv.SetDraining()
	stopSrv()
	closeErr := bc.close()
	srvErr := g.Wait()

	logger.Info("simulation finished", "messages", summary.Messages, "readings", summary.Readings,
		"rejected_samples", summary.RejectedSamples, "bad_messages", summary.BadMessages,
		"msgs_per_s", summary.MessagesPerSecond, "elapsed", time.Duration(summary.ElapsedSeconds*float64(time.Second)).Round(time.Millisecond).String(),
		"interrupted", summary.Interrupted, "to", bc.desc)
	if err := printSummary(env.Out, sc.Output, summary); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("simulate: %w", runErr)
	}
	if closeErr != nil {
		return fmt.Errorf("simulate: %w", closeErr)
	}
	return srvErr
}

func printSummary(w io.Writer, output string, s sim.Summary) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("units", fmt.Sprintf("%d (%d generation 1)", s.Units, s.Gen1Units))
	row("seed", s.Seed)
	row("simulated", fmt.Sprintf("%s .. %s", s.SimStart.Format(time.RFC3339), s.SimEnd.Format(time.RFC3339)))
	row("messages", fmt.Sprintf("%d (gen 1: %d, gen 2: %d, buffer flushes: %d)", s.Messages, s.Gen1Messages, s.Gen2Messages, s.FlushMessages))
	row("samples", s.Samples)
	row("readings", fmt.Sprintf("%d (what a decoder accepts)", s.Readings))
	row("rejected samples", s.RejectedSamples)
	kinds := make([]string, 0, len(s.BadByKind))
	for k, n := range s.BadByKind {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	row("bad messages", fmt.Sprintf("%d %s", s.BadMessages, strings.Join(kinds, ", ")))
	row("buffered, unsent", s.BufferedUnsent)
	row("retried batches", s.Retries)
	row("elapsed", time.Duration(s.ElapsedSeconds*float64(time.Second)).Round(time.Millisecond))
	row("rate", fmt.Sprintf("%.1f messages/s, %.1f readings/s", s.MessagesPerSecond, s.ReadingsPerSecond))
	if s.Interrupted {
		row("interrupted", "yes")
	}
	return tw.Flush()
}
