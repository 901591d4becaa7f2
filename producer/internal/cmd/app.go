// Package cmd holds the producer's subcommands, one file each.
package cmd

import (
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

// New returns the producer app.
func New() *cli.App {
	return cliapp.New("producer", "put battery telemetry XML on the bus (RabbitMQ or Kafka)",
		`producer publishes battery storage unit telemetry, in the XML contract's format, to
RabbitMQ (default) or Kafka, with publisher confirms: a message is only counted as sent
once the broker has confirmed it, and whatever is unconfirmed when a connection drops is
published again after reconnecting.

Three sources: 'simulate' runs a fleet simulator, 'poll' fetches XML from unit HTTP
endpoints, 'serve' accepts XML over HTTP and answers 202 only after the broker confirmed it.`,
		simulateCommand(), pollCommand(), serveCommand())
}
