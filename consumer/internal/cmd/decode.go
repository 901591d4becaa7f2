package cmd

import "github.com/urfave/cli/v2"

// TODO(owner): replace this placeholder.
func decodeCommand() *cli.Command {
	return &cli.Command{Name: "decode", Usage: "decode one message (not yet built)", Action: func(*cli.Context) error { return cli.Exit("decode: not built yet", 1) }}
}
