package source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/bus"
	sharedkafka "github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/testenv"
)

// A bus under test: its bus.Publisher, and new members reading what it
// publishes (several share the work: one queue, one consumer group).
type busUnderTest struct {
	pub       bus.Publisher
	newSource func(t *testing.T) source.Source
}

// buses are the implementations the conformance suite runs over, each on
// the real broker of the local stack.
var buses = map[string]func(t *testing.T) busUnderTest{
	"rabbitmq": rabbitBus,
	"kafka":    kafkaBus,
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func rabbitBus(t *testing.T) busUnderTest {
	url := testenv.RabbitURL(t)
	name := testenv.Name(t, "conf")
	topo := rabbit.Topology{Exchange: name + ".x", Queue: name + ".q", QueueType: "classic", BindingKey: "bsu.#", DeadExchange: name + ".dlx", DeadQueue: name + ".dead"}
	t.Cleanup(func() {
		c, err := amqp.Dial(url)
		if err != nil {
			return
		}
		defer c.Close()
		if ch, err := c.Channel(); err == nil {
			_, _ = ch.QueueDelete(topo.Queue, false, false, false)
			_, _ = ch.QueueDelete(topo.DeadQueue, false, false, false)
			_ = ch.ExchangeDelete(topo.Exchange, false, false)
			_ = ch.ExchangeDelete(topo.DeadExchange, false, false)
		}
	})
	dial := func(t *testing.T, n string) *rabbit.Conn {
		c, err := rabbit.Dial(testenv.Context(t, 15*time.Second), url, n, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	pub, err := rabbit.NewPublisher(testenv.Context(t, 15*time.Second), dial(t, name+"-pub"), topo, rabbit.PublisherOptions{Name: "conformance"}, quietLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return busUnderTest{pub: pub, newSource: func(t *testing.T) source.Source {
		s, err := source.NewRabbit(dial(t, testenv.Name(t, "member")), source.RabbitOptions{Topology: topo, Prefetch: 200, ConsumerTag: testenv.Name(t, "m")}, quietLogger(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}}
}

func kafkaBus(t *testing.T) busUnderTest {
	kt := testenv.Kafka(t, 6)
	cfg := sharedkafka.Config{Brokers: kt.Brokers}
	pub, err := sharedkafka.NewPublisher(cfg, kt.Topic, sharedkafka.Options{Name: "conformance"}, quietLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return busUnderTest{pub: pub, newSource: func(t *testing.T) source.Source {
		s, err := source.NewKafka(source.KafkaOptions{Cluster: cfg, Topic: kt.Topic, GroupID: kt.Group, SessionTimeout: 6 * time.Second}, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}}
}

// messages returns n messages spread over units, each with a per-unit seq
// header and a body naming both.
func messages(prefix string, n, units int) []bus.Message {
	out := make([]bus.Message, n)
	for i := range out {
		unit := fmt.Sprintf("FP2-%04d", i%units)
		seq := i / units
		out[i] = bus.Message{ID: fmt.Sprintf("%s-%d", prefix, i), Key: unit, RoutingKey: rabbit.RoutingKey(2, unit),
			Headers: map[string]string{bus.HeaderUnit: unit, "seq": strconv.Itoa(seq)},
			Body:    []byte(fmt.Sprintf("<bsu unit=%q seq=\"%d\"/>", unit, seq))}
	}
	return out
}

// drain reads and settles (settle(batch index) decides ack or nack) until
// want distinct ids were acked or d passes; it returns the acked messages
// by id and the number of deliveries.
func drain(t *testing.T, s source.Source, want int, d time.Duration, settle func(i int) error) (map[string]source.Message, []source.Message) {
	t.Helper()
	acked := map[string]source.Message{}
	var order []source.Message
	deadline := time.Now().Add(d)
	for i := 0; len(acked) < want && time.Now().Before(deadline); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline))
		msgs, ack, err := s.ReadBatch(ctx, 64, 20*time.Millisecond)
		cancel()
		if err != nil {
			break
		}
		verdict := settle(i)
		actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := ack(actx, verdict); err != nil && !errors.Is(err, source.ErrStale) {
			t.Fatalf("settle batch %d: %v", i, err)
		}
		acancel()
		if verdict == nil {
			for _, m := range msgs {
				m.Body = bytes.Clone(m.Body)
				acked[m.ID] = m
				order = append(order, m)
			}
		}
	}
	return acked, order
}

func ackAll(int) error { return nil }

// TestBusConformance runs the same contract over both buses: what one
// bus.Publisher publishes, a Source of the same bus delivers — every
// message, bytes, id and unit intact, each unit in order; a nacked batch
// comes back and an acked one does not; Lag counts what waits and drops to
// zero once everything is acked; a closed publisher refuses to publish.
func TestBusConformance(t *testing.T) {
	for name, open := range buses {
		t.Run(name, func(t *testing.T) {
			t.Run("delivers every message intact and in order per unit", func(t *testing.T) { conformDelivery(t, open(t)) })
			t.Run("nack redelivers, ack settles for good", func(t *testing.T) { conformAck(t, open(t)) })
			t.Run("lag counts what waits", func(t *testing.T) { conformLag(t, open(t)) })
		})
	}
}

func conformDelivery(t *testing.T, b busUnderTest) {
	const n, units = 600, 12
	msgs := messages("d", n, units)
	ctx := testenv.Context(t, 60*time.Second)
	for i := 0; i < n; i += 50 {
		if err := b.pub.Publish(ctx, msgs[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	got, order := drain(t, b.newSource(t), n, 60*time.Second, ackAll)
	if len(got) != n || len(order) != n {
		t.Fatalf("%d distinct of %d deliveries, want %d once each", len(got), len(order), n)
	}
	next := map[string]int{}
	for _, m := range order {
		unit := m.Header(bus.HeaderUnit)
		seq, _ := strconv.Atoi(m.Header("seq"))
		if seq != next[unit] {
			t.Fatalf("%s: seq %d after %d: per-unit order broken", unit, seq, next[unit]-1)
		}
		next[unit]++
		want := fmt.Sprintf("<bsu unit=%q seq=\"%d\"/>", unit, seq)
		if string(m.Body) != want || m.ID == "" {
			t.Fatalf("message %q: body %q, want %q", m.ID, m.Body, want)
		}
	}
	if err := b.pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.pub.Publish(ctx, msgs[:1]); err == nil {
		t.Fatal("publish after Close succeeded")
	}
}

func conformAck(t *testing.T, b busUnderTest) {
	const n = 120
	if err := b.pub.Publish(testenv.Context(t, 30*time.Second), messages("a", n, 5)); err != nil {
		t.Fatal(err)
	}
	s := b.newSource(t)
	got, _ := drain(t, s, n, 60*time.Second, func(i int) error {
		if i == 0 {
			return errors.New("store down")
		}
		return nil
	})
	if len(got) != n {
		t.Fatalf("after a nack, %d of %d messages were acked", len(got), n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if msgs, _, err := b.newSource(t).ReadBatch(ctx, 64, 10*time.Millisecond); err == nil {
		t.Fatalf("a new member read %d acked messages again, e.g. %q", len(msgs), msgs[0].ID)
	}
}

func conformLag(t *testing.T, b busUnderTest) {
	const n = 40
	s := b.newSource(t)
	if err := b.pub.Publish(testenv.Context(t, 30*time.Second), messages("l", n, 4)); err != nil {
		t.Fatal(err)
	}
	lagIs := func(want int64) func() error {
		return func() error {
			got, err := s.Lag(testenv.Context(t, 5*time.Second))
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("lag %d, want %d", got, want)
			}
			return nil
		}
	}
	testenv.Eventually(t, 20*time.Second, "lag counts the published messages", lagIs(n))
	if got, _ := drain(t, s, n, 60*time.Second, ackAll); len(got) != n {
		t.Fatalf("read %d of %d", len(got), n)
	}
	testenv.Eventually(t, 20*time.Second, "lag back to zero after the acks", lagIs(0))
}
