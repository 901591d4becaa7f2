package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func simulateCommand() *cli.Command {
	return &cli.Command{Name: "simulate", Usage: "simulate a fleet (not yet built)", Action: func(*cli.Context) error { return cli.Exit("simulate: not built yet", 1) }}
}
