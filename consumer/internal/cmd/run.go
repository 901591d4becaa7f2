package cmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/consumer/internal/pipeline"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/source"
)

// Flag names of consumer run.
const (
	flagConsumerID      = "consumer-id"
	flagPrefetch        = "prefetch"
	flagBatchSize       = "batch-size"
	flagFlushInterval   = "flush-interval"
	flagInFlight        = "inflight"
	flagDecodeWorkers   = "decode-workers"
	flagPhasePoll       = "phase-poll"
	flagShutdownTimeout = "shutdown-timeout"
	flagKafkaTopic      = "kafka-topic"
	flagKafkaGroup      = "kafka-group"
	flagKafkaDeadTopic  = "kafka-dead-topic"
	flagKafkaSession    = "kafka-session-timeout"
	flagLegacyAttempts  = "legacy-attempts"
)

func defaultConsumerID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "consumer"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

func runFlags() []cli.Flag {
	own := []cli.Flag{
		&cli.StringFlag{Name: flagConsumerID, EnvVars: []string{"CONSUMER_ID"}, Value: defaultConsumerID(), DefaultText: "host-pid",
			Usage: "this consumer's identity in heartbeats, the gap ledger, dead-letter headers and the RabbitMQ connection name"},
		&cli.IntFlag{Name: flagPrefetch, EnvVars: []string{"CONSUMER_PREFETCH"}, Value: 6000, Category: "Throughput",
			Usage: "unacknowledged messages the broker sends ahead (RabbitMQ QoS) or the Kafka reader buffers; keep 2-4 batches"},
		&cli.IntFlag{Name: flagBatchSize, EnvVars: []string{"CONSUMER_BATCH_SIZE"}, Value: 2000, Category: "Throughput",
			Usage: "most messages per batch; a batch is decoded, written and acked as one"},
		&cli.DurationFlag{Name: flagFlushInterval, EnvVars: []string{"CONSUMER_FLUSH_INTERVAL"}, Value: 100 * time.Millisecond, Category: "Throughput",
			Usage: "longest a batch waits to fill before it is written"},
		&cli.IntFlag{Name: flagInFlight, EnvVars: []string{"CONSUMER_INFLIGHT"}, Value: 3, Category: "Throughput",
			Usage: "batches read and not yet acked at once (acks stay in read order)"},
		&cli.IntFlag{Name: flagDecodeWorkers, EnvVars: []string{"CONSUMER_DECODE_WORKERS"}, Value: 0, DefaultText: "GOMAXPROCS", Category: "Throughput",
			Usage: "goroutines decoding one batch"},
		&cli.DurationFlag{Name: flagPhasePoll, EnvVars: []string{"CONSUMER_PHASE_POLL"}, Value: 2 * time.Second,
			Usage: "how often the cutover phase is reread from the state store and the heartbeat written"},
		&cli.DurationFlag{Name: flagShutdownTimeout, EnvVars: []string{"CONSUMER_SHUTDOWN_TIMEOUT"}, Value: 30 * time.Second,
			Usage: "on SIGTERM, how long in-flight batches may take to finish and be acked; what is not done by then goes back to the bus"},
		&cli.IntFlag{Name: flagLegacyAttempts, EnvVars: []string{"CONSUMER_LEGACY_ATTEMPTS"}, Value: 3, Category: "Legacy store",
			Usage: "attempts at a legacy write while the legacy store is only repairable (influx-primary) before its readings go to the gap ledger"},
		&cli.StringFlag{Name: flagKafkaTopic, EnvVars: []string{"KAFKA_TOPIC"}, Value: "telemetry", Category: "Kafka",
			Usage: "topic to consume with --bus kafka"},
		&cli.StringFlag{Name: flagKafkaGroup, EnvVars: []string{"KAFKA_GROUP"}, Value: "consumer", Category: "Kafka",
			Usage: "consumer group; consumers in one group share the topic's partitions"},
		&cli.StringFlag{Name: flagKafkaDeadTopic, EnvVars: []string{"KAFKA_DEAD_TOPIC"}, DefaultText: "<kafka-topic>.dead", Category: "Kafka",
			Usage: "topic dead letters go to with --bus kafka"},
		&cli.DurationFlag{Name: flagKafkaSession, EnvVars: []string{"KAFKA_SESSION_TIMEOUT"}, Value: 10 * time.Second, Category: "Kafka",
			Usage: "how long the group waits for a silent (killed) member before moving its partitions to the others"},
		cliapp.HTTPAddrFlag("127.0.0.1:9100"),
		cliapp.BusFlag(),
		cliapp.KafkaCreateTopicsFlag(),
	}
	return cliapp.Merge(own, cliapp.AMQPFlags(), []cli.Flag{cliapp.AMQPManagementFlag()}, cliapp.TopologyFlags(), cliapp.KafkaFlags(), cliapp.LegacyFlags(), cliapp.StateFlags(),
		cliapp.InfluxFlags())
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "consume telemetry from the bus and write it to the stores the cutover phase asks for",
		Description: `run reads telemetry messages from RabbitMQ (--bus rabbitmq, the ingest queue) or Kafka
(--bus kafka, a consumer group), decodes them in batches and writes each reading to the legacy
store (PostgreSQL, idempotent upsert keyed by unit and time) and to InfluxDB, as the cutover
phase in the state store (--state-dsn) asks:

  legacy          legacy store only
  dual-write      legacy required, InfluxDB repairable
  shadow-read     legacy required, InfluxDB repairable
  influx-primary  InfluxDB required, legacy repairable
  influx-only     InfluxDB only

A batch is acknowledged only when it is durable. While a required store fails, the batch is
held and retried (nothing is acked, the broker keeps the messages, /-/ready is false). When a
repairable store fails after its retries, the units and time ranges it missed are written to
the gap ledger (cutover.gap_ledger) before the ack, for backfill to repair; the store is written
again as soon as it answers. The phase is reread every --phase-poll and applied at the next batch
boundary; a heartbeat reports the applied phase and the lag.

Messages the codec rejects go to the dead-letter queue (RabbitMQ: --dead-exchange; Kafka:
--kafka-dead-topic) with headers x-reason, x-first-failure, x-original-routing-key and x-kind
"rejected". A message of which only some samples were rejected is stored in part and also
dead-lettered whole with x-kind "partial" and every rejected sample's reason; replaying it after
a fix is safe (stored samples upsert idempotently). See 'consumer dlq'.

Several consumers on one queue or group share the work. SIGTERM stops consuming, finishes and
acks the batches in flight within --shutdown-timeout, and exits 0.

/metrics, /-/healthy and /-/ready are served on --http-addr.`,
		Flags:  runFlags(),
		Action: cliapp.Action(runConfigFrom, runConsumer),
	}
}

// runConfig is what consumer run runs with.
type runConfig struct {
	ConsumerID     string
	HTTPAddr       string
	StateDSN       string
	LegacyDSN      string
	Influx         influx.Config
	Pipeline       pipeline.Config
	LegacyAttempts int
	Bus            busConfig
}

// busConfig is the bus consumer run reads from and dead-letters to.
type busConfig struct {
	Bus            string // rabbitmq or kafka
	AMQPURL        string
	AMQPTLS        *tls.Config // nil: no --amqp-*-file given
	MgmtURL        string
	Topology       rabbit.Topology
	Prefetch       int
	Kafka          kafka.Config
	KafkaTopic     string
	KafkaGroup     string
	KafkaDeadTopic string // default <KafkaTopic>.dead
	KafkaSession   time.Duration
	// KafkaCreateTopics creates the topic and the dead-letter topic at
	// start when missing.
	KafkaCreateTopics bool
}

func runConfigFrom(c *cli.Context) (runConfig, error) {
	id := c.String(flagConsumerID)
	cfg := runConfig{ConsumerID: id, HTTPAddr: c.String(cliapp.FlagHTTPAddr), StateDSN: c.String(cliapp.FlagStateDSN),
		LegacyDSN: c.String(cliapp.FlagPGDSN), Influx: cliapp.InfluxConfig(c), LegacyAttempts: c.Int(flagLegacyAttempts),
		Pipeline: pipeline.Config{
			ConsumerID:      id,
			BatchSize:       c.Int(flagBatchSize),
			FlushInterval:   c.Duration(flagFlushInterval),
			InFlight:        c.Int(flagInFlight),
			DecodeWorkers:   c.Int(flagDecodeWorkers),
			PhasePoll:       c.Duration(flagPhasePoll),
			ShutdownTimeout: c.Duration(flagShutdownTimeout),
		},
		Bus: busConfig{Bus: c.String(cliapp.FlagBus), AMQPURL: c.String(cliapp.FlagAMQPURL), MgmtURL: c.String(cliapp.FlagAMQPMgmtURL),
			Topology: cliapp.Topology(c), Prefetch: c.Int(flagPrefetch), Kafka: cliapp.KafkaConfig(c),
			KafkaTopic: c.String(flagKafkaTopic), KafkaGroup: c.String(flagKafkaGroup), KafkaDeadTopic: c.String(flagKafkaDeadTopic),
			KafkaSession: c.Duration(flagKafkaSession), KafkaCreateTopics: c.Bool(cliapp.FlagKafkaCreateTopics)},
	}
	if cfg.Bus.KafkaDeadTopic == "" {
		cfg.Bus.KafkaDeadTopic = cfg.Bus.KafkaTopic + ".dead"
	}
	var err error
	if cfg.Bus.AMQPTLS, err = cliapp.AMQPTLS(c); err != nil {
		return cfg, cliapp.Exit(err, cliapp.ExitFailure)
	}
	return cfg, nil
}

// runStores are the stores consumer run writes.
type runStores struct {
	state  *cutover.Store
	legacy *legacy.Store
	influx *influx.Writer
}

func (s *runStores) Close() {
	if s.influx != nil {
		s.influx.Close()
	}
	if s.legacy != nil {
		s.legacy.Close()
	}
	if s.state != nil {
		s.state.Close()
	}
}

// openRunStores opens the state and legacy stores, retrying until they
// answer (the consumer may start before them), and the InfluxDB writer.
func openRunStores(ctx context.Context, cfg runConfig, logger *slog.Logger, reg prometheus.Registerer) (*runStores, error) {
	s := &runStores{}
	var err error
	s.state, err = openWithRetry(ctx, logger, "state store", func(ctx context.Context) (*cutover.Store, error) {
		return cutover.Open(ctx, cfg.StateDSN)
	})
	if err != nil {
		return s, err
	}
	s.legacy, err = openWithRetry(ctx, logger, "legacy store", func(ctx context.Context) (*legacy.Store, error) {
		l, err := legacy.Open(ctx, cfg.LegacyDSN, logger)
		if err != nil {
			return nil, err
		}
		if err := l.Migrate(ctx); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	})
	if err != nil {
		return s, err
	}
	s.influx, err = influx.NewWriter(cfg.Influx, logger)
	if err != nil {
		return s, err
	}
	s.influx.WithMetrics(reg)
	return s, nil
}

func runConsumer(ctx context.Context, env cliapp.Env, cfg runConfig) error {
	id := cfg.ConsumerID
	logger := env.Logger.With("consumer_id", id)
	reg := obs.NewRegistry()
	srv := obs.NewServer(cfg.HTTPAddr, reg, logger)
	if err := srv.Listen(); err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	stores, err := openRunStores(ctx, cfg, logger, reg)
	defer stores.Close()
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	src, dead, closeBus, err := openBus(ctx, cfg.Bus, id, logger, reg)
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	defer closeBus()

	p, err := pipeline.New(cfg.Pipeline, pipeline.Deps{
		Source: src,
		Sinks: []pipeline.SinkSpec{
			{Name: cutover.SinkLegacy, Sink: stores.legacy, Attempts: cfg.LegacyAttempts},
			{Name: cutover.SinkInflux, Sink: stores.influx, Attempts: 1}, // the writer retries 429/503/time-outs itself
		},
		State:      stores.state,
		Ledger:     stores.state,
		DeadLetter: dead,
		Logger:     logger,
		Registry:   reg,
	})
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	srv.AddReadiness(obs.ReadinessCheck{Name: "pipeline", Check: p.Check})
	if err := serveWhileRunning(ctx, srv, p.Run); err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	return nil
}

// serveWhileRunning runs the HTTP server while run runs: the server drains
// (not ready) once ctx ends and stops once run returned; run stops if the
// server fails.
func serveWhileRunning(ctx context.Context, srv *obs.Server, run func(context.Context) error) error {
	g, gctx := errgroup.WithContext(context.WithoutCancel(ctx))
	srvCtx, stopSrv := context.WithCancel(gctx)
	g.Go(func() error { return srv.Run(srvCtx) })
	g.Go(func() error {
		defer stopSrv()
		stopDraining := context.AfterFunc(ctx, srv.SetDraining)
		defer stopDraining()
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		context.AfterFunc(gctx, cancel) // the server failed
		return run(runCtx)
	})
	return g.Wait()
}

// openBus opens the source and the dead-letter writer for the bus; close
// releases what it opened.
func openBus(ctx context.Context, cfg busConfig, id string, logger *slog.Logger, reg *prometheus.Registry) (source.Source, dlq.Writer, func(), error) {
	switch cfg.Bus {
	case "rabbitmq":
		topo := cfg.Topology
		if err := topo.Validate(); err != nil {
			return nil, nil, nil, err
		}
		conn, err := rabbit.DialTLS(ctx, cfg.AMQPURL, "consumer-"+id, cfg.AMQPTLS, logger)
		if err != nil {
			return nil, nil, nil, err
		}
		src, err := source.NewRabbit(conn, source.RabbitOptions{Topology: topo, Prefetch: cfg.Prefetch, ConsumerTag: id,
			MgmtURL: cfg.MgmtURL}, logger, prometheus.WrapRegistererWithPrefix("consumer_", reg))
		if err != nil {
			_ = conn.Close()
			return nil, nil, nil, err
		}
		pub, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Name: "dead-letter"}, logger, reg)
		if err != nil {
			_ = conn.Close()
			return nil, nil, nil, fmt.Errorf("dead-letter publisher: %w", err)
		}
		closeAll := func() {
			_ = pub.Close()
			_ = conn.Close()
		}
		return src, &dlq.RabbitWriter{Pub: pub, Exchange: topo.DeadExchange, ConsumerID: id}, closeAll, nil
	case "kafka":
		if cfg.KafkaCreateTopics {
			ensureKafkaTopics(ctx, cfg.Kafka, logger, cfg.KafkaTopic, cfg.KafkaDeadTopic)
		}
		src, err := source.NewKafka(source.KafkaOptions{Cluster: cfg.Kafka, Topic: cfg.KafkaTopic, GroupID: cfg.KafkaGroup,
			QueueCapacity: cfg.Prefetch, SessionTimeout: cfg.KafkaSession}, logger)
		if err != nil {
			return nil, nil, nil, err
		}
		w, err := dlq.NewKafkaWriter(cfg.Kafka, cfg.KafkaDeadTopic, id, logger, reg)
		if err != nil {
			_ = src.Close()
			return nil, nil, nil, fmt.Errorf("dead-letter producer: %w", err)
		}
		return src, w, func() { _ = w.Close() }, nil
	default:
		return nil, nil, nil, fmt.Errorf("--%s %q: want rabbitmq or kafka", cliapp.FlagBus, cfg.Bus)
	}
}

// openWithRetry opens a store, retrying with back-off until ctx ends, so
// the consumer can start before its stores.
func openWithRetry[T any](ctx context.Context, logger *slog.Logger, what string, open func(context.Context) (T, error)) (T, error) {
	v, err := retry.Value(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		logger.Warn("cannot open "+what+", retrying", "err", err, "retry_in", wait)
	}}, func(ctx context.Context) (T, error) {
		octx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		return open(octx)
	})
	if err != nil && ctx.Err() != nil {
		return v, fmt.Errorf("open %s: %w", what, retry.Stopped(ctx, err))
	}
	return v, err
}

// ensureKafkaTopics creates the telemetry and dead-letter topics when
// missing; a failure is logged (the source's readiness reports a topic that
// still does not exist).
func ensureKafkaTopics(ctx context.Context, cluster kafka.Config, logger *slog.Logger, topics ...string) {
	client, err := cluster.Client()
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = kafka.EnsureTopics(cctx, client, topics...)
		cancel()
	}
	if err != nil {
		logger.Warn("cannot create the kafka topics", "topics", topics, "err", err)
	}
}
