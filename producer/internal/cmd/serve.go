package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func serveCommand() *cli.Command {
	return &cli.Command{Name: "serve", Usage: "HTTP ingest endpoint (not yet built)", Action: func(*cli.Context) error { return cli.Exit("serve: not built yet", 1) }}
}
