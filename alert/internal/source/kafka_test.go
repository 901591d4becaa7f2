package source

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	sharedkafka "github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/testenv"
)

// On the real (local-stack) Kafka broker: the alert group reads every
// message; an acked batch is not read again by a new member of the group; a
// nacked one is.
func TestKafkaGroupCommitsOnlyAckedBatches(t *testing.T) {
	kt := testenv.Kafka(t, 3)
	ctx := testenv.Context(t, time.Minute)
	w := &kafka.Writer{Addr: kafka.TCP(kt.Brokers...), Topic: kt.Topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	var msgs []kafka.Message
	for i := 0; i < 30; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("U%d", i%5)), Value: []byte(fmt.Sprintf("m%02d", i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	open := func() *Kafka {
		k, err := NewKafka(KafkaOptions{Cluster: sharedkafka.Config{Brokers: kt.Brokers}, Topic: kt.Topic, GroupID: kt.Group}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	read := func(k *Kafka, want int, settle error) map[string]bool {
		seen := map[string]bool{}
		for len(seen) < want {
			batch, ack, err := k.ReadBatch(ctx, 100, 200*time.Millisecond)
			if err != nil {
				t.Fatalf("after %d of %d: %v", len(seen), want, err)
			}
			for _, m := range batch {
				seen[string(m.Body)] = true
			}
			if err := ack(settle); err != nil {
				t.Fatal(err)
			}
		}
		return seen
	}
	k := open()
	if got := read(k, 30, fmt.Errorf("store down")); len(got) != 30 {
		t.Fatalf("read %d messages", len(got))
	}
	// Nacked: the group committed nothing, so everything comes again.
	if got := read(k, 30, nil); len(got) != 30 {
		t.Fatalf("after a nack, read %d messages again", len(got))
	}
	_ = k.Close()
	// Acked: a new member of the group starts after them.
	k2 := open()
	defer k2.Close()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if batch, _, err := k2.ReadBatch(rctx, 100, 100*time.Millisecond); err == nil {
		t.Fatalf("acked messages read again: %d", len(batch))
	}
}
