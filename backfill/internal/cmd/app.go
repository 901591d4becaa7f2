// Package cmd holds backfill's subcommands, one file each.
package cmd

import (
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

// New returns the backfill app.
func New() *cli.App {
	return cliapp.New("backfill", "find gaps in InfluxDB and replay legacy snapshots into exactly them",
		`backfill repairs InfluxDB from the legacy store's snapshots on S3 (or a local folder of
the same layout). 'gaps' lists the windows where InfluxDB has fewer readings than the
snapshots; 'run' replays exactly those windows, throttled, resumable and controllable at
run time; 'snapshot' writes a snapshot of the legacy store, as the legacy backup job does.`,
		gapsCommand(), runCommand(), snapshotCommand(), rollupCommand())
}
