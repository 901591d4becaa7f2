package cmd

import (
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

func dlqKafkaSetup(c *cli.Context) (dlq.KafkaDead, dlq.Filter, string, error) {
	out, err := cliapp.Output(c)
	if err != nil {
		return dlq.KafkaDead{}, dlq.Filter{}, "", err
	}
	f := dlq.Filter{Reason: c.String(flagDLQReason), Kind: c.String(flagDLQKind), Unit: c.String(flagDLQUnit)}
	switch f.Kind {
	case "", dlq.KindRejected, dlq.KindPartial:
	default:
		return dlq.KafkaDead{}, f, "", cliapp.Exitf(cliapp.ExitFailure, "--kind %q: want rejected or partial on Kafka", f.Kind)
	}
	topic := c.String(flagKafkaTopic)
	dead := c.String(flagKafkaDeadTopic)
	if dead == "" {
		dead = topic + ".dead"
	}
	d := dlq.KafkaDead{Cluster: cliapp.KafkaConfig(c), Topic: dead, Original: topic, Group: c.String(flagDLQKafkaReplayGroup)}
	if err := d.Cluster.Validate(); err != nil {
		return d, f, "", cliapp.Exit(err, cliapp.ExitFailure)
	}
	return d, f, out, nil
}

func dlqKafkaList(c *cli.Context) error {
	d, f, out, err := dlqKafkaSetup(c)
	if err != nil {
		return err
	}
	entries, total, err := dlq.ListKafka(c.Context, d, f, c.Int(flagDLQLimit))
	if err != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "dlq list: %w", err)
	}
	if out == "json" {
		return writeJSON(c.App.Writer, struct {
			Topic   string      `json:"topic"`
			Read    int         `json:"read"`
			Matched int         `json:"matched"`
			Entries []dlq.Entry `json:"entries"`
		}{d.Topic, total, len(entries), nonNil(entries)})
	}
	writeEntries(c.App.Writer, entries)
	fmt.Fprintf(c.App.Writer, "%d of %d dead letters in topic %q match\n", len(entries), total, d.Topic)
	return nil
}

func dlqKafkaReplay(c *cli.Context) error {
	d, f, out, err := dlqKafkaSetup(c)
	if err != nil {
		return err
	}
	logger := cliapp.Logger(c)
	execute := c.Bool(flagDLQExecute)
	pub, err := kafka.NewPublisher(d.Cluster, d.Original, kafka.Options{Name: "dlq-replay"}, logger, obs.NewRegistry())
	if err != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "dlq replay: %w", err)
	}
	defer pub.Close()
	progress := func(replayed, matched int) {
		logger.Info("replaying", "replayed", replayed, "matched_so_far", matched)
	}
	res, rerr := dlq.ReplayKafka(c.Context, d, pub, f, c.Int(flagDLQLimit), c.Bool(flagDLQFromStart), execute, time.Now, progress)
	if out == "json" {
		res.Entries = nonNil(res.Entries)
		if err := writeJSON(c.App.Writer, res); err != nil {
			return err
		}
	} else {
		writeEntries(c.App.Writer, res.Entries)
		if execute {
			fmt.Fprintf(c.App.Writer, "replayed %d of %d matching dead letters (%d read) to topic %q; progress recorded under group %q\n", res.Replayed, res.Matched, res.Read, d.Original, d.Group)
		} else {
			fmt.Fprintf(c.App.Writer, "dry run: would replay %d of %d dead letters to topic %q; add --execute to replay\n", res.Matched, res.Read, d.Original)
		}
	}
	if rerr != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "dlq replay: %w", rerr)
	}
	return nil
}
