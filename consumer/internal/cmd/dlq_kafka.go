package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/obs"
)

const (
	flagDLQKafkaReplayGroup = "kafka-replay-group"
	flagDLQFromStart        = "from-start"
)

// dlqKafkaFlags are the Kafka side of consumer dlq.
func dlqKafkaFlags() []cli.Flag {
	return cliapp.Merge(cliapp.KafkaFlags(), []cli.Flag{
		&cli.StringFlag{Name: flagKafkaTopic, EnvVars: []string{"KAFKA_TOPIC"}, Value: "telemetry", Category: "Kafka",
			Usage: "the telemetry topic: replay produces only there"},
		&cli.StringFlag{Name: flagKafkaDeadTopic, EnvVars: []string{"KAFKA_DEAD_TOPIC"}, DefaultText: "<kafka-topic>.dead", Category: "Kafka",
			Usage: "the dead-letter topic"},
		&cli.StringFlag{Name: flagDLQKafkaReplayGroup, EnvVars: []string{"KAFKA_REPLAY_GROUP"}, Value: "consumer-dlq-replay", Category: "Kafka",
			Usage: "consumer group under which replay records how far through the dead-letter topic it got"},
	})
}

// dlqKafkaConfig is what dlq list and dlq replay run with on Kafka.
type dlqKafkaConfig struct {
	Output    string
	Dead      dlq.KafkaDead
	Filter    dlq.Filter
	Limit     int
	Execute   bool // replay only
	FromStart bool // replay only
}

func dlqKafkaConfigFrom(c *cli.Context) (dlqKafkaConfig, error) {
	out, err := cliapp.Output(c)
	if err != nil {
		return dlqKafkaConfig{}, err
	}
	f := dlq.Filter{Reason: c.String(flagDLQReason), Kind: c.String(flagDLQKind), Unit: c.String(flagDLQUnit)}
	switch f.Kind {
	case "", dlq.KindRejected, dlq.KindPartial:
	default:
		return dlqKafkaConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--kind %q: want rejected or partial on Kafka", f.Kind)
	}
	topic := c.String(flagKafkaTopic)
	dead := c.String(flagKafkaDeadTopic)
	if dead == "" {
		dead = topic + ".dead"
	}
	d := dlq.KafkaDead{Cluster: cliapp.KafkaConfig(c), Topic: dead, Original: topic, Group: c.String(flagDLQKafkaReplayGroup)}
	if err := d.Cluster.Validate(); err != nil {
		return dlqKafkaConfig{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	return dlqKafkaConfig{Output: out, Dead: d, Filter: f, Limit: c.Int(flagDLQLimit), Execute: c.Bool(flagDLQExecute),
		FromStart: c.Bool(flagDLQFromStart)}, nil
}

func dlqKafkaList(ctx context.Context, env cliapp.Env, cfg dlqKafkaConfig) error {
	d := cfg.Dead
	entries, total, err := dlq.ListKafka(ctx, d, cfg.Filter, cfg.Limit)
	if err != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "dlq list: %w", err)
	}
	doc := struct {
		Topic string `json:"topic"`
		listed
	}{d.Topic, listed{total, len(entries), nonNil(entries)}}
	return printListed(env.Out, cfg.Output, doc, entries, fmt.Sprintf("%d of %d dead letters in topic %q match", len(entries), total, d.Topic))
}

func dlqKafkaReplay(ctx context.Context, env cliapp.Env, cfg dlqKafkaConfig) error {
	d, logger, execute := cfg.Dead, env.Logger, cfg.Execute
	pub, err := kafka.NewPublisher(d.Cluster, d.Original, kafka.Options{Name: "dlq-replay"}, logger, obs.NewRegistry())
	if err != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "dlq replay: %w", err)
	}
	defer pub.Close()
	progress := func(replayed, matched int) {
		logger.Info("replaying", "replayed", replayed, "matched_so_far", matched)
	}
	res, rerr := dlq.ReplayKafka(ctx, d, pub, cfg.Filter, cfg.Limit, cfg.FromStart, execute, time.Now, progress)
	if cfg.Output == "json" {
		res.Entries = nonNil(res.Entries)
		if err := writeJSON(env.Out, res); err != nil {
			return err
		}
	} else {
		writeEntries(env.Out, res.Entries)
		if execute {
			fmt.Fprintf(env.Out, "replayed %d of %d matching dead letters (%d read) to topic %q; skipped %d; progress recorded under group %q\n",
				res.Replayed, res.Matched, res.Read, d.Original, res.Skipped, d.Group)
		} else {
			fmt.Fprintf(env.Out, "dry run: would replay %d of %d dead letters to topic %q (%d would be skipped); add --execute to replay\n",
				res.Matched-res.Skipped, res.Read, d.Original, res.Skipped)
		}
		for _, e := range res.Entries {
			if e.Skipped != "" {
				fmt.Fprintf(env.Out, "  skipped %d (id %q): %s\n", e.Position, e.ID, e.Skipped)
			}
		}
	}
	if rerr != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "dlq replay: %w", rerr)
	}
	if res.Skipped > 0 {
		return cli.Exit(fmt.Sprintf("dlq replay: %d dead letters skipped (see above); the others were replayed", res.Skipped), cliapp.ExitNoRecords)
	}
	return nil
}
