package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/control"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the phase, the consumers, open gaps, the last verify and the next step",
		Description: `status shows where the cutover stands:

  - the phase, since when and by whom, and what it asks of each store;
  - each live consumer (heartbeat within --live-for): the phase it applies, its lag;
  - open gap-ledger entries per store, oldest first;
  - the last verify;
  - the next step and whether its gates pass (see 'migrate plan --help').

--watch refreshes every --interval until interrupted (Ctrl-C).`,
		Flags: cliapp.Merge(cliapp.StateFlags(), cliapp.LegacyFlags(), cliapp.InfluxFlags(), gateFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "refresh every --interval until interrupted"},
			&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "refresh interval of --watch"},
			cliapp.OutputFlag(),
		}),
		Action: cliapp.Action(statusConfigFrom, runStatus),
	}
}

// statusConfig is what status runs with.
type statusConfig struct {
	gatedConfig
	Watch    bool
	Interval time.Duration
}

func statusConfigFrom(c *cli.Context) (statusConfig, error) {
	g, err := gatedConfigFrom(c)
	if err != nil {
		return statusConfig{}, err
	}
	if c.Bool("watch") && c.Duration("interval") <= 0 {
		return statusConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--interval must be positive")
	}
	return statusConfig{gatedConfig: g, Watch: c.Bool("watch"), Interval: c.Duration("interval")}, nil
}

func runStatus(ctx context.Context, env cliapp.Env, cfg statusConfig) error {
	s, err := openStores(ctx, cfg.Stores, env.Logger)
	if err != nil {
		return err
	}
	defer s.Close()
	checker := s.checker(cfg.Gates)
	clearScreen := false
	if f, ok := env.Out.(*os.File); ok && cfg.Output == "table" && cfg.Watch {
		clearScreen = term.IsTerminal(int(f.Fd()))
	}
	for {
		st, err := control.ReadStatus(ctx, s.state, s.state, checker, cfg.Gates.LiveFor, nil)
		if err != nil {
			if cfg.Watch && ctx.Err() != nil {
				return nil
			}
			return exitFor(err)
		}
		if cfg.Output == "json" {
			if err := writeJSON(env.Out, st); err != nil {
				return err
			}
		} else {
			if clearScreen {
				fmt.Fprint(env.Out, "\033[H\033[2J")
			}
			printStatus(env.Out, st)
		}
		if !cfg.Watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.Interval):
		}
		if !clearScreen && cfg.Output == "table" {
			fmt.Fprintln(env.Out)
		}
	}
}

func printStatus(w io.Writer, st control.Status) {
	fmt.Fprintf(w, "cutover status at %s\n\n", ts(st.At))
	fmt.Fprintf(w, "phase:      %s (version %d) since %s by %s", st.State.Phase, st.State.Version, ts(st.State.Since), st.State.Actor)
	if st.State.Reason != "" {
		fmt.Fprintf(w, " — %q", st.State.Reason)
	}
	fmt.Fprintf(w, "\nstores:     legacy %s, InfluxDB %s\n", st.LegacyRole, st.InfluxRole)
	if st.LastChange != nil && st.LastChange.Forced {
		fmt.Fprintf(w, "            the last change (%s %s → %s) was FORCED past its gates\n", st.LastChange.Kind, st.LastChange.From, st.LastChange.To)
	}

	fmt.Fprintf(w, "\nconsumers (%d live):\n", len(st.Consumers))
	if len(st.Consumers) == 0 {
		fmt.Fprintln(w, "  none sent a heartbeat recently")
	} else {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CONSUMER\tHOST\tAPPLIES\tLAG\tLAST BEAT\t")
		for _, h := range st.Consumers {
			mark := ""
			if !h.Current {
				mark = "  ← not yet on the current phase"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s v%d\t%.1fs / %d msgs\t%s ago\t%s\n", h.ConsumerID, h.Host, h.Phase, h.PhaseVersion, h.LagSeconds, h.LagMessages, h.Age, mark)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nopen gap-ledger entries: legacy %d, influx %d\n", st.OpenGaps["legacy"], st.OpenGaps["influx"])
	for _, g := range st.OldestGaps {
		fmt.Fprintf(w, "  #%d %s %s %s..%s, %d readings: %s\n", g.ID, g.Sink, g.Unit, ts(g.From), ts(g.To), g.Readings, g.Reason)
	}

	fmt.Fprint(w, "\nlast verify: ")
	if v := st.LastVerify; v == nil {
		fmt.Fprintln(w, "none recorded (run: migrate verify --from … --to …)")
	} else {
		verdict := "ok"
		if !v.OK {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "#%d at %s by %s over [%s, %s): %d of %d windows mismatch (rate %.4g): %s\n",
			v.ID, ts(v.At), v.Actor, ts(v.From), ts(v.To), v.Mismatched, v.Windows, v.Rate, verdict)
	}
	printShadow(w, st.Shadow)
	fmt.Fprintln(w)
	printPlan(w, st.Plan)
}

func printShadow(w io.Writer, sh *control.ShadowStatus) {
	if sh == nil {
		return
	}
	fmt.Fprintf(w, "\nshadow reads (query serve): %d comparisons in this phase, %d mismatch (rate %.4g), %d errors; %d comparisons in all phases, %d mismatch\n",
		sh.Current.Comparisons, sh.Current.Mismatches, sh.Current.Rate, sh.Current.Errors, sh.All.Comparisons, sh.All.Mismatches)
	for _, e := range sh.Current.Endpoints {
		fmt.Fprintf(w, "  %-10s %d comparisons, %d mismatch, %d errors\n", e.Endpoint, e.Comparisons, e.Mismatches, e.Errors)
	}
	for _, m := range sh.Examples {
		fmt.Fprintf(w, "  mismatch #%d at %s in %s: %s differs at %s\n    %s: %.200s\n    %s: %.200s\n",
			m.ID, ts(m.At), m.Phase, m.Params, m.Path, m.PrimaryStore, m.PrimaryValue, m.ShadowStore, m.ShadowValue)
	}
}
