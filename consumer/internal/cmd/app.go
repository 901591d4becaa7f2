// Package cmd holds the consumer's subcommands, one file each.
package cmd

import (
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

// New returns the consumer app.
func New() *cli.App {
	return cliapp.New("consumer", "turn telemetry XML from the bus into records in the legacy store and InfluxDB",
		`consumer reads telemetry messages from RabbitMQ or Kafka, decodes them into normalised
records, and writes them to the legacy store (PostgreSQL) and to InfluxDB according to the
cutover phase held in the state store. A message is acknowledged only after every required
store has it durably; a store that may be repaired later records a gap in the ledger instead.
Messages that cannot be decoded go to the dead-letter queue with their reason.`,
		runCommand(), decodeCommand(), dlqCommand())
}
