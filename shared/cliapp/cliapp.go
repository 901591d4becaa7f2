// Package cliapp builds the four binaries' command-line apps the same way:
// common flags (--log-level, --log-format, --http-addr, --output), a version
// command, a logger built before any command runs, and the flags for the
// services every binary talks to, each bound to the environment variable
// that scripts/services.sh env and docker-compose.yml set.
package cliapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/redact"
)

// Version is set at build time with -ldflags "-X github.com/flexipack/cutover/shared/cliapp.Version=...".
var Version = "dev"

// Exit codes shared by every binary.
const (
	ExitOK        = 0
	ExitFailure   = 1 // usage, configuration or I/O error
	ExitGate      = 2 // a safety gate refused, or a check found a problem
	ExitNoRecords = 3 // input produced nothing usable (decode), or partial damage (backfill)
)

const loggerKey = "cliapp.logger"

// New returns an app with the common flags and a version command added.
// The logger is built in Before and is available to actions through Logger.
func New(name, usage, description string, cmds ...*cli.Command) *cli.App {
	addSecretFiles(cmds)
	app := &cli.App{
		Name:                 name,
		Usage:                usage,
		Description:          description,
		Version:              Version,
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"LOG_LEVEL"}, Usage: "log level: debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "auto", EnvVars: []string{"LOG_FORMAT"}, Usage: "log format: auto (text on a terminal, JSON otherwise), json or text"},
		},
		Commands: append(cmds, versionCommand()),
		Before: func(c *cli.Context) error {
			logger, err := obs.NewLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
			if err != nil {
				return Exit(err, ExitFailure)
			}
			c.App.Metadata[loggerKey] = logger
			return nil
		},
		Metadata:  map[string]any{},
		ErrWriter: os.Stderr,
		// Exit statuses are decided by Main, never by os.Exit deep in urfave/cli.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	return app
}

// Main runs app with the process arguments under a context cancelled by
// SIGINT or SIGTERM and returns the exit status: a cli.ExitCoder keeps its
// code, any other error is 1. main passes it to os.Exit.
func Main(app *cli.App) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ExitStatus(app, app.RunContext(ctx, os.Args))
}

// ExitStatus prints err (if any) to the app's error writer and returns the
// status it stands for: the code of the first cli.ExitCoder in its chain
// (an *ExitError or a cli.Exit), 1 for any other error.
func ExitStatus(app *cli.App, err error) int {
	if err == nil {
		return ExitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		// The whole message: what wraps the status adds context. A status
		// without a message exits silently.
		if ec.Error() != "" {
			fmt.Fprintln(app.ErrWriter, app.Name+": "+redact.String(err.Error()))
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(app.ErrWriter, app.Name+": "+redact.String(err.Error()))
	return ExitFailure
}

// Logger returns the logger built from the common flags.
func Logger(c *cli.Context) *slog.Logger {
	if l, ok := c.App.Metadata[loggerKey].(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version and build information",
		Action: func(c *cli.Context) error {
			rev, goVer := "unknown", "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVer = bi.GoVersion
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = s.Value
					}
				}
			}
			fmt.Fprintf(c.App.Writer, "%s %s (revision %s, %s)\n", c.App.Name, Version, rev, goVer)
			return nil
		},
	}
}

// ExitError is an error that stands for an exit status other than 1. It
// keeps the error chain (errors.Is and errors.As see Err) and is a
// cli.ExitCoder, so ExitStatus prints Err and returns Code.
type ExitError struct {
	Code int
	Err  error // nil: exit with Code, print nothing
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

// Unwrap returns the error the status stands for.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the exit status.
func (e *ExitError) ExitCode() int { return e.Code }

// Exit returns err with the exit status code; err nil exits with code
// silently.
func Exit(err error, code int) error { return &ExitError{Code: code, Err: err} }

// Exitf returns fmt.Errorf(format, args...) with the exit status code.
func Exitf(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}
