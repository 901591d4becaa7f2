package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/alert/internal/ruletest"
	"github.com/flexipack/cutover/shared/cliapp"
)

func rulesCommand() *cli.Command {
	return &cli.Command{
		Name:  "rules",
		Usage: "check and test rule files",
		Subcommands: []*cli.Command{
			{
				Name:      "check",
				Usage:     "validate rule files; every problem is printed as FILE:LINE: message",
				ArgsUsage: "FILE...",
				Description: `check parses and validates each rule file the way 'alert run' does at start and on SIGHUP.
Exit status: 0 all valid, 2 a file has problems (each printed as FILE:LINE: message), 1 usage error.`,
				Flags:  []cli.Flag{cliapp.OutputFlag()},
				Action: rulesCheckAction,
			},
			{
				Name:      "test",
				Usage:     "run rule unit tests (input readings over time, expected alerts at given times)",
				ArgsUsage: "FILE...",
				Description: `test runs each test file: it names a rule file (rule_file, relative to the test file) and lists
tests, each a list of steps at wall-clock offsets ("at"): a message of readings from one unit
("unit", "site", "readings" with their own reading times "t", or a "series"), the same readings
from several units ("units"), a restart of the service from its persisted state ("restart: true"),
a rule reload ("reload: FILE"), and the alerts expected to be pending or firing ("expect").
The engine runs on a simulated clock. See alert/rules/tests/ for examples of every rule kind.
Exit status: 0 all passed, 2 a test failed, 1 a file is unusable.`,
				Flags:  []cli.Flag{cliapp.OutputFlag()},
				Action: rulesTestAction,
			},
		},
	}
}

type checkResult struct {
	File   string   `json:"file"`
	Rules  int      `json:"rules"`
	Errors []string `json:"errors,omitempty"`
}

// rulesConfig is what rules check and rules test read from the command line.
type rulesConfig struct {
	Files  []string
	Output string // table or json
}

func rulesConfigFrom(c *cli.Context, what string) (rulesConfig, error) {
	out, err := cliapp.Output(c)
	if err != nil {
		return rulesConfig{}, err
	}
	if c.NArg() == 0 {
		return rulesConfig{}, cliapp.Exitf(cliapp.ExitFailure, "rules %s: name at least one file; see --help", what)
	}
	return rulesConfig{Files: c.Args().Slice(), Output: out}, nil
}

func rulesCheckAction(c *cli.Context) error {
	cfg, err := rulesConfigFrom(c, "check")
	if err != nil {
		return err
	}
	var results []checkResult
	bad := false
	for _, f := range cfg.Files {
		r := checkResult{File: f}
		set, err := rules.Load(f)
		if err != nil {
			bad = true
			r.Errors = splitErrors(err)
		} else {
			r.Rules = len(set.Rules)
		}
		results = append(results, r)
	}
	printCheck(c.App.Writer, cfg.Output, results)
	if bad {
		return cliapp.Exit(nil, cliapp.ExitGate)
	}
	return nil
}

func splitErrors(err error) []string {
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		var out []string
		for _, e := range multi.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func printCheck(w io.Writer, out string, results []checkResult) {
	if out == "json" {
		_ = json.NewEncoder(w).Encode(results)
		return
	}
	for _, r := range results {
		if len(r.Errors) == 0 {
			fmt.Fprintf(w, "%s: ok, %d rules\n", r.File, r.Rules)
			continue
		}
		for _, e := range r.Errors {
			fmt.Fprintln(w, e)
		}
	}
}

func rulesTestAction(c *cli.Context) error {
	cfg, err := rulesConfigFrom(c, "test")
	if err != nil {
		return err
	}
	var all []ruletest.Result
	for _, f := range cfg.Files {
		res, err := ruletest.RunFile(f)
		if err != nil {
			return cliapp.Exit(err, cliapp.ExitFailure)
		}
		all = append(all, res...)
	}
	failed := 0
	for _, r := range all {
		if !r.Passed {
			failed++
		}
	}
	if cfg.Output == "json" {
		_ = json.NewEncoder(c.App.Writer).Encode(all)
	} else {
		for _, r := range all {
			status := "PASS"
			if !r.Passed {
				status = "FAIL"
			}
			fmt.Fprintf(c.App.Writer, "%s  %s: %s\n", status, r.File, r.Test)
			for _, f := range r.Failures {
				fmt.Fprintf(c.App.Writer, "      %s\n", f)
			}
		}
		fmt.Fprintf(c.App.Writer, "%d tests, %d failed\n", len(all), failed)
	}
	if failed > 0 {
		return cliapp.Exit(nil, cliapp.ExitGate)
	}
	return nil
}
