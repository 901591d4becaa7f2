package source_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/flexipack/cutover/alert/internal/source"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/testenv"
)

// The alert service's Kafka source on the local stack's broker: a new group
// starts at the end of the topic, an acked batch is committed (a new member
// of the group does not see it again), a nacked batch is read again.
func TestKafkaSource(t *testing.T) {
	kt := testenv.Kafka(t, 3)
	cfg := kafka.Config{Brokers: kt.Brokers}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	pub, err := kafka.NewPublisher(cfg, kt.Topic, kafka.Options{}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx := testenv.Context(t, 90*time.Second)
	seq := 0
	publish := func(n int) {
		msgs := make([]bus.Message, n)
		for i := range msgs {
			seq++
			msgs[i] = bus.Message{ID: fmt.Sprint(seq), Key: fmt.Sprintf("u%d", seq%5), Body: []byte(fmt.Sprintf("m%d", seq))}
		}
		if err := pub.Publish(ctx, msgs); err != nil {
			t.Fatal(err)
		}
	}
	publish(20) // before the group exists: not for the alert service
	open := func() *source.Kafka {
		s, err := source.NewKafka(cfg, kt.Topic, "alert-"+kt.Group, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s := open()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// Read while publishing until the group has joined and reads.
	var got []source.Message
	var ack source.AckFunc
	testenv.Eventually(t, 60*time.Second, "the alert group reads new messages", func() error {
		publish(1)
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var err error
		got, ack, err = s.ReadBatch(rctx, 100, 50*time.Millisecond)
		return err
	})
	for _, m := range got {
		var n int
		if _, err := fmt.Sscanf(string(m.Body), "m%d", &n); err != nil || n <= 20 {
			t.Fatalf("read %q, published before the group existed", m.Body)
		}
	}
	if err := ack(errors.New("store down")); err != nil {
		t.Fatal(err)
	}
	again, ack2, err := s.ReadBatch(ctx, 100, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if string(again[0].Body) != string(got[0].Body) {
		t.Fatalf("after a nack read %q first, want %q again", again[0].Body, got[0].Body)
	}
	if err := ack2(nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	for _, m := range again {
		acked[string(m.Body)] = true
	}
	// A new member of the group never sees the acked batch again.
	s2 := open()
	var next []source.Message
	testenv.Eventually(t, 60*time.Second, "a new member reads new messages", func() error {
		publish(1)
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var err error
		next, _, err = s2.ReadBatch(rctx, 100, 50*time.Millisecond)
		return err
	})
	for _, m := range next {
		if acked[string(m.Body)] {
			t.Fatalf("a new member read %q, acked before", m.Body)
		}
	}
}
