//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/testenv"
)

// kafkaPartitions is the telemetry topic's partition count in the Kafka run.
const kafkaPartitions = 6

// TestCutoverStoryKafka runs the cutover story on Kafka (the local stack's
// kfake broker): a 6-partition topic keyed by unit, consumers in one group,
// one SIGKILLed mid-stream (the group rebalances and its uncommitted records
// are read again), a third one joining mid-run (partitions move), the
// InfluxDB outage, the gap ledger and the backfills, the phase walk, exact
// counts in both stores and every dead letter on <topic>.dead. The broker
// restart of the RabbitMQ run is left out: the test broker keeps everything
// in memory, so a restart would lose the topic rather than test recovery.
func TestCutoverStoryKafka(t *testing.T) {
	kb := newKafkaBus(t)
	s := newStory(t, kb.storyBus)
	s.phase("two consumers in one group on a 6-partition topic", s.startConsumers)
	s.phase("history drains into the legacy store", s.drainHistory)
	s.phase("snapshot of the history, then dual-write", s.snapshotThenDualWrite)
	s.phase("live traffic", s.startLiveTraffic)
	s.phase("consumer killed mid-stream: the group rebalances", s.consumerKilled)
	s.phase("a third consumer joins mid-run", s.consumerAdded)
	s.phase("lag from committed offsets in the heartbeats and migrate status", s.lagReported(false))
	s.phase("influx outage", s.influxOutage)
	s.phase("postgres restart", s.postgresRestart)
	s.phase("live traffic stops", s.stopLiveTraffic)
	s.phase("lag back to zero in the heartbeats", s.lagReported(true))
	s.phase("second snapshot", s.secondSnapshot)
	s.phase("backfill the lost window from the gap ledger", s.backfillLedger)
	s.phase("backfill the history", s.backfillHistory)
	s.phase("verify, shadow-read, influx-primary", s.verifyAndAdvance)
	s.phase("last burst in influx-primary", s.lastBurst)
	s.phase("both stores hold every reading once", s.checkStores)
	s.phase("every malformed message is dead-lettered", s.checkDeadLetters)
	s.phase("every gap-ledger entry is repaired", s.checkLedger)
	s.phase("each unit on one partition", kb.checkKeying)
	s.phase("the API reader saw no failure but 503", s.checkQueryReader)
	s.summary()
}

// consumerAdded starts a third consumer while traffic flows: the group
// gives it partitions and nothing is lost or doubled (checked at the end).
func (s *story) consumerAdded(t *testing.T) {
	s.step(t, "start consumer-3")
	s.startConsumer("consumer-3")
	s.faults = append(s.faults, "join:consumer-3")
	testenv.Eventually(t, 90*time.Second, "three consumers in the group", s.live(consumerCount+1))
	s.progress(t, "traffic flows after the join", 200)
}

// lagReported checks that every live consumer's heartbeat carries the
// group's lag (-1 would mean it could not be computed), zero when drained
// is set, and that migrate status shows it.
func (s *story) lagReported(drained bool) func(t *testing.T) {
	return func(t *testing.T) {
		testenv.Eventually(t, 30*time.Second, "every heartbeat carries the lag", func() error {
			hbs, err := s.state.Heartbeats(s.ctx, liveForHealthy)
			if err != nil {
				return err
			}
			if len(hbs) == 0 {
				return fmt.Errorf("no live consumer")
			}
			for _, h := range hbs {
				if h.LagMessages < 0 || (drained && h.LagMessages != 0) {
					return fmt.Errorf("consumer %s reports lag %d", h.ConsumerID, h.LagMessages)
				}
			}
			return nil
		})
		out := s.r.run(0, "migrate", "status", "-o", "json")
		if !strings.Contains(out, `"lag_messages"`) || !strings.Contains(out, "consumer-3") {
			t.Fatalf("migrate status shows no consumer lag:\n%s", out)
		}
	}
}

type kafkaBus struct {
	storyBus
	kt     testenv.KafkaTopic
	client *kafkago.Client
}

// newKafkaBus runs the story on the test's own topic, dead-letter topic and
// consumer group on the local stack's Kafka broker.
func newKafkaBus(t *testing.T) *kafkaBus {
	kt := testenv.Kafka(t, kafkaPartitions)
	client := &kafkago.Client{Addr: kafkago.TCP(kt.Brokers...), Timeout: 10 * time.Second}
	kb := &kafkaBus{kt: kt, client: client}
	ctx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 10*time.Second)
	}
	kb.storyBus = storyBus{
		name: "kafka",
		env: []string{"BUS=kafka", "KAFKA_BROKERS=" + kt.Brokers[0], "KAFKA_TOPIC=" + kt.Topic, "KAFKA_GROUP=" + kt.Group,
			"KAFKA_DEAD_TOPIC=" + kt.Dead, "KAFKA_SESSION_TIMEOUT=6s"},
		consumers: func() (int, error) {
			c, cancel := ctx()
			defer cancel()
			resp, err := client.DescribeGroups(c, &kafkago.DescribeGroupsRequest{GroupIDs: []string{kt.Group}})
			if err != nil {
				return 0, err
			}
			if len(resp.Groups) != 1 {
				return 0, fmt.Errorf("describe group %s: %d groups", kt.Group, len(resp.Groups))
			}
			g := resp.Groups[0]
			if g.Error != nil {
				return 0, g.Error
			}
			if g.GroupState != "Stable" {
				return 0, fmt.Errorf("group %s is %s", kt.Group, g.GroupState)
			}
			// Only members holding partitions consume: a member that
			// joined counts once the group gave it some.
			n := 0
			for _, m := range g.Members {
				for _, at := range m.MemberAssignments.Topics {
					if at.Topic == kt.Topic && len(at.Partitions) > 0 {
						n++
						break
					}
				}
			}
			return n, nil
		},
		backlog: func() (int, error) {
			c, cancel := ctx()
			defer cancel()
			lag, err := kafka.GroupLag(c, client, kt.Topic, kt.Group)
			return int(lag.Total), err
		},
		deadLetterCount: func() (int, error) {
			c, cancel := ctx()
			defer cancel()
			lag, err := kafka.GroupLag(c, client, kt.Dead, kt.Group+"-nobody")
			return int(lag.Total), err
		},
		drainDeadLetters: kb.drainDeadLetters,
		restart: func(context.Context, *testing.T) {
			panic("the in-memory Kafka test broker is not restarted")
		},
	}
	return kb
}

// eachRecord reads every record of topic, partition by partition.
func (kb *kafkaBus) eachRecord(t *testing.T, topic string, fn func(m *kafkago.Message)) {
	t.Helper()
	ctx := testenv.Context(t, 2*time.Minute)
	lag, err := kafka.GroupLag(ctx, kb.client, topic, kb.kt.Group+"-nobody")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lag.Partitions {
		if p.End <= p.Start {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: kb.kt.Brokers, Topic: topic, Partition: p.Partition, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(max(p.Start, 0)); err != nil {
			t.Fatal(err)
		}
		for off := max(p.Start, 0); off < p.End; off++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				t.Fatalf("read %s/%d at %d: %v", topic, p.Partition, off, err)
			}
			fn(&m)
		}
		_ = r.Close()
	}
}

// drainDeadLetters reads the whole dead-letter topic and classifies it.
func (kb *kafkaBus) drainDeadLetters(t *testing.T) deadLetters {
	dl := deadLetters{ByReason: map[string]int{}, ByKind: map[string]int{}}
	seen := map[[32]byte]bool{}
	kb.eachRecord(t, kb.kt.Dead, func(m *kafkago.Message) {
		h := map[string]string{}
		for _, kh := range m.Headers {
			h[kh.Key] = string(kh.Value)
		}
		dl.add(t, seen, h[kafka.HeaderMessageID], m.Value, func(k string) string { return h[k] })
	})
	return dl
}

// checkKeying checks that every unit's messages went to exactly one
// partition (so one consumer at a time reads them, in order) and that the
// units spread over the partitions.
func (kb *kafkaBus) checkKeying(t *testing.T) {
	partOf := map[string]int{}
	used := map[int]bool{}
	n := 0
	kb.eachRecord(t, kb.kt.Topic, func(m *kafkago.Message) {
		n++
		unit := string(m.Key)
		if unit == "" {
			t.Fatalf("record %s/%d at %d has no key", m.Topic, m.Partition, m.Offset)
		}
		if p, ok := partOf[unit]; ok && p != m.Partition {
			t.Fatalf("unit %s on partitions %d and %d: its order is not kept", unit, p, m.Partition)
		}
		partOf[unit] = m.Partition
		used[m.Partition] = true
	})
	t.Logf("%d records, %d units over %d of %d partitions", n, len(partOf), len(used), kafkaPartitions)
	if len(used) < kafkaPartitions/2 {
		t.Fatalf("the units use %d of %d partitions", len(used), kafkaPartitions)
	}
}
