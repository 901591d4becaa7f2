package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func planCommand() *cli.Command {
	return &cli.Command{Name: "plan", Usage: "plan (not yet built)", Action: func(*cli.Context) error { return cli.Exit("plan: not built yet", 1) }}
}
