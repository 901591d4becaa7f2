package sim

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
)

const benchWindow = 1024

// rawPublish is the baseline: the fastest reasonable amqp091-go loop —
// one channel in confirm mode, publish everything with a window of
// unconfirmed messages, then wait for the rest.
func rawPublish(b *testing.B, ctx context.Context, ch *amqp.Channel, confirms <-chan amqp.Confirmation, exchange string, msgs []Message) {
	outstanding := 0
	wait := func() {
		c := <-confirms
		if !c.Ack {
			b.Fatalf("nack %d", c.DeliveryTag)
		}
		outstanding--
	}
	for i := range msgs {
		m := &msgs[i]
		if outstanding == benchWindow {
			wait()
		}
		headers := amqp.Table{}
		for k, v := range m.Headers {
			headers[k] = v
		}
		err := ch.PublishWithContext(ctx, exchange, m.RoutingKey, true, false, amqp.Publishing{
			Headers: headers, ContentType: "application/xml", DeliveryMode: amqp.Persistent,
			MessageId: m.ID, Timestamp: time.Now(), Body: m.Body,
		})
		if err != nil {
			b.Fatal(err)
		}
		outstanding++
	}
	for outstanding > 0 {
		wait()
	}
}

// BenchmarkPublishConfirms compares the simulate publish path (fleet
// generation, per-unit workers, rabbit.Publisher with confirms) with the
// raw loop, on the same broker, message sizes and window, alternating so
// that both see the same broker load. Run:
//
//	go test -run '^$' -bench PublishConfirms -benchtime 3x ./producer/internal/sim/
func BenchmarkPublishConfirms(b *testing.B) {
	url := testenv.RabbitURL(b)
	ctx := context.Background()
	const perRun = 10000
	fleetCfg := Config{Units: 200, Gen1Share: 0.3, Seed: 1}
	f, err := NewFleet(fleetCfg)
	if err != nil {
		b.Fatal(err)
	}
	var msgs []Message
	for t0 := time.Now().Add(-24 * time.Hour); len(msgs) < perRun; t0 = t0.Add(10 * time.Second) {
		msgs = f.Tick(t0, msgs)
	}
	msgs = msgs[:perRun]

	n := testenv.Name(b, "bench")
	topo := rabbit.Topology{Exchange: n + ".x", Queue: n + ".q", QueueType: "classic", BindingKey: "bsu.#", DeadExchange: n + ".dlx", DeadQueue: n + ".dead"}
	admin, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	ach, err := admin.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := topo.Declare(ach); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_, _ = ach.QueueDelete(topo.Queue, false, false, false)
		_, _ = ach.QueueDelete(topo.DeadQueue, false, false, false)
		_ = ach.ExchangeDelete(topo.Exchange, false, false)
		_ = ach.ExchangeDelete(topo.DeadExchange, false, false)
	}()

	rawConn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer rawConn.Close()
	rawCh, err := rawConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := rawCh.Confirm(false); err != nil {
		b.Fatal(err)
	}
	rawConfirms := rawCh.NotifyPublish(make(chan amqp.Confirmation, benchWindow+1))
	conn, err := rabbit.Dial(ctx, url, n, discard)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	pub, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Window: benchWindow}, discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()

	purge := func() {
		if _, err := ach.QueuePurge(topo.Queue, false); err != nil {
			b.Fatal(err)
		}
	}
	var rawTime, simTime, simCPU time.Duration
	runRaw := func() {
		purge()
		start := time.Now()
		rawPublish(b, ctx, rawCh, rawConfirms, topo.Exchange, msgs)
		rawTime += time.Since(start)
	}
	runSim := func() {
		purge()
		start, cpu0 := time.Now(), testenv.CPUTime()
		s, err := Run(ctx, RunConfig{Fleet: fleetCfg, Count: perRun, TimeScale: 0, Progress: -1}, pub, discard, nil)
		if err != nil {
			b.Fatal(err)
		}
		simTime += time.Since(start)
		simCPU += testenv.CPUTime() - cpu0
		if s.Messages != perRun {
			b.Fatalf("simulate confirmed %d messages", s.Messages)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			runRaw()
			runSim()
		} else {
			runSim()
			runRaw()
		}
	}
	b.StopTimer()
	total := float64(b.N * perRun)
	rawRate := total / rawTime.Seconds()
	simRate := total / simTime.Seconds()
	b.ReportMetric(rawRate, "raw_msgs/s")
	b.ReportMetric(simRate, "simulate_msgs/s")
	b.ReportMetric(simRate/rawRate, "ratio")
	// CPU of this process while simulate ran (fleet, XML, publisher); the
	// broker's own CPU is not counted.
	b.ReportMetric(float64(simCPU.Microseconds())/total, "cpu-us/msg")
	b.ReportMetric(0, "ns/op")
}
