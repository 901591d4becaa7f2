package influx

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// mediaMsgpack is the answer format InfluxDB 1.x serves besides JSON and
// CSV: the same objects (results, series, columns, values, error) in
// MessagePack. It costs 1.x about half the CPU of JSON per value returned,
// and the client less to decode; 2.x and 3.x are asked for JSON.
const mediaMsgpack = "application/x-msgpack"

var errMsgpack = errors.New("invalid MessagePack in InfluxDB's answer")

// msgpackDecoder decodes the MessagePack objects of a (chunked) 1.x /query
// answer one at a time into queryResponse. Values become int64 (uint64
// past its range), float64, string, bool or nil: typed, unlike JSON's
// numbers (Int64 and Float64 accept both). Lengths in headers are checked
// against maxBytes before anything is allocated for them.
type msgpackDecoder struct {
	r        *bufio.Reader
	maxBytes int64
	buf      []byte
	rowSlab
}

func newMsgpackDecoder(r io.Reader, maxBytes int64) *msgpackDecoder {
	return &msgpackDecoder{r: bufio.NewReaderSize(r, 64<<10), maxBytes: maxBytes}
}

// next decodes the next object into out; io.EOF when the answer ended.
func (d *msgpackDecoder) next(out *queryResponse) error {
	if _, err := d.r.Peek(1); err != nil {
		return err // io.EOF between objects: the end
	}
	*out = queryResponse{}
	return d.mapOf("answer", func(key string) error {
		switch key {
		case "results":
			n, err := d.arrayHeader("results")
			if err != nil {
				return err
			}
			out.Results = make([]result, 0, min(n, 64))
			for range n {
				out.Results = append(out.Results, result{})
				if err := d.result(&out.Results[len(out.Results)-1]); err != nil {
					return err
				}
			}
			return nil
		case "error":
			return d.stringInto(&out.Error)
		default:
			return d.skip(0)
		}
	})
}

func (d *msgpackDecoder) result(res *result) error {
	return d.mapOf("result", func(key string) error {
		switch key {
		case "statement_id":
			v, err := d.value()
			if err != nil {
				return err
			}
			id, err := Int64(v)
			if err != nil {
				return fmt.Errorf("%w: statement_id: %w", errMsgpack, err)
			}
			res.StatementID = int(id)
			return nil
		case "series":
			n, err := d.arrayHeader("series")
			if err != nil {
				return err
			}
			res.Series = make([]Series, 0, min(n, 64))
			for range n {
				res.Series = append(res.Series, Series{})
				if err := d.series(&res.Series[len(res.Series)-1]); err != nil {
					return err
				}
			}
			return nil
		case "error":
			return d.stringInto(&res.Error)
		default:
			return d.skip(0)
		}
	})
}

func (d *msgpackDecoder) series(s *Series) error {
	return d.mapOf("series", func(key string) error {
		switch key {
		case "name":
			return d.stringInto(&s.Name)
		case "tags":
			s.Tags = map[string]string{}
			return d.mapOf("tags", func(k string) error {
				var v string
				err := d.stringInto(&v)
				s.Tags[k] = v
				return err
			})
		case "columns":
			n, err := d.arrayHeader("columns")
			if err != nil {
				return err
			}
			s.Columns = make([]string, n)
			for i := range s.Columns {
				if err := d.stringInto(&s.Columns[i]); err != nil {
					return err
				}
			}
			return nil
		case "values":
			n, err := d.arrayHeader("values")
			if err != nil {
				return err
			}
			s.Values = make([][]any, 0, min(n, 16<<10))
			for range n {
				m, err := d.arrayHeader("row")
				if err != nil {
					return err
				}
				row := d.row(m)
				for range m {
					v, err := d.value()
					if err != nil {
						return err
					}
					row = append(row, v)
				}
				s.Values = append(s.Values, row)
			}
			return nil
		case "partial":
			v, err := d.value()
			b, ok := v.(bool)
			if err == nil && !ok {
				err = fmt.Errorf("%w: partial is %T", errMsgpack, v)
			}
			s.Partial = b
			return err
		default:
			return d.skip(0)
		}
	})
}

// mapOf reads a map whose keys are strings and calls field for each key,
// with the reader at its value.
func (d *msgpackDecoder) mapOf(what string, field func(key string) error) error {
	c, err := d.r.ReadByte()
	if err != nil {
		return unexpectedEOF(err)
	}
	var n int
	switch {
	case c&0xf0 == 0x80:
		n = int(c & 0x0f)
	case c == 0xde:
		n, err = d.length(2)
	case c == 0xdf:
		n, err = d.length(4)
	default:
		return fmt.Errorf("%w: 0x%02x where the map of %s starts", errMsgpack, c, what)
	}
	if err != nil {
		return err
	}
	for range n {
		var key string
		if err := d.stringInto(&key); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
	}
	return nil
}

func (d *msgpackDecoder) arrayHeader(what string) (int, error) {
	c, err := d.r.ReadByte()
	if err != nil {
		return 0, unexpectedEOF(err)
	}
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), nil
	case c == 0xdc:
		return d.length(2)
	case c == 0xdd:
		return d.length(4)
	case c == 0xc0: // nil: an empty list
		return 0, nil
	}
	return 0, fmt.Errorf("%w: 0x%02x where the array of %s starts", errMsgpack, c, what)
}

// length reads a size-byte big-endian length; one that could not fit in
// the answer's byte limit (every element takes at least a byte) is refused
// before anything is allocated for it.
func (d *msgpackDecoder) length(size int) (int, error) {
	b, err := d.bytes(size)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	if d.maxBytes > 0 && n > uint64(d.maxBytes) {
		return 0, fmt.Errorf("%w: a length of %d exceeds the %d-byte chunk limit", errMsgpack, n, d.maxBytes)
	}
	return int(n), nil
}

// bytes reads exactly n bytes into the scratch buffer.
func (d *msgpackDecoder) bytes(n int) ([]byte, error) {
	if cap(d.buf) < n {
		d.buf = make([]byte, n)
	}
	d.buf = d.buf[:n]
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		return nil, unexpectedEOF(err)
	}
	return d.buf, nil
}

func (d *msgpackDecoder) stringInto(dst *string) error {
	v, err := d.value()
	if err != nil {
		return err
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%w: %T where a string was expected", errMsgpack, v)
	}
	*dst = s
	return nil
}

// value reads one scalar: maps and arrays inside a row are not part of
// InfluxDB's answers and are refused, as are extension types (time values
// come as integers: every query asks for epoch=ms).
func (d *msgpackDecoder) value() (any, error) {
	c, err := d.r.ReadByte()
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xe0 == 0xa0:
		return d.str(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xca, 0xcb:
		size := 4
		if c == 0xcb {
			size = 8
		}
		b, err := d.bytes(size)
		if err != nil {
			return nil, err
		}
		if size == 4 {
			return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		b, err := d.bytes(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		var u uint64
		for _, x := range b {
			u = u<<8 | uint64(x)
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0:
		b, err := d.bytes(1)
		if err != nil {
			return nil, err
		}
		return int64(int8(b[0])), nil
	case 0xd1:
		b, err := d.bytes(2)
		if err != nil {
			return nil, err
		}
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 0xd2:
		b, err := d.bytes(4)
		if err != nil {
			return nil, err
		}
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	case 0xd3:
		b, err := d.bytes(8)
		if err != nil {
			return nil, err
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	case 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6: // str 8/16/32, bin 8/16/32
		size := 1
		switch c {
		case 0xda, 0xc5:
			size = 2
		case 0xdb, 0xc6:
			size = 4
		}
		n, err := d.length(size)
		if err != nil {
			return nil, err
		}
		return d.str(n)
	}
	return nil, fmt.Errorf("%w: 0x%02x where a value starts", errMsgpack, c)
}

// str reads an n-byte string; invalid UTF-8 becomes U+FFFD, as the JSON
// decoder makes it.
func (d *msgpackDecoder) str(n int) (string, error) {
	b, err := d.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return string([]rune(string(b))), nil
	}
	return string(b), nil
}

// skip reads and drops one value of any type (a key this client does not
// use, such as messages), nesting at most 32 deep.
func (d *msgpackDecoder) skip(depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: nested more than 32 deep", errMsgpack)
	}
	c, err := d.r.Peek(1)
	if err != nil {
		return unexpectedEOF(err)
	}
	var n, per int
	switch b := c[0]; {
	case b&0xf0 == 0x80, b == 0xde, b == 0xdf:
		per = 2
		_, _ = d.r.ReadByte()
		switch b {
		case 0xde:
			n, err = d.length(2)
		case 0xdf:
			n, err = d.length(4)
		default:
			n = int(b & 0x0f)
		}
	case b&0xf0 == 0x90, b == 0xdc, b == 0xdd:
		per = 1
		n, err = d.arrayHeader("an unused key")
	default:
		_, err = d.value()
		return err
	}
	if err != nil {
		return err
	}
	for range n * per {
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// msgpackError extracts the message of a MessagePack error answer
// ({"error": …}); "" when raw is not one.
func msgpackError(raw []byte) string {
	d := newMsgpackDecoder(bytes.NewReader(raw), int64(len(raw)))
	var r queryResponse
	if err := d.next(&r); err != nil {
		return ""
	}
	if r.Error != "" {
		return r.Error
	}
	for _, res := range r.Results {
		if res.Error != "" {
			return res.Error
		}
	}
	return ""
}
