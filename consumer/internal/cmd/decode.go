package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/telemetry"
)

func decodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "decode",
		Usage:     "decode one telemetry message (e.g. a dead letter) and print its records",
		ArgsUsage: "[FILE|-]",
		Description: `decode reads one message body from FILE, or from standard input when FILE is "-" or
missing, and decodes it exactly as the consumer does (the shared telemetry codec).

Standard output gets the accepted readings, one normalised JSON record per line (or InfluxDB
line protocol with --format lp: one bsu line per reading and one bsu_alarm line per alarm,
millisecond timestamps). Standard error gets one line per rejection:

   reject: message (not-well-formed): not well-formed: line 4, column 1: element <Sample> closed by </Telemetry>
   reject: sample 3 (seq 10): SoC: 140 outside 0..100

A message is rejected whole when it is over 1 MiB, not well-formed XML, carries a DTD, declares
an encoding other than UTF-8, has an unknown root element or namespace, no unit identifier, or
0 or more than 1,000 samples (generation 1: not exactly one reading). Otherwise each bad sample
is rejected on its own (sample positions count from 0) and its siblings are kept.

Reading times more than 10 minutes after the clock are rejected; --now judges them against
another time, to see how a message was judged when it arrived.

Exit status: 0 when at least one record came out, 3 when none did (the message was rejected
whole, or every sample was), 1 on usage or I/O errors.

Examples:
   consumer decode dead-letter.xml
   consumer decode - < message.xml
   consumer decode --format lp --now 2026-11-21T12:00:00Z message.xml`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "json", EnvVars: []string{"DECODE_FORMAT"},
				Usage: "what to print for each reading: json (normalised records, one per line) or lp (InfluxDB line protocol)"},
			&cli.StringFlag{Name: "now", EnvVars: []string{"DECODE_NOW"},
				Usage: "judge reading times against this RFC 3339 time instead of the system clock"},
		},
		Action: cliapp.Action(decodeConfigFrom, runDecode),
	}
}

// decodeConfig is what decode runs with.
type decodeConfig struct {
	Format string    // json or lp
	Now    time.Time // zero: the system clock
	File   string    // "" or "-": standard input
}

func decodeConfigFrom(c *cli.Context) (decodeConfig, error) {
	if c.NArg() > 1 {
		return decodeConfig{}, cliapp.Exitf(cliapp.ExitFailure, "decode takes one FILE (or - for standard input), got %d arguments; see --help", c.NArg())
	}
	cfg := decodeConfig{Format: c.String("format"), File: c.Args().First()}
	if cfg.Format != "json" && cfg.Format != "lp" {
		return decodeConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--format %q: want json or lp", cfg.Format)
	}
	if s := c.String("now"); s != "" {
		now, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return decodeConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--now %q: not an RFC 3339 time: %w", s, err)
		}
		cfg.Now = now
	}
	return cfg, nil
}

func runDecode(_ context.Context, env cliapp.Env, cfg decodeConfig) error {
	format := cfg.Format
	dec := telemetry.NewDecoder()
	if !cfg.Now.IsZero() {
		dec.Now = func() time.Time { return cfg.Now }
	}
	body, name, err := readMessage(env.In, cfg.File)
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	env.Logger.Debug("decoding message", "source", name, "bytes", len(body))

	res, decErr := dec.Decode(body)
	out := bufio.NewWriter(env.Out)
	var line []byte
	for i := range res.Records {
		line = line[:0]
		if format == "lp" {
			line = telemetry.AppendLineProtocol(line, &res.Records[i])
		} else {
			line = append(telemetry.AppendJSON(line, &res.Records[i]), '\n')
		}
		out.Write(line)
	}
	if err := out.Flush(); err != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "write records: %w", err)
	}
	errOut := bufio.NewWriter(env.Err)
	var me *telemetry.MessageError
	if errors.As(decErr, &me) {
		fmt.Fprintf(errOut, "reject: message (%s): %s\n", me.Kind, me.Reason)
	}
	for _, r := range res.Rejects {
		fmt.Fprintf(errOut, "reject: %s\n", r.Error())
	}
	if err := errOut.Flush(); err != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "write rejections: %w", err)
	}
	if len(res.Records) == 0 {
		return cliapp.Exit(nil, cliapp.ExitNoRecords)
	}
	return nil
}

// readMessage reads the body from the named file or, for "" or "-", stdin.
func readMessage(stdin io.Reader, name string) ([]byte, string, error) {
	if name == "" || name == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, "", fmt.Errorf("read standard input: %w", err)
		}
		return b, "standard input", nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, "", fmt.Errorf("read message: %w", err)
	}
	return b, name, nil
}
