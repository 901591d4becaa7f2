package verify

import (
	"encoding/binary"
	"hash/fnv"
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
	h := fnv.New64a()
	var buf [8]byte
	str := func(s string) {
		binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
		_, _ = h.Write(buf[:])
		_, _ = h.Write([]byte(s))
	}
	u64 := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		_, _ = h.Write(buf[:])
	}
	f64 := func(v float64) {
		if v == 0 {
			v = 0 // fold -0 into +0
		}
		u64(math.Float64bits(v))
	}
	str(r.Unit)
	str(r.Site)
	str(r.Model)
	str(r.Firmware)
	str(r.Schema)
	if r.HasSeq {
		u64(1)
		u64(uint64(r.Seq))
	} else {
		u64(0)
	}
	u64(uint64(r.TimeMs))
	u64(uint64(r.Has))
	for _, f := range []struct {
		bit telemetry.Presence
		v   float64
	}{{telemetry.HasSoC, r.SoC}, {telemetry.HasSoH, r.SoH}, {telemetry.HasVoltage, r.Voltage}, {telemetry.HasCurrent, r.Current}, {telemetry.HasPower, r.Power}} {
		if r.Has&f.bit != 0 {
			f64(f.v)
		}
	}
	// Temps are documented as sorted by sensor; hash them as a multiset as
	// well, so a reader that returns them in another order still agrees.
	var temps uint64
	for _, t := range r.Temps {
		th := fnv.New64a()
		_, _ = th.Write([]byte(t.Sensor))
		_, _ = th.Write([]byte{0})
		v := t.C
		if v == 0 {
			v = 0
		}
		binary.LittleEndian.PutUint64(buf[:], math.Float64bits(v))
		_, _ = th.Write(buf[:])
		temps += mix(th.Sum64())
	}
	u64(uint64(len(r.Temps)))
	u64(temps)
	str(r.Mode)
	var alarms uint64
	for _, a := range r.Alarms {
		ah := fnv.New64a()
		for _, s := range []string{a.Code, a.Severity, a.Text} {
			binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
			_, _ = ah.Write(buf[:])
			_, _ = ah.Write([]byte(s))
		}
		alarms += mix(ah.Sum64())
	}
	u64(uint64(len(r.Alarms)))
	u64(alarms)
	return mix(h.Sum64())
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
