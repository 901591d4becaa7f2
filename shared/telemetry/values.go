package telemetry

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"
)

// Time bounds of an accepted reading.
const (
	// MinTimeMs is 2015-01-01T00:00:00Z: readings before it are rejected.
	MinTimeMs int64 = 1420070400000
	// MaxFuture is how far past the decoder's clock a reading may lie.
	MaxFuture = 10 * time.Minute
)

// Mode values, interned so that records never allocate for them.
const (
	ModeIdle        = "idle"
	ModeCharging    = "charging"
	ModeDischarging = "discharging"
	ModeFault       = "fault"
	ModeMaintenance = "maintenance"
)

// Schema values a record may carry.
const (
	Schema10 = "1.0"
	Schema20 = "2.0"
	Schema21 = "2.1"
)

// b2s views b as a string without copying; the string must not outlive b's
// current contents.
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// trimXMLSpace trims the XML white space characters (space, tab, CR, LF).
func trimXMLSpace(b []byte) []byte {
	for len(b) > 0 && isXMLSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isXMLSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func internMode(b []byte) (string, bool) {
	switch string(b) {
	case ModeIdle:
		return ModeIdle, true
	case ModeCharging:
		return ModeCharging, true
	case ModeDischarging:
		return ModeDischarging, true
	case ModeFault:
		return ModeFault, true
	case ModeMaintenance:
		return ModeMaintenance, true
	}
	return "", false
}

func internSchema(b []byte) (string, bool) {
	switch string(b) {
	case Schema10:
		return Schema10, true
	case Schema20:
		return Schema20, true
	case Schema21:
		return Schema21, true
	}
	return "", false
}

const modeList = "idle, charging, discharging, fault, maintenance"

// parseDecimal parses a decimal number: optional sign, digits with an
// optional fraction, optional exponent. It refuses hex, underscores, NaN and
// infinities (with a reason naming them). sig reports how many significant
// digits were written (an upper bound), so that callers can skip rounding.
func parseDecimal(b []byte) (v float64, sig int, reason string) {
	i := 0
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	digits, leading := 0, true
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		digits++
		if b[i] != '0' || !leading {
			leading = false
			sig++
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			digits++
			if b[i] != '0' || !leading {
				leading = false
				sig++
			}
		}
	}
	if digits == 0 {
		return 0, 0, notANumber(b)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		n := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			n++
		}
		if n == 0 {
			return 0, 0, notANumber(b)
		}
	}
	if i != len(b) {
		return 0, 0, notANumber(b)
	}
	f, err := strconv.ParseFloat(b2s(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, 0, quoteShort(b) + " is out of range"
	}
	return f, sig, ""
}

func notANumber(b []byte) string {
	s := string(b)
	switch {
	case eqFold(s, "nan"), eqFold(s, "+nan"), eqFold(s, "-nan"):
		return "NaN is not allowed"
	case eqFold(s, "inf"), eqFold(s, "+inf"), eqFold(s, "-inf"),
		eqFold(s, "infinity"), eqFold(s, "+infinity"), eqFold(s, "-infinity"):
		return quoteShort(b) + ": infinity is not allowed"
	}
	return quoteShort(b) + " is not a number"
}

func eqFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}

// parseInt parses an optionally signed decimal integer.
func parseInt(b []byte) (int64, bool) {
	neg := false
	i := 0
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	if i == len(b) {
		return 0, false
	}
	var n uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-uint64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// parseSeq parses a non-negative integer written with digits only.
func parseSeq(b []byte) (int64, bool) {
	if len(b) == 0 || b[0] == '+' || b[0] == '-' {
		return 0, false
	}
	return parseInt(b)
}

// round6 rounds v to 6 significant digits, exactly as formatting it with
// strconv 'e' precision 5 and parsing the result back would. Negative zero
// becomes zero.
func round6(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v + 0 // turns -0 into +0
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], v, 'e', 5, 64)
	r, _ := strconv.ParseFloat(b2s(b), 64)
	return r
}

// convert applies a unit's conversion to v and rounds the result to 6
// significant digits; sig is the number of significant digits v was
// written with (0 when unknown), so that a value that needs neither
// conversion nor rounding is returned as parsed.
func convert(v float64, sig int, u unitConv) float64 {
	switch u {
	case convNone:
		if sig > 0 && sig <= 6 {
			return v + 0
		}
	case convMilli, convTenth:
		div := 1000.0
		if u == convTenth {
			div = 10
		}
		if v == math.Trunc(v) && math.Abs(v) < 1e6 {
			// An integer of at most 6 digits is exact, so the division is
			// already the double nearest the 6-digit decimal result.
			return v/div + 0
		}
		v /= div
	case convF:
		v = (v - 32) / 9 * 5
	case convK:
		v -= 273.15
	}
	return round6(v)
}

type unitConv uint8

const (
	convNone  unitConv = iota
	convMilli          // mV, mA, W (to kW)
	convTenth          // gen-1 tenths of a degree
	convF              // Fahrenheit to Celsius
	convK              // kelvin to Celsius
)

// checkPercent reports why a percentage is outside 0..100.
func checkPercent(v float64) string {
	if v < 0 || v > 100 {
		return strconv.FormatFloat(v, 'g', -1, 64) + " outside 0..100"
	}
	return ""
}

// validSensor reports whether s matches [a-z0-9_]{1,32}.
func validSensor(s []byte) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkTagValue reports why s cannot be an InfluxDB line-protocol tag value:
// control characters (tab, CR, LF, DEL, ...) have no escape there, and a
// trailing backslash would escape the separator that follows it.
func checkTagValue(s []byte) string {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("%s contains control character %U, which a line-protocol tag cannot carry", quoteShort(s), rune(c))
		}
	}
	if len(s) > 0 && s[len(s)-1] == '\\' {
		return quoteShort(s) + " ends with a backslash, which a line-protocol tag cannot carry"
	}
	return ""
}

// checkTime reports why a reading time is outside [MinTimeMs, now+MaxFuture],
// compared at millisecond precision.
func checkTime(ms int64, now time.Time) string {
	if ms < MinTimeMs {
		return fmtMs(ms) + " is before 2015-01-01T00:00:00Z"
	}
	limit := now.Add(MaxFuture).UnixMilli()
	if ms > limit {
		return fmtMs(ms) + " is more than 10 minutes after now (" + now.UTC().Format(time.RFC3339Nano) + ")"
	}
	return ""
}

func fmtMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// parseRFC3339 parses an RFC 3339 date-time (T and Z in either case, any
// offset, any number of fractional digits) to Unix milliseconds, truncating
// finer precision. Second 60 (a leap second) is refused as time.Parse does.
func parseRFC3339(b []byte) (int64, string) {
	bad := func(why string) (int64, string) {
		return 0, quoteShort(b) + " is not an RFC 3339 time: " + why
	}
	if len(b) < 20 {
		return bad("too short")
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || b[4] != '-' || b[7] != '-' ||
		(b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return bad("want YYYY-MM-DDTHH:MM:SS")
	}
	if month < 1 || month > 12 {
		return bad("month out of range")
	}
	if day < 1 || day > daysIn(month, year) {
		return bad("day out of range")
	}
	if hour > 23 || minute > 59 || sec > 59 {
		return bad("time of day out of range")
	}
	i := 19
	frac := 0
	if b[i] == '.' {
		i++
		n := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if n < 3 {
				frac = frac*10 + int(b[i]-'0')
			}
			n++
		}
		if n == 0 {
			return bad("no digits after '.'")
		}
		for ; n < 3; n++ {
			frac *= 10
		}
	}
	if i >= len(b) {
		return bad("no time zone offset")
	}
	offset := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return bad("offset must be ±HH:MM")
		}
		oh, okh := digits(b[i+1 : i+3])
		om, okm := digits(b[i+4 : i+6])
		if !okh || !okm || oh > 23 || om > 59 {
			return bad("offset out of range")
		}
		offset = oh*3600 + om*60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return bad("no time zone offset")
	}
	if i != len(b) {
		return bad("unexpected text after the offset")
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - int64(offset)
	return secs*1000 + int64(frac), ""
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
