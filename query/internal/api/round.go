package api

import (
	"math"
	"strconv"

	"github.com/flexipack/cutover/shared/telemetry"
)

// round6 rounds to 6 significant digits, as the codec rounds raw values,
// so that aggregates summed in another order by another store print alike.
// It first snaps v to 12 significant digits: a mean of readings with 6
// digits often lies exactly halfway between two 6-digit values (55.23455),
// and the two stores' sums land a hair either side of it; both snap to the
// same double, which then rounds the same way.
//
// Every value a response carries goes through it (a 30-day fleet answer
// has some 30,000), so the usual case is done in arithmetic; values near a
// halfway point, or out of the range that arithmetic is exact in, take
// the definition itself (round6Text). TestRound6MatchesText checks the two
// agree.
func round6(v float64) float64 {
	n, k, ok := round6Digits(v)
	if !ok {
		return round6Text(v)
	}
	// n / 10^k (or n × 10^-k), n and the power exact: one correctly
	// rounded operation, the double nearest the 6-digit decimal, as
	// parsing its text gives.
	var r float64
	if k >= 0 {
		r = n / exact10[k]
	} else {
		r = n * exact10[-k]
	}
	if v < 0 {
		r = -r
	}
	return r
}

// appendRound6 appends the JSON number of round6(v): what
// telemetry.AppendJSONNumber writes for it, straight from its digits.
func appendRound6(b []byte, v float64) []byte {
	n, k, ok := round6Digits(v)
	if !ok {
		return telemetry.AppendJSONNumber(b, round6Text(v))
	}
	if n == 0 {
		return append(b, '0')
	}
	// The double nearest a decimal of 6 digits prints as that decimal, its
	// trailing zeros dropped: no shorter decimal lies within its rounding
	// interval. Its magnitude (1e-4 to 1e15) prints without an exponent.
	if v < 0 {
		b = append(b, '-')
	}
	var buf [8]byte
	d := strconv.AppendInt(buf[:0], int64(n), 10)
	for k > 0 && d[len(d)-1] == '0' {
		d, k = d[:len(d)-1], k-1
	}
	switch {
	case k <= 0:
		b = append(b, d...)
		for range -k {
			b = append(b, '0')
		}
	case len(d) > k:
		b = append(b, d[:len(d)-k]...)
		b = append(b, '.')
		b = append(b, d[len(d)-k:]...)
	default:
		b = append(b, "0."...)
		for range k - len(d) {
			b = append(b, '0')
		}
		b = append(b, d...)
	}
	return b
}

// round6Text is round6 by its definition, through decimal text.
func round6Text(v float64) float64 {
	snapped, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	r, _ := strconv.ParseFloat(strconv.FormatFloat(snapped, 'g', 6, 64), 64)
	if r == 0 {
		return 0 // no -0
	}
	return r
}

// exact10 holds the powers of ten a float64 represents exactly.
var exact10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11}

// round6Digits returns round6(|v|) as n × 10^-k, n an integer of 6
// digits (or 10^6, or 0 for a zero v). It scales |v| to x in [1e5, 1e6)
// by a power of ten, so that the 6 significant digits are x's integer
// part, and rounds x. Snapping to 12 digits first moves x by at most
// 5e-7, which matters only within that of a halfway point. Values it
// cannot scale exactly enough, or too near the edge of that snap, are
// reported not done.
func round6Digits(v float64) (n float64, k int, ok bool) {
	if v == 0 {
		return 0, 0, true
	}
	a := math.Abs(v)
	if !(a >= 1e-4 && a < 1e15) {
		return 0, 0, false
	}
	// a = m × 2^e2, m in [0.5, 1): log10(a) lies within 0.31 above
	// (e2-1)·log10(2), so k is right or one too high; the switch mends it.
	_, e2 := math.Frexp(a)
	k = 5 - int(math.Floor(float64(e2-1)*math.Ln2*math.Log10E))
	x := scale10(a, k)
	switch {
	case x < 1e5:
		k++
		x = scale10(a, k)
	case x >= 1e6:
		k--
		x = scale10(a, k)
	}
	if x < 1e5 || x >= 1e6 {
		return 0, 0, false
	}
	n = math.Floor(x)
	// x is within 1.2e-10 of |v| × 10^k (one rounding, x < 1e6).
	switch d := x - n - 0.5; { // x - n is exact: x < 2^53
	case d > 5e-7+1e-9:
		n++ // above the halfway point, and so is its 12-digit snap
	case d < -5e-7-1e-9:
		// below it, and so is its 12-digit snap
	case k >= 0 && math.Abs(d) < 5e-7-1e-9:
		// The 12-digit snap is the halfway point T = (2n+1) / (2 × 10^k):
		// its double t (one correctly rounded division, as parsing T
		// gives) rounds by the side of T it lies on, exactly, the
		// remainder of that division telling; an exact T rounds half to
		// even, as strconv does.
		p := 2 * exact10[k]
		t := (2*n + 1) / p
		switch r := math.FMA(-t, p, 2*n+1); {
		case r < 0, r == 0 && math.Mod(n, 2) == 1:
			n++
		}
	default:
		return 0, 0, false
	}
	return n, k, true
}

// scale10 returns a × 10^k for |k| < len(exact10), one rounding.
func scale10(a float64, k int) float64 {
	if k >= 0 {
		return a * exact10[k]
	}
	return a / exact10[-k]
}
