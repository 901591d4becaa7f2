package verify

import (
	"math"

	"github.com/flexipack/cutover/shared/telemetry"
)

// RecordHash returns a 64-bit hash of everything a reading carries, computed
// from a canonical encoding of its normalised fields: the same reading read
// back from either store hashes the same, a changed value hashes otherwise.
//
// Temperatures are hashed in sensor order and alarms as a multiset (the sum
// of their hashes), because InfluxDB gives alarms back ordered by series, not
// in message order. -0 and +0 hash alike.
func RecordHash(r *telemetry.Record) uint64 {
	h := fnvOffset
	h = fnvString(h, r.Unit)
	h = fnvString(h, r.Site)
	h = fnvString(h, r.Model)
	h = fnvString(h, r.Firmware)
	h = fnvString(h, r.Schema)
	if r.HasSeq {
		h = fnvUint64(h, 1)
		h = fnvUint64(h, uint64(r.Seq))
	} else {
		h = fnvUint64(h, 0)
	}
	h = fnvUint64(h, uint64(r.TimeMs))
	h = fnvUint64(h, uint64(r.Has))
	for _, f := range [...]struct {
		bit telemetry.Presence
		v   float64
	}{{telemetry.HasSoC, r.SoC}, {telemetry.HasSoH, r.SoH}, {telemetry.HasVoltage, r.Voltage}, {telemetry.HasCurrent, r.Current}, {telemetry.HasPower, r.Power}} {
		if r.Has&f.bit != 0 {
			h = fnvUint64(h, floatBits(f.v))
		}
	}
	// Temps are documented as sorted by sensor; hash them as a multiset as
	// well, so a reader that returns them in another order still agrees.
	var temps uint64
	for _, t := range r.Temps {
		th := fnvBytes(fnvOffset, t.Sensor)
		th = fnvBytes(th, "\x00")
		temps += mix(fnvUint64(th, floatBits(t.C)))
	}
	h = fnvUint64(h, uint64(len(r.Temps)))
	h = fnvUint64(h, temps)
	h = fnvString(h, r.Mode)
	var alarms uint64
	for _, a := range r.Alarms {
		ah := fnvString(fnvOffset, a.Code)
		ah = fnvString(ah, a.Severity)
		ah = fnvString(ah, a.Text)
		alarms += mix(ah)
	}
	h = fnvUint64(h, uint64(len(r.Alarms)))
	h = fnvUint64(h, alarms)
	return mix(h)
}

// FNV-1a, 64 bits (hash/fnv's New64a, without its interface and
// allocations).
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime         = 1099511628211
)

func fnvBytes(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// fnvUint64 hashes v's 8 little-endian bytes.
func fnvUint64(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime
		v >>= 8
	}
	return h
}

// fnvString hashes s's length, then s.
func fnvString(h uint64, s string) uint64 { return fnvBytes(fnvUint64(h, uint64(len(s))), s) }

// floatBits returns v's IEEE 754 bits, with -0 folded into +0.
func floatBits(v float64) uint64 {
	if v == 0 {
		v = 0
	}
	return math.Float64bits(v)
}

// mix is a 64-bit finaliser (splitmix64): it spreads FNV's weak low bits
// before hashes are summed, so sums of different multisets rarely collide.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
