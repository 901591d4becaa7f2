package cliapp

import (
	"context"
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"
)

// Env is what a command's run needs of the process besides its typed
// configuration: where to print results and progress, and the logger.
type Env struct {
	In     io.Reader // standard input
	Out    io.Writer // results (tables, JSON)
	Err    io.Writer // progress lines
	Logger *slog.Logger
}

// EnvOf returns the Env of a running command.
func EnvOf(c *cli.Context) Env {
	return Env{In: c.App.Reader, Out: c.App.Writer, Err: c.App.ErrWriter, Logger: Logger(c)}
}

// Action is the one shape of every command's action: parse reads the
// command's flags once into its typed configuration (validating them), and
// run does the work with that configuration alone, never seeing the
// *cli.Context.
func Action[T any](parse func(c *cli.Context) (T, error), run func(ctx context.Context, env Env, cfg T) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		cfg, err := parse(c)
		if err != nil {
			return err
		}
		return run(c.Context, EnvOf(c), cfg)
	}
}
