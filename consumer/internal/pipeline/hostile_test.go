package pipeline_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/consumer/internal/consumertest"
	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
)

// A non-XML message carrying a 300-byte x-original-routing-key, a forged
// first-failure time and a forged unit is dead-lettered under the routing
// key the consumer received it with; the valid messages behind it are all
// stored and the consumer stays ready.
func TestPoisonMessageNeverStallsThePipeline(t *testing.T) {
	env := consumertest.NewEnv(t)
	env.SetPhase(env.State(), cutover.DualWrite)
	good, _ := consumertest.Messages("FP2-P", 40, 4, 0)
	poison := bus.Message{ID: "poison", RoutingKey: "bsu.v2.evil", Body: []byte("not xml at all"), Headers: map[string]string{
		dlq.HeaderRoutingKey:     strings.Repeat("k", 300),
		dlq.HeaderFirstFailure:   "yesterday",
		bus.HeaderUnit:           "FP2-VICTIM",
		strings.Repeat("h", 250): strings.Repeat("v", 5000),
	}}
	env.Publish(append(append(append([]bus.Message{}, good[:20]...), poison), good[20:]...))
	h := startPipeline(t, env, opts{})

	waitCounts(t, env, env.LegacyDSN, env.Influx.URL, env.InfluxDB, 40, 40, 60*time.Second)
	testenv.Eventually(t, 30*time.Second, "the poison message dead-lettered", func() error {
		if n := env.QueueMessages(env.Topology.DeadQueue); n != 1 {
			return fmt.Errorf("dead-letter queue holds %d, want 1", n)
		}
		return nil
	})
	if n := env.QueueMessages(env.Topology.Queue); n != 0 {
		t.Fatalf("ingest queue still holds %d messages", n)
	}
	entries, _, err := dlq.List(testenv.Context(t, 10*time.Second), env.Conn(), env.Topology.DeadQueue, dlq.Filter{}, 0)
	if err != nil || len(entries) != 1 {
		t.Fatalf("List = %+v, %v", entries, err)
	}
	e := entries[0]
	if e.RoutingKey != "bsu.v2.evil" || e.Unit != "" || e.Kind != dlq.KindRejected || e.Reason == "" {
		t.Fatalf("dead letter = %+v; want routing key bsu.v2.evil, no unit, kind rejected, a reason", e)
	}
	if time.Since(e.FirstFailure) > time.Minute {
		t.Fatalf("first failure %s: the forged value was not replaced", e.FirstFailure)
	}
	_ = h
}

// Replay routes by the routing key a letter was dead-lettered under, never
// by its headers; --unit matches the body's unit, not a forged header; a
// letter outside the ingest binding is skipped and kept while the others
// are replayed, and the result says which and why.
func TestReplayIgnoresForgedHeadersAndSettlesOneByOne(t *testing.T) {
	env := consumertest.NewEnv(t)
	ctx := testenv.Context(t, 60*time.Second)
	env.Publish(nil) // declares the topology
	ch, err := env.Conn().Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := testenv.Name(t, "other")
	if _, err := ch.QueueDeclare(other, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(other, "elsewhere", env.Topology.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	good, _ := consumertest.Messages("FP2-R", 2, 2, 0)
	forged := func(m bus.Message) bus.Message {
		m.Headers = map[string]string{dlq.HeaderRoutingKey: "elsewhere", bus.HeaderUnit: "FP2-VICTIM", dlq.HeaderKind: dlq.KindRejected, dlq.HeaderReason: "x"}
		return m
	}
	stray := forged(good[1])
	stray.ID, stray.RoutingKey = "stray", "not.telemetry"
	pub, err := rabbit.NewPublisher(ctx, env.Conn(), env.Topology, rabbit.PublisherOptions{Name: "replay"}, env.Logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.PublishTo(ctx, env.Topology.DeadExchange, []bus.Message{forged(good[0]), stray, forged(good[1])}); err != nil {
		t.Fatal(err)
	}

	res, err := dlq.Replay(ctx, env.Conn(), pub, env.Topology.Exchange, env.Topology.DeadQueue, dlq.Filter{Unit: "FP2-VICTIM", Binding: "bsu.#"}, 0, true, time.Now, nil)
	if err != nil || res.Matched != 0 {
		t.Fatalf("--unit FP2-VICTIM (only a forged header) matched: %+v, %v", res, err)
	}
	res, err = dlq.Replay(ctx, env.Conn(), pub, env.Topology.Exchange, env.Topology.DeadQueue, dlq.Filter{Binding: "bsu.#"}, 0, true, time.Now, nil)
	if err != nil {
		t.Fatalf("replay failed as a whole: %v", err)
	}
	if res.Replayed != 2 || res.Skipped != 1 || len(res.Entries) != 3 {
		t.Fatalf("replay = %+v; want 2 replayed, 1 skipped", res)
	}
	for _, e := range res.Entries {
		if (e.ID == "stray") != (e.Skipped != "") || e.ID == "stray" && !strings.Contains(e.Skipped, "outside the ingest binding") {
			t.Errorf("entry %+v", e)
		}
	}
	if n := env.QueueMessages(other); n != 0 {
		t.Fatalf("a forged x-original-routing-key steered %d letters to another queue", n)
	}
	if n := env.QueueMessages(env.Topology.Queue); n != 2 {
		t.Fatalf("ingest queue holds %d replayed letters, want 2", n)
	}
	if n := env.QueueMessages(env.Topology.DeadQueue); n != 1 {
		t.Fatalf("dead-letter queue holds %d, want the skipped one", n)
	}
}
