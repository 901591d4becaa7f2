package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func runCommand() *cli.Command {
	return &cli.Command{Name: "run", Usage: "consume and write (not yet built)", Action: func(*cli.Context) error { return cli.Exit("run: not built yet", 1) }}
}
