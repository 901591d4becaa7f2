package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func rollbackCommand() *cli.Command {
	return &cli.Command{Name: "rollback", Usage: "rollback (not yet built)", Action: func(*cli.Context) error { return cli.Exit("rollback: not built yet", 1) }}
}
