package kafka_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/testenv"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// publishTo publishes n messages for each of the given units.
func publishTo(t *testing.T, cfg kafka.Config, topic string, units []string, n int) {
	t.Helper()
	p, err := kafka.NewPublisher(cfg, topic, kafka.Options{}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []bus.Message
	for _, u := range units {
		for i := 0; i < n; i++ {
			msgs = append(msgs, bus.Message{ID: fmt.Sprintf("%s-%d", u, i), Key: u, Body: []byte("x")})
		}
	}
	if err := p.Publish(testenv.Context(t, 30*time.Second), msgs); err != nil {
		t.Fatal(err)
	}
}

// Lag on the local stack's broker against known offsets: nothing committed
// counts every record; committing some offsets leaves exactly the rest.
func TestGroupLagKnownOffsets(t *testing.T) {
	kt := testenv.Kafka(t, 3)
	cfg := kafka.Config{Brokers: kt.Brokers}
	client, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 60*time.Second)

	lag, err := kafka.GroupLag(ctx, client, kt.Topic, kt.Group)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Total != 0 || len(lag.Partitions) != 3 {
		t.Fatalf("empty topic: lag %+v", lag)
	}
	publishTo(t, cfg, kt.Topic, []string{"u1", "u2", "u3", "u4", "u5"}, 20)
	lag, err = kafka.GroupLag(ctx, client, kt.Topic, kt.Group)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Total != 100 {
		t.Fatalf("nothing committed: lag %d, want 100 (%+v)", lag.Total, lag.Partitions)
	}
	// Commit offset 5 on every partition that has at least 5 records, as
	// a member of the group would.
	commits := map[int]int64{}
	var want int64
	for _, p := range lag.Partitions {
		if p.End >= 5 {
			commits[p.Partition] = 5
			want += p.End - 5
		} else {
			want += p.End
		}
	}
	commitOffsets(t, ctx, client, kt.Topic, kt.Group, commits)
	lag, err = kafka.GroupLag(ctx, client, kt.Topic, kt.Group)
	if err != nil {
		t.Fatal(err)
	}
	if lag.Total != want {
		t.Fatalf("after committing 5 on %v: lag %d, want %d (%+v)", commits, lag.Total, want, lag.Partitions)
	}
	for _, p := range lag.Partitions {
		if c, ok := commits[p.Partition]; ok && p.Committed != c {
			t.Fatalf("partition %d: committed %d, want %d", p.Partition, p.Committed, c)
		}
	}
}

// commitOffsets commits offsets for group as a simple (generation -1)
// member, which Kafka accepts for a group with no active members.
func commitOffsets(t *testing.T, ctx context.Context, client *kafkago.Client, topic, group string, offsets map[int]int64) {
	t.Helper()
	var parts []kafkago.OffsetCommit
	for p, o := range offsets {
		parts = append(parts, kafkago.OffsetCommit{Partition: p, Offset: o})
	}
	resp, err := client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{topic: parts}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				t.Fatalf("commit partition %d: %v", p.Partition, p.Error)
			}
		}
	}
}

// Readiness is a metadata request: ready for a topic that exists, not for
// one that does not, nor when no broker answers.
func TestCheckIsAMetadataRequest(t *testing.T) {
	kt := testenv.Kafka(t, 2)
	ctx := testenv.Context(t, 30*time.Second)
	p, err := kafka.NewPublisher(kafka.Config{Brokers: kt.Brokers}, kt.Topic, kafka.Options{}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Check(ctx); err != nil {
		t.Fatalf("existing topic: %v", err)
	}
	down, err := kafka.NewPublisher(kafka.Config{Brokers: []string{"127.0.0.1:1"}, DialTimeout: time.Second}, kt.Topic, kafka.Options{}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := down.Check(ctx); err == nil {
		t.Fatal("no broker: ready")
	}
}

// EnsureTopics creates missing topics with the broker's defaults and leaves
// existing ones alone.
func TestEnsureTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "old"), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := kafka.Config{Brokers: c.ListenAddrs()}
	client, err := cfg.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 20*time.Second)
	if err := kafka.TopicReady(ctx, client, "new"); err == nil {
		t.Fatal("a missing topic is ready")
	}
	if err := kafka.EnsureTopics(ctx, client, "old", "new", "new.dead"); err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]int{"old": 2, "new": 4, "new.dead": 4} {
		lag, err := kafka.GroupLag(ctx, client, topic, "g")
		if err != nil || len(lag.Partitions) != want {
			t.Fatalf("%s: %d partitions (%v), want %d", topic, len(lag.Partitions), err, want)
		}
	}
}
