package cmd

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/control"
)

func planCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "show what advance would do next and each gate's result now",
		Description: `plan reads the current phase, names the next one, and evaluates every safety
gate guarding it, exactly as 'advance' would, without changing anything:

  into shadow-read:     no open gap-ledger entries; the last verify covers the
                        backfilled range and found no mismatch
  into influx-primary:  no open InfluxDB gap-ledger entries; a verify of the last
                        --recent (ending --max-lag ago) under --max-mismatch-rate;
                        every live consumer's lag under --max-lag; at least
                        --min-shadow-reads shadow comparisons by query serve in
                        this shadow-read phase, at most --max-mismatch-rate of
                        them disagreeing (evidence from real reads)
  into influx-only:     the same, plus --confirm influx-only

Exit status: 0 when the gates pass, 2 when one refuses, 1 on errors.`,
		Flags: cliapp.Merge(cliapp.StateFlags(), cliapp.LegacyFlags(), cliapp.InfluxFlags(), gateFlags(),
			[]cli.Flag{&cli.StringFlag{Name: flagConfirm, Usage: "the confirmation the gate into influx-only asks for (type: influx-only)"}, cliapp.OutputFlag()}),
		Action: cliapp.Action(gatedConfigFrom, runPlan),
	}
}

func runPlan(ctx context.Context, env cliapp.Env, cfg gatedConfig) error {
	s, err := openStores(ctx, cfg.Stores, env.Logger)
	if err != nil {
		return err
	}
	defer s.Close()
	p, err := control.MakePlan(ctx, s.state, s.checker(cfg.Gates))
	if err != nil {
		return exitFor(err)
	}
	if cfg.Output == "json" {
		if err := writeJSON(env.Out, p); err != nil {
			return err
		}
	} else {
		printPlan(env.Out, p)
	}
	if !p.GatesPassed {
		return cliapp.Exit(nil, cliapp.ExitGate)
	}
	return nil
}

func printPlan(w io.Writer, p control.Plan) {
	if p.Next == "" {
		fmt.Fprintf(w, "next step: none (%s)\n", p.Note)
		return
	}
	verdict := "the gates pass"
	if !p.GatesPassed {
		verdict = "REFUSED"
	}
	fmt.Fprintf(w, "next step: advance %s → %s: %s\n", p.Phase.Phase, p.Next, verdict)
	gateLines(w, p.Gates)
	if p.GatesPassed {
		fmt.Fprintf(w, "  run: %s\n", p.Command)
	} else if p.Note != "" {
		fmt.Fprintf(w, "  %s\n", p.Note)
	}
}
