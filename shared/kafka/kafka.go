// Package kafka is the Kafka side of the bus: a bus.Publisher on
// segmentio/kafka-go that keys every message by unit (so one unit's
// messages share a partition and stay in order), waits for all in-sync
// replicas, and returns only when every message is acknowledged; the
// cluster Config (brokers, TLS, SASL) every Kafka client of the project is
// built from; readiness by a metadata request; and a consumer group's lag
// from its committed offsets against the partitions' end offsets.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/obs"
)

// Header names added to every Kafka message besides bus.Message.Headers.
const (
	HeaderMessageID   = "message_id"
	HeaderContentType = "content_type"
)

// Options tune a Publisher. The zero value is usable.
type Options struct {
	// BatchTimeout is how long a partial batch waits for more messages
	// (default 5 ms; kafka-go's own default of 1 s would cap a synchronous
	// caller at one batch a second).
	BatchTimeout time.Duration
	// BatchSize is the most messages in one produce request per partition
	// (default 1000).
	BatchSize int
	// BatchBytes is the largest produce request per partition (default
	// 16 MiB; a telemetry message may be 1 MiB).
	BatchBytes int64
	// MaxAttempts per batch before Publish fails (default 10).
	MaxAttempts int
	// ContentType header value (default "application/xml").
	ContentType string
	// Name labels the metrics (default "producer").
	Name string
}

// Publisher publishes to one Kafka topic. It is safe for concurrent use.
type Publisher struct {
	w      *kafkago.Writer
	cfg    Config
	client *kafkago.Client
	opts   Options
	logger *slog.Logger
	m      *metrics
}

var _ bus.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher to topic on the cluster of cfg. It does
// not connect until the first Publish or Check. reg may be nil.
func NewPublisher(cfg Config, topic string, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Publisher, error) {
	transport, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	client, err := cfg.Client()
	if err != nil {
		return nil, err
	}
	if topic == "" {
		return nil, errors.New("kafka: empty topic")
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = 5 * time.Millisecond
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 16 << 20
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	if opts.ContentType == "" {
		opts.ContentType = "application/xml"
	}
	if opts.Name == "" {
		opts.Name = "producer"
	}
	m := newMetrics(reg, opts.Name)
	logger = logger.With("component", "kafka-publisher", "topic", topic)
	w := &kafkago.Writer{
		Addr:      kafkago.TCP(cfg.Brokers...),
		Transport: transport,
		Topic:     topic,
		Balancer:  &kafkago.Hash{},
		// Every in-sync replica, so an acknowledged message survives a
		// broker loss.
		RequiredAcks:    kafkago.RequireAll,
		BatchTimeout:    opts.BatchTimeout,
		BatchSize:       opts.BatchSize,
		BatchBytes:      opts.BatchBytes,
		MaxAttempts:     opts.MaxAttempts,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 2 * time.Second,
		ErrorLogger: kafkago.LoggerFunc(func(msg string, args ...any) {
			logger.Warn("kafka-go: " + fmt.Sprintf(msg, args...))
		}),
	}
	return &Publisher{w: w, cfg: cfg, client: client, opts: opts, logger: logger, m: m}, nil
}

// Publish writes msgs, keyed by Message.Key, and returns nil once every one
// is acknowledged by all in-sync replicas. On error it returns the failed
// messages' errors joined (each a *bus.MessageError); the caller may retry
// them all. Messages with the same key keep their order.
func (p *Publisher) Publish(ctx context.Context, msgs []bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now()
	kms := make([]kafkago.Message, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		hs := make([]kafkago.Header, 0, len(m.Headers)+2)
		hs = append(hs, kafkago.Header{Key: HeaderMessageID, Value: []byte(m.ID)}, kafkago.Header{Key: HeaderContentType, Value: []byte(p.opts.ContentType)})
		for k, v := range m.Headers {
			hs = append(hs, kafkago.Header{Key: k, Value: []byte(v)})
		}
		kms[i] = kafkago.Message{Key: []byte(m.Key), Value: m.Body, Headers: hs, Time: now}
	}
	p.m.published.Add(float64(len(msgs)))
	p.m.inflight.Add(float64(len(msgs)))
	err := p.w.WriteMessages(ctx, kms...)
	p.m.inflight.Sub(float64(len(msgs)))
	if err == nil {
		p.m.confirmed.Add(float64(len(msgs)))
		p.m.latency.Observe(time.Since(now).Seconds())
		return nil
	}
	var werrs kafkago.WriteErrors
	if errors.As(err, &werrs) {
		var errs []error
		for i, e := range werrs {
			if e != nil {
				errs = append(errs, &bus.MessageError{ID: msgs[i].ID, Err: e})
			}
		}
		p.m.failed.Add(float64(len(errs)))
		p.m.confirmed.Add(float64(len(msgs) - len(errs)))
		return fmt.Errorf("kafka publish to %s: %d of %d messages failed: %w", p.w.Topic, len(errs), len(msgs), errors.Join(errs...))
	}
	p.m.failed.Add(float64(len(msgs)))
	return fmt.Errorf("kafka publish to %s: %w", p.w.Topic, err)
}

// Close flushes and closes the writer.
func (p *Publisher) Close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("close kafka writer: %w", err)
	}
	return nil
}

type metrics struct {
	published, confirmed, failed prometheus.Counter
	inflight                     prometheus.Gauge
	latency                      prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, name string) *metrics {
	const ns = "kafka_publisher"
	counter := func(n, help string) prometheus.Counter {
		return obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: n, Help: help}, []string{"publisher"})).WithLabelValues(name)
	}
	return &metrics{
		published: counter("published_total", "Messages handed to the Kafka writer."),
		confirmed: counter("confirmed_total", "Messages acknowledged by all in-sync replicas."),
		failed:    counter("failed_total", "Messages the writer gave up on."),
		inflight: obs.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "inflight_messages",
			Help: "Messages written and not yet acknowledged."}, []string{"publisher"})).WithLabelValues(name),
		latency: obs.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "publish_latency_seconds",
			Help: "Time for one Publish call to be acknowledged.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}, []string{"publisher"})).WithLabelValues(name),
	}
}

// Check is the readiness check: nil when the cluster answers a metadata
// request for the topic and the topic exists with at least one partition,
// each with a leader. A TCP dial is not enough: a broker that accepts
// connections but cannot serve the topic would take 202s it cannot keep.
func (p *Publisher) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return TopicReady(ctx, p.client, p.w.Topic)
}

// TopicReady asks the cluster of client for the metadata of topic and
// reports whether every partition has a leader.
func TopicReady(ctx context.Context, client *kafkago.Client, topic string) error {
	resp, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("kafka metadata request: %w", err)
	}
	for _, t := range resp.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("kafka topic %s: %w", topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("kafka topic %s has no partitions", topic)
		}
		for _, pt := range t.Partitions {
			if pt.Error != nil {
				return fmt.Errorf("kafka topic %s partition %d: %w", topic, pt.ID, pt.Error)
			}
			if pt.Leader.Host == "" {
				return fmt.Errorf("kafka topic %s partition %d has no leader", topic, pt.ID)
			}
		}
		return nil
	}
	return fmt.Errorf("kafka topic %s: not in the metadata the cluster returned", topic)
}

// EnsureTopics creates those of topics the cluster does not have, with the
// broker's default partition count and replication factor; topics that
// exist are left alone. A broker that refuses (auto-creation managed
// elsewhere, no permission) makes it return the error naming the topic.
func EnsureTopics(ctx context.Context, client *kafkago.Client, topics ...string) error {
	req := &kafkago.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafkago.TopicConfig{Topic: t, NumPartitions: -1, ReplicationFactor: -1})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create kafka topics %v: %w", topics, err)
	}
	var errs []error
	for t, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafkago.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create kafka topic %s: %w", t, e))
		}
	}
	return errors.Join(errs...)
}

// Client returns the publisher's client for requests (metadata, topics).
func (p *Publisher) Client() *kafkago.Client { return p.client }
