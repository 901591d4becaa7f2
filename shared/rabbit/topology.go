// Package rabbit is the RabbitMQ side of the bus: the topology every binary
// declares the same way, a connection that redials on its own, a publisher
// with confirms that loses nothing across reconnects, and a small client for
// the management API.
//
// Topology: producers publish to a durable topic exchange (Topology.Exchange,
// "telemetry") with routing keys from RoutingKey ("bsu.v<gen>.<unit>"). The
// ingest queue (Topology.Queue, "telemetry.ingest") is bound to it with
// Topology.BindingKey ("bsu.#") and dead-letters to Topology.DeadExchange
// ("telemetry.dlx"), whose queue Topology.DeadQueue ("telemetry.dead") takes
// everything ("#"). The consumer also publishes rejected messages there
// itself with Publisher.PublishTo, with headers naming the reason.
package rabbit

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Topology names the exchanges and queues of the telemetry bus.
type Topology struct {
	Exchange     string // durable topic exchange producers publish to; default "telemetry"
	Queue        string // the consumer's ingest queue; default "telemetry.ingest"
	QueueType    string // "classic" (default) or "quorum", for both queues
	BindingKey   string // binds Queue to Exchange; default "bsu.#"
	DeadExchange string // dead-letter exchange (topic); default "telemetry.dlx"
	DeadQueue    string // bound to DeadExchange with "#"; default "telemetry.dead"
}

// Flag names and environment variables of the topology (the flags are
// defined in shared/cliapp; Validate names them in its errors).
const (
	FlagExchange     = "exchange"
	FlagQueue        = "queue"
	FlagQueueType    = "queue-type"
	FlagBindingKey   = "binding-key"
	FlagDeadExchange = "dead-exchange"
	FlagDeadQueue    = "dead-queue"

	EnvExchange     = "AMQP_EXCHANGE"
	EnvQueue        = "AMQP_QUEUE"
	EnvQueueType    = "AMQP_QUEUE_TYPE"
	EnvBindingKey   = "AMQP_BINDING_KEY"
	EnvDeadExchange = "AMQP_DEAD_EXCHANGE"
	EnvDeadQueue    = "AMQP_DEAD_QUEUE"
)

// DefaultTopology returns the production names.
func DefaultTopology() Topology {
	return Topology{
		Exchange:     "telemetry",
		Queue:        "telemetry.ingest",
		QueueType:    "classic",
		BindingKey:   "bsu.#",
		DeadExchange: "telemetry.dlx",
		DeadQueue:    "telemetry.dead",
	}
}

// Validate reports the first missing name or unknown queue type.
func (t Topology) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{
		{FlagExchange, t.Exchange}, {FlagQueue, t.Queue}, {FlagBindingKey, t.BindingKey},
		{FlagDeadExchange, t.DeadExchange}, {FlagDeadQueue, t.DeadQueue},
	} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("topology: --%s is empty", f.name))
		}
	}
	switch t.QueueType {
	case "", "classic", "quorum":
	default:
		errs = append(errs, fmt.Errorf("topology: --%s %q: want classic or quorum", FlagQueueType, t.QueueType))
	}
	return errors.Join(errs...)
}

func (t Topology) queueType() string {
	if t.QueueType == "" {
		return "classic"
	}
	return t.QueueType
}

// Declare declares the exchanges, queues and bindings. It is idempotent, so
// every process declares on start (and after reconnecting) and the order in
// which producer and consumer start does not matter. Declaring a queue that
// exists with other arguments (say classic versus quorum) fails with the
// broker's PRECONDITION_FAILED, and closes ch.
func (t Topology) Declare(ch *amqp.Channel) error {
	if err := t.Validate(); err != nil {
		return err
	}
	for _, x := range []string{t.Exchange, t.DeadExchange} {
		if err := ch.ExchangeDeclare(x, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %q: %w", x, err)
		}
	}
	if _, err := ch.QueueDeclare(t.DeadQueue, true, false, false, false, amqp.Table{
		amqp.QueueTypeArg: t.queueType(),
	}); err != nil {
		return fmt.Errorf("declare dead-letter queue %q: %w", t.DeadQueue, err)
	}
	if err := ch.QueueBind(t.DeadQueue, "#", t.DeadExchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %q to exchange %q: %w", t.DeadQueue, t.DeadExchange, err)
	}
	if _, err := ch.QueueDeclare(t.Queue, true, false, false, false, amqp.Table{
		amqp.QueueTypeArg:        t.queueType(),
		"x-dead-letter-exchange": t.DeadExchange,
	}); err != nil {
		return fmt.Errorf("declare queue %q: %w", t.Queue, err)
	}
	if err := ch.QueueBind(t.Queue, t.BindingKey, t.Exchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %q to exchange %q with %q: %w", t.Queue, t.Exchange, t.BindingKey, err)
	}
	return nil
}

// maxRoutingKey is AMQP's limit on a short string.
const maxRoutingKey = 255

// RoutingKey returns the routing key of a unit's telemetry:
// "bsu.v<generation>.<unit>", with '.', '*' and '#' in the unit replaced by
// '_' so that the unit is always exactly one topic word, and "unknown" for
// an empty unit. Keys longer than AMQP's 255 bytes are cut.
func RoutingKey(generation int, unit string) string {
	if unit == "" {
		unit = "unknown"
	}
	var b strings.Builder
	b.Grow(8 + len(unit))
	b.WriteString("bsu.v")
	fmt.Fprint(&b, generation)
	b.WriteByte('.')
	for i := 0; i < len(unit); i++ {
		switch c := unit[i]; c {
		case '.', '*', '#':
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	k := b.String()
	if len(k) > maxRoutingKey {
		k = k[:maxRoutingKey]
	}
	return k
}
