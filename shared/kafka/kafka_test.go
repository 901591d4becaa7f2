package kafka_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
)

func body(unit string, seq int) []byte {
	b := make([]byte, 64+(seq*131)%4000)
	for i := range b {
		b[i] = byte('A' + (i+seq)%26)
	}
	copy(b, fmt.Sprintf("<%s/%d>", unit, seq))
	return b
}

// TestKeyedOrderAndBytes publishes from several goroutines (one per unit)
// to an in-process Kafka cluster with 4 partitions and reads everything
// back: every message once, bytes and headers intact, one partition per
// unit, each unit's sequence in order.
func TestKeyedOrderAndBytes(t *testing.T) {
	const topic = "telemetry"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	reg := prometheus.NewRegistry()
	p, err := kafka.NewPublisher(kafka.Config{Brokers: cluster.ListenAddrs()}, topic, kafka.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	const units, perUnit, batch = 12, 300, 25
	var wg sync.WaitGroup
	errc := make(chan error, units)
	start := time.Now()
	for u := 0; u < units; u++ {
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			unit := fmt.Sprintf("FP2-%06d", u)
			for seq := 0; seq < perUnit; seq += batch {
				msgs := make([]bus.Message, batch)
				for i := range msgs {
					s := seq + i
					msgs[i] = bus.Message{ID: fmt.Sprintf("%s-%d", unit, s), Key: unit, Headers: map[string]string{bus.HeaderUnit: unit, "seq": strconv.Itoa(s)}, Body: body(unit, s)}
				}
				if err := p.Publish(ctx, msgs); err != nil {
					errc <- err
					return
				}
			}
		}(u)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("published %d messages in %s", units*perUnit, time.Since(start))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := map[string]int{}
	partition := map[string]int32{}
	got := 0
	for got < units*perUnit {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records before the deadline", got, units*perUnit)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("fetch: %v", errs)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			unit := string(r.Key)
			hs := map[string]string{}
			for _, h := range r.Headers {
				hs[h.Key] = string(h.Value)
			}
			seq, _ := strconv.Atoi(hs["seq"])
			if seq != next[unit] {
				t.Fatalf("%s: got seq %d, want %d (order broken or message lost/duplicated)", unit, seq, next[unit])
			}
			next[unit]++
			if p, ok := partition[unit]; ok && p != r.Partition {
				t.Fatalf("%s on partitions %d and %d", unit, p, r.Partition)
			}
			partition[unit] = r.Partition
			if string(r.Value) != string(body(unit, seq)) {
				t.Fatalf("%s seq %d: body differs", unit, seq)
			}
			if hs[kafka.HeaderMessageID] != fmt.Sprintf("%s-%d", unit, seq) || hs[kafka.HeaderContentType] != "application/xml" || hs[bus.HeaderUnit] != unit {
				t.Fatalf("%s seq %d: headers %v", unit, seq, hs)
			}
		})
	}
	if len(next) != units {
		t.Fatalf("%d units, want %d", len(next), units)
	}
	parts := map[int32]bool{}
	for _, p := range partition {
		parts[p] = true
	}
	if len(parts) < 2 {
		t.Errorf("all units on %d partition(s): the hash balancer should spread them", len(parts))
	}
}

func TestPublishFailsWithoutBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p, err := kafka.NewPublisher(kafka.Config{Brokers: []string{"127.0.0.1:1"}}, "t", kafka.Options{MaxAttempts: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Publish(ctx, []bus.Message{{ID: "a", Key: "u", Body: []byte("x")}}); err == nil {
		t.Fatal("publish without a broker succeeded")
	}
	if _, err := kafka.NewPublisher(kafka.Config{}, "t", kafka.Options{}, slog.Default(), nil); err == nil {
		t.Fatal("no brokers: want an error")
	}
}
