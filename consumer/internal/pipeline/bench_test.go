package pipeline_test

import (
	"context"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/flexipack/cutover/consumer/internal/consumertest"
	"github.com/flexipack/cutover/consumer/internal/pipeline"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
)

// BenchmarkDualWrite measures durable readings per second in phase
// dual-write with the real RabbitMQ, PostgreSQL and InfluxDB: b.N one-sample
// generation-2 messages are pre-loaded in the queue, then the pipeline
// consumes, decodes, upserts them into PostgreSQL and writes them to InfluxDB,
// acking after both. Its baseline, in the same run and over the same queue
// contents, is a raw amqp091-go consume+ack loop (the broker's limit here):
// raw_msgs/s; ratio is msgs/s over raw_msgs/s.
//
// BENCH_CPUPROFILE=file writes a CPU profile of the pipeline part only.
//
//	make bench BENCH_PKGS=./consumer/internal/pipeline BENCHTIME=50000x
func BenchmarkDualWrite(b *testing.B) {
	b.ReportAllocs()
	n := b.N
	env := consumertest.NewEnv(b)
	env.SetPhase(env.State(), cutover.DualWrite)
	msgs, _ := consumertest.Messages("FP2-B", n, 1000, 0)

	// Baseline: the same messages through a bare consume+ack loop.
	env.Publish(msgs)
	raw := rawConsume(b, env, n)

	env.Publish(msgs)
	// BENCH_BATCH, BENCH_INFLIGHT, BENCH_FLUSH_MS and BENCH_PREFETCH override the defaults, for tuning.
	cfg := pipeline.Config{BatchSize: envInt("BENCH_BATCH", 2000), InFlight: envInt("BENCH_INFLIGHT", 3),
		FlushInterval: time.Duration(envInt("BENCH_FLUSH_MS", 100)) * time.Millisecond}
	h := startPipeline(b, env, opts{noStart: true, cfg: cfg, prefetch: envInt("BENCH_PREFETCH", 6000)})
	if f := os.Getenv("BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); _ = out.Close() }()
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), testenv.CPUTime()
	h.run()
	deadline := start.Add(10 * time.Minute)
	for h.acked() < n {
		if time.Now().After(deadline) {
			b.Fatalf("acked %d of %d after 10 minutes", h.acked(), n)
		}
		time.Sleep(20 * time.Millisecond) // polling the registry costs CPU; 20ms is fine resolution for a multi-second run
	}
	elapsed := time.Since(start)
	cpu := testenv.CPUTime() - cpu0
	b.StopTimer()
	if err := h.stop(); err != nil {
		b.Fatal(err)
	}
	if got := consumertest.LegacyCount(b, env.LegacyDSN); got != n {
		b.Fatalf("legacy holds %d readings, want %d", got, n)
	}
	if got := consumertest.InfluxCount(b, env.Influx.URL, env.InfluxDB); got != n {
		b.Fatalf("influx holds %d readings, want %d", got, n)
	}
	// Where the time goes: mean write latency per batch and store, batch size.
	for _, sink := range []string{cutover.SinkLegacy, cutover.SinkInflux} {
		sum, count := h.histogram("consumer_sink_write_duration_seconds", map[string]string{"sink": sink, "outcome": "ok"})
		if count > 0 {
			b.ReportMetric(sum/count*1000, sink+"_ms/batch")
		}
	}
	if _, count := h.histogram("consumer_batch_messages", nil); count > 0 {
		b.ReportMetric(float64(n)/count, "msgs/batch")
	}
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(raw, "raw_msgs/s")
	b.ReportMetric(rate/raw, "ratio")
	// The consumer's own CPU (this process) per message; the broker's and
	// the stores' CPU is not counted.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-us/msg")
}

// rawConsume consumes n messages from the test's queue with amqp091-go and
// acks them (multiple=true every 1000), with the pipeline's default
// prefetch, and returns messages per second.
func rawConsume(b *testing.B, env *consumertest.Env, n int) float64 {
	b.Helper()
	conn, err := rabbit.Dial(testenv.Context(b, 15*time.Second), env.AMQPURL, testenv.Name(b, "raw"), env.Logger)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Qos(6000, 0, false); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	deliveries, err := ch.Consume(env.Topology.Queue, "raw", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	timeout := time.After(5 * time.Minute)
	for i := 1; i <= n; i++ {
		select {
		case d := <-deliveries:
			if i%1000 == 0 || i == n {
				if err := d.Ack(true); err != nil {
					b.Fatal(err)
				}
			}
		case <-timeout:
			b.Fatalf("raw consume: %d of %d after 5 minutes", i-1, n)
		}
	}
	elapsed := time.Since(start)
	if err := ch.Cancel("raw", false); err != nil {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
