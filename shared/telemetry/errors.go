package telemetry

import (
	"strconv"
	"strings"
)

// MessageKind classifies why a whole message was rejected, for metrics labels
// and dead-letter headers. Reason carries the detail.
type MessageKind string

// Kinds of whole-message rejection.
const (
	KindTooLarge      MessageKind = "too-large"       // over MaxMessageBytes, checked before parsing
	KindNotWellFormed MessageKind = "not-well-formed" // XML 1.0 / Namespaces well-formedness, or not UTF-8 text
	KindDTD           MessageKind = "dtd"             // <!DOCTYPE> or <!ENTITY>
	KindEncoding      MessageKind = "encoding"        // XML declaration names an encoding other than UTF-8
	KindUnknownRoot   MessageKind = "unknown-root"    // root element or namespace of neither generation
	KindNoUnit        MessageKind = "no-unit"         // no unit identifier
	KindStructure     MessageKind = "structure"       // e.g. repeated <Unit>, 0 or over 1,000 samples, a tag value line protocol cannot carry
)

// MessageError rejects a whole message. Decode and Inspect return it as
// their error; its Reason names what was wrong and where.
type MessageError struct {
	Kind   MessageKind
	Reason string // e.g. "not well-formed: line 4, column 3: element <Sample> closed by </Telemetry>"
}

// Error returns the reason.
func (e *MessageError) Error() string { return e.Reason }

// Reject is one sample that was rejected while its siblings were kept.
type Reject struct {
	Index  int    // 0-based position of the sample in the message
	Seq    string // the raw seq attribute, "" if absent
	Field  string // what was wrong, e.g. "SoC", "time", "Voltage@unit", "Temperature[ambient]", "Alarm[0]@code"
	Reason string // e.g. "140 outside 0..100"
}

// Error formats the rejection like `sample 3 (seq 10): SoC: 140 outside 0..100`.
func (r Reject) Error() string {
	var b strings.Builder
	b.WriteString("sample ")
	b.WriteString(strconv.Itoa(r.Index))
	if r.Seq != "" {
		b.WriteString(" (seq ")
		b.WriteString(r.Seq)
		b.WriteByte(')')
	}
	b.WriteString(": ")
	if r.Field != "" {
		b.WriteString(r.Field)
		b.WriteString(": ")
	}
	b.WriteString(r.Reason)
	return b.String()
}

// FieldError is why DecodeJSON or Validate refused a record: Field is the
// JSON key (e.g. "soc_pct", "temp_c.ambient", "alarms[1].code"), or "" for a
// JSON syntax error.
type FieldError struct {
	Field  string
	Reason string
}

// Error formats the error as "field: reason".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// quoteShort quotes a raw value for a reason, cutting very long values.
func quoteShort(b []byte) string {
	const max = 40
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}
