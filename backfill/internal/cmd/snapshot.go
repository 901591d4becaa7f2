package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func snapshotCommand() *cli.Command {
	return &cli.Command{Name: "snapshot", Usage: "write a snapshot (not yet built)", Action: func(*cli.Context) error { return cli.Exit("snapshot: not built yet", 1) }}
}
