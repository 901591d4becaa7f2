package cliapp

import (
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/rabbit"
)

// TopologyFlags are the flags (each bound to its AMQP_* environment
// variable) that override DefaultTopology.
func TopologyFlags() []cli.Flag {
	d := rabbit.DefaultTopology()
	const cat = "RabbitMQ"
	return []cli.Flag{
		&cli.StringFlag{Name: rabbit.FlagExchange, EnvVars: []string{rabbit.EnvExchange}, Value: d.Exchange, Category: cat,
			Usage: "durable topic exchange telemetry is published to"},
		&cli.StringFlag{Name: rabbit.FlagQueue, EnvVars: []string{rabbit.EnvQueue}, Value: d.Queue, Category: cat,
			Usage: "ingest queue bound to --exchange; dead-letters to --dead-exchange"},
		&cli.StringFlag{Name: rabbit.FlagQueueType, EnvVars: []string{rabbit.EnvQueueType}, Value: d.QueueType, Category: cat,
			Usage: "queue type of the ingest and dead-letter queues: classic or quorum (must match what the broker already has)"},
		&cli.StringFlag{Name: rabbit.FlagBindingKey, EnvVars: []string{rabbit.EnvBindingKey}, Value: d.BindingKey, Category: cat,
			Usage: "binding key of the ingest queue"},
		&cli.StringFlag{Name: rabbit.FlagDeadExchange, EnvVars: []string{rabbit.EnvDeadExchange}, Value: d.DeadExchange, Category: cat,
			Usage: "dead-letter exchange (topic) for rejected and expired messages"},
		&cli.StringFlag{Name: rabbit.FlagDeadQueue, EnvVars: []string{rabbit.EnvDeadQueue}, Value: d.DeadQueue, Category: cat,
			Usage: "queue holding dead letters, bound to --dead-exchange with \"#\""},
	}
}

// Topology reads the flags of TopologyFlags.
func Topology(c *cli.Context) rabbit.Topology {
	return rabbit.Topology{
		Exchange:     c.String(rabbit.FlagExchange),
		Queue:        c.String(rabbit.FlagQueue),
		QueueType:    c.String(rabbit.FlagQueueType),
		BindingKey:   c.String(rabbit.FlagBindingKey),
		DeadExchange: c.String(rabbit.FlagDeadExchange),
		DeadQueue:    c.String(rabbit.FlagDeadQueue),
	}
}
