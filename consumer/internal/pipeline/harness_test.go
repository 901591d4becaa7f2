package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flexipack/cutover/consumer/internal/consumertest"
	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/consumer/internal/pipeline"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/testenv"
)

// harness is one consumer pipeline running in the test process against the
// real services.
type harness struct {
	t      testing.TB
	p      *pipeline.Pipeline
	reg    *prometheus.Registry
	conn   *rabbit.Conn
	cancel context.CancelFunc
	done   chan error
	name   string
}

// opts says where a harness writes; zero fields come from the Env.
type opts struct {
	legacyDSN string
	influx    *influx.Config
	cfg       pipeline.Config
	prefetch  int  // default 3 batches
	noStart   bool // build only; call run
}

func startPipeline(t testing.TB, env *consumertest.Env, o opts) *harness {
	t.Helper()
	ctx := testenv.Context(t, 60*time.Second)
	if o.legacyDSN == "" {
		o.legacyDSN = env.LegacyDSN
	}
	icfg := env.Influx
	if o.influx != nil {
		icfg = *o.influx
	}
	if o.prefetch == 0 {
		o.prefetch = 3 * max(o.cfg.BatchSize, 2000)
	}
	reg := prometheus.NewRegistry()
	name := testenv.Name(t, "consumer")
	conn, err := rabbit.Dial(ctx, env.AMQPURL, name, env.Logger)
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.NewRabbit(conn, source.RabbitOptions{Topology: env.Topology, Prefetch: o.prefetch, ConsumerTag: name}, env.Logger, prometheus.WrapRegistererWithPrefix("consumer_", reg))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rabbit.NewPublisher(ctx, conn, env.Topology, rabbit.PublisherOptions{Name: "dead-letter"}, env.Logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	leg, err := legacy.Open(ctx, o.legacyDSN, env.Logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := leg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	iw, err := influx.NewWriter(icfg, env.Logger)
	if err != nil {
		t.Fatal(err)
	}
	state := env.State()
	cfg := o.cfg
	cfg.ConsumerID = name
	if cfg.PhasePoll == 0 {
		cfg.PhasePoll = 200 * time.Millisecond
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = 200 * time.Millisecond
	}
	p, err := pipeline.New(cfg, pipeline.Deps{
		Source: src,
		Sinks: []pipeline.SinkSpec{
			{Name: cutover.SinkLegacy, Sink: leg, Attempts: 2},
			{Name: cutover.SinkInflux, Sink: iw},
		},
		State: state, Ledger: state,
		DeadLetter: &dlq.RabbitWriter{Pub: pub, Exchange: env.Topology.DeadExchange, ConsumerID: name},
		Logger:     env.Logger.With("consumer", name),
		Registry:   reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, p: p, reg: reg, conn: conn, name: name}
	if !o.noStart {
		h.run()
	}
	t.Cleanup(func() {
		h.stop()
		_ = pub.Close()
		_ = conn.Close()
		leg.Close()
		iw.Close()
	})
	return h
}

// run starts the pipeline.
func (h *harness) run() {
	runCtx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.p.Run(runCtx) }()
}

// stop cancels the pipeline and waits for its drain.
func (h *harness) stop() error {
	if h.done == nil {
		return nil
	}
	h.cancel()
	select {
	case err := <-h.done:
		h.done = nil
		return err
	case <-time.After(60 * time.Second):
		h.t.Fatalf("pipeline %s did not stop within 60s", h.name)
		return nil
	}
}

// series returns the series of a metric family that carry the given labels.
func (h *harness) series(name string, labels map[string]string) []*dto.Metric {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				out = append(out, m)
			}
		}
	}
	return out
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// metric returns the value of a counter or gauge with the given labels
// (summed over series that match them).
func (h *harness) metric(name string, labels map[string]string) float64 {
	h.t.Helper()
	sum := 0.0
	for _, m := range h.series(name, labels) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

func (h *harness) acked() int {
	return int(h.metric("consumer_deliveries_total", map[string]string{"outcome": "acked"}))
}

// waitCounts waits until the legacy store of dsn and the InfluxDB database
// hold want readings (-1: do not check that store).
func waitCounts(t testing.TB, env *consumertest.Env, dsn, influxURL, influxDB string, wantLegacy, wantInflux int, d time.Duration) {
	t.Helper()
	testenv.Eventually(t, d, "stores complete", func() error {
		if wantLegacy >= 0 {
			if n := consumertest.LegacyCount(t, dsn); n != wantLegacy {
				return fmt.Errorf("legacy has %d readings, want %d", n, wantLegacy)
			}
		}
		if wantInflux >= 0 {
			if n := consumertest.InfluxCount(t, influxURL, influxDB); n != wantInflux {
				return fmt.Errorf("influx has %d readings, want %d", n, wantInflux)
			}
		}
		return nil
	})
}

// histogram returns the sum and count of a histogram's series matching labels.
func (h *harness) histogram(name string, labels map[string]string) (sum, count float64) {
	h.t.Helper()
	for _, m := range h.series(name, labels) {
		if hg := m.GetHistogram(); hg != nil {
			sum += hg.GetSampleSum()
			count += float64(hg.GetSampleCount())
		}
	}
	return sum, count
}
