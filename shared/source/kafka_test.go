package source_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	sharedkafka "github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/testenv"
)

func kafkaCluster(t *testing.T, topic string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func produce(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("unit-%d", i%7)), Value: []byte(fmt.Sprintf("m%d", i)),
			Headers: []kafka.Header{{Key: "message-id", Value: []byte(fmt.Sprintf("id-%d", i))}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

func newKafka(t *testing.T, brokers []string, topic, group string) *source.Kafka {
	t.Helper()
	k, err := source.NewKafka(source.KafkaOptions{Cluster: sharedkafka.Config{Brokers: brokers}, Topic: topic, GroupID: group, SessionTimeout: 6 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// readAll reads batches until want distinct messages were seen or d
// passes, settling each batch with settle; it returns the IDs seen and how
// many deliveries there were.
func readAll(t *testing.T, k *source.Kafka, want int, d time.Duration, settle func(i int) error) (map[string]int, int) {
	t.Helper()
	seen := map[string]int{}
	deliveries := 0
	deadline := time.Now().Add(d)
	for i := 0; len(seen) < want && time.Now().Before(deadline); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline))
		msgs, ack, err := k.ReadBatch(ctx, 100, 50*time.Millisecond)
		cancel()
		if err != nil {
			break
		}
		for _, m := range msgs {
			seen[m.ID]++
			if m.Key == "" || m.RoutingKey == "" {
				t.Fatalf("message without key or topic: %+v", m)
			}
		}
		deliveries += len(msgs)
		actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := ack(actx, settle(i)); err != nil && !errors.Is(err, source.ErrStale) {
			t.Fatalf("settle batch %d: %v", i, err)
		}
		acancel()
	}
	return seen, deliveries
}

// The Kafka source reads every message, commits only acked batches, and a
// second member of the group resumes after the last commit.
func TestKafkaCommitsOnlyAcked(t *testing.T) {
	const topic, n = "telemetry", 600
	brokers := kafkaCluster(t, topic)
	produce(t, brokers, topic, n)

	k := newKafka(t, brokers, topic, "g1")
	// Nack the first batch: it must come back (the reader restarts from
	// the last commit), so every message is still seen.
	seen, deliveries := readAll(t, k, n, 60*time.Second, func(i int) error {
		if i == 0 {
			return errors.New("store down")
		}
		return nil
	})
	if len(seen) != n {
		t.Fatalf("saw %d distinct messages, want %d", len(seen), n)
	}
	if deliveries <= n-1 {
		t.Fatalf("deliveries %d: the nacked batch was not redelivered", deliveries)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything was committed: a new member of the group reads nothing.
	k2 := newKafka(t, brokers, topic, "g1")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	msgs, _, err := k2.ReadBatch(ctx, 100, 10*time.Millisecond)
	if err == nil {
		t.Fatalf("after a full commit the group read %d more messages, e.g. %q", len(msgs), msgs[0].ID)
	}

	// A new message is read by the resumed group.
	produce(t, brokers, topic, 1)
	seen, _ = readAll(t, k2, 1, 30*time.Second, func(int) error { return nil })
	if len(seen) != 1 {
		t.Fatalf("resumed group saw %v", seen)
	}
}

// Three members of one group on the local stack's broker share a
// 6-partition topic; a member closed with an unsettled batch leaves its
// records to the others (the group rebalances), and a member added
// mid-run takes partitions over. Every message is read, none lost.
func TestKafkaGroupRebalance(t *testing.T) {
	kt := testenv.Kafka(t, 6)
	const n = 3000
	produce(t, kt.Brokers, kt.Topic, n)
	a := newKafka(t, kt.Brokers, kt.Topic, kt.Group)
	b := newKafka(t, kt.Brokers, kt.Topic, kt.Group)

	var mu sync.Mutex
	seen := map[string]int{}
	perMember := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	consume := func(name string, k *source.Kafka, stopAfter int) {
		for i := 0; ctx.Err() == nil; i++ {
			msgs, ack, err := k.ReadBatch(ctx, 50, 20*time.Millisecond)
			if err != nil {
				return
			}
			if i == stopAfter {
				_ = k.Close() // leaves the group with this batch unsettled
				return
			}
			mu.Lock()
			for _, m := range msgs {
				seen[m.ID]++
			}
			perMember[name] += len(msgs)
			mu.Unlock()
			if err := ack(ctx, nil); err != nil && !errors.Is(err, source.ErrStale) {
				t.Errorf("%s: ack: %v", name, err)
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); consume("a", a, 5) }()
	go func() { defer wg.Done(); consume("b", b, -1) }()
	testenv.Eventually(t, 60*time.Second, "a third of the messages read", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < n/3 {
			return fmt.Errorf("%d read", len(seen))
		}
		return nil
	})
	c := newKafka(t, kt.Brokers, kt.Topic, kt.Group)
	wg.Add(1)
	go func() { defer wg.Done(); consume("c", c, -1) }()
	testenv.Eventually(t, 80*time.Second, "every message read", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < n {
			return fmt.Errorf("%d of %d read (per member %v)", len(seen), n, perMember)
		}
		return nil
	})
	cancel()
	wg.Wait()
	t.Logf("per member %v, deliveries %d for %d messages", perMember, perMember["a"]+perMember["b"]+perMember["c"], n)
}
