package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func pollCommand() *cli.Command {
	return &cli.Command{Name: "poll", Usage: "poll unit endpoints (not yet built)", Action: func(*cli.Context) error { return cli.Exit("poll: not built yet", 1) }}
}
