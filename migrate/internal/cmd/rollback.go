package cmd

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/control"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "move the cutover one phase back (always allowed) and wait for the consumers",
		UsageText: "migrate rollback [--to PHASE] [--execute] [--reason TEXT]",
		Description: `rollback moves the cutover one phase back. It has no gates: stepping back is
always allowed. Like advance it changes the phase only if nobody else changed
it since it was read, records the change in the audit log, and waits for
every live consumer to apply it.

Leaving influx-only: the legacy store received nothing from the moment
influx-only began until the consumers apply the rollback. rollback records
that window in the audit log and prints the command that copies it back from
InfluxDB (migrate repair-legacy --from … --to … --execute), widened by
--repair-margin before (late, buffered readings) and by --consumer-timeout
after. Leaving influx-primary or influx-only it also reports open legacy
gap-ledger entries (migrate repair-legacy --from-ledger --execute).

Without --execute it is a dry run. Exit status: 0 done, 2 a concurrent change
won or consumers did not follow in time, 1 on errors.`,
		Flags: cliapp.Merge(cliapp.StateFlags(), []cli.Flag{
			&cli.StringFlag{Name: flagTo, Usage: "the phase to reach (must be the previous one; default: the previous one)"},
			executeFlag("change the phase"),
			&cli.DurationFlag{Name: "repair-margin", Value: time.Hour, Usage: "how far before influx-only began the printed repair command starts (late readings)"},
			actorFlag(), reasonFlag(), consumerTimeoutFlag(), liveForFlag(), cliapp.OutputFlag(),
		}),
		Action: cliapp.Action(rollbackConfigFrom, runRollback),
	}
}

// rollbackConfig is what rollback runs with.
type rollbackConfig struct {
	Output string
	Stores storeConfig
	Change control.Options
}

func rollbackConfigFrom(c *cli.Context) (rollbackConfig, error) {
	opts, err := changeOptions(c)
	opts.RepairMargin = c.Duration("repair-margin")
	cfg := rollbackConfig{Stores: storeConfigFrom(c), Change: opts}
	if err == nil {
		cfg.Output, err = cliapp.Output(c)
	}
	return cfg, err
}

func runRollback(ctx context.Context, env cliapp.Env, cfg rollbackConfig) error {
	s, err := openStores(ctx, cfg.Stores, env.Logger)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := control.Rollback(ctx, s.state, s.state, s.state, cfg.Change)
	return report(env.Out, cfg.Output, res, err)
}
