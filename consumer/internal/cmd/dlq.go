package cmd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
)

const (
	flagDLQReason  = "reason"
	flagDLQKind    = "kind"
	flagDLQUnit    = "unit"
	flagDLQLimit   = "limit"
	flagDLQExecute = "execute"
)

func dlqFilterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagDLQReason, Category: "Filter", Usage: "only dead letters whose reason contains this text (case-insensitive)"},
		&cli.StringFlag{Name: flagDLQKind, Category: "Filter", Usage: "only dead letters of this kind: rejected (whole message refused), partial (some samples refused) or broker (dead-lettered by RabbitMQ itself)"},
		&cli.StringFlag{Name: flagDLQUnit, Category: "Filter", Usage: "only dead letters of this unit (as the message body names it)"},
		&cli.IntFlag{Name: flagDLQLimit, Value: 0, DefaultText: "all", Usage: "read at most this many dead letters from the head of the queue"},
	}
}

func dlqCommand() *cli.Command {
	common := cliapp.Merge(dlqFilterFlags(), cliapp.AMQPFlags(), cliapp.TopologyFlags(), dlqKafkaFlags(), []cli.Flag{cliapp.BusFlag(), cliapp.OutputFlag()})
	return &cli.Command{
		Name:  "dlq",
		Usage: "inspect and re-drive dead letters (messages the consumer could not store)",
		Description: `The consumer dead-letters every message the codec rejects (kind "rejected") and every message
of which some samples were rejected (kind "partial": its accepted samples were stored; the dead
letter is the whole original message with each rejected sample's reason). Each dead letter
carries x-reason, x-first-failure, x-original-routing-key, x-kind and x-consumer headers.

'dlq list' shows them without consuming them; 'dlq replay' re-publishes the ones matching a
filter to their original routing key once the cause is fixed (a new codec version, a corrected
unit). On RabbitMQ they are the dead-letter queue (--dead-queue); on Kafka (--bus kafka) the
topic --kafka-dead-topic (default <topic>.dead), a log that keeps every letter until its
retention ends: replay records its progress under --kafka-replay-group and starts where the
last replay stopped (--from-start rescans the whole topic).`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list dead letters without consuming them",
				Description: `list reads the dead-letter queue with basic.get and returns every message to the queue, in
its place, when it is done: nothing is consumed. Columns: position, kind, unit, first failure,
original routing key, size in bytes, and the reason. Exit status 0, or 1 if the queue cannot be
read.

  consumer dlq list
  consumer dlq list --kind partial --unit FP2-004211 -o json`,
				Flags:  common,
				Action: dlqListAction,
			},
			{
				Name:  "replay",
				Usage: "re-publish matching dead letters to their original routing key (dry run unless --execute)",
				Description: `replay selects dead letters with --reason, --kind and --unit (all optional; together they
must all match) and, with --execute, re-publishes each to --exchange under its original routing
key with publisher confirms, and only then removes it from the dead-letter queue. A crash in
between replays a message twice, which is harmless: readings upsert idempotently. The message
keeps x-first-failure, and x-replays counts its replays; if it fails again it comes back with a
fresh reason. Without --execute it prints what it would replay and changes nothing.
Dead letters that do not match stay in the queue, in place.

Letters are routed only by the routing key they were dead-lettered under (never by a header
the original message carried), and only when that key matches --binding-key, so a letter
cannot be steered to another queue. --unit matches the unit the body names. Each letter is
settled on its own: one that cannot be replayed (unroutable, outside the binding, refused)
stays in the queue, the others are replayed, and the summary lists every skipped one and why.

Exit status: 0 when every matching letter was replayed (or nothing matched), 3 when some were
skipped (the others were replayed), 1 when the queue or the broker failed (what was replayed
so far is reported).

  consumer dlq replay --kind rejected --reason "unknown root"            # dry run
  consumer dlq replay --kind rejected --reason "unknown root" --execute`,
				Flags: cliapp.Merge(common, []cli.Flag{&cli.BoolFlag{Name: flagDLQExecute, Usage: "replay for real; without it, a dry run"},
					&cli.BoolFlag{Name: flagDLQFromStart, Category: "Kafka", Usage: "on Kafka: scan the dead-letter topic from its start, not from where the last replay stopped"}}),
				Action: dlqReplayAction,
			},
		},
	}
}

// dlqConfig is what dlq list and dlq replay run with.
type dlqConfig struct {
	Output   string
	AMQPURL  string
	AMQPTLS  *tls.Config // nil: no --amqp-*-file given
	Topology rabbit.Topology
	Filter   dlq.Filter
	Limit    int
	Execute  bool // replay only
}

func dlqConfigFrom(c *cli.Context) (dlqConfig, error) {
	out, err := cliapp.Output(c)
	if err != nil {
		return dlqConfig{}, err
	}
	if b := c.String(cliapp.FlagBus); b != "rabbitmq" {
		return dlqConfig{}, cliapp.Exitf(cliapp.ExitFailure, "dlq: --bus %q: want rabbitmq or kafka", b)
	}
	topo := cliapp.Topology(c)
	if err := topo.Validate(); err != nil {
		return dlqConfig{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	f := dlq.Filter{Reason: c.String(flagDLQReason), Kind: c.String(flagDLQKind), Unit: c.String(flagDLQUnit), Binding: topo.BindingKey}
	switch f.Kind {
	case "", dlq.KindRejected, dlq.KindPartial, "broker":
	default:
		return dlqConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--kind %q: want rejected, partial or broker", f.Kind)
	}
	tlsCfg, err := cliapp.AMQPTLS(c)
	if err != nil {
		return dlqConfig{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	return dlqConfig{Output: out, AMQPURL: c.String(cliapp.FlagAMQPURL), AMQPTLS: tlsCfg, Topology: topo, Filter: f,
		Limit: c.Int(flagDLQLimit), Execute: c.Bool(flagDLQExecute)}, nil
}

// dlqConnect connects to the broker and declares the topology.
func dlqConnect(ctx context.Context, cfg dlqConfig, logger *slog.Logger) (*rabbit.Conn, error) {
	topo := cfg.Topology
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := rabbit.DialTLS(dctx, cfg.AMQPURL, "consumer-dlq", cfg.AMQPTLS, logger)
	if err != nil {
		return nil, cliapp.Exit(err, cliapp.ExitFailure)
	}
	// Declaring makes a missing dead-letter queue an empty one instead of
	// an error that closes the channel.
	ch, err := conn.Channel(dctx)
	if err == nil {
		err = topo.Declare(ch)
		_ = ch.Close()
	}
	if err != nil {
		_ = conn.Close()
		return nil, cliapp.Exitf(cliapp.ExitFailure, "dlq: %w", err)
	}
	return conn, nil
}

// dlqListAction lists the dead letters of the bus --bus names.
func dlqListAction(c *cli.Context) error {
	if c.String(cliapp.FlagBus) == "kafka" {
		return cliapp.Action(dlqKafkaConfigFrom, dlqKafkaList)(c)
	}
	return cliapp.Action(dlqConfigFrom, dlqList)(c)
}

func dlqList(ctx context.Context, env cliapp.Env, cfg dlqConfig) error {
	conn, err := dlqConnect(ctx, cfg, env.Logger)
	if err != nil {
		return err
	}
	defer conn.Close()
	topo := cfg.Topology
	entries, total, err := dlq.List(ctx, conn, topo.DeadQueue, cfg.Filter, cfg.Limit)
	if err != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "dlq list: %w", err)
	}
	doc := struct {
		Queue string `json:"queue"`
		listed
	}{topo.DeadQueue, listed{total, len(entries), nonNil(entries)}}
	return printListed(env.Out, cfg.Output, doc, entries, fmt.Sprintf("%d of %d dead letters in %q match", len(entries), total, topo.DeadQueue))
}

// listed is what dlq list prints after the queue's or the topic's name.
type listed struct {
	Read    int         `json:"read"`
	Matched int         `json:"matched"`
	Entries []dlq.Entry `json:"entries"`
}

// printListed prints dlq list's result: doc as JSON, or the entries as a
// table followed by the summary line.
func printListed(w io.Writer, output string, doc any, entries []dlq.Entry, summary string) error {
	if output == "json" {
		return writeJSON(w, doc)
	}
	writeEntries(w, entries)
	fmt.Fprintln(w, summary)
	return nil
}

// dlqReplayAction replays the dead letters of the bus --bus names.
func dlqReplayAction(c *cli.Context) error {
	if c.String(cliapp.FlagBus) == "kafka" {
		return cliapp.Action(dlqKafkaConfigFrom, dlqKafkaReplay)(c)
	}
	return cliapp.Action(dlqConfigFrom, dlqReplay)(c)
}

func dlqReplay(ctx context.Context, env cliapp.Env, cfg dlqConfig) error {
	conn, err := dlqConnect(ctx, cfg, env.Logger)
	if err != nil {
		return err
	}
	defer conn.Close()
	topo, logger, execute := cfg.Topology, env.Logger, cfg.Execute
	var pub *rabbit.Publisher
	if execute {
		pub, err = rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Name: "dlq-replay"}, logger, obs.NewRegistry())
		if err != nil {
			return cliapp.Exitf(cliapp.ExitFailure, "dlq replay: %w", err)
		}
		defer pub.Close()
	}
	progress := func(replayed, matched int) {
		logger.Info("replaying", "replayed", replayed, "matched_so_far", matched)
	}
	res, rerr := dlq.Replay(ctx, conn, pub, topo.Exchange, topo.DeadQueue, cfg.Filter, cfg.Limit, execute, time.Now, progress)
	if cfg.Output == "json" {
		res.Entries = nonNil(res.Entries)
		if err := writeJSON(env.Out, res); err != nil {
			return err
		}
	} else {
		writeEntries(env.Out, res.Entries)
		if execute {
			fmt.Fprintf(env.Out, "replayed %d of %d matching dead letters (%d read) to exchange %q; skipped %d (left in %q)\n", res.Replayed, res.Matched, res.Read, topo.Exchange, res.Skipped, topo.DeadQueue)
			for _, e := range res.Entries {
				if e.Skipped != "" {
					fmt.Fprintf(env.Out, "  skipped %d (id %q): %s\n", e.Position, e.ID, e.Skipped)
				}
			}
		} else {
			fmt.Fprintf(env.Out, "dry run: would replay %d of %d dead letters to exchange %q; add --execute to replay\n", res.Matched, res.Read, topo.Exchange)
		}
	}
	if rerr != nil {
		return cliapp.Exitf(cliapp.ExitFailure, "dlq replay: %w", rerr)
	}
	if res.Skipped > 0 {
		return cliapp.Exitf(cliapp.ExitNoRecords, "dlq replay: %d dead letters skipped (see above); the others were replayed", res.Skipped)
	}
	return nil
}

func writeEntries(w io.Writer, entries []dlq.Entry) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POS\tKIND\tUNIT\tFIRST FAILURE\tROUTING KEY\tSIZE\tREASON")
	for _, e := range entries {
		ff := "-"
		if !e.FirstFailure.IsZero() {
			ff = e.FirstFailure.UTC().Format(time.RFC3339)
		}
		reason := strings.ReplaceAll(e.Reason, "\n", " ")
		if len(reason) > 120 {
			reason = reason[:117] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Position, e.Kind, orDash(e.Unit), ff, orDash(e.RoutingKey), e.Size, reason)
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
