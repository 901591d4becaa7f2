package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/control"
	"github.com/flexipack/cutover/shared/cutover"
)

func advanceCommand() *cli.Command {
	return &cli.Command{
		Name:      "advance",
		Usage:     "check the gates, move the cutover one phase forward, wait for the consumers",
		UsageText: "migrate advance [--to PHASE] [--execute] [--force] [--confirm influx-only] [--reason TEXT]",
		Description: `advance moves the cutover one phase forward:

  legacy → dual-write → shadow-read → influx-primary → influx-only

It evaluates the gates into the next phase (see 'migrate plan --help'), and
refuses (exit 2) with what failed and what to do when one fails. With
--execute it then changes the phase — only if nobody changed it since it was
read: of two engineers advancing at once, one wins and the other gets exit 2 —
records the change in the audit log (actor, reason, every gate's result,
forced or not), and waits up to --consumer-timeout for every live consumer to
report the new phase, naming those that did not (exit 2; the change stays).

Without --execute it is a dry run that changes nothing. --to names the phase
you expect to reach and fails if another change got there first. --force
skips failed gates and is recorded as forced. Entering influx-only, which
stops all writes to the legacy store, also needs --confirm influx-only.

Exit status: 0 done (or the dry run would be allowed), 2 refused by a gate, a
concurrent change, or consumers that did not follow in time; 1 on errors.`,
		Flags: cliapp.Merge(cliapp.StateFlags(), cliapp.LegacyFlags(), cliapp.InfluxFlags(), gateFlags(), []cli.Flag{
			&cli.StringFlag{Name: flagTo, Usage: "the phase to reach (must be the next one; default: the next one)"},
			executeFlag("change the phase"),
			&cli.BoolFlag{Name: flagForce, Usage: "skip failed gates (recorded as forced in the audit log)"},
			&cli.StringFlag{Name: flagConfirm, Usage: "type influx-only to confirm entering influx-only"},
			actorFlag(), reasonFlag(), consumerTimeoutFlag(), cliapp.OutputFlag(),
		}),
		Action: cliapp.Action(advanceConfigFrom, runAdvance),
	}
}

func parseTo(c *cli.Context) (cutover.Phase, error) {
	if c.String(flagTo) == "" {
		return "", nil
	}
	p, err := cutover.ParsePhase(c.String(flagTo))
	if err != nil {
		return "", cliapp.Exitf(cliapp.ExitFailure, "--to: %w", err)
	}
	return p, nil
}

func changeOptions(c *cli.Context) (control.Options, error) {
	to, err := parseTo(c)
	if err != nil {
		return control.Options{}, err
	}
	timeout := c.Duration(flagConsumerTimeout)
	if timeout == 0 {
		timeout = -1 // 0 on the command line: do not wait
	}
	return control.Options{To: to, Actor: c.String(flagActor), Reason: c.String(flagReason), Force: c.Bool(flagForce),
		Execute: c.Bool(flagExecute), ConsumerTimeout: timeout, LiveFor: c.Duration(flagLiveFor)}, nil
}

// advanceConfig is what advance runs with.
type advanceConfig struct {
	gatedConfig
	Change control.Options
}

func advanceConfigFrom(c *cli.Context) (advanceConfig, error) {
	opts, err := changeOptions(c)
	if err != nil {
		return advanceConfig{}, err
	}
	g, err := gatedConfigFrom(c)
	return advanceConfig{gatedConfig: g, Change: opts}, err
}

func runAdvance(ctx context.Context, env cliapp.Env, cfg advanceConfig) error {
	s, err := openStores(ctx, cfg.Stores, env.Logger)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := control.Advance(ctx, s.state, s.state, s.checker(cfg.Gates), cfg.Change)
	return report(env.Out, cfg.Output, res, err)
}

// report prints an outcome (also when refused) and returns the exit error.
func report(w io.Writer, out string, res control.Outcome, err error) error {
	if res.Kind == "" {
		return exitFor(err) // failed before anything was read
	}
	if out == "json" {
		if res.Message == "" && err != nil {
			res.Message = err.Error()
		}
		if werr := writeJSON(w, res); werr != nil {
			return werr
		}
	} else {
		printOutcome(w, res, err)
	}
	return exitFor(err)
}

func printOutcome(w io.Writer, o control.Outcome, err error) {
	if o.To == "" {
		return // refused before a target was known; the error says why
	}
	fmt.Fprintf(w, "%s %s → %s (from version %d)\n", o.Kind, o.From, o.To, o.FromVersion)
	if o.Kind == "advance" {
		gateLines(w, o.Gates)
	}
	if o.Message != "" && (err == nil || o.Executed) {
		fmt.Fprintln(w, strings.TrimSpace(o.Message))
	}
	if o.Follow != nil && len(o.Follow.Consumers) > 0 {
		for _, f := range o.Follow.Consumers {
			state := "applied"
			if !f.Followed {
				state = "DID NOT FOLLOW"
			}
			fmt.Fprintf(w, "  consumer %s (%s): %s v%d — %s\n", f.ID, f.Host, f.Phase, f.Version, state)
		}
	}
}
