package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func gapsCommand() *cli.Command {
	return &cli.Command{Name: "gaps", Usage: "list gaps (not yet built)", Action: func(*cli.Context) error { return cli.Exit("gaps: not built yet", 1) }}
}
