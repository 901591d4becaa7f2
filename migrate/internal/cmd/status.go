package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func statusCommand() *cli.Command {
	return &cli.Command{Name: "status", Usage: "status (not yet built)", Action: func(*cli.Context) error { return cli.Exit("status: not built yet", 1) }}
}
