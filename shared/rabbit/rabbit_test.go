package rabbit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/rabbit/rabbittest"
	"github.com/flexipack/cutover/shared/testenv"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testTopology returns a topology with names unique to t and deletes it
// when t ends.
func testTopology(t testing.TB, url string) rabbit.Topology {
	t.Helper()
	return rabbittest.Topology(t, url, "rb")
}

func dial(t testing.TB, ctx context.Context, url, name string) *rabbit.Conn {
	t.Helper()
	return rabbittest.Dial(t, ctx, url, name, testLogger(t))
}

// drain consumes n messages from queue (acking them) and returns them,
// with whatever else arrives within 200 ms.
func drain(t testing.TB, ctx context.Context, url, queue string, n int) []amqp.Delivery {
	t.Helper()
	var out []amqp.Delivery
	consume(t, ctx, url, queue, func(d amqp.Delivery) bool {
		out = append(out, d)
		return len(out) >= n
	})
	return out
}

// consume feeds deliveries from queue to f (acking them) until f returns
// true, then for 200 ms more to catch extra messages; it fails t at ctx's
// deadline.
func consume(t testing.TB, ctx context.Context, url, queue string, f func(amqp.Delivery) bool) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("consumer dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("consumer channel: %v", err)
	}
	consumeOn(t, ctx, ch, queue, f)
}

// consumeOn is consume on an open channel.
func consumeOn(t testing.TB, ctx context.Context, ch *amqp.Channel, queue string, f func(amqp.Delivery) bool) {
	t.Helper()
	if err := ch.Qos(1000, 0, false); err != nil {
		t.Fatal(err)
	}
	dels, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	n := 0
	done := false
	for !done {
		select {
		case d := <-dels:
			n++
			done = f(d)
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("consumed %d messages from %s before the deadline, condition not met", n, queue)
		}
	}
	for {
		select {
		case d := <-dels:
			f(d)
			_ = d.Ack(false)
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

func TestRoutingKey(t *testing.T) {
	for _, tc := range []struct {
		gen  int
		unit string
		want string
	}{
		{1, "FP1-000017", "bsu.v1.FP1-000017"},
		{2, "FP2.004211", "bsu.v2.FP2_004211"},
		{2, "a*b#c", "bsu.v2.a_b_c"},
		{2, "", "bsu.v2.unknown"},
		{2, string(make([]byte, 300)), ("bsu.v2." + string(make([]byte, 300)))[:255]},
	} {
		if got := rabbit.RoutingKey(tc.gen, tc.unit); got != tc.want {
			t.Errorf("RoutingKey(%d, %q) = %q, want %q", tc.gen, tc.unit, got, tc.want)
		}
	}
}

func TestTopologyValidate(t *testing.T) {
	if err := rabbit.DefaultTopology().Validate(); err != nil {
		t.Fatalf("default topology: %v", err)
	}
	bad := rabbit.DefaultTopology()
	bad.QueueType = "stream"
	bad.Queue = ""
	err := bad.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"--queue is empty", `--queue-type "stream"`} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestDeclareDeadLetters checks that Declare is idempotent and that a
// message rejected from the ingest queue lands in the dead queue, for both
// queue types.
func TestDeclareDeadLetters(t *testing.T) {
	url := testenv.RabbitURL(t)
	for _, qt := range []string{"classic", "quorum"} {
		t.Run(qt, func(t *testing.T) {
			ctx := testenv.Context(t, 30*time.Second)
			topo := testTopology(t, url)
			topo.QueueType = qt
			conn, err := amqp.Dial(url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if err := topo.Declare(ch); err != nil {
					t.Fatalf("declare #%d: %v", i+1, err)
				}
			}
			if err := ch.PublishWithContext(ctx, topo.Exchange, rabbit.RoutingKey(2, "FP2-1"), true, false, amqp.Publishing{Body: []byte("x"), MessageId: "m1"}); err != nil {
				t.Fatal(err)
			}
			var d amqp.Delivery
			testenv.Eventually(t, 10*time.Second, "message in ingest queue", func() error {
				var ok bool
				d, ok, err = ch.Get(topo.Queue, false)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					return errors.New("queue empty")
				}
				return nil
			})
			if err := d.Nack(false, false); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 10*time.Second, "message dead-lettered", func() error {
				d, ok, err := ch.Get(topo.DeadQueue, true)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					return errors.New("dead queue empty")
				}
				if d.MessageId != "m1" || string(d.Body) != "x" {
					t.Fatalf("dead letter = %q %q", d.MessageId, d.Body)
				}
				return nil
			})
		})
	}
}

func testMessages(unit string, from, n int) []bus.Message {
	msgs := make([]bus.Message, n)
	for i := range msgs {
		seq := from + i
		body := make([]byte, 100+(seq*37)%5000)
		for j := range body {
			body[j] = byte('a' + (seq+j)%26)
		}
		copy(body, fmt.Sprintf("%s/%d/", unit, seq))
		msgs[i] = bus.Message{
			ID:         fmt.Sprintf("%s-%d", unit, seq),
			Key:        unit,
			RoutingKey: rabbit.RoutingKey(2, unit),
			Headers:    map[string]string{bus.HeaderUnit: unit, "seq": strconv.Itoa(seq), bus.HeaderGeneration: "2"},
			Body:       body,
		}
	}
	return msgs
}

func TestPublishConfirmedByteIdentical(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 60*time.Second)
	topo := testTopology(t, url)
	conn := dial(t, ctx, url, testenv.Name(t, "pub"))
	reg := prometheus.NewRegistry()
	p, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Window: 64}, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	msgs := testMessages("FP2-000001", 0, 500)
	if err := p.Publish(ctx, msgs); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := metricValue(t, reg, "rabbitmq_publisher_confirmed_total"); got != 500 {
		t.Errorf("confirmed_total = %v, want 500", got)
	}
	dels := drain(t, ctx, url, topo.Queue, len(msgs))
	if len(dels) != len(msgs) {
		t.Fatalf("got %d deliveries, want %d", len(dels), len(msgs))
	}
	for i, d := range dels {
		m := msgs[i]
		if string(d.Body) != string(m.Body) {
			t.Fatalf("message %d: body differs (%d vs %d bytes)", i, len(d.Body), len(m.Body))
		}
		if d.MessageId != m.ID || d.ContentType != "application/xml" || d.DeliveryMode != amqp.Persistent || d.RoutingKey != m.RoutingKey {
			t.Fatalf("message %d: id %q type %q mode %d key %q", i, d.MessageId, d.ContentType, d.DeliveryMode, d.RoutingKey)
		}
		if d.Timestamp.IsZero() {
			t.Fatalf("message %d: no timestamp", i)
		}
		for k, v := range m.Headers {
			if d.Headers[k] != v {
				t.Fatalf("message %d: header %s = %v, want %q", i, k, d.Headers[k], v)
			}
		}
	}
}

// metricValue sums the named counter or gauge over its series.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestPublishUnroutableIsAnError(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 30*time.Second)
	topo := testTopology(t, url)
	reg := prometheus.NewRegistry()
	_, p := rabbittest.Publisher(t, ctx, url, testenv.Name(t, "pub"), topo, testLogger(t), reg)
	msgs := testMessages("FP2-000002", 0, 5)
	msgs[2].RoutingKey = "nobody.listens"
	err := p.Publish(ctx, msgs)
	if !errors.Is(err, rabbit.ErrUnroutable) {
		t.Fatalf("err = %v, want ErrUnroutable", err)
	}
	var me *bus.MessageError
	if !errors.As(err, &me) || me.ID != msgs[2].ID {
		t.Fatalf("err = %v, want a MessageError for %s", err, msgs[2].ID)
	}
	dels := drain(t, ctx, url, topo.Queue, 4)
	if len(dels) != 4 {
		t.Fatalf("got %d deliveries, want the 4 routable ones", len(dels))
	}
	if got := metricValue(t, reg, "rabbitmq_publisher_returned_total"); got != 1 {
		t.Errorf("returned_total = %v, want 1", got)
	}
	// The publisher still works afterwards.
	if err := p.Publish(ctx, testMessages("FP2-000002", 5, 3)); err != nil {
		t.Fatalf("publish after a return: %v", err)
	}
}

func TestPublishToDeadExchange(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 30*time.Second)
	topo := testTopology(t, url)
	conn := dial(t, ctx, url, testenv.Name(t, "pub"))
	p, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Name: "dead"}, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := testMessages("FP2-000003", 0, 2)
	msgs[0].Headers["reject_reason"] = "not well-formed"
	if err := p.PublishTo(ctx, topo.DeadExchange, msgs); err != nil {
		t.Fatal(err)
	}
	dels := drain(t, ctx, url, topo.DeadQueue, 2)
	if dels[0].Headers["reject_reason"] != "not well-formed" || string(dels[1].Body) != string(msgs[1].Body) {
		t.Fatalf("dead letters: %v / %q", dels[0].Headers, dels[1].MessageId)
	}
}

// TestForcedReconnectLosesNothing publishes from several goroutines while
// the broker's side of the publisher's connection is closed, repeatedly,
// through the management API; every unit's sequence must arrive complete.
func TestForcedReconnectLosesNothing(t *testing.T) {
	url := testenv.RabbitURL(t)
	mgmt := testenv.RabbitMgmtURL(t)
	ctx := testenv.Context(t, 120*time.Second)
	topo := testTopology(t, url)
	name := testenv.Name(t, "pubkill")
	conn := dial(t, ctx, url, name)
	reg := prometheus.NewRegistry()
	p, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Window: 256}, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const units, perUnit, batch = 8, 1500, 50
	var wg sync.WaitGroup
	errc := make(chan error, units)
	for u := 0; u < units; u++ {
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			unit := fmt.Sprintf("FP2-%06d", u)
			for seq := 0; seq < perUnit; seq += batch {
				msgs := testMessages(unit, seq, batch)
				// A caller retries a failed batch: at-least-once.
				for attempt := 0; ; attempt++ {
					err := p.Publish(ctx, msgs)
					if err == nil {
						break
					}
					if ctx.Err() != nil || attempt > 20 {
						errc <- fmt.Errorf("unit %s seq %d: %w", unit, seq, err)
						return
					}
				}
			}
		}(u)
	}
	// Kill the connection three times while publishing.
	killed := 0
	for killed < 3 {
		dials := conn.Dials()
		testenv.Eventually(t, 30*time.Second, "close the publisher's connection", func() error {
			n, err := rabbit.CloseConnections(ctx, mgmt, name)
			if err != nil {
				return err
			}
			if n == 0 {
				return errors.New("connection not listed yet")
			}
			return nil
		})
		killed++
		testenv.Eventually(t, 30*time.Second, "reconnect", func() error {
			if conn.Dials() <= dials {
				return errors.New("not redialled yet")
			}
			return nil
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	total := units * perUnit
	seen := map[string]map[int]bool{}
	distinct, deliveries := 0, 0
	consume(t, ctx, url, topo.Queue, func(d amqp.Delivery) bool {
		deliveries++
		unit, _ := d.Headers[bus.HeaderUnit].(string)
		seqStr, _ := d.Headers["seq"].(string)
		seq, _ := strconv.Atoi(seqStr)
		if seen[unit] == nil {
			seen[unit] = map[int]bool{}
		}
		if !seen[unit][seq] {
			distinct++
		}
		seen[unit][seq] = true
		if want := testMessages(unit, seq, 1)[0].Body; string(d.Body) != string(want) {
			t.Fatalf("%s seq %d: body differs", unit, seq)
		}
		return distinct == total
	})
	for u := 0; u < units; u++ {
		unit := fmt.Sprintf("FP2-%06d", u)
		for seq := 0; seq < perUnit; seq++ {
			if !seen[unit][seq] {
				t.Fatalf("%s seq %d lost", unit, seq)
			}
		}
	}
	if distinct != total {
		t.Fatalf("%d distinct messages, want %d", distinct, total)
	}
	rep := metricValue(t, reg, "rabbitmq_publisher_republished_total")
	t.Logf("%d deliveries for %d messages (%d duplicates), %d dials, %v republished", deliveries, total, deliveries-total, conn.Dials(), rep)
	if conn.Dials() < 4 {
		t.Fatalf("dials = %d, want at least 4 (3 forced reconnects)", conn.Dials())
	}
}

func TestQueueDepthAndErrors(t *testing.T) {
	url := testenv.RabbitURL(t)
	mgmt := testenv.RabbitMgmtURL(t)
	ctx := testenv.Context(t, 60*time.Second)
	topo := testTopology(t, url)
	conn := dial(t, ctx, url, testenv.Name(t, "pub"))
	p, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Publish(ctx, testMessages("FP2-000004", 0, 7)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "queue depth 7", func() error {
		n, err := rabbit.QueueDepth(ctx, mgmt, "/", topo.Queue)
		if err != nil {
			return err
		}
		if n != 7 {
			return fmt.Errorf("depth %d", n)
		}
		return nil
	})
	if _, err := rabbit.QueueDepth(ctx, mgmt, "/", topo.Queue+".missing"); err == nil || !contains(err.Error(), "404") {
		t.Errorf("missing queue: err = %v, want a 404", err)
	}
	if _, err := rabbit.CloseConnections(ctx, mgmt, ""); err == nil {
		t.Error("empty prefix: want an error")
	}
}

func TestDialFailsFastOnBoundedContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	port := testenv.FreePort(t)
	_, err := rabbit.Dial(ctx, fmt.Sprintf("amqp://guest:secret@127.0.0.1:%d/", port), "x", testLogger(t))
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}
