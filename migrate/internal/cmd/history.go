package cmd

import (
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
		Action: runHistory,
	}
}

func runHistory(c *cli.Context) error {
	out, err := cliapp.Output(c)
	if err != nil {
		return err
	}
	if c.Int("limit") < 0 {
		return cliapp.Exitf(cliapp.ExitFailure, "--limit must not be negative")
	}
	s, err := openStores(c)
	if err != nil {
		return err
	}
	defer s.Close()
	entries, err := s.state.History(c.Context, c.Int("limit"))
	if err != nil {
		return err
	}
	if out == "json" {
		if entries == nil {
			return writeJSON(c.App.Writer, []any{})
		}
		return writeJSON(c.App.Writer, entries)
	}
	w := c.App.Writer
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
