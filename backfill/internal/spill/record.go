package spill

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/flexipack/cutover/shared/telemetry"
)

// The spill keeps records in a compact binary form: decoding it on replay
// costs a fraction of re-parsing JSON, and the record that comes back is
// exactly the one the codec decoded from the snapshot.

// errShort reports a payload that ends early: a bug or a damaged spill file.
var errShort = errors.New("spill: record payload ends early")

// AppendRecord appends the binary form of r to dst.
func AppendRecord(dst []byte, r *telemetry.Record) []byte {
	for _, s := range [...]string{r.Unit, r.Site, r.Model, r.Firmware, r.Schema, r.Mode} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendVarint(dst, r.TimeMs)
	if r.HasSeq {
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, r.Seq)
	} else {
		dst = append(dst, 0)
	}
	dst = append(dst, byte(r.Has))
	for i, f := range [...]float64{r.SoC, r.SoH, r.Voltage, r.Current, r.Power} {
		if r.Has&(1<<i) != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Temps)))
	for _, t := range r.Temps {
		dst = appendString(dst, t.Sensor)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(t.C))
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Alarms)))
	for _, a := range r.Alarms {
		dst = appendString(dst, a.Code)
		dst = appendString(dst, a.Severity)
		dst = appendString(dst, a.Text)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// recordDecoder reads one payload.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) byte1() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errShort
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *recordDecoder) float() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.err = errShort
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *recordDecoder) str() string {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.err = errShort
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// DecodeRecord decodes a payload written by AppendRecord.
func DecodeRecord(b []byte) (telemetry.Record, error) {
	d := &recordDecoder{b: b}
	var r telemetry.Record
	r.Unit, r.Site, r.Model, r.Firmware, r.Schema, r.Mode = d.str(), d.str(), d.str(), d.str(), d.str(), d.str()
	r.TimeMs = d.varint()
	if d.byte1() == 1 {
		r.HasSeq, r.Seq = true, d.varint()
	}
	r.Has = telemetry.Presence(d.byte1())
	fs := [...]*float64{&r.SoC, &r.SoH, &r.Voltage, &r.Current, &r.Power}
	for i, f := range fs {
		if r.Has&(1<<i) != 0 {
			*f = d.float()
		}
	}
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return r, errShort
		}
		r.Temps = make([]telemetry.Temp, n)
		for i := range r.Temps {
			r.Temps[i] = telemetry.Temp{Sensor: d.str(), C: d.float()}
		}
	}
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return r, errShort
		}
		r.Alarms = make([]telemetry.Alarm, n)
		for i := range r.Alarms {
			r.Alarms[i] = telemetry.Alarm{Code: d.str(), Severity: d.str(), Text: d.str()}
		}
	}
	if d.err != nil {
		return r, d.err
	}
	if len(d.b) != 0 {
		return r, fmt.Errorf("spill: record payload has %d bytes left over", len(d.b))
	}
	return r, nil
}
