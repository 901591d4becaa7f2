// Package telemetry is the codec for the battery telemetry contract
// (TELEMETRY_XML.md): it turns a message body into normalised records and
// records into JSON and InfluxDB line protocol.
//
// Decoder.Decode reads both firmware generations with a hand-written,
// allocation-free XML 1.0 + Namespaces scanner (strict: it never accepts what
// encoding/xml rejects, and refuses DTDs); AppendJSON and AppendLineProtocol
// write a record into a caller's buffer; Decoder.DecodeJSON reads a
// normalised record back (snapshots, the legacy store) with the same
// validation; Inspect checks a body and extracts its unit and sample count.
//
// Where the contract is silent, the codec decides (each decision has a
// golden case under testdata/cases):
//
//   - A message is rejected whole (MessageError, with a Kind) when, besides
//     the contract's reasons, it has a repeated <Unit>, a schemaVersion other
//     than 2.0/2.1 (generation 1: schema other than 1.0), no sample, more than
//     1,000 samples, not exactly one generation-1 <reading>, an unknown element
//     of the telemetry namespace directly under the root, elements nested
//     deeper than 256 or more than 128 attributes on one element, or a
//     unit/site/model value line protocol cannot carry as a tag (a control
//     character such as a tab from &#9;, or a trailing backslash).
//   - A sample is rejected (Reject, first problem in document order) when an
//     element other than Temperature and Alarm appears twice (even if one is
//     empty), a Temperature sensor repeats, an unknown element of the
//     telemetry namespace appears in it (a typo must not silently drop a
//     value), seq is not a non-negative int64 of digits only (empty included),
//     a unit attribute is present but empty or not exactly one of the listed
//     (case-sensitive) names, a generation-1 voltage/current/temp is not an
//     integer or state is not 0..3, or an alarm code/severity cannot be a tag.
//   - Empty elements are not reported and nothing of them is checked (an
//     empty Temperature needs no sensor); white space around numbers and mode
//     is trimmed; alarm text is kept exactly (CR/CRLF normalised to LF as XML
//     requires); text directly inside containers is ignored.
//   - Numbers: optional sign, digits, fraction, exponent; no hex, no
//     underscores; NaN, infinities and overflow are rejected by name.
//     SoC/SoH ranges are checked on the value as sent. -0 becomes 0.
//   - Times: RFC 3339 with T/Z in either case, any offset (-00:00 is UTC),
//     any number of fractional digits, truncated to the millisecond; second
//     60 is refused. Bounds [2015-01-01T00:00:00Z, now+10min] are inclusive
//     and compared at millisecond precision.
//   - Line protocol: alarm_count is always written (dashboards can sum it);
//     CR and LF in string fields are written as \r and \n so each point is
//     one line (InfluxDB 1.8 stores those as the two characters; the JSON
//     record keeps the real line break).
//   - DecodeJSON: unknown or repeated keys and null are refused; time may be
//     any RFC 3339 form; values are rounded to 6 significant digits again
//     (a no-op for records this package wrote).
package telemetry

import "time"

// MaxMessageBytes is the largest message accepted, checked before parsing.
const MaxMessageBytes = 1 << 20

// Presence is a bit set of the optional float fields a record carries.
type Presence uint8

// Presence bits, one per optional float field.
const (
	HasSoC Presence = 1 << iota
	HasSoH
	HasVoltage
	HasCurrent
	HasPower
)

// Record is one normalised reading. A reading is identified by (Unit, TimeMs).
// Values are already converted (V, A, kW, °C) and rounded to 6 significant digits.
type Record struct {
	Unit     string
	Site     string // "" when not reported
	Model    string // "" when not reported
	Firmware string // "" when not reported (always for generation 1)
	Schema   string // "1.0", "2.0" or "2.1"
	Seq      int64  // valid when HasSeq
	HasSeq   bool
	TimeMs   int64 // Unix milliseconds, UTC

	Has     Presence // which of the floats below were reported
	SoC     float64  // percent, 0..100
	SoH     float64  // percent, 0..100
	Voltage float64  // volts
	Current float64  // amperes, negative = discharging
	Power   float64  // kilowatts

	Temps  []Temp  // distinct sensors, sorted by Sensor
	Mode   string  // idle, charging, discharging, fault, maintenance; "" when not reported
	Alarms []Alarm // in message order
}

// Temp is one temperature sensor's reading in degrees Celsius.
type Temp struct {
	Sensor string
	C      float64
}

// Alarm is one alarm raised with a reading.
type Alarm struct {
	Code     string
	Severity string
	Text     string
}

// Key identifies a reading wherever it is stored.
type Key struct {
	Unit   string
	TimeMs int64
}

// Key returns the reading's identity.
func (r *Record) Key() Key { return Key{Unit: r.Unit, TimeMs: r.TimeMs} }

// Time returns the reading's time in UTC.
func (r *Record) Time() time.Time { return time.UnixMilli(r.TimeMs).UTC() }
