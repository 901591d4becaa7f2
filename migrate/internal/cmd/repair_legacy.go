package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/control"
	"github.com/flexipack/cutover/shared/window"
)

func repairLegacyCommand() *cli.Command {
	return &cli.Command{
		Name:      "repair-legacy",
		Usage:     "copy readings the legacy store missed back from InfluxDB",
		UsageText: "migrate repair-legacy --from TIME --to TIME [--units U1,U2] [--execute]\n   migrate repair-legacy --from-ledger [--units U1,U2] [--execute]",
		Description: `repair-legacy copies readings from InfluxDB into the legacy store, for when the
cutover steps back and the legacy store must be whole again:

  --from/--to    every reading InfluxDB has in the range: what the legacy store
                 missed while in influx-only (rollback prints this command with
                 the window to repair)
  --from-ledger  the open legacy gap-ledger entries: writes the legacy store
                 missed in influx-primary, where it was repairable; each entry
                 whose readings were all copied is marked repaired

Writes are idempotent: a reading the legacy store already has is left alone,
so a repair can be re-run or overlap. Progress goes to stderr. Without
--execute it is a dry run that only counts what it would copy.`,
		Flags: cliapp.Merge(cliapp.StateFlags(), cliapp.LegacyFlags(), cliapp.InfluxFlags(), cliapp.UnitFlags("", "only these units"), []cli.Flag{
			&cli.StringFlag{Name: flagFrom, Usage: "start of the range (RFC 3339, or a duration before now)"},
			&cli.StringFlag{Name: flagTo, Usage: "end of the range, exclusive (default now)"},
			&cli.BoolFlag{Name: "from-ledger", Usage: "repair the open legacy gap-ledger entries instead of a range"},
			&cli.IntFlag{Name: "batch", Value: 1000, Usage: "readings per legacy write"},
			executeFlag("write the legacy store"),
			actorFlag(), cliapp.OutputFlag(),
		}),
		Action: cliapp.Action(repairConfigFrom, runRepairLegacy),
	}
}

// repairConfig is what repair-legacy runs with.
type repairConfig struct {
	Output     string
	Stores     storeConfig
	FromLedger bool
	Repair     control.RepairOptions
}

func repairConfigFrom(c *cli.Context) (repairConfig, error) {
	out, err := cliapp.Output(c)
	if err != nil {
		return repairConfig{}, err
	}
	fromLedger := c.Bool("from-ledger")
	if fromLedger == (c.String(flagFrom) != "") {
		return repairConfig{}, cliapp.Exitf(cliapp.ExitFailure, "give either --from (with --to) or --from-ledger")
	}
	us, err := units(c)
	if err != nil {
		return repairConfig{}, err
	}
	opts := control.RepairOptions{Units: us, Batch: c.Int("batch"), Execute: c.Bool(flagExecute), Actor: c.String(flagActor)}
	if !fromLedger {
		opts.From, opts.To, err = window.ParseRange(c.String(flagFrom), c.String(flagTo), time.Now())
		if err != nil {
			return repairConfig{}, cliapp.Exit(err, cliapp.ExitFailure)
		}
	}
	return repairConfig{Output: out, Stores: storeConfigFrom(c), FromLedger: fromLedger, Repair: opts}, nil
}

func runRepairLegacy(ctx context.Context, env cliapp.Env, cfg repairConfig) error {
	opts := cfg.Repair
	s, err := openStores(ctx, cfg.Stores, env.Logger)
	if err != nil {
		return err
	}
	defer s.Close()
	l, err := s.Legacy(ctx)
	if err != nil {
		return err
	}
	if opts.Execute {
		if err := l.Migrate(ctx); err != nil {
			return err
		}
	}
	f, err := s.Influx()
	if err != nil {
		return err
	}
	started := time.Now()
	last := time.Time{}
	opts.Progress = func(p control.RepairProgress) {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		fmt.Fprintf(env.Err, "repair-legacy: %d read, %d written, at %s %s, %.0f readings/s\n",
			p.Read, p.Written, p.Unit, ts(p.Through), float64(p.Read)/time.Since(started).Seconds())
	}
	var res control.RepairResult
	if cfg.FromLedger {
		res, err = control.RepairLedger(ctx, s.state, f, l, opts)
	} else {
		res, err = control.RepairLegacy(ctx, f, l, opts)
	}
	if err != nil {
		return err
	}
	if cfg.Output == "json" {
		return writeJSON(env.Out, res)
	}
	printRepair(env.Out, res)
	return nil
}

func printRepair(w io.Writer, res control.RepairResult) {
	for _, r := range res.Ranges {
		if r.GapID != 0 {
			state := "still open"
			if r.Closed {
				state = "repaired"
			} else if !res.Executed {
				state = "dry run"
			}
			fmt.Fprintf(w, "  gap #%d %s [%s, %s): %d readings from InfluxDB, %s", r.GapID, r.Unit, ts(r.From), ts(r.To), r.Read, state)
			if r.Missing > 0 {
				fmt.Fprintf(w, " (InfluxDB lacks %d of them)", r.Missing)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, res.Message)
}
