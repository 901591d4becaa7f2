package dlq

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/telemetry"
)

// FuzzDeadLetter builds dead letters from arbitrary messages (routing key,
// id, one arbitrary header, body, reason) and reads them back as the
// dead-letter queue would: the letter and its minimal form are always
// encodable (short strings within 255 bytes, bounded headers), route only
// by the routing key the consumer saw, and the entry's unit comes from the
// body alone.
func FuzzDeadLetter(f *testing.F) {
	f.Add("bsu.v2.FP2-1", "m1", HeaderRoutingKey, "elsewhere", []byte("not xml"), "not well-formed")
	f.Add("bsu.v2.evil", string(make([]byte, 300)), string(make([]byte, 300)), "v", []byte(`<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:2"/>`), "")
	f.Add("", "", bus.HeaderUnit, "FP2-VICTIM", []byte{}, "r")
	f.Add("bsu.v2.x", "id", HeaderFirstFailure, "2999-01-01T00:00:00Z", []byte("x"), string(make([]byte, 10000)))
	f.Fuzz(func(t *testing.T, rk, id, hk, hv string, body []byte, reason string) {
		if len(rk) > bus.MaxShortString {
			rk = rk[:bus.MaxShortString] // a broker delivers nothing longer
		}
		now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
		l := Letter{Msg: source.Message{ID: id, RoutingKey: rk, Headers: map[string]any{hk: hv}, Body: body}, Kind: KindRejected, Reason: reason}
		for _, m := range []bus.Message{l.Message("c1", now), l.Minimal("c1", now)} {
			if len(bus.BoundID(m.ID)) > bus.MaxShortString || len(m.RoutingKey) > bus.MaxShortString {
				t.Fatalf("id or routing key over 255 bytes")
			}
			if m.RoutingKey != rk || m.Headers[HeaderRoutingKey] != rk {
				t.Fatalf("routed by %q / %q, the consumer saw %q", m.RoutingKey, m.Headers[HeaderRoutingKey], rk)
			}
			if len(m.Headers) > maxCopiedHeaders+8 {
				t.Fatalf("%d headers", len(m.Headers))
			}
			for k, v := range m.Headers {
				if len(k) > bus.MaxShortString || len(v) > maxReason+32 {
					t.Fatalf("header %q of %d bytes", k[:min(len(k), 20)], len(v))
				}
			}
			if ff, err := time.Parse(time.RFC3339, m.Headers[HeaderFirstFailure]); err != nil || ff.After(now) {
				t.Fatalf("first failure %q", m.Headers[HeaderFirstFailure])
			}
			table := amqp.Table{}
			for k, v := range m.Headers {
				table[k] = v
			}
			e, _ := EntryOf(&amqp.Delivery{RoutingKey: m.RoutingKey, MessageId: m.ID, Headers: table, Body: m.Body})
			if e.RoutingKey != rk {
				t.Fatalf("entry routing key %q, want %q", e.RoutingKey, rk)
			}
			if sum, _ := telemetry.Inspect(body); e.Unit != sum.Unit {
				t.Fatalf("entry unit %q, the body names %q", e.Unit, sum.Unit)
			}
		}
	})
}
