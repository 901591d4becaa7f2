package source_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flexipack/cutover/shared/bus"
	sharedkafka "github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/testenv"
)

// BenchmarkKafkaSource measures the Kafka source (ReadBatch of 2000, commit
// on ack) reading b.N 1 KiB records from a 6-partition topic of the local
// stack's broker. Its baseline, in the same run over the same records, is a
// bare kafka-go group reader committing every 2000 records: raw_msgs/s;
// ratio is msgs/s over raw_msgs/s. cpu-us/msg is this process's CPU (the
// broker runs in its own process).
//
//	go test -run '^$' -bench KafkaSource -benchtime 50000x ./consumer/internal/source/
func BenchmarkKafkaSource(b *testing.B) {
	b.ReportAllocs()
	n := b.N
	kt := testenv.Kafka(b, 6)
	cfg := sharedkafka.Config{Brokers: kt.Brokers}
	preload(b, cfg, kt.Topic, n)
	ctx := testenv.Context(b, 10*time.Minute)

	rawStart := time.Now()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: kt.Brokers, GroupID: kt.Group + "-raw", Topic: kt.Topic, MinBytes: 1, MaxBytes: 16 << 20,
		MaxWait: 100 * time.Millisecond, QueueCapacity: 4000, StartOffset: kafka.FirstOffset})
	var pending []kafka.Message
	for got := 0; got < n; got++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		pending = append(pending, m)
		if len(pending) == 2000 || got == n-1 {
			if err := r.CommitMessages(ctx, pending...); err != nil {
				b.Fatal(err)
			}
			pending = pending[:0]
		}
	}
	raw := float64(n) / time.Since(rawStart).Seconds()
	_ = r.Close()

	s, err := source.NewKafka(source.KafkaOptions{Cluster: cfg, Topic: kt.Topic, GroupID: kt.Group, SessionTimeout: 6 * time.Second}, quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	start, cpu0 := time.Now(), testenv.CPUTime()
	for got := 0; got < n; {
		msgs, ack, err := s.ReadBatch(ctx, 2000, 100*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		if err := ack(ctx, nil); err != nil {
			b.Fatal(err)
		}
		got += len(msgs)
	}
	elapsed, cpu := time.Since(start), testenv.CPUTime()-cpu0
	b.StopTimer()
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(raw, "raw_msgs/s")
	b.ReportMetric(rate/raw, "ratio")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-us/msg")
}

// preload publishes n 1 KiB messages over 1,000 units.
func preload(b *testing.B, cfg sharedkafka.Config, topic string, n int) {
	b.Helper()
	p, err := sharedkafka.NewPublisher(cfg, topic, sharedkafka.Options{}, quietLogger(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	ctx := testenv.Context(b, 10*time.Minute)
	batch := make([]bus.Message, 0, 2000)
	for i := 0; i < n; i++ {
		unit := fmt.Sprintf("FP2-%04d", i%1000)
		batch = append(batch, bus.Message{ID: fmt.Sprintf("b-%d", i), Key: unit, Headers: map[string]string{bus.HeaderUnit: unit}, Body: body})
		if len(batch) == cap(batch) || i == n-1 {
			if err := p.Publish(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
