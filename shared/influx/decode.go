package influx

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// chunkDecoder decodes the JSON objects of a (chunked) /query answer one at
// a time, straight into queryResponse: values become json.Number, string,
// bool or nil, as encoding/json with UseNumber would give them, at a third
// of encoding/json's cost (verification reads every reading through it).
type chunkDecoder struct {
	r   *bufio.Reader
	buf []byte // scratch for strings with escapes

	// Numbers and rows are carved out of slabs instead of allocated one by
	// one (verify decodes some 15 numbers per reading). A slab is never
	// written again once a number or row points into it, and is dropped
	// when full: what callers keep stays valid, and keeps its slab alive.
	numbers []byte
	rowSlab
}

const (
	numberSlab = 32 << 10
	cellSlab   = 4 << 10
)

// number returns b as a string carved out of the number slab.
func (d *chunkDecoder) numberString(b []byte) string {
	if len(b) == 0 || len(b) > numberSlab/64 {
		return string(b)
	}
	if cap(d.numbers)-len(d.numbers) < len(b) {
		d.numbers = make([]byte, 0, numberSlab)
	}
	start := len(d.numbers)
	d.numbers = append(d.numbers, b...)
	return unsafe.String(&d.numbers[start], len(b))
}

// rowSlab hands out rows carved out of a shared slab of cells.
type rowSlab struct{ cells []any }

// row returns an empty row with room for n cells, carved out of the slab
// (full capacity n, so an append past it copies instead of writing into
// the next row).
func (s *rowSlab) row(n int) []any {
	if n <= 0 || n > cellSlab/16 {
		return make([]any, 0, min(n, 1024))
	}
	if cap(s.cells)-len(s.cells) < n {
		s.cells = make([]any, 0, cellSlab)
	}
	start := len(s.cells)
	s.cells = s.cells[:start+n]
	return s.cells[start : start : start+n]
}

func newChunkDecoder(r io.Reader) *chunkDecoder {
	return &chunkDecoder{r: bufio.NewReaderSize(r, 64<<10)}
}

var errSyntax = errors.New("invalid JSON in InfluxDB's answer")

// next decodes the next object into out; io.EOF when the answer ended.
func (d *chunkDecoder) next(out *queryResponse) error {
	c, err := d.skipSpace()
	if err != nil {
		return err // io.EOF between objects: the end
	}
	if c != '{' {
		return fmt.Errorf("%w: %q where an object starts", errSyntax, c)
	}
	*out = queryResponse{}
	return d.object(func(key string) error {
		switch key {
		case "results":
			if !d.null() {
				out.Results = []result{}
			}
			return d.array(func() error {
				out.Results = append(out.Results, result{})
				return d.result(&out.Results[len(out.Results)-1])
			})
		case "error":
			return d.stringInto(&out.Error)
		default:
			return d.skip()
		}
	})
}

func (d *chunkDecoder) result(res *result) error {
	return d.expectObject(func(key string) error {
		switch key {
		case "statement_id":
			v, err := d.value()
			if err != nil {
				return err
			}
			n, err := Int64(v)
			res.StatementID = int(n)
			return err
		case "series":
			if !d.null() {
				res.Series = []Series{}
			}
			return d.array(func() error {
				res.Series = append(res.Series, Series{})
				return d.series(&res.Series[len(res.Series)-1])
			})
		case "error":
			return d.stringInto(&res.Error)
		default:
			return d.skip()
		}
	})
}

func (d *chunkDecoder) series(s *Series) error {
	return d.expectObject(func(key string) error {
		switch key {
		case "name":
			return d.stringInto(&s.Name)
		case "tags":
			if d.null() {
				s.Tags = nil
				return d.literal("null")
			}
			s.Tags = map[string]string{}
			return d.expectObject(func(k string) error {
				var v string
				err := d.stringInto(&v)
				s.Tags[k] = v
				return err
			})
		case "columns":
			if !d.null() {
				s.Columns = []string{}
			}
			return d.array(func() error {
				var c string
				err := d.stringInto(&c)
				s.Columns = append(s.Columns, c)
				return err
			})
		case "values":
			if !d.null() {
				s.Values = [][]any{}
			}
			return d.array(func() error {
				if d.null() {
					s.Values = append(s.Values, nil)
					return d.literal("null")
				}
				row := d.row(len(s.Columns))
				err := d.array(func() error {
					v, err := d.value()
					row = append(row, v)
					return err
				})
				s.Values = append(s.Values, row)
				return err
			})
		case "partial":
			v, err := d.value()
			b, ok := v.(bool)
			if err == nil && !ok {
				err = fmt.Errorf("%w: partial is %T", errSyntax, v)
			}
			s.Partial = b
			return err
		default:
			return d.skip()
		}
	})
}

// null reports whether the next value is null (after skipping space),
// without reading it.
func (d *chunkDecoder) null() bool {
	for {
		b, err := d.r.Peek(1)
		if err != nil {
			return false
		}
		switch b[0] {
		case ' ', '\t', '\n', '\r':
			_, _ = d.r.ReadByte()
		default:
			return b[0] == 'n'
		}
	}
}

func (d *chunkDecoder) skipSpace() (byte, error) {
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return c, nil
		}
	}
}

// unexpectedEOF turns an end inside an object into an error.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// expectObject reads an object (after skipping space) calling field for
// each key with the reader at its value.
func (d *chunkDecoder) expectObject(field func(key string) error) error {
	c, err := d.skipSpace()
	if err != nil {
		return unexpectedEOF(err)
	}
	if c != '{' {
		return fmt.Errorf("%w: %q where an object starts", errSyntax, c)
	}
	return d.object(field)
}

// object reads an object's members, its '{' already read.
func (d *chunkDecoder) object(field func(key string) error) error {
	for first := true; ; first = false {
		c, err := d.skipSpace()
		if err != nil {
			return unexpectedEOF(err)
		}
		if c == '}' && first {
			return nil
		}
		if !first {
			if c == '}' {
				return nil
			}
			if c != ',' {
				return fmt.Errorf("%w: %q between members", errSyntax, c)
			}
			if c, err = d.skipSpace(); err != nil {
				return unexpectedEOF(err)
			}
		}
		if c != '"' {
			return fmt.Errorf("%w: %q where a key starts", errSyntax, c)
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		if c, err = d.skipSpace(); err != nil || c != ':' {
			return fmt.Errorf("%w: no ':' after key %q", errSyntax, key)
		}
		if err := field(key); err != nil {
			return err
		}
	}
}

// array reads an array (after skipping space), calling elem with the reader
// at each element; null counts as an empty array.
func (d *chunkDecoder) array(elem func() error) error {
	c, err := d.skipSpace()
	if err != nil {
		return unexpectedEOF(err)
	}
	if c == 'n' {
		return d.literal("ull")
	}
	if c != '[' {
		return fmt.Errorf("%w: %q where an array starts", errSyntax, c)
	}
	c, err = d.skipSpace()
	if err != nil {
		return unexpectedEOF(err)
	}
	if c == ']' {
		return nil
	}
	_ = d.r.UnreadByte()
	for {
		if err := elem(); err != nil {
			return err
		}
		c, err := d.skipSpace()
		if err != nil {
			return unexpectedEOF(err)
		}
		switch c {
		case ']':
			return nil
		case ',':
		default:
			return fmt.Errorf("%w: %q between elements", errSyntax, c)
		}
	}
}

func (d *chunkDecoder) literal(rest string) error {
	for i := 0; i < len(rest); i++ {
		c, err := d.r.ReadByte()
		if err != nil {
			return unexpectedEOF(err)
		}
		if c != rest[i] {
			return fmt.Errorf("%w: bad literal", errSyntax)
		}
	}
	return nil
}

func (d *chunkDecoder) stringInto(dst *string) error {
	v, err := d.value()
	if err != nil {
		return err
	}
	s, err := String(v)
	*dst = s
	return err
}

// value reads any JSON value: objects and arrays nested inside a row are
// not part of InfluxDB's answers and are refused.
func (d *chunkDecoder) value() (any, error) {
	c, err := d.skipSpace()
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	switch {
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		return d.number(c)
	case c == 't':
		return true, d.literal("rue")
	case c == 'f':
		return false, d.literal("alse")
	case c == 'n':
		return nil, d.literal("ull")
	default:
		return nil, fmt.Errorf("%w: %q where a value starts", errSyntax, c)
	}
}

func (d *chunkDecoder) number(first byte) (json.Number, error) {
	d.buf = append(d.buf[:0], first)
	for {
		c, err := d.r.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		if c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
			d.buf = append(d.buf, c)
			continue
		}
		_ = d.r.UnreadByte()
		break
	}
	if !validNumber(d.buf) {
		return "", fmt.Errorf("%w: number %q", errSyntax, d.buf)
	}
	return json.Number(d.numberString(d.buf)), nil
}

// validNumber checks JSON's number grammar (ParseFloat accepts more).
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}

// str reads a string's rest, its '"' already read.
func (d *chunkDecoder) str() (string, error) {
	d.buf = d.buf[:0]
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return "", unexpectedEOF(err)
		}
		switch {
		case c == '"':
			if !utf8.Valid(d.buf) {
				return string([]rune(string(d.buf))), nil // as encoding/json: invalid bytes become U+FFFD
			}
			return string(d.buf), nil
		case c == '\\':
			if err := d.escape(); err != nil {
				return "", err
			}
		case c < 0x20:
			return "", fmt.Errorf("%w: control character in a string", errSyntax)
		default:
			d.buf = append(d.buf, c)
		}
	}
}

func (d *chunkDecoder) escape() error {
	c, err := d.r.ReadByte()
	if err != nil {
		return unexpectedEOF(err)
	}
	switch c {
	case '"', '\\', '/':
		d.buf = append(d.buf, c)
	case 'b':
		d.buf = append(d.buf, '\b')
	case 'f':
		d.buf = append(d.buf, '\f')
	case 'n':
		d.buf = append(d.buf, '\n')
	case 'r':
		d.buf = append(d.buf, '\r')
	case 't':
		d.buf = append(d.buf, '\t')
	case 'u':
		r, err := d.hex4()
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(r) {
			r = d.lowSurrogate(r)
		}
		d.buf = utf8.AppendRune(d.buf, r)
	default:
		return fmt.Errorf("%w: bad escape \\%c", errSyntax, c)
	}
	return nil
}

// lowSurrogate completes a surrogate pair (\uD83D\uDE00), or gives U+FFFD
// for a lone half, as encoding/json does.
func (d *chunkDecoder) lowSurrogate(hi rune) rune {
	if b, err := d.r.Peek(6); err == nil && b[0] == '\\' && b[1] == 'u' {
		if lo, err := strconv.ParseUint(string(b[2:6]), 16, 32); err == nil {
			if r := utf16.DecodeRune(hi, rune(lo)); r != utf8.RuneError {
				_, _ = d.r.Discard(6)
				return r
			}
		}
	}
	return utf8.RuneError
}

func (d *chunkDecoder) hex4() (rune, error) {
	var b [4]byte
	if _, err := io.ReadFull(d.r, b[:]); err != nil {
		return 0, unexpectedEOF(err)
	}
	v, err := strconv.ParseUint(string(b[:]), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: bad \\u escape", errSyntax)
	}
	return rune(v), nil
}

// skip reads and drops any value (messages, unknown keys).
func (d *chunkDecoder) skip() error {
	c, err := d.skipSpace()
	if err != nil {
		return unexpectedEOF(err)
	}
	switch c {
	case '{':
		return d.object(func(string) error { return d.skip() })
	case '[':
		_ = d.r.UnreadByte()
		return d.array(d.skip)
	default:
		_ = d.r.UnreadByte()
		_, err := d.value()
		return err
	}
}
