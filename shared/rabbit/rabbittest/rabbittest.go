// Package rabbittest holds the RabbitMQ set-up that tests of several
// packages share: a topology with names unique to the test, deleted when
// the test ends, and a connection with a publisher on it.
package rabbittest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
)

// Topology returns a classic-queue topology (binding "bsu.#", with a dead
// letter exchange and queue) whose names start with testenv.Name(t, prefix),
// and deletes its queues and exchanges on the broker at url when t ends.
func Topology(t testing.TB, url, prefix string) rabbit.Topology {
	t.Helper()
	n := testenv.Name(t, prefix)
	topo := rabbit.Topology{Exchange: n + ".x", Queue: n + ".q", QueueType: "classic", BindingKey: "bsu.#", DeadExchange: n + ".dlx", DeadQueue: n + ".dead"}
	t.Cleanup(func() { Delete(url, topo) })
	return topo
}

// Delete removes topo's queues and exchanges from the broker at url,
// ignoring every error (a cleanup that must not fail the test).
func Delete(url string, topo rabbit.Topology) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	_, _ = ch.QueueDelete(topo.Queue, false, false, false)
	_, _ = ch.QueueDelete(topo.DeadQueue, false, false, false)
	_ = ch.ExchangeDelete(topo.Exchange, false, false)
	_ = ch.ExchangeDelete(topo.DeadExchange, false, false)
}

// Dial connects to url under the connection name name and closes the
// connection when t ends; it fails t if the broker cannot be reached.
func Dial(t testing.TB, ctx context.Context, url, name string, logger *slog.Logger) *rabbit.Conn {
	t.Helper()
	conn, err := rabbit.Dial(ctx, url, name, logger)
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Publisher dials url and opens a publisher with default options on topo;
// the publisher and then the connection close when t ends.
func Publisher(t testing.TB, ctx context.Context, url, name string, topo rabbit.Topology, logger *slog.Logger, reg prometheus.Registerer) (*rabbit.Conn, *rabbit.Publisher) {
	t.Helper()
	conn := Dial(t, ctx, url, name, logger)
	pub, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{}, logger, reg)
	if err != nil {
		t.Fatalf("publisher on %s: %v", topo.Exchange, err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return conn, pub
}
