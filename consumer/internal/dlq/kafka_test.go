package dlq_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flexipack/cutover/consumer/internal/consumertest"
	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/testenv"
)

// readTopic reads every record of topic (all partitions, from the start)
// until n were read or the deadline passes.
func readTopic(t *testing.T, brokers []string, topic string, n int) []kafkago.Message {
	t.Helper()
	var out []kafkago.Message
	ctx := testenv.Context(t, 30*time.Second)
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	lag, err := kafka.GroupLag(ctx, client, topic, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lag.Partitions {
		if p.End == 0 {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.Partition, MaxWait: 100 * time.Millisecond})
		for off := int64(0); off < p.End; off++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		_ = r.Close()
	}
	if len(out) != n {
		t.Fatalf("%s holds %d records, want %d", topic, len(out), n)
	}
	return out
}

func headers(m kafkago.Message) map[string]string {
	h := map[string]string{}
	for _, kh := range m.Headers {
		h[kh.Key] = string(kh.Value)
	}
	return h
}

// Dead letters on Kafka: written with the RabbitMQ headers, listed without
// being consumed, replayed (dry run first) to the original topic with the
// original key and id, progress committed only after the produce; a rerun
// replays nothing, --from-start everything again; a letter naming another
// topic is refused.
func TestKafkaDeadLetters(t *testing.T) {
	kt := testenv.Kafka(t, 3)
	cfg := kafka.Config{Brokers: kt.Brokers}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := testenv.Context(t, 90*time.Second)
	w, err := dlq.NewKafkaWriter(cfg, kt.Dead, "c1", logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var letters []dlq.Letter
	for i := 0; i < 9; i++ {
		unit := fmt.Sprintf("FP2-%d", i%3)
		kind, reason := dlq.KindRejected, "unknown root element"
		if i%3 == 2 {
			kind, reason = dlq.KindPartial, "2 of 7 samples rejected"
		}
		letters = append(letters, dlq.Letter{Kind: kind, Reason: reason, Rejected: 2,
			Msg: source.Message{ID: fmt.Sprintf("m%d", i), RoutingKey: kt.Topic, Key: unit, Body: consumertest.Gen2(unit, i, time.Now()),
				Headers: map[string]any{"unit": unit, "message_id": "spoofed"}}})
	}
	// One letter that names another topic as its origin.
	letters = append(letters, dlq.Letter{Kind: dlq.KindRejected, Reason: "unknown root element",
		Msg: source.Message{ID: "foreign", RoutingKey: "payments", Key: "FP2-0", Body: []byte("<y/>")}})
	if err := w.Write(ctx, letters); err != nil {
		t.Fatal(err)
	}
	dead := readTopic(t, kt.Brokers, kt.Dead, 10)
	for _, m := range dead {
		h := headers(m)
		for _, k := range []string{dlq.HeaderReason, dlq.HeaderFirstFailure, dlq.HeaderRoutingKey, dlq.HeaderKind, dlq.HeaderConsumer, kafka.HeaderMessageID} {
			if h[k] == "" {
				t.Fatalf("dead letter %s lacks header %s: %v", m.Key, k, h)
			}
		}
		if h[kafka.HeaderMessageID] == "spoofed" {
			t.Fatalf("the message's own message_id header replaced the id: %v", h)
		}
	}

	d := dlq.KafkaDead{Cluster: cfg, Topic: kt.Dead, Original: kt.Topic, Group: kt.Group + "-replay"}
	entries, total, err := dlq.ListKafka(ctx, d, dlq.Filter{Kind: dlq.KindRejected}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total != 10 || len(entries) != 7 {
		t.Fatalf("list: %d read, %d rejected; want 10 and 7", total, len(entries))
	}
	if entries[0].Partition == nil || entries[0].Offset == nil || entries[0].Unit == "" || entries[0].FirstFailure.IsZero() {
		t.Fatalf("entry %+v", entries[0])
	}
	// The unit filter reads the body, not the (forgeable) unit header.
	if byUnit, _, err := dlq.ListKafka(ctx, d, dlq.Filter{Unit: "FP2-1"}, 0); err != nil || len(byUnit) != 3 {
		t.Fatalf("--unit FP2-1: %d letters (%v), want 3", len(byUnit), err)
	}

	now := func() time.Time { return time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC) }
	pub, err := kafka.NewPublisher(cfg, kt.Topic, kafka.Options{}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := dlq.Filter{Kind: dlq.KindRejected}
	res, err := dlq.ReplayKafka(ctx, d, pub, f, 0, false, false, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Matched != 7 || res.Skipped != 1 || res.Replayed != 0 {
		t.Fatalf("dry run: %+v", res)
	}
	for _, e := range res.Entries {
		if (e.ID == "foreign") != strings.Contains(e.Skipped, `from topic "payments"`) {
			t.Fatalf("entry %q skipped %q: want only the foreign letter skipped", e.ID, e.Skipped)
		}
	}
	readTopic(t, kt.Brokers, kt.Topic, 0) // the dry run produced nothing

	res, _ = dlq.ReplayKafka(ctx, d, pub, f, 0, false, true, now, nil)
	if res.Replayed != 6 || res.Skipped != 1 {
		t.Fatalf("replay: %+v", res)
	}
	for _, m := range readTopic(t, kt.Brokers, kt.Topic, 6) {
		h := headers(m)
		if h[dlq.HeaderReplays] != "1" || h[dlq.HeaderReplayedAt] != "2026-11-30T10:00:00Z" || h[dlq.HeaderReason] != "" || h[dlq.HeaderKind] != "" {
			t.Fatalf("replayed headers %v", h)
		}
		if h["unit"] != string(m.Key) || !strings.HasPrefix(h[kafka.HeaderMessageID], "m") || h[dlq.HeaderFirstFailure] == "" {
			t.Fatalf("replayed record key %q headers %v", m.Key, h)
		}
	}
	// Progress was committed: a second replay finds nothing new.
	res, _ = dlq.ReplayKafka(ctx, d, pub, f, 0, false, true, now, nil)
	if res.Read != 0 || res.Replayed != 0 {
		t.Fatalf("second replay: %+v", res)
	}
	res, _ = dlq.ReplayKafka(ctx, d, pub, dlq.Filter{Kind: dlq.KindPartial}, 0, true, true, now, nil)
	if res.Read != 10 || res.Replayed != 3 {
		t.Fatalf("replay --from-start of the partial ones: %+v", res)
	}
	readTopic(t, kt.Brokers, kt.Topic, 9)
}

// A replay whose produce fails commits nothing: the next run replays the
// same letters.
func TestKafkaReplayCommitsOnlyAfterAck(t *testing.T) {
	kt := testenv.Kafka(t, 1)
	cfg := kafka.Config{Brokers: kt.Brokers}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := testenv.Context(t, 60*time.Second)
	w, err := dlq.NewKafkaWriter(cfg, kt.Dead, "c1", logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(ctx, []dlq.Letter{{Kind: dlq.KindRejected, Reason: "bad", Msg: source.Message{ID: "a", RoutingKey: kt.Topic, Key: "u", Body: []byte("x")}}}); err != nil {
		t.Fatal(err)
	}
	d := dlq.KafkaDead{Cluster: cfg, Topic: kt.Dead, Original: kt.Topic, Group: kt.Group + "-replay"}
	now := time.Now
	if _, err := dlq.ReplayKafka(ctx, d, failingPub{}, dlq.Filter{}, 0, false, true, now, nil); err == nil {
		t.Fatal("replay with a failing produce succeeded")
	}
	client, _ := cfg.Client()
	lag, err := kafka.GroupLag(ctx, client, kt.Dead, d.Group)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Partitions[0].Committed >= 0 {
		t.Fatalf("progress committed after a failed produce: %+v", lag.Partitions)
	}
}

type failingPub struct{}

func (failingPub) Publish(context.Context, []bus.Message) error { return fmt.Errorf("broker down") }
func (failingPub) Close() error                                 { return nil }
