package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/producer/internal/sim"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/rabbit/rabbittest"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// runApp runs the producer with args and returns stdout and stderr.
func runApp(ctx context.Context, args ...string) (string, string, error) {
	app := New()
	var out, errOut testenv.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.RunContext(ctx, append([]string{"producer", "--log-format", "json"}, args...))
	return out.String(), errOut.String(), err
}

// topoArgs returns topology flags with names unique to t, and deletes the
// queues and exchanges when t ends.
func topoArgs(t *testing.T, url string) (rabbit.Topology, []string) {
	t.Helper()
	topo := rabbittest.Topology(t, url, "prod")
	return topo, []string{"--amqp-url", url, "--exchange", topo.Exchange, "--queue", topo.Queue,
		"--dead-exchange", topo.DeadExchange, "--dead-queue", topo.DeadQueue, "--http-addr", ""}
}

// consumeUntil consumes queue, acking, until done returns true; it fails
// t at ctx's deadline. It then keeps consuming for 300 ms to catch extras.
func consumeUntil(t *testing.T, ctx context.Context, url, queue string, f func(amqp.Delivery), done func() bool) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(2000, 0, false); err != nil {
		t.Fatal(err)
	}
	dels, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for !done() {
		select {
		case d := <-dels:
			f(d)
			_ = d.Ack(false)
		case <-ctx.Done():
			t.Fatalf("deadline while consuming %s", queue)
		}
	}
	for {
		select {
		case d := <-dels:
			f(d)
			_ = d.Ack(false)
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// decodeTally decodes bodies with the codec and counts what it makes of them.
type decodeTally struct {
	dec                        *telemetry.Decoder
	messages, records, rejects int
	bad                        int
	readings                   map[telemetry.Key]bool
	seqs                       map[string]map[int64]bool
}

func newDecodeTally() *decodeTally {
	return &decodeTally{dec: telemetry.NewDecoder(), readings: map[telemetry.Key]bool{}, seqs: map[string]map[int64]bool{}}
}

func (d *decodeTally) add(t *testing.T, body []byte, headers amqp.Table) {
	t.Helper()
	d.messages++
	res, err := d.dec.Decode(body)
	if err != nil {
		d.bad++
		return
	}
	if headers != nil {
		if headers[bus.HeaderUnit] != res.Unit || headers[bus.HeaderGeneration] != strconv.Itoa(res.Generation) ||
			headers[bus.HeaderSamples] != strconv.Itoa(len(res.Records)+len(res.Rejects)) {
			t.Fatalf("headers %v do not match the body (unit %s, gen %d, %d samples)", headers, res.Unit, res.Generation, len(res.Records)+len(res.Rejects))
		}
	}
	d.rejects += len(res.Rejects)
	for i := range res.Records {
		r := &res.Records[i]
		// Records alias the decoder's memory: keep copies.
		unit := strings.Clone(r.Unit)
		key := telemetry.Key{Unit: unit, TimeMs: r.TimeMs}
		if d.readings[key] {
			continue // a redelivered message
		}
		d.readings[key] = true
		d.records++
		if d.seqs[unit] == nil {
			d.seqs[unit] = map[int64]bool{}
		}
		d.seqs[unit][r.Seq] = true
	}
}

func parseSummary(t *testing.T, out string) sim.Summary {
	t.Helper()
	var s sim.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("summary %q: %v", out, err)
	}
	return s
}

// TestSimulateRabbitDecodes runs 'producer simulate' against the real
// RabbitMQ and decodes everything that reached the queue with the codec.
func TestSimulateRabbitDecodes(t *testing.T) {
	url := testenv.RabbitURL(t)
	for _, tc := range []struct {
		name     string
		badRatio string
	}{{"clean", "0"}, {"bad", "0.1"}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testenv.Context(t, 120*time.Second)
			topo, args := topoArgs(t, url)
			out, logs, err := runApp(ctx, append([]string{"simulate", "--units", "40", "--count", "3000", "--time-scale", "0",
				"--seed", "11", "--bad-ratio", tc.badRatio, "--offline-prob", "0.01", "-o", "json"}, args...)...)
			if err != nil {
				t.Fatalf("simulate: %v\n%s", err, logs)
			}
			s := parseSummary(t, out)
			if s.Messages != 3000 || s.Readings == 0 || s.SimEnd.After(time.Now()) {
				t.Fatalf("summary %+v", s)
			}
			d := newDecodeTally()
			consumeUntil(t, ctx, url, topo.Queue, func(m amqp.Delivery) {
				if m.ContentType != "application/xml" || m.MessageId == "" || m.DeliveryMode != amqp.Persistent {
					t.Fatalf("delivery properties %q %q %d", m.ContentType, m.MessageId, m.DeliveryMode)
				}
				var h amqp.Table
				if m.Headers["sim_bad"] == nil {
					h = m.Headers
				}
				d.add(t, m.Body, h)
			}, func() bool { return d.messages >= int(s.Messages) })
			if d.records != int(s.Readings) || d.rejects != int(s.RejectedSamples) || d.bad != int(s.BadMessages) {
				t.Fatalf("decoded %d readings, %d rejected samples, %d bad messages; summary says %d, %d, %d",
					d.records, d.rejects, d.bad, s.Readings, s.RejectedSamples, s.BadMessages)
			}
			if tc.badRatio == "0" && (d.rejects != 0 || d.bad != 0) {
				t.Fatalf("--bad-ratio 0 produced %d rejected samples, %d bad messages", d.rejects, d.bad)
			}
			if tc.badRatio != "0" && (d.rejects == 0 || d.bad == 0) {
				t.Fatalf("--bad-ratio %s produced no bad data", tc.badRatio)
			}
			if s.FlushMessages == 0 {
				t.Errorf("no buffer flushes in %+v", s)
			}
			t.Logf("%d messages: %d readings, %d rejected samples, %d bad; %.0f msgs/s", s.Messages, d.records, d.rejects, d.bad, s.MessagesPerSecond)
		})
	}
}

// TestSimulateSurvivesForcedReconnects closes the producer's connections
// through the management API while it publishes; every unit's sequence
// numbers must arrive complete.
func TestSimulateSurvivesForcedReconnects(t *testing.T) {
	url := testenv.RabbitURL(t)
	mgmt := testenv.RabbitMgmtURL(t)
	ctx := testenv.Context(t, 180*time.Second)
	topo, args := topoArgs(t, url)
	name := testenv.Name(t, "simkill")
	type result struct {
		out, logs string
		err       error
	}
	done := make(chan result, 1)
	go func() {
		// 30 s at 1,000 msg/s: long enough for three cuts even though the
		// management API lists a new connection only after its stats arrive.
		out, logs, err := runApp(ctx, append([]string{"simulate", "--units", "60", "--count", "30000", "--time-scale", "0", "--rate", "1000",
			"--seed", "5", "--amqp-connection-name", name, "-o", "json"}, args...)...)
		done <- result{out, logs, err}
	}()
	closed := 0
	for closed < 3 {
		testenv.Eventually(t, 60*time.Second, "close the producer's connection", func() error {
			select {
			case r := <-done:
				t.Fatalf("simulate finished after only %d forced closes (err %v); the test needs a longer run:\n%s", closed, r.err, r.logs)
			default:
			}
			n, err := rabbit.CloseConnections(ctx, mgmt, name)
			if err != nil {
				return err
			}
			if n == 0 {
				return errors.New("not listed yet")
			}
			return nil
		})
		closed++
		// Let it reconnect and publish a while before the next cut.
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("simulate: %v\n%s", r.err, r.logs)
	}
	if !strings.Contains(r.logs, "rabbitmq reconnected") {
		t.Fatalf("no reconnect in the logs:\n%s", r.logs)
	}
	s := parseSummary(t, r.out)
	d := newDecodeTally()
	consumeUntil(t, ctx, url, topo.Queue, func(m amqp.Delivery) { d.add(t, m.Body, nil) },
		func() bool { return d.records >= int(s.Readings) })
	if d.records != int(s.Readings) {
		t.Fatalf("%d distinct readings arrived, summary says %d", d.records, s.Readings)
	}
	for unit, seqs := range d.seqs {
		lo, hi := int64(1<<62), int64(-1)
		for q := range seqs {
			lo, hi = min(lo, q), max(hi, q)
		}
		if int64(len(seqs)) != hi-lo+1 {
			t.Fatalf("%s: %d sequence numbers in %d..%d: some were lost", unit, len(seqs), lo, hi)
		}
	}
	t.Logf("%d messages, %d deliveries (%d duplicates), %d readings, %d units complete", s.Messages, d.messages, d.messages-int(s.Messages), d.records, len(d.seqs))
}

func TestSimulateHelpAndBadFlags(t *testing.T) {
	ctx := testenv.Context(t, 30*time.Second)
	out, _, err := runApp(ctx, "simulate", "--help")
	if err != nil || !strings.Contains(out, "--time-scale") || !strings.Contains(out, "SIM_UNITS") {
		t.Fatalf("help: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"simulate", "--units", "0", "--http-addr", ""},
		{"simulate", "--start", "yesterday", "--http-addr", ""},
		{"simulate", "--bus", "carrier-pigeon", "--http-addr", "", "--count", "1"},
		{"simulate", "--queue-type", "stream", "--http-addr", "", "--count", "1"},
	} {
		if _, _, err := runApp(ctx, args...); err == nil {
			t.Errorf("%v: want an error", args)
		} else {
			t.Logf("%v: %v", args, err)
		}
	}
	_ = io.Discard
	_ = fmt.Sprint
}
