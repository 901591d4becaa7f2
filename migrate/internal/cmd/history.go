package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func historyCommand() *cli.Command {
	return &cli.Command{Name: "history", Usage: "history (not yet built)", Action: func(*cli.Context) error { return cli.Exit("history: not built yet", 1) }}
}
