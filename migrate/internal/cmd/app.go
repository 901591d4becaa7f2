// Package cmd holds migrate's subcommands, one file each.
package cmd

import (
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

// New returns the migrate app.
func New() *cli.App {
	return cliapp.New("migrate", "run the legacy → InfluxDB cutover: status, plan, advance, verify, rollback",
		`migrate changes the cutover phase that every consumer follows, with safety gates:

  legacy → dual-write → shadow-read → influx-primary → influx-only

'status' and 'plan' show where the cutover stands and whether the next step's gates pass;
'advance' checks the gates, moves one phase and waits for every consumer to follow;
'rollback' steps back; 'verify' compares the legacy store with InfluxDB; 'history' prints
the audit log; 'repair-legacy' copies back from InfluxDB what the legacy store missed.
Commands that change state are dry runs unless given --execute.

Exit status: 0 ok; 2 a gate refused, verify found too many mismatches, consumers
did not follow in time, or a concurrent change won; 1 on errors.`,
		statusCommand(), planCommand(), advanceCommand(), rollbackCommand(), verifyCommand(), historyCommand(), repairLegacyCommand())
}
