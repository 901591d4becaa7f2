package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func verifyCommand() *cli.Command {
	return &cli.Command{Name: "verify", Usage: "verify (not yet built)", Action: func(*cli.Context) error { return cli.Exit("verify: not built yet", 1) }}
}
