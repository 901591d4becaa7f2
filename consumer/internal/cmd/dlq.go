package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func dlqCommand() *cli.Command {
	return &cli.Command{Name: "dlq", Usage: "dead letters (not yet built)", Action: func(*cli.Context) error { return cli.Exit("dlq: not built yet", 1) }}
}
