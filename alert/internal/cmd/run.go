package cmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/alert/internal/notify"
	"github.com/flexipack/cutover/alert/internal/rules"
	"github.com/flexipack/cutover/alert/internal/service"
	"github.com/flexipack/cutover/alert/internal/store"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/source"
)

// Flag names of alert run.
const (
	flagRules           = "rules"
	flagAlertmanagerURL = "alertmanager-url"
	flagAMTimeout       = "alertmanager-timeout"
	flagResend          = "resend-interval"
	flagQueue           = "alert-queue"
	flagPrefetch        = "prefetch"
	flagBatchSize       = "batch-size"
	flagLinger          = "linger"
	flagTick            = "tick"
	flagCheckpoint      = "checkpoint-interval"
	flagInfluxPoints    = "influx-points"
	flagID              = "alert-id"
	flagKafkaGroup      = "kafka-group"
)

// runConfig is everything alert run reads from its flags.
type runConfig struct {
	ID              string
	Bus             string // rabbitmq or kafka
	Kafka           source.KafkaOptions
	HTTPAddr        string
	RulesFile       string
	AMQPURL         string
	AMQPTLS         *tls.Config // nil: no --amqp-*-file given
	Topology        rabbit.Topology
	Prefetch        int
	StateDSN        string
	AlertmanagerURL string
	AMTimeout       time.Duration
	Resend          time.Duration
	InfluxPoints    bool
	Influx          notify.InfluxConfig
	Service         service.Config
}

func runFlags() []cli.Flag {
	host, _ := os.Hostname()
	own := []cli.Flag{
		&cli.StringFlag{Name: flagID, EnvVars: []string{"ALERT_ID"}, Value: "alert-" + host, Usage: "this process's name in the RabbitMQ connection and consumer tag"},
		&cli.StringFlag{Name: flagRules, EnvVars: []string{"ALERT_RULES"}, Value: "alert/rules/default.yml", Category: "Rules",
			Usage: "rule file (YAML); SIGHUP reloads it, keeping state; a file with errors is refused and the old rules stay"},
		&cli.StringFlag{Name: flagAlertmanagerURL, EnvVars: []string{"ALERTMANAGER_URL"}, Value: "http://127.0.0.1:9093", Category: "Alertmanager",
			Usage: "Alertmanager base URL; alerts go to its /api/v2/alerts"},
		&cli.DurationFlag{Name: flagAMTimeout, EnvVars: []string{"ALERT_ALERTMANAGER_TIMEOUT"}, Value: 10 * time.Second, Category: "Alertmanager",
			Usage: "timeout of one request to Alertmanager"},
		&cli.DurationFlag{Name: flagResend, EnvVars: []string{"ALERT_RESEND_INTERVAL"}, Value: time.Minute, Category: "Alertmanager",
			Usage: "how often firing alerts are sent again (each send is valid for four intervals)"},
		&cli.StringFlag{Name: flagQueue, EnvVars: []string{"ALERT_QUEUE"}, Value: "telemetry.alert", Category: "RabbitMQ",
			Usage: "the alert service's own queue, bound to --exchange with --binding-key"},
		&cli.IntFlag{Name: flagPrefetch, EnvVars: []string{"ALERT_PREFETCH"}, Value: 2000, Category: "Throughput",
			Usage: "unacknowledged messages the broker sends ahead"},
		&cli.IntFlag{Name: flagBatchSize, EnvVars: []string{"ALERT_BATCH_SIZE"}, Value: 500, Category: "Throughput",
			Usage: "most messages evaluated, stored and acked as one batch"},
		&cli.DurationFlag{Name: flagLinger, EnvVars: []string{"ALERT_LINGER"}, Value: 50 * time.Millisecond, Category: "Throughput",
			Usage: "longest a batch waits to fill"},
		&cli.DurationFlag{Name: flagTick, EnvVars: []string{"ALERT_TICK"}, Value: time.Second, Category: "Rules",
			Usage: "how often absence rules are evaluated"},
		&cli.DurationFlag{Name: flagCheckpoint, EnvVars: []string{"ALERT_CHECKPOINT_INTERVAL"}, Value: 5 * time.Second, Category: "State store",
			Usage: "how often the units changed since the last checkpoint are written to the state store with their aggregate windows " +
				"(also on reload and at shutdown); a crash (SIGKILL) loses at most this much of the acked stream from the windows"},
		&cli.BoolFlag{Name: flagInfluxPoints, EnvVars: []string{"ALERT_INFLUX_POINTS"}, Value: true, Category: "InfluxDB",
			Usage: "write a bsu_alert point to InfluxDB on every alert state change"},
		cliapp.HTTPAddrFlag("127.0.0.1:9104"),
		cliapp.BusFlag(),
		cliapp.KafkaTopicFlag(),
		&cli.StringFlag{Name: flagKafkaGroup, EnvVars: []string{"ALERT_KAFKA_GROUP"}, Value: "alert", Category: "Kafka",
			Usage: "the alert service's own consumer group with --bus kafka (never the consumers' group)"},
	}
	var topo []cli.Flag
	for _, f := range cliapp.TopologyFlags() {
		if f.Names()[0] != rabbit.FlagQueue {
			topo = append(topo, f)
		}
	}
	return cliapp.Merge(own, cliapp.AMQPFlags(), topo, cliapp.KafkaFlags(), cliapp.StateFlags(), cliapp.InfluxFlags())
}

// The Alertmanager URL may carry basic-auth credentials: it gets an
// --alertmanager-url-file companion and is redacted like the others.
func init() { cliapp.SecretFlags = append(cliapp.SecretFlags, flagAlertmanagerURL) }

func runConfigFrom(c *cli.Context) (runConfig, error) {
	topo := cliapp.Topology(c)
	topo.Queue = c.String(flagQueue)
	cfg := runConfig{
		ID: c.String(flagID), Bus: c.String(cliapp.FlagBus),
		Kafka: source.KafkaOptions{Cluster: cliapp.KafkaConfig(c), Topic: c.String(cliapp.FlagKafkaTopic), GroupID: c.String(flagKafkaGroup),
			QueueCapacity: c.Int(flagPrefetch)},
		HTTPAddr: c.String(cliapp.FlagHTTPAddr), RulesFile: c.String(flagRules),
		AMQPURL: c.String(cliapp.FlagAMQPURL), Topology: topo, Prefetch: c.Int(flagPrefetch),
		StateDSN: c.String(cliapp.FlagStateDSN), AlertmanagerURL: c.String(flagAlertmanagerURL),
		AMTimeout: c.Duration(flagAMTimeout), Resend: c.Duration(flagResend), InfluxPoints: c.Bool(flagInfluxPoints),
		Influx: notify.InfluxConfig{Influx: cliapp.InfluxConfig(c)},
		Service: service.Config{BatchSize: c.Int(flagBatchSize), Linger: c.Duration(flagLinger), TickInterval: c.Duration(flagTick),
			UnitCheckpoint: c.Duration(flagCheckpoint)},
	}
	if err := topo.Validate(); err != nil {
		return cfg, err
	}
	var err error
	if cfg.AMQPTLS, err = cliapp.AMQPTLS(c); err != nil {
		return cfg, err
	}
	switch cfg.Bus {
	case "rabbitmq", "kafka":
	default:
		return cfg, fmt.Errorf("--%s %q: want rabbitmq or kafka", cliapp.FlagBus, cfg.Bus)
	}
	if cfg.Bus == "kafka" && cfg.Kafka.GroupID == "consumer" {
		return cfg, fmt.Errorf("--%s %q: the alert service needs its own consumer group, not the consumers'", flagKafkaGroup, cfg.Kafka.GroupID)
	}
	if d := cfg.Service.UnitCheckpoint; d < 100*time.Millisecond || d > time.Hour {
		return cfg, fmt.Errorf("--%s %s: want from 100ms to 1h", flagCheckpoint, d)
	}
	if cfg.Resend < time.Second {
		return cfg, fmt.Errorf("--%s %s: want at least 1s", flagResend, cfg.Resend)
	}
	if cfg.Topology.Queue == "telemetry.ingest" || cfg.Topology.Queue == topo.DeadQueue {
		return cfg, fmt.Errorf("--%s %q: the alert service needs its own queue, not the consumer's", flagQueue, cfg.Topology.Queue)
	}
	return cfg, nil
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "evaluate the rules on the live stream and deliver alerts until stopped",
		Description: `run declares its own queue (--alert-queue) bound to the telemetry exchange (--bus rabbitmq), or
joins its own consumer group (--kafka-group, default "alert") on --kafka-topic (--bus kafka); reads batches,
evaluates every rule on every reading in reading time, writes state changes to the state store
(schema "alert" of --state-dsn) and only then acks the batch. Alerts go to Alertmanager
(--alertmanager-url, API v2): firing alerts are re-sent every --resend-interval, a resolution
carries endsAt; while Alertmanager is down they are retried with back-off (resolutions wait in
the state store's outbox, so a restart loses none) and the service stays healthy. Every state
change is also a bsu_alert point in InfluxDB (--influx-points).

Messages that cannot be decoded are counted and skipped (the consumer dead-letters them).
SIGHUP reloads --rules, keeping the state of every rule whose name and kind are unchanged; a
file with errors is refused (logged with file:line) and the old rules stay. SIGTERM stops
reading, writes the state and exits 0.

Exit status: 0 stopped by a signal, 1 a start-up error (rules with errors, a port in use, a bad
flag). Services unreachable at start are retried until they answer or a signal ends the wait.

/metrics, /-/healthy and /-/ready are served on --http-addr.`,
		Flags:  runFlags(),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	cfg, err := runConfigFrom(c)
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	if err := runAlert(c.Context, cfg, cliapp.Logger(c)); err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	return nil
}

func runAlert(ctx context.Context, cfg runConfig, logger *slog.Logger) error {
	set, err := rules.Load(cfg.RulesFile)
	if err != nil {
		return err
	}
	reg := obs.NewRegistry()
	srv := obs.NewServer(cfg.HTTPAddr, reg, logger)
	if err := srv.Listen(); err != nil {
		return err
	}
	st, err := retry.Value(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		logger.Warn("cannot open the state store, retrying", "err", err, "retry_in", wait)
	}}, func(ctx context.Context) (*store.Store, error) { return store.Open(ctx, cfg.StateDSN) })
	if err != nil {
		return err
	}
	defer st.Close()
	src, closeSrc, err := openSource(ctx, cfg, logger, reg)
	if err != nil {
		return err
	}
	defer closeSrc()
	am, err := notify.NewAlertmanager(cfg.AlertmanagerURL, cfg.AMTimeout)
	if err != nil {
		return err
	}
	deps := service.Deps{Rules: set, Source: src, Store: st, Logger: logger, Registry: reg,
		Notifier: notify.NewNotifier(notify.Config{ResendInterval: cfg.Resend}, am, st, logger, reg)}
	if cfg.InfluxPoints {
		if deps.Points, err = notify.NewInfluxPoints(cfg.Influx, logger, reg); err != nil {
			return err
		}
	}
	svc, err := service.New(cfg.Service, deps)
	if err != nil {
		return err
	}
	srv.AddReadiness(obs.ReadinessCheck{Name: "alert", Check: svc.Check})
	return serve(ctx, cfg, srv, svc, reg, logger)
}

// openSource opens the bus --bus names: the alert queue on RabbitMQ, or the
// alert service's consumer group on Kafka.
func openSource(ctx context.Context, cfg runConfig, logger *slog.Logger, reg prometheus.Registerer) (source.Source, func(), error) {
	if cfg.Bus == "kafka" {
		src, err := source.NewKafka(cfg.Kafka, logger)
		if err != nil {
			return nil, nil, err
		}
		return src, func() { _ = src.Close() }, nil
	}
	conn, err := rabbit.DialTLS(ctx, cfg.AMQPURL, cfg.ID, cfg.AMQPTLS, logger)
	if err != nil {
		return nil, nil, err
	}
	src, err := source.NewRabbit(conn, source.RabbitOptions{Topology: cfg.Topology, Prefetch: cfg.Prefetch, ConsumerTag: cfg.ID},
		logger, prometheus.WrapRegistererWithPrefix("alert_", reg))
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return src, func() { _ = src.Close(); _ = conn.Close() }, nil
}

// serve runs the HTTP server, the service and the SIGHUP reloader until ctx ends.
func serve(ctx context.Context, cfg runConfig, srv *obs.Server, svc *service.Service, reg prometheus.Registerer, logger *slog.Logger) error {
	reloads := obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alert_rule_reloads_total",
		Help: "Rule reloads on SIGHUP, by result: ok, or refused (the file has errors; the old rules stay)."}, []string{"result"}))
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				set, err := rules.Load(cfg.RulesFile)
				if err != nil {
					reloads.WithLabelValues("refused").Inc()
					logger.Error("rule reload refused; the old rules stay", "file", cfg.RulesFile, "err", err)
					continue
				}
				reloads.WithLabelValues("ok").Inc()
				svc.Reload(set)
			}
		}
	})
	g.Go(func() error {
		if err := svc.Start(gctx); err != nil {
			return err
		}
		context.AfterFunc(gctx, srv.SetDraining)
		return svc.Run(gctx)
	})
	return g.Wait()
}
