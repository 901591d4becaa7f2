package rabbit_test

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/rabbit"
)

// A consumer dead-letters a message it cannot decode: the same topology,
// a reconnecting connection and a confirming publisher, publishing to the
// dead-letter exchange with headers naming the reason.
func ExamplePublisher_PublishTo() {
	ctx := context.Background()
	logger := slog.Default()
	topo := rabbit.DefaultTopology()
	conn, err := rabbit.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", "consumer-dlq", logger)
	if err != nil {
		return
	}
	defer conn.Close()
	p, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{Name: "dead-letter"}, logger, prometheus.NewRegistry())
	if err != nil {
		return
	}
	defer p.Close()
	err = p.PublishTo(ctx, topo.DeadExchange, []bus.Message{{
		ID:         "FP2-000001-1001",
		RoutingKey: rabbit.RoutingKey(2, "FP2-000001"),
		Headers:    map[string]string{"reject_reason": "not well-formed XML at line 3"},
		Body:       []byte("<bsu:Telemetry"),
	}})
	_ = err // nil only once the broker stored it
}
