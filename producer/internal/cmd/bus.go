package cmd

import (
	"context"
	"crypto/tls"
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
	"github.com/flexipack/cutover/shared/retry"
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
		cliapp.TopologyFlags(),
		[]cli.Flag{
			&cli.StringFlag{Name: flagConnName, EnvVars: []string{"AMQP_CONNECTION_NAME"}, Category: "RabbitMQ",
				Usage: "connection_name shown in the management UI (default: producer-<command>-<host>-<pid>)"},
			&cli.IntFlag{Name: flagWindow, EnvVars: []string{"AMQP_CONFIRM_WINDOW"}, Value: 1024, Category: "RabbitMQ",
				Usage: "most messages published and not yet confirmed by the broker"},
		},
		cliapp.KafkaFlags(),
		[]cli.Flag{
			cliapp.KafkaTopicFlag(),
			cliapp.KafkaCreateTopicsFlag(),
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

// busConfig is the bus a producer command publishes to.
type busConfig struct {
	Bus        string // rabbitmq or kafka
	AMQPURL    string
	AMQPTLS    *tls.Config // nil: no --amqp-*-file given
	Topology   rabbit.Topology
	ConnName   string // "" for producer-<command>-<host>-<pid>
	Window     int
	Kafka      kafka.Config
	KafkaTopic string
	// KafkaCreateTopics creates the topic at start when missing.
	KafkaCreateTopics bool
	ConnectTimeout    time.Duration
}

// busConfigFrom reads and checks the busFlags.
func busConfigFrom(c *cli.Context) (busConfig, error) {
	cfg := busConfig{Bus: c.String(cliapp.FlagBus), AMQPURL: c.String(cliapp.FlagAMQPURL), Topology: cliapp.Topology(c),
		ConnName: c.String(flagConnName), Window: c.Int(flagWindow), Kafka: cliapp.KafkaConfig(c),
		KafkaTopic: c.String(cliapp.FlagKafkaTopic), KafkaCreateTopics: c.Bool(cliapp.FlagKafkaCreateTopics),
		ConnectTimeout: c.Duration(flagConnectTimeout)}
	switch cfg.Bus {
	case "rabbitmq", "rabbit", "amqp":
		if err := cfg.Topology.Validate(); err != nil {
			return cfg, cliapp.Exit(err, cliapp.ExitFailure)
		}
		var err error
		if cfg.AMQPTLS, err = cliapp.AMQPTLS(c); err != nil {
			return cfg, cliapp.Exit(err, cliapp.ExitFailure)
		}
	case "kafka":
	default:
		return cfg, cliapp.Exitf(cliapp.ExitFailure, "--bus %q: want rabbitmq or kafka", cfg.Bus)
	}
	return cfg, nil
}

// openBus connects to the bus cfg selects.
func openBus(ctx context.Context, cfg busConfig, command string, logger *slog.Logger, reg prometheus.Registerer) (*busConn, error) {
	switch cfg.Bus {
	case "rabbitmq", "rabbit", "amqp":
		topo := cfg.Topology
		name := cfg.ConnName
		if name == "" {
			host, _ := os.Hostname()
			name = fmt.Sprintf("producer-%s-%s-%d", command, host, os.Getpid())
		}
		ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
		defer cancel()
		conn, err := rabbit.DialTLS(ctx, cfg.AMQPURL, name, cfg.AMQPTLS, logger)
		if err != nil {
			return nil, err
		}
		pub, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Window: cfg.Window}, logger, reg)
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
		topic := cfg.KafkaTopic
		pub, err := kafka.NewPublisher(cfg.Kafka, topic, kafka.Options{}, logger, reg)
		if err != nil {
			return nil, cliapp.Exit(err, cliapp.ExitFailure)
		}
		if cfg.KafkaCreateTopics {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := kafka.EnsureTopics(cctx, pub.Client(), topic); err != nil {
				logger.Warn("cannot create the topic; waiting for it to exist", "topic", topic, "err", err)
			}
			cancel()
		}
		// As with RabbitMQ, start only once the broker serves the topic
		// (a metadata request), within the connect timeout.
		if err := waitReady(ctx, pub.Check, cfg.ConnectTimeout); err != nil {
			_ = pub.Close()
			return nil, fmt.Errorf("kafka topic %s: %w", topic, err)
		}
		return &busConn{pub: pub, ready: pub.Check, close: pub.Close, desc: "kafka topic " + topic}, nil
	default:
		return nil, cliapp.Exitf(cliapp.ExitFailure, "--bus %q: want rabbitmq or kafka", cfg.Bus)
	}
}

// waitReady retries check with back-off until it passes or timeout ends,
// returning the last error.
func waitReady(ctx context.Context, check func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := retry.Do(ctx, retry.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second}, check); err != nil {
		return fmt.Errorf("not ready within %s: %w", timeout, err)
	}
	return nil
}
