// Package cutover holds the cutover state that the consumer follows and the
// migrate commands change: the phase (with a version for optimistic
// concurrency and an audit log), consumer heartbeats, the gap ledger,
// backfill checkpoints and verify results. It lives in its own schema of the
// state store (STATE_DSN), apart from the legacy data, so it outlives it.
package cutover

import (
	"fmt"
	"strings"
)

// Phase is a step of the cutover.
type Phase string

// The phases, in order.
const (
	Legacy        Phase = "legacy"
	DualWrite     Phase = "dual-write"
	ShadowRead    Phase = "shadow-read"
	InfluxPrimary Phase = "influx-primary"
	InfluxOnly    Phase = "influx-only"
)

// Phases lists every phase in cutover order.
var Phases = []Phase{Legacy, DualWrite, ShadowRead, InfluxPrimary, InfluxOnly}

// ParsePhase returns the phase named s.
func ParsePhase(s string) (Phase, error) {
	for _, p := range Phases {
		if string(p) == s {
			return p, nil
		}
	}
	names := make([]string, len(Phases))
	for i, p := range Phases {
		names[i] = string(p)
	}
	return "", fmt.Errorf("unknown phase %q: want one of %s", s, strings.Join(names, ", "))
}

// Index returns the phase's position in Phases, or -1.
func (p Phase) Index() int {
	for i, q := range Phases {
		if q == p {
			return i
		}
	}
	return -1
}

// Next returns the phase after p; ok is false at the end.
func (p Phase) Next() (next Phase, ok bool) {
	i := p.Index()
	if i < 0 || i+1 >= len(Phases) {
		return "", false
	}
	return Phases[i+1], true
}

// Prev returns the phase before p; ok is false at the start.
func (p Phase) Prev() (prev Phase, ok bool) {
	i := p.Index()
	if i <= 0 {
		return "", false
	}
	return Phases[i-1], true
}

// Role is what a phase asks of one sink.
type Role int

// Roles a sink can have.
const (
	// Off: the sink is not written.
	Off Role = iota
	// Required: a failure means no ack; the broker keeps the message.
	Required
	// Repairable: a failure, after retries, is recorded in the gap ledger
	// and the message is acked; backfill repairs it later.
	Repairable
)

// String names the role.
func (r Role) String() string {
	switch r {
	case Required:
		return "required"
	case Repairable:
		return "repairable"
	default:
		return "off"
	}
}

// Roles returns what phase p asks of the legacy store and of InfluxDB.
func (p Phase) Roles() (legacy, influx Role) {
	switch p {
	case Legacy:
		return Required, Off
	case DualWrite, ShadowRead:
		return Required, Repairable
	case InfluxPrimary:
		return Repairable, Required
	case InfluxOnly:
		return Off, Required
	default:
		return Required, Off
	}
}

// Sink names used in the gap ledger.
const (
	SinkLegacy = "legacy"
	SinkInflux = "influx"
)
