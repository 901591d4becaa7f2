package cmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "print the audit log of phase changes, newest first",
		Description: `history prints every recorded phase change: when, who (--actor or the OS
user), advance or rollback, from → to, the version it produced, the reason,
each gate's result, whether it was forced past failed gates, and details
such as the legacy store's gap when leaving influx-only.`,
		Flags: cliapp.Merge(cliapp.StateFlags(), []cli.Flag{
			&cli.IntFlag{Name: "limit", Aliases: []string{"n"}, Value: 50, Usage: "newest entries to show (0: all)"},
			cliapp.OutputFlag(),
		}),
		Action: cliapp.Action(historyConfigFrom, runHistory),
	}
}

// historyConfig is what history runs with.
type historyConfig struct {
	Output string
	Stores storeConfig
	Limit  int
}

func historyConfigFrom(c *cli.Context) (historyConfig, error) {
	out, err := cliapp.Output(c)
	if err != nil {
		return historyConfig{}, err
	}
	if c.Int("limit") < 0 {
		return historyConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--limit must not be negative")
	}
	return historyConfig{Output: out, Stores: storeConfigFrom(c), Limit: c.Int("limit")}, nil
}

func runHistory(ctx context.Context, env cliapp.Env, cfg historyConfig) error {
	s, err := openStores(ctx, cfg.Stores, env.Logger)
	if err != nil {
		return err
	}
	defer s.Close()
	entries, err := s.state.History(ctx, cfg.Limit)
	if err != nil {
		return err
	}
	if cfg.Output == "json" {
		if entries == nil {
			return writeJSON(env.Out, []any{})
		}
		return writeJSON(env.Out, entries)
	}
	w := env.Out
	if len(entries) == 0 {
		fmt.Fprintln(w, "no phase changes recorded yet")
	}
	for _, e := range entries {
		forced := ""
		if e.Forced {
			forced = " FORCED"
		}
		fmt.Fprintf(w, "#%d %s %s %s %s → %s (version %d)%s", e.ID, ts(e.At), e.Actor, e.Kind, e.From, e.To, e.Version, forced)
		if e.Reason != "" {
			fmt.Fprintf(w, " — %q", e.Reason)
		}
		fmt.Fprintln(w)
		for _, g := range e.Gates {
			mark := "PASS"
			if !g.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "    [%s] %s: %s\n", mark, g.Name, g.Detail)
		}
		if len(e.Detail) > 0 {
			fmt.Fprintf(w, "    detail: %s\n", strings.TrimSpace(string(e.Detail)))
		}
	}
	return nil
}
