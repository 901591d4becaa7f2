package telemetry

import (
	"math"
	"strconv"
)

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendShortDecimal appends v in plain decimal notation when v is 0 or
// 1e-4 <= |v| < 1e6 and equals a decimal of at most 9 fractional digits
// that reads back to exactly v; that is then the same text strconv's
// shortest 'f' and 'g' formats give. It reports false (appending nothing)
// otherwise, and the caller falls back to strconv.
func appendShortDecimal(dst []byte, v float64) ([]byte, bool) {
	if v == 0 {
		return append(dst, '0'), true
	}
	abs := math.Abs(v)
	if !(abs >= 1e-4 && abs < 1e6) {
		return dst, false
	}
	for k := range len(pow10) {
		x := abs * pow10[k]
		if x != math.Trunc(x) {
			continue
		}
		if x >= 1e15 || float64(int64(x))/pow10[k] != abs {
			return dst, false
		}
		m := int64(x)
		if v < 0 {
			dst = append(dst, '-')
		}
		var buf [24]byte
		digits := strconv.AppendInt(buf[:0], m, 10)
		if k == 0 {
			return append(dst, digits...), true
		}
		// Trailing zeros of the fraction are never part of the shortest form.
		for k > 0 && digits[len(digits)-1] == '0' {
			digits = digits[:len(digits)-1]
			k--
		}
		if len(digits) > k {
			dst = append(dst, digits[:len(digits)-k]...)
		} else {
			dst = append(dst, '0')
		}
		if k > 0 {
			dst = append(dst, '.')
			for i := len(digits); i < k; i++ {
				dst = append(dst, '0')
			}
			if len(digits) > k {
				dst = append(dst, digits[len(digits)-k:]...)
			} else {
				dst = append(dst, digits...)
			}
		}
		return dst, true
	}
	return dst, false
}

// appendTimeMs appends a Unix-millisecond time as 2006-01-02T15:04:05.000Z.
func appendTimeMs(dst []byte, ms int64) []byte {
	days := ms / 86400000
	rem := ms % 86400000
	if rem < 0 {
		rem += 86400000
		days--
	}
	y, m, d := civilFromDays(days)
	if y < 0 || y > 9999 {
		return append(dst, fmtMs(ms)...)
	}
	sec := rem / 1000
	var b [24]byte
	put := func(i int, v int64, n int) {
		for j := i + n - 1; j >= i; j-- {
			b[j] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	b[4] = '-'
	put(5, m, 2)
	b[7] = '-'
	put(8, d, 2)
	b[10] = 'T'
	put(11, sec/3600, 2)
	b[13] = ':'
	put(14, sec/60%60, 2)
	b[16] = ':'
	put(17, sec%60, 2)
	b[19] = '.'
	put(20, rem%1000, 3)
	b[23] = 'Z'
	return append(dst, b[:]...)
}

// civilFromDays is the inverse of daysFromCivil (Howard Hinnant's algorithm).
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}
