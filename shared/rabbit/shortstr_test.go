package rabbit_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/rabbit/rabbittest"
	"github.com/flexipack/cutover/shared/testenv"
)

// Over-long AMQP short strings never reach the wire: a 300-byte message id
// is replaced by its stable short form, a 300-byte routing key or header
// name fails that message alone with ErrUnpublishable, and the connection
// (never redialled) and every neighbour of the batch are unaffected.
func TestOverlongShortStringsFailAloneAndKeepTheConnection(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 60*time.Second)
	topo := testTopology(t, url)
	reg := prometheus.NewRegistry()
	conn, p := rabbittest.Publisher(t, ctx, url, testenv.Name(t, "pub"), topo, testLogger(t), reg)

	long := strings.Repeat("é", 150) // 300 bytes
	msgs := testMessages("FP2-000001", 0, 6)
	msgs[1].ID = long
	msgs[3].RoutingKey = "bsu.v2." + long
	msgs[4].Headers = map[string]string{long: "x"}
	for round := 0; round < 3; round++ {
		err := p.Publish(ctx, msgs)
		if !errors.Is(err, bus.ErrUnpublishable) {
			t.Fatalf("round %d: publish = %v, want ErrUnpublishable for two messages", round, err)
		}
		if n := strings.Count(err.Error(), "can never be published"); n != 2 {
			t.Fatalf("round %d: %d messages refused, want 2: %v", round, n, err)
		}
	}
	if d := conn.Dials(); d != 1 {
		t.Fatalf("the connection was redialled (%d dials)", d)
	}
	dels := drain(t, ctx, url, topo.Queue, 12)
	if len(dels) != 12 {
		t.Fatalf("got %d deliveries, want 12 (4 per round)", len(dels))
	}
	want := bus.BoundID(long)
	if len(want) > 255 || !strings.HasPrefix(want, strings.Repeat("é", 32)) {
		t.Fatalf("BoundID = %q", want)
	}
	seen := 0
	for _, d := range dels {
		if d.MessageId == want {
			seen++
		}
	}
	if seen != 3 {
		t.Fatalf("the long-id message arrived %d times with id %q, want 3", seen, want)
	}
	if got := metricValue(t, reg, "rabbitmq_publisher_refused_total"); got != 6 {
		t.Errorf("refused_total = %v, want 6", got)
	}
}
