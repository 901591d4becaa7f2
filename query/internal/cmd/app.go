// Package cmd holds query's subcommands, one file each.
package cmd

import (
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

// New returns the query app.
func New() *cli.App {
	return cliapp.New("query", "serve telemetry reads from the store the cutover phase says, comparing both stores on real reads",
		`query serve answers a JSON API under /v1 (OpenAPI at /v1/openapi.json) from PostgreSQL or
InfluxDB as the cutover phase in the state store says, rereading the phase without a restart:

  legacy, dual-write   PostgreSQL serves
  shadow-read          PostgreSQL serves; a share of requests is also answered by InfluxDB after
                       the response is sent, and the answers compared and recorded
  influx-primary       InfluxDB serves; PostgreSQL shadows the same way
  influx-only          InfluxDB serves

Exit status: 0 ok (stopped by SIGINT/SIGTERM); 1 on errors.`,
		serveCommand())
}
