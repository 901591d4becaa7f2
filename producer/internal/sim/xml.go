package sim

import (
	"strconv"
	"time"
)

// The XML is appended into byte buffers by hand: the simulator has to out-run
// the broker, and text/template or encoding/xml would not.

// appendEscaped appends s escaped for an attribute value or text: the five
// predefined entities, and character references for tab, CR and LF so that
// attribute-value normalisation leaves them intact.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		case '\t':
			dst = append(dst, "&#9;"...)
		case '\n':
			dst = append(dst, "&#10;"...)
		case '\r':
			dst = append(dst, "&#13;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendAttr appends ` name="value"`.
func appendAttr(dst []byte, name, value string) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '"')
	dst = appendEscaped(dst, value)
	return append(dst, '"')
}

// appendAlarmText appends alarm text as CDATA or with entities, as units do.
func appendAlarmText(dst []byte, s string, cdata bool) []byte {
	if cdata && !containsCDATAEnd(s) {
		dst = append(dst, "<![CDATA["...)
		dst = append(dst, s...)
		return append(dst, "]]>"...)
	}
	return appendEscaped(dst, s)
}

func containsCDATAEnd(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == ']' && s[i+1] == ']' && s[i+2] == '>' {
			return true
		}
	}
	return false
}

// el appends a prefixed element name: "bsu:Name" or "Name".
func el(dst []byte, prefix, name string) []byte {
	if prefix != "" {
		dst = append(dst, prefix...)
		dst = append(dst, ':')
	}
	return append(dst, name...)
}

func appendFloat(dst []byte, v float64, prec int) []byte {
	return strconv.AppendFloat(dst, v, 'f', prec, 64)
}

// appendRFC3339 appends t (Unix ms) as RFC 3339 in the zone offset (minutes
// east of UTC), with frac fractional digits (0, 3 or 6; 6 pads the
// millisecond with zeros, so nothing is lost).
func appendRFC3339(dst []byte, ms int64, offsetMin int, frac int) []byte {
	t := time.UnixMilli(ms).In(fixedZone(offsetMin))
	switch frac {
	case 0:
		return t.AppendFormat(dst, "2006-01-02T15:04:05Z07:00")
	case 6:
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	default:
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	}
}

var zones = map[int]*time.Location{}

// fixedZone returns a cached zone for an offset; only the handful of
// offsets in zoneOffsets is ever used, so the map is filled at init.
func fixedZone(offsetMin int) *time.Location {
	if z, ok := zones[offsetMin]; ok {
		return z
	}
	return time.UTC
}

// zoneOffsets are the offsets units report their time in.
var zoneOffsets = []int{0, 60, 120, -300, 330, -420}

func init() {
	for _, o := range zoneOffsets {
		if o == 0 {
			zones[o] = time.UTC
			continue
		}
		zones[o] = time.FixedZone("", o*60)
	}
}
