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
the audit log. Commands that change state are dry runs unless given --execute.`,
		statusCommand(), planCommand(), advanceCommand(), rollbackCommand(), verifyCommand(), historyCommand())
}
