package cmd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/producer/internal/poll"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/obs"
)

func pollCommand() *cli.Command {
	return &cli.Command{
		Name:      "poll",
		Usage:     "poll unit HTTP endpoints for telemetry XML and publish it",
		UsageText: "producer poll --endpoint URL [--endpoint URL ...] [--endpoints-file FILE] [options]",
		Description: `Fetches one XML message per GET from every endpoint, every --interval, and publishes the
body as it is, with publisher confirms. The producer does not validate: telemetry.Inspect
only fills the headers (unit, generation, samples). A body that does not inspect (not
well-formed, unknown namespace, ...) is still published, with header inspect_error naming
the reason and routing key bsu.v0.unknown, so that the consumer dead-letters it where an
operator can see and replay it, instead of the producer dropping it.

Each request has --timeout. At most --concurrency requests (with their publishes) run at
once. An endpoint that fails (connection error, timeout, non-200 answer) is retried after an
exponential backoff: --interval doubling per consecutive failure, up to --max-backoff, with
jitter. 304 (the endpoint's ETag is sent as If-None-Match) and 204 publish nothing, and a
body identical to the endpoint's last one is not published again. A publish the bus refuses
is retried until it succeeds, so while the broker is down polling pauses rather than
dropping what it fetched.

Serves /metrics, /-/healthy and /-/ready (ready while the broker is connected) on
--http-addr. Stops on SIGINT or SIGTERM.

Examples:
  producer poll --endpoint http://10.0.4.17/telemetry --endpoint http://10.0.4.18/telemetry
  producer poll --endpoints-file units.txt --interval 30s --concurrency 64`,
		Flags: cliapp.Merge([]cli.Flag{
			&cli.StringSliceFlag{Name: "endpoint", EnvVars: []string{"POLL_ENDPOINTS"}, Category: "Polling", Usage: "unit endpoint URL (repeat, or comma-separate in the env var)"},
			&cli.StringFlag{Name: "endpoints-file", EnvVars: []string{"POLL_ENDPOINTS_FILE"}, Category: "Polling", Usage: "file with one endpoint URL a line (# comments and blank lines ignored)"},
			&cli.DurationFlag{Name: "interval", EnvVars: []string{"POLL_INTERVAL"}, Value: 10 * time.Second, Category: "Polling", Usage: "time between polls of one endpoint"},
			&cli.DurationFlag{Name: "timeout", EnvVars: []string{"POLL_TIMEOUT"}, Value: 5 * time.Second, Category: "Polling", Usage: "timeout of one request"},
			&cli.IntFlag{Name: "concurrency", EnvVars: []string{"POLL_CONCURRENCY"}, Value: 16, Category: "Polling", Usage: "requests in flight at once"},
			&cli.DurationFlag{Name: "max-backoff", EnvVars: []string{"POLL_MAX_BACKOFF"}, Value: 5 * time.Minute, Category: "Polling", Usage: "longest wait before retrying a failing endpoint"},
			cliapp.HTTPAddrFlag("127.0.0.1:9102"),
		}, busFlags()),
		Action: cliapp.Action(pollConfigFrom, runPoll),
	}
}

func readEndpoints(c *cli.Context) ([]string, error) {
	eps := append([]string(nil), c.StringSlice("endpoint")...)
	if path := c.String("endpoints-file"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--endpoints-file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			s := strings.TrimSpace(sc.Text())
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			eps = append(eps, s)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return eps, nil
}

// pollConfig is what poll runs with.
type pollConfig struct {
	Poll     poll.Config
	HTTPAddr string
	Bus      busConfig
}

func pollConfigFrom(c *cli.Context) (pollConfig, error) {
	eps, err := readEndpoints(c)
	if err != nil {
		return pollConfig{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	bus, err := busConfigFrom(c)
	if err != nil {
		return pollConfig{}, err
	}
	return pollConfig{HTTPAddr: c.String(cliapp.FlagHTTPAddr), Bus: bus, Poll: poll.Config{
		Endpoints:   eps,
		Interval:    c.Duration("interval"),
		Timeout:     c.Duration("timeout"),
		Concurrency: c.Int("concurrency"),
		MaxBackoff:  c.Duration("max-backoff"),
	}}, nil
}

func runPoll(ctx context.Context, env cliapp.Env, pc pollConfig) error {
	logger := env.Logger.With("command", "poll")
	cfg := pc.Poll
	reg := obs.NewRegistry()
	// Validate before connecting to anything.
	if _, err := poll.New(cfg, nil, logger, nil); err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	srv := obs.NewServer(pc.HTTPAddr, reg, logger)
	if err := srv.Listen(); err != nil {
		return err
	}
	bc, err := openBus(ctx, pc.Bus, "poll", logger, reg)
	if err != nil {
		return err
	}
	defer bc.close()
	srv.AddReadiness(obs.ReadinessCheck{Name: "bus", Check: bc.ready})
	p, err := poll.New(cfg, bc.pub, logger, reg)
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	logger.Info("polling", "endpoints", len(cfg.Endpoints), "interval", cfg.Interval, "to", bc.desc)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error {
		err := p.Run(ctx)
		srv.SetDraining()
		return err
	})
	err = g.Wait()
	if err == nil || err == context.Canceled {
		logger.Info("poll stopped")
		return nil
	}
	return fmt.Errorf("poll: %w", err)
}
