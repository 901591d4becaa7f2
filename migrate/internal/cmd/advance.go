package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func advanceCommand() *cli.Command {
	return &cli.Command{Name: "advance", Usage: "advance (not yet built)", Action: func(*cli.Context) error { return cli.Exit("advance: not built yet", 1) }}
}
