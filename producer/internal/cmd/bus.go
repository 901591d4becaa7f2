package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/rabbit"
)

// Flags every producer command shares to reach the bus.
const (
	flagConnName       = "amqp-connection-name"
	flagWindow         = "confirm-window"
	flagConnectTimeout = "connect-timeout"
)

func busFlags() []cli.Flag {
	return cliapp.Merge(
		[]cli.Flag{cliapp.BusFlag()},
		cliapp.AMQPFlags(),
		rabbit.TopologyFlags(),
		[]cli.Flag{
			&cli.StringFlag{Name: flagConnName, EnvVars: []string{"AMQP_CONNECTION_NAME"}, Category: "RabbitMQ",
				Usage: "connection_name shown in the management UI (default: producer-<command>-<host>-<pid>)"},
			&cli.IntFlag{Name: flagWindow, EnvVars: []string{"AMQP_CONFIRM_WINDOW"}, Value: 1024, Category: "RabbitMQ",
				Usage: "most messages published and not yet confirmed by the broker"},
		},
		cliapp.KafkaFlags(),
		[]cli.Flag{
			cliapp.KafkaTopicFlag(),
			&cli.DurationFlag{Name: flagConnectTimeout, EnvVars: []string{"BUS_CONNECT_TIMEOUT"}, Value: 30 * time.Second, Category: "Bus",
				Usage: "how long to wait for the first connection to the broker before giving up"},
		},
	)
}

// busConn is an open publisher and what it takes to watch and close it.
type busConn struct {
	pub   bus.Publisher
	ready func(context.Context) error
	close func() error
	desc  string
}

// openBus connects to the bus that --bus selects.
func openBus(c *cli.Context, command string, logger *slog.Logger, reg prometheus.Registerer) (*busConn, error) {
	switch b := c.String(cliapp.FlagBus); b {
	case "rabbitmq", "rabbit", "amqp":
		topo := rabbit.TopologyFromCLI(c)
		if err := topo.Validate(); err != nil {
			return nil, cli.Exit(err.Error(), cliapp.ExitFailure)
		}
		name := c.String(flagConnName)
		if name == "" {
			host, _ := os.Hostname()
			name = fmt.Sprintf("producer-%s-%s-%d", command, host, os.Getpid())
		}
		ctx, cancel := context.WithTimeout(c.Context, c.Duration(flagConnectTimeout))
		defer cancel()
		conn, err := rabbit.Dial(ctx, c.String(cliapp.FlagAMQPURL), name, logger)
		if err != nil {
			return nil, err
		}
		pub, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Window: c.Int(flagWindow)}, logger, reg)
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("open publisher: %w", err)
		}
		return &busConn{
			pub:   pub,
			ready: func(ctx context.Context) error { return errors.Join(conn.Check(ctx), pub.Check(ctx)) },
			close: func() error { return errors.Join(pub.Close(), conn.Close()) },
			desc:  "rabbitmq exchange " + topo.Exchange,
		}, nil
	case "kafka":
		topic := c.String(cliapp.FlagKafkaTopic)
		pub, err := kafka.NewPublisher(cliapp.KafkaConfig(c), topic, kafka.Options{}, logger, reg)
		if err != nil {
			return nil, cli.Exit(err.Error(), cliapp.ExitFailure)
		}
		// As with RabbitMQ, start only once the broker serves the topic
		// (a metadata request), within the connect timeout.
		if err := waitReady(c.Context, pub.Check, c.Duration(flagConnectTimeout)); err != nil {
			_ = pub.Close()
			return nil, fmt.Errorf("kafka topic %s: %w", topic, err)
		}
		return &busConn{pub: pub, ready: pub.Check, close: pub.Close, desc: "kafka topic " + topic}, nil
	default:
		return nil, cli.Exit(fmt.Sprintf("--bus %q: want rabbitmq or kafka", b), cliapp.ExitFailure)
	}
}

// waitReady polls check until it passes or timeout ends, returning the
// last error.
func waitReady(ctx context.Context, check func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %w", timeout, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
