package telemetry

import (
	"math"
	"strconv"
)

// Measurements written by AppendLineProtocol.
const (
	MeasurementReading = "bsu"
	MeasurementAlarm   = "bsu_alarm"
)

// AppendLineProtocol appends the record as InfluxDB line protocol with
// millisecond timestamps (write with precision=ms): one `bsu` line, then one
// `bsu_alarm` line per alarm, each ending in '\n'.
//
// bsu: tags model, site, unit (sorted; an empty tag is left out, as line
// protocol forbids empty tag values); float fields soc_pct, soh_pct,
// voltage_v, current_a, power_kw and temp_<sensor>_c when reported; string
// fields schema (always), mode and firmware (when not empty); integer fields
// seq (when reported) and alarm_count (always, so dashboards can sum it).
//
// bsu_alarm: tags code, severity, site, unit (empty ones left out), string
// field text (always, possibly empty), at the reading's time.
//
// Tag values escape comma, space and '='; string fields escape '"' and '\',
// and write CR and LF as \r and \n so that every point stays on one line
// (InfluxDB 1.8 stores those two as the literal characters \n; line-protocol
// v2 readers turn them back into line breaks). Records from Decode and
// DecodeJSON never carry tag values line protocol cannot represent (control
// characters, a trailing backslash); for other records such characters are
// dropped so the output still parses.
func AppendLineProtocol(dst []byte, r *Record) []byte {
	dst = append(dst, MeasurementReading...)
	dst = appendTag(dst, "model", r.Model)
	dst = appendTag(dst, "site", r.Site)
	dst = appendTag(dst, "unit", r.Unit)
	dst = append(dst, " schema="...)
	dst = appendStringField(dst, r.Schema)
	if r.Has&HasSoC != 0 {
		dst = appendFloatField(dst, ",soc_pct=", r.SoC)
	}
	if r.Has&HasSoH != 0 {
		dst = appendFloatField(dst, ",soh_pct=", r.SoH)
	}
	if r.Has&HasVoltage != 0 {
		dst = appendFloatField(dst, ",voltage_v=", r.Voltage)
	}
	if r.Has&HasCurrent != 0 {
		dst = appendFloatField(dst, ",current_a=", r.Current)
	}
	if r.Has&HasPower != 0 {
		dst = appendFloatField(dst, ",power_kw=", r.Power)
	}
	for i := range r.Temps {
		t := &r.Temps[i]
		if !finite(t.C) {
			continue
		}
		dst = append(dst, ",temp_"...)
		dst = appendFieldKeyPart(dst, t.Sensor)
		dst = appendFloatField(dst, "_c=", t.C)
	}
	if r.Mode != "" {
		dst = append(dst, ",mode="...)
		dst = appendStringField(dst, r.Mode)
	}
	if r.Firmware != "" {
		dst = append(dst, ",firmware="...)
		dst = appendStringField(dst, r.Firmware)
	}
	if r.HasSeq {
		dst = append(dst, ",seq="...)
		dst = strconv.AppendInt(dst, r.Seq, 10)
		dst = append(dst, 'i')
	}
	dst = append(dst, ",alarm_count="...)
	dst = strconv.AppendInt(dst, int64(len(r.Alarms)), 10)
	dst = append(dst, "i "...)
	dst = strconv.AppendInt(dst, r.TimeMs, 10)
	dst = append(dst, '\n')
	for i := range r.Alarms {
		a := &r.Alarms[i]
		dst = append(dst, MeasurementAlarm...)
		dst = appendTag(dst, "code", a.Code)
		dst = appendTag(dst, "severity", a.Severity)
		dst = appendTag(dst, "site", r.Site)
		dst = appendTag(dst, "unit", r.Unit)
		dst = append(dst, " text="...)
		dst = appendStringField(dst, a.Text)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, r.TimeMs, 10)
		dst = append(dst, '\n')
	}
	return dst
}

func appendTag(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	mark := len(dst)
	dst = append(dst, ',')
	dst = append(dst, key...)
	dst = append(dst, '=')
	vstart := len(dst)
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == ',' || c == ' ' || c == '=':
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', c)
			start = i + 1
		case c < 0x20 || c == 0x7f: // no escape exists: dropped (Validate refuses them)
			dst = append(dst, v[start:i]...)
			start = i + 1
		}
	}
	dst = append(dst, v[start:]...)
	// A trailing backslash would escape the separator after it (our escapes
	// end in the escaped character, so a trailing backslash is always raw).
	for len(dst) > vstart && dst[len(dst)-1] == '\\' {
		dst = dst[:len(dst)-1]
	}
	if len(dst) == vstart {
		return dst[:mark]
	}
	return dst
}

// appendFieldKeyPart writes a sensor name into a field key; valid sensor
// names ([a-z0-9_]) need no escaping, others are escaped or dropped.
func appendFieldKeyPart(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ',' || c == ' ' || c == '=':
			dst = append(dst, '\\', c)
		case c == '\\' || c < 0x20 || c == 0x7f:
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func appendStringField(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		var esc byte
		switch s[i] {
		case '"':
			esc = '"'
		case '\\':
			esc = '\\'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, '\\', esc)
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendFloatField writes a float field; a NaN or infinity (never produced by
// Decode or DecodeJSON) is left out, as line protocol cannot carry it.
func appendFloatField(dst []byte, key string, v float64) []byte {
	if !finite(v) {
		return dst
	}
	dst = append(dst, key...)
	if out, ok := appendShortDecimal(dst, v); ok {
		return out
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
