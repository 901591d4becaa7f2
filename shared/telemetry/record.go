// Package telemetry is the codec for the battery telemetry contract
// (TELEMETRY_XML.md): it turns a message body into normalised records and
// records into JSON and InfluxDB line protocol.
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
