package pipeline_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// N messages in, exactly N distinct readings in both stores; messages
// delivered twice are stored once; nothing goes to the ledger or the DLQ.
func TestDualWriteExactlyOnce(t *testing.T) {
	env := consumertest.NewEnv(t)
	st := env.State()
	env.SetPhase(st, cutover.DualWrite)
	const n = 5000
	msgs, _ := consumertest.Messages("FP2-A", n, 50, 0)
	env.Publish(msgs)
	env.Publish(msgs[:700]) // delivered twice
	h := startPipeline(t, env, opts{})

	waitCounts(t, env, env.LegacyDSN, env.Influx.URL, env.InfluxDB, n, n, 60*time.Second)
	testenv.Eventually(t, 30*time.Second, "every delivery acked", func() error {
		if a := h.acked(); a != n+700 {
			return fmt.Errorf("acked %d, want %d", a, n+700)
		}
		return nil
	})
	if q := env.QueueMessages(env.Topology.Queue); q != 0 {
		t.Fatalf("ingest queue still holds %d messages", q)
	}
	if q := env.QueueMessages(env.Topology.DeadQueue); q != 0 {
		t.Fatalf("dead-letter queue holds %d messages, want 0", q)
	}
	gaps, err := st.Gaps(testenv.Context(t, 10*time.Second), cutover.GapFilter{})
	if err != nil || len(gaps) != 0 {
		t.Fatalf("gap ledger = %+v, %v; want empty", gaps, err)
	}
	// The heartbeat reports the applied phase.
	testenv.Eventually(t, 10*time.Second, "heartbeat", func() error {
		hbs, err := st.Heartbeats(testenv.Context(t, 5*time.Second), time.Minute)
		if err != nil {
			return err
		}
		if len(hbs) != 1 || hbs[0].Phase != cutover.DualWrite || hbs[0].ConsumerID != h.name {
			return fmt.Errorf("heartbeats = %+v", hbs)
		}
		return nil
	})
	if err := h.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if hbs, _ := st.Heartbeats(testenv.Context(t, 5*time.Second), time.Minute); len(hbs) != 0 {
		t.Fatalf("heartbeat not removed at a clean stop: %+v", hbs)
	}
	// Counts are still exact after the drain.
	if n2 := consumertest.LegacyCount(t, env.LegacyDSN); n2 != n {
		t.Fatalf("legacy = %d after stop, want %d", n2, n)
	}
}

// readSample reads a contract sample.
func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "contract", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Malformed messages land in the dead-letter queue with their reason, first
// failure and routing key; a message with some rejected samples stores the
// others and is dead-lettered as "partial"; replaying re-drives it and keeps
// its first-failure time.
func TestBadInputDeadLettered(t *testing.T) {
	env := consumertest.NewEnv(t)
	st := env.State()
	env.SetPhase(st, cutover.DualWrite)
	good, _ := consumertest.Messages("FP2-G", 100, 10, 0)
	bad := []string{"bad-entity-expansion.xml", "bad-missing-unit.xml", "bad-not-well-formed.xml", "bad-old-timestamp.xml", "bad-unknown-namespace.xml"}
	var msgs []bus.Message
	msgs = append(msgs, good[:50]...)
	for i, name := range bad {
		msgs = append(msgs, bus.Message{ID: name, RoutingKey: "bsu.v2.bad" + strconv.Itoa(i), Body: readSample(t, name)})
	}
	msgs = append(msgs, bus.Message{ID: "partial", RoutingKey: "bsu.v2.FP2-010001", Headers: map[string]string{bus.HeaderUnit: "FP2-010001"}, Body: readSample(t, "gen2-partial-reject.xml")})
	msgs = append(msgs, good[50:]...)
	env.Publish(msgs)
	startPipeline(t, env, opts{})

	waitCounts(t, env, env.LegacyDSN, env.Influx.URL, env.InfluxDB, 102, 102, 60*time.Second)
	testenv.Eventually(t, 30*time.Second, "dead letters", func() error {
		if n := env.QueueMessages(env.Topology.DeadQueue); n != 6 {
			return fmt.Errorf("dead-letter queue holds %d, want 6", n)
		}
		return nil
	})
	entries, total, err := dlq.List(testenv.Context(t, 10*time.Second), env.Conn(), env.Topology.DeadQueue, dlq.Filter{}, 0)
	if err != nil || total != 6 || len(entries) != 6 {
		t.Fatalf("List = %d entries of %d, %v", len(entries), total, err)
	}
	kinds := map[string]int{}
	for i, e := range entries {
		kinds[e.Kind]++
		if e.Reason == "" || e.FirstFailure.IsZero() || e.RoutingKey == "" || e.Size == 0 {
			t.Errorf("entry %d lacks reason, first failure, routing key or size: %+v", i, e)
		}
		if e.Kind == dlq.KindPartial {
			if e.Rejected != 5 || e.Unit != "FP2-010001" || !strings.Contains(e.Reason, "5 of 7 samples rejected") {
				t.Errorf("partial entry = %+v", e)
			}
		}
	}
	if kinds[dlq.KindRejected] != 5 || kinds[dlq.KindPartial] != 1 {
		t.Fatalf("kinds = %v, want 5 rejected and 1 partial", kinds)
	}
	// Listing consumed nothing.
	if n := env.QueueMessages(env.Topology.DeadQueue); n != 6 {
		t.Fatalf("after List the dead-letter queue holds %d, want 6", n)
	}
	wantReasons := map[string]string{"bsu.v2.bad0": "DTD", "bsu.v2.bad2": "well-formed"}
	for _, e := range entries {
		if w, ok := wantReasons[e.RoutingKey]; ok && !strings.Contains(strings.ToLower(e.Reason), strings.ToLower(w)) {
			t.Errorf("%s: reason %q does not mention %q", e.RoutingKey, e.Reason, w)
		}
	}

	// Dry run changes nothing; execute re-drives only the match.
	res, err := dlq.Replay(testenv.Context(t, 10*time.Second), env.Conn(), nil, env.Topology.Exchange, env.Topology.DeadQueue, dlq.Filter{Kind: dlq.KindPartial}, 0, false, time.Now, nil)
	if err != nil || res.Matched != 1 || res.Replayed != 0 || res.Read != 6 {
		t.Fatalf("dry run = %+v, %v", res, err)
	}
	pub, err := rabbit.NewPublisher(testenv.Context(t, 10*time.Second), env.Conn(), env.Topology, rabbit.PublisherOptions{Name: "replay"}, env.Logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	first := entries[0].FirstFailure
	for _, e := range entries {
		if e.Kind == dlq.KindPartial {
			first = e.FirstFailure
		}
	}
	res, err = dlq.Replay(testenv.Context(t, 10*time.Second), env.Conn(), pub, env.Topology.Exchange, env.Topology.DeadQueue, dlq.Filter{Kind: dlq.KindPartial}, 0, true, time.Now, nil)
	if err != nil || res.Replayed != 1 {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	// The consumer takes it again: its two good samples upsert (no new
	// rows), its five bad ones come back with the same first failure.
	testenv.Eventually(t, 30*time.Second, "replayed partial dead-lettered again", func() error {
		es, _, err := dlq.List(testenv.Context(t, 10*time.Second), env.Conn(), env.Topology.DeadQueue, dlq.Filter{Kind: dlq.KindPartial}, 0)
		if err != nil {
			return err
		}
		if len(es) != 1 || es[0].Replays != 1 {
			return fmt.Errorf("partial entries = %+v", es)
		}
		if !es[0].FirstFailure.Equal(first) {
			return fmt.Errorf("first failure %s, want the original %s", es[0].FirstFailure, first)
		}
		return nil
	})
	if n := consumertest.LegacyCount(t, env.LegacyDSN); n != 102 {
		t.Fatalf("legacy = %d after replay, want 102", n)
	}
}
