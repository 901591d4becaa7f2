package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/producer/internal/ingest"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/obs"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "accept telemetry XML over HTTP and publish it; 202 only once the broker stored it",
		UsageText: "producer serve [--listen ADDR] [--confirm-timeout D] [options]",
		Description: `An HTTP ingest endpoint for units and vendor APIs that push: POST one XML message to
/ingest. The producer checks only what it must before taking responsibility:

  413  the body is over 1 MiB
  400  the body is not well-formed XML of either generation; the answer names the reason
  202  the broker confirmed the message (body: JSON with id, unit, generation, samples)
  503  the broker is unreachable, or did not confirm within --confirm-timeout; the answer has
       Retry-After. Nothing is accepted that could not be stored: retry the same body.
  500  the broker has no queue for the message (a configuration problem; nothing stored)

Everything else (sample values, units, timestamps) is the consumer's to validate. A client
may name its message with the X-Message-Id header; otherwise the id is the unit and a hash
of the body, so retrying the same body gives the same id.

/ingest, /metrics, /-/healthy and /-/ready share the --listen address; /-/ready fails while
the broker is not connected, so a load balancer stops sending before requests would get
503. Stops on SIGINT or SIGTERM.

Example:
  producer serve --listen :8080
  curl -X POST --data-binary @gen2-basic.xml http://127.0.0.1:8080/ingest`,
		Flags: cliapp.Merge([]cli.Flag{
			&cli.StringFlag{Name: "listen", EnvVars: []string{"INGEST_LISTEN"}, Value: "127.0.0.1:8080", Category: "Ingest", Usage: "address of /ingest, /metrics, /-/healthy and /-/ready"},
			&cli.DurationFlag{Name: "confirm-timeout", EnvVars: []string{"INGEST_CONFIRM_TIMEOUT"}, Value: 10 * time.Second, Category: "Ingest", Usage: "longest wait for the broker's confirm before answering 503"},
			&cli.DurationFlag{Name: "retry-after", EnvVars: []string{"INGEST_RETRY_AFTER"}, Value: 5 * time.Second, Category: "Ingest", Usage: "Retry-After of a 503"},
		}, busFlags()),
		Action: cliapp.Action(serveConfigFrom, runServe),
	}
}

// serveConfig is what serve runs with.
type serveConfig struct {
	Listen string
	Ingest ingest.Options // Ready is set once the bus is open
	Bus    busConfig
}

func serveConfigFrom(c *cli.Context) (serveConfig, error) {
	bus, err := busConfigFrom(c)
	if err != nil {
		return serveConfig{}, err
	}
	return serveConfig{Listen: c.String("listen"), Bus: bus,
		Ingest: ingest.Options{ConfirmTimeout: c.Duration("confirm-timeout"), RetryAfter: c.Duration("retry-after")}}, nil
}

func runServe(ctx context.Context, env cliapp.Env, cfg serveConfig) error {
	logger := env.Logger.With("command", "serve")
	reg := obs.NewRegistry()
	srv := obs.NewServer(cfg.Listen, reg, logger)
	if err := srv.Listen(); err != nil {
		return err
	}
	bc, err := openBus(ctx, cfg.Bus, "serve", logger, reg)
	if err != nil {
		return err
	}
	defer bc.close()
	srv.AddReadiness(obs.ReadinessCheck{Name: "bus", Check: bc.ready})
	opts := cfg.Ingest
	opts.Ready = bc.ready
	srv.Handle("/ingest", ingest.NewHandler(bc.pub, opts, logger, reg))
	logger.Info("ingest listening", "addr", srv.Addr(), "to", bc.desc)
	if err := srv.Run(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
