package poll_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/producer/internal/poll"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
)

// A unit whose 300-character serial makes a 300-byte message id is polled
// and published once under the bounded id, next to a normal unit; the AMQP
// connection is never dropped and nothing is retried for ever.
func TestPollLongSerialPublishedOnce(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 60*time.Second)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := testenv.Name(t, "poll")
	topo := rabbit.Topology{Exchange: n + ".x", Queue: n + ".q", QueueType: "classic", BindingKey: "bsu.#", DeadExchange: n + ".dlx", DeadQueue: n + ".dead"}
	t.Cleanup(func() {
		if conn, err := amqp.Dial(url); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_, _ = ch.QueueDelete(topo.Queue, false, false, false)
				_, _ = ch.QueueDelete(topo.DeadQueue, false, false, false)
				_ = ch.ExchangeDelete(topo.Exchange, false, false)
				_ = ch.ExchangeDelete(topo.DeadExchange, false, false)
			}
			conn.Close()
		}
	})
	conn, err := rabbit.Dial(ctx, url, n, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	serial := "FP2-" + strings.Repeat("7", 296)
	var longCalls atomic.Int64
	long := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		longCalls.Add(1)
		fmt.Fprintf(w, gen2, serial, 1, "2026-11-20T10:00:00Z")
	}))
	defer long.Close()
	normal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, gen2, "FP2-000001", 1, "2026-11-20T10:00:00Z")
	}))
	defer normal.Close()
	p, err := poll.New(poll.Config{Endpoints: []string{long.URL, normal.URL}, Interval: 100 * time.Millisecond, Timeout: time.Second}, pub, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.Run(pctx) }()
	testenv.Eventually(t, 10*time.Second, "both units polled a few times", func() error {
		if longCalls.Load() < 5 {
			return fmt.Errorf("%d polls", longCalls.Load())
		}
		return nil
	})
	stop()
	<-done
	if d := conn.Dials(); d != 1 {
		t.Fatalf("the AMQP connection was redialled (%d dials)", d)
	}
	c2, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ch, err := c2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for {
		d, ok, err := ch.Get(topo.Queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		ids[d.MessageId]++
	}
	want := bus.BoundID(serial + ":")
	found := false
	for id, count := range ids {
		if strings.HasPrefix(id, want[:64]) && strings.Contains(id, "~sha256:") {
			found = true
			if count != 1 {
				t.Errorf("the long-serial message arrived %d times (an unchanged body is published once)", count)
			}
		}
	}
	if !found || len(ids) != 2 {
		t.Fatalf("queue ids %v: want the normal one and the bounded long one", ids)
	}
}
