// Package cmd holds the alert service's subcommands, one file each.
package cmd

import (
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

// New returns the alert app.
func New() *cli.App {
	return cliapp.New("alert", "evaluate alerting rules on the live telemetry stream and deliver alerts through Alertmanager",
		`alert reads the telemetry stream from its own RabbitMQ queue (bound to the telemetry exchange
beside the consumer's, so alerting never slows the store writers nor they it), evaluates rules in
reading time (thresholds with for: and hysteresis, rolling aggregates, absence, alarms, the share of
a site's units matching a condition), keeps alert state in the state store (PostgreSQL) so that a
restart neither re-notifies nor loses a for: in progress, and delivers alerts to Alertmanager
(API v2) and bsu_alert points to InfluxDB.

Rules are YAML: 'alert rules check FILE' validates a file, 'alert rules test FILE...' runs rule
unit tests. See README "Alerting" for the rule format and the default rules.`,
		runCommand(), rulesCommand())
}
