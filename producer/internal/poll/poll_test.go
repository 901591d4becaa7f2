package poll_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/producer/internal/poll"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/rabbit/rabbittest"
	"github.com/flexipack/cutover/shared/testenv"
)

const gen2 = `<Telemetry xmlns="urn:flexipack:telemetry:2"><Unit serial="%s"/><Sample seq="%d" time="%s"><SoC>50</SoC></Sample></Telemetry>`

func TestPollPublishesAndBacksOff(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 60*time.Second)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := testenv.Name(t, "poll")
	topo := rabbittest.Topology(t, url, "poll")
	_, pub := rabbittest.Publisher(t, ctx, url, n, topo, logger, nil)

	var seq atomic.Int64
	fresh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seq.Add(1)
		fmt.Fprintf(w, gen2, "FP2-000100", s, time.Now().UTC().Add(-time.Duration(s)*time.Second).Format(time.RFC3339Nano))
	}))
	defer fresh.Close()
	var flakyCalls atomic.Int64
	var flakyTimes []time.Time
	var mu sync.Mutex
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		flakyTimes = append(flakyTimes, time.Now())
		mu.Unlock()
		if flakyCalls.Add(1) <= 3 {
			http.Error(w, "warming up", http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, gen2, "FP2-000200", 1, time.Now().UTC().Format(time.RFC3339))
	}))
	defer flaky.Close()
	var sameCalls atomic.Int64
	same := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sameCalls.Add(1)
		fmt.Fprintf(w, gen2, "FP2-000300", 1, "2026-11-20T10:00:00Z")
	}))
	defer same.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<Telemetry xmlns=")
	}))
	defer garbage.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()

	reg := prometheus.NewRegistry()
	p, err := poll.New(poll.Config{
		Endpoints: []string{fresh.URL, flaky.URL, same.URL, garbage.URL, slow.URL},
		Interval:  100 * time.Millisecond, Timeout: 300 * time.Millisecond, Concurrency: 3, MaxBackoff: 400 * time.Millisecond,
	}, pub, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- p.Run(pctx) }()

	c2, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ch, err := c2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	byUnit := map[string]int{}
	inspectErr := 0
	testenv.Eventually(t, 20*time.Second, "messages from every endpoint", func() error {
		for {
			d, ok, err := ch.Get(topo.Queue, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if e, _ := d.Headers[bus.HeaderInspectError].(string); e != "" {
				inspectErr++
				if d.RoutingKey != "bsu.v0.unknown" || d.Headers[poll.HeaderEndpoint] != garbage.URL {
					t.Fatalf("inspect error message: key %q headers %v", d.RoutingKey, d.Headers)
				}
				continue
			}
			byUnit[d.Headers[bus.HeaderUnit].(string)]++
		}
		if byUnit["FP2-000100"] < 5 || byUnit["FP2-000200"] < 1 || byUnit["FP2-000300"] < 1 || inspectErr < 1 {
			return fmt.Errorf("so far %v, %d with inspect_error", byUnit, inspectErr)
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if byUnit["FP2-000300"] != 1 || sameCalls.Load() < 3 {
		t.Errorf("an unchanged body was published %d times in %d polls, want once", byUnit["FP2-000300"], sameCalls.Load())
	}
	if inspectErr != 1 {
		t.Errorf("garbage published %d times, want once (unchanged after)", inspectErr)
	}
	mu.Lock()
	defer mu.Unlock()
	// Gaps after failures grow: the 3rd gap (after 2 failures) is longer
	// than the interval.
	if len(flakyTimes) < 4 {
		t.Fatalf("flaky endpoint polled %d times", len(flakyTimes))
	}
	if gap := flakyTimes[2].Sub(flakyTimes[1]); gap < 150*time.Millisecond {
		t.Errorf("no backoff after failures: gap %s", gap)
	}
}

func TestPollConfigErrors(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, eps := range [][]string{nil, {"ftp://x/"}, {"not a url"}} {
		if _, err := poll.New(poll.Config{Endpoints: eps}, nil, logger, nil); err == nil {
			t.Errorf("%v: want an error", eps)
		}
	}
}
