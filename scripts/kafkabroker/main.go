// Command kafkabroker is the local stack's Kafka-protocol broker: franz-go's
// kfake (an in-memory Kafka that speaks the real wire protocol: produce with
// acks, fetch, multi-partition topics, consumer groups with join, sync,
// heartbeat and committed offsets, SASL, TLS) listening on loopback. No real
// Kafka or Redpanda can be installed on the development machines, so
// scripts/services.sh builds and runs this instead; docker-compose.yml runs a
// real Kafka. Everything is kept in memory unless -data-dir is set: a
// restart of the broker loses its topics and offsets.
//
//	kafkabroker -addr 127.0.0.1:9092 -topics telemetry:6,telemetry.dead:6
//	kafkabroker -check 127.0.0.1:9092     # one metadata request; exit 0 when it answers
//
// Every flag also reads an environment variable (KAFKA_BROKER_*).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kafkabroker: "+err.Error())
		os.Exit(1)
	}
}

// config is the broker's configuration, parsed once from flags and env.
type config struct {
	Addr              string
	Topics            []topicSpec
	DefaultPartitions int
	AutoCreate        bool
	DataDir           string
	SASLMechanism     string
	SASLUser          string
	SASLPassword      string
	TLSCert, TLSKey   string
	LogLevel          string
	Check             string
	Timeout           time.Duration
}

type topicSpec struct {
	Name       string
	Partitions int32
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("kafkabroker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var topics string
	fs.StringVar(&c.Addr, "addr", envOr("KAFKA_BROKER_ADDR", "127.0.0.1:9092"), "listen address, host:port; the host must be a loopback address ($KAFKA_BROKER_ADDR)")
	fs.StringVar(&topics, "topics", envOr("KAFKA_BROKER_TOPICS", "telemetry:6,telemetry.dead:6"), "topics created at start, name:partitions, comma-separated ($KAFKA_BROKER_TOPICS)")
	fs.IntVar(&c.DefaultPartitions, "default-partitions", 6, "partitions of a topic created by a metadata request or CreateTopics without a count")
	fs.BoolVar(&c.AutoCreate, "auto-create", envOr("KAFKA_BROKER_AUTO_CREATE", "true") == "true", "create a topic a client asks for, like Kafka's auto.create.topics.enable ($KAFKA_BROKER_AUTO_CREATE)")
	fs.StringVar(&c.DataDir, "data-dir", os.Getenv("KAFKA_BROKER_DATA_DIR"), "keep topics and offsets in this folder across restarts (default: memory only) ($KAFKA_BROKER_DATA_DIR)")
	fs.StringVar(&c.SASLMechanism, "sasl-mechanism", envOr("KAFKA_BROKER_SASL_MECHANISM", "SCRAM-SHA-256"), "with -sasl-user: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 ($KAFKA_BROKER_SASL_MECHANISM)")
	fs.StringVar(&c.SASLUser, "sasl-user", os.Getenv("KAFKA_BROKER_SASL_USER"), "require SASL and accept this user (default: no authentication) ($KAFKA_BROKER_SASL_USER)")
	fs.StringVar(&c.SASLPassword, "sasl-password", os.Getenv("KAFKA_BROKER_SASL_PASSWORD"), "the SASL user's password ($KAFKA_BROKER_SASL_PASSWORD)")
	fs.StringVar(&c.TLSCert, "tls-cert", os.Getenv("KAFKA_BROKER_TLS_CERT"), "serve TLS with this PEM certificate ($KAFKA_BROKER_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", os.Getenv("KAFKA_BROKER_TLS_KEY"), "the certificate's PEM private key ($KAFKA_BROKER_TLS_KEY)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("KAFKA_BROKER_LOG_LEVEL", "warn"), "none, error, warn, info or debug ($KAFKA_BROKER_LOG_LEVEL)")
	fs.StringVar(&c.Check, "check", "", "do not serve: send one metadata request to this broker, print what it answers, exit 0 if it did")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "with -check: give up after this long")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.Topics, err = parseTopics(topics); err != nil {
		return c, err
	}
	if c.DefaultPartitions < 1 || c.DefaultPartitions > 10000 {
		return c, fmt.Errorf("-default-partitions %d: want 1..10000", c.DefaultPartitions)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("-tls-cert and -tls-key go together")
	}
	if c.SASLUser != "" && c.SASLPassword == "" {
		return c, errors.New("-sasl-user needs -sasl-password")
	}
	switch c.SASLMechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return c, fmt.Errorf("-sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	return c, nil
}

// parseTopics reads "name:partitions,name:partitions".
func parseTopics(s string) ([]topicSpec, error) {
	var out []topicSpec
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, n, ok := strings.Cut(part, ":")
		p, err := strconv.Atoi(n)
		if !ok || name == "" || err != nil || p < 1 || p > 10000 {
			return nil, fmt.Errorf("-topics %q: want name:partitions (1..10000), comma-separated", part)
		}
		out = append(out, topicSpec{Name: name, Partitions: int32(p)})
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.Check != "" {
		return check(ctx, c.Check, c.Timeout, stdout)
	}
	opts, err := clusterOpts(c, stderr)
	if err != nil {
		return err
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker on %s: %w", c.Addr, err)
	}
	fmt.Fprintf(stdout, "kafkabroker: listening on %s (in-memory test broker%s)\n", strings.Join(cluster.ListenAddrs(), ","), persistNote(c.DataDir))
	<-ctx.Done()
	cluster.Close()
	fmt.Fprintln(stdout, "kafkabroker: stopped")
	return nil
}

func persistNote(dir string) string {
	if dir == "" {
		return "; nothing survives a restart"
	}
	return "; state kept in " + dir
}

func clusterOpts(c config, stderr io.Writer) ([]kfake.Opt, error) {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: %w", c.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-addr %q: the test broker listens on loopback only", c.Addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("-addr %q: bad port", c.Addr)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(p),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, c.Addr) }),
		kfake.DefaultNumPartitions(c.DefaultPartitions),
		kfake.WithLogger(kfake.BasicLogger(stderr, logLevel(c.LogLevel))),
		kfake.ClusterID("flexipack-local"),
	}
	for _, t := range c.Topics {
		opts = append(opts, kfake.SeedTopics(t.Partitions, t.Name))
	}
	if c.AutoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if c.DataDir != "" {
		opts = append(opts, kfake.DataDir(c.DataDir))
	}
	if c.SASLUser != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(c.SASLMechanism, c.SASLUser, c.SASLPassword))
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load -tls-cert/-tls-key: %w", err)
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	return opts, nil
}

func logLevel(s string) kfake.LogLevel {
	switch strings.ToLower(s) {
	case "debug":
		return kfake.LogLevelDebug
	case "info":
		return kfake.LogLevelInfo
	case "error":
		return kfake.LogLevelError
	case "none":
		return kfake.LogLevelNone
	default:
		return kfake.LogLevelWarn
	}
}

// check sends one metadata request (all topics) and prints the answer: the
// health check of scripts/services.sh, stronger than a TCP dial because the
// broker must parse and answer a Kafka request.
func check(ctx context.Context, addr string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(timeout), kgo.RetryTimeout(timeout))
	if err != nil {
		return fmt.Errorf("check %s: %w", addr, err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("metadata request to %s: %w", addr, err)
	}
	var topics []string
	for _, t := range resp.Topics {
		if t.Topic != nil {
			topics = append(topics, fmt.Sprintf("%s:%d", *t.Topic, len(t.Partitions)))
		}
	}
	sort.Strings(topics)
	fmt.Fprintf(out, "%s answers metadata: %d broker(s), %d topic(s) %s\n", addr, len(resp.Brokers), len(topics), strings.Join(topics, ","))
	return nil
}
