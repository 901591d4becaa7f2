package telemetry

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// This file is a byte-level XML 1.0 + Namespaces 1.0 tokenizer, written for
// speed (no allocation on the happy path: every name and value is a slice of
// the body or of a scratch buffer reused across messages) and for strictness:
// it checks what well-formedness needs for these documents and refuses DTDs.
// It is deliberately stricter than encoding/xml in places (duplicate
// attributes, undeclared prefixes, "]]>" in text, text or elements after the
// root, missing white space between attributes, nesting over maxDepth) and
// never laxer: the fuzz test compares it with encoding/xml.

const (
	nsXMLURI   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNSURI = "http://www.w3.org/2000/xmlns/"

	maxDepth = 256 // deeper nesting rejects the message
	maxAttrs = 128 // more attributes on one element reject the message
)

type tokKind uint8

const (
	tokNone tokKind = iota // internal: nothing to report, keep scanning
	tokStart
	tokEnd
	tokText
	tokEOF
	tokErr
)

type xmlAttr struct {
	qname  []byte // as written, for duplicate checks
	prefix []byte
	local  []byte
	space  []byte // resolved namespace; nil for unprefixed attributes
	value  []byte // references replaced, white space normalised
	isNS   bool   // a namespace declaration
}

type nsBind struct{ prefix, uri []byte }

type openElem struct {
	qname  []byte
	nsMark int
}

type scanner struct {
	buf      []byte
	pos      int
	stack    []openElem
	ns       []nsBind
	attrs    []xmlAttr
	scratch  []byte // decoded text and attribute values, reset per message
	seenRoot bool
	pending  bool // the last start tag was self-closing: its end comes next

	// The current token.
	space, local []byte // start: resolved namespace and local name
	text         []byte // text: character data with references replaced
	tokOff       int    // start: offset of '<'

	// The error, when next returned tokErr.
	errKind MessageKind
	errOff  int
	errMsg  string
}

var (
	bomBytes = []byte{0xEF, 0xBB, 0xBF}
	xmlBind  = nsBind{prefix: []byte("xml"), uri: []byte(nsXMLURI)}
)

func (s *scanner) reset(buf []byte) {
	s.buf, s.pos = buf, 0
	s.stack = s.stack[:0]
	s.ns = append(s.ns[:0], xmlBind)
	s.attrs = s.attrs[:0]
	s.scratch = s.scratch[:0]
	s.seenRoot, s.pending = false, false
	s.errKind, s.errOff, s.errMsg = "", 0, ""
}

func (s *scanner) fail(off int, msg string) tokKind {
	return s.failKind(KindNotWellFormed, off, msg)
}

func (s *scanner) failKind(kind MessageKind, off int, msg string) tokKind {
	if s.errMsg == "" {
		s.errKind, s.errOff, s.errMsg = kind, off, msg
	}
	return tokErr
}

// messageError builds the MessageError for the scanner's error, with the
// line and column it occurred at.
func (s *scanner) messageError() *MessageError {
	off := min(s.errOff, len(s.buf))
	line := 1 + bytes.Count(s.buf[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(s.buf[:off], '\n')
	prefix := "not well-formed"
	switch s.errKind {
	case KindDTD:
		prefix = "DTD not allowed"
	case KindEncoding:
		prefix = "encoding"
	}
	return &MessageError{Kind: s.errKind, Reason: fmt.Sprintf("%s: line %d, column %d: %s", prefix, line, col, s.errMsg)}
}

// checkChars returns the offset of the first byte that is not part of a
// valid UTF-8 encoded XML Char, or -1.
func checkChars(b []byte) int {
	i := 0
	for i < len(b) {
		// Eight ASCII bytes at a time, none of them a control character.
		if i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			const hi, lo = 0x8080808080808080, 0x2020202020202020
			if w&hi == 0 && (w-lo)&^w&hi == 0 {
				i += 8
				continue
			}
		}
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF {
			return i
		}
		i += n
	}
	return -1
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// nameByte classifies bytes: 1 may start a name, 2 may continue one, 4 is
// not ASCII (checked rune by rune).
var nameByte = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = 3, 3
	}
	t['_'], t[':'] = 3, 3
	for c := '0'; c <= '9'; c++ {
		t[c] = 2
	}
	t['-'], t['.'] = 2, 2
	for c := 0x80; c < 0x100; c++ {
		t[c] = 4
	}
	return t
}()

// scanName returns the end of the XML Name starting at i, or i if none
// starts there. Non-ASCII characters are checked against the tables
// encoding/xml uses.
func scanName(b []byte, i int) int {
	start := i
	if i < len(b) && nameByte[b[i]] == 2 {
		return i // a digit, '-' or '.' cannot start a name
	}
	for i < len(b) {
		// The ASCII run, the common case.
		for i < len(b) && nameByte[b[i]]&3 != 0 {
			i++
		}
		if i >= len(b) || nameByte[b[i]] != 4 {
			break
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		if !unicode.Is(nameFirst, r) && (i == start || !unicode.Is(nameSecond, r)) {
			break
		}
		i += n
	}
	return i
}

// splitQName splits a QName into prefix and local part; ok is false when it
// is not a valid QName (more than one colon, or an empty or non-NCName part).
func splitQName(q []byte) (prefix, local []byte, ok bool) {
	c := bytes.IndexByte(q, ':')
	if c < 0 {
		return nil, q, true
	}
	prefix, local = q[:c], q[c+1:]
	if len(prefix) == 0 || len(local) == 0 || bytes.IndexByte(local, ':') >= 0 || scanName(local, 0) != len(local) {
		return nil, nil, false
	}
	return prefix, local, true
}

// scanQName reads the QName at b[i:] in one pass over ASCII names, falling
// back to scanName and splitQName for names with other characters. It
// returns the end of the name (i when none starts there) and ok false when
// the name is not a valid QName.
func scanQName(b []byte, i int) (end int, prefix, local []byte, ok bool) {
	start, colon := i, -1
	for i < len(b) {
		t := nameByte[b[i]]
		if t&3 == 0 {
			if t == 4 {
				end = scanName(b, start)
				prefix, local, ok = splitQName(b[start:end])
				return end, prefix, local, ok && end > start
			}
			break
		}
		if b[i] == ':' {
			if colon >= 0 {
				return scanName(b, start), nil, nil, false
			}
			colon = i
		}
		i++
	}
	if i == start || nameByte[b[start]]&1 == 0 {
		return start, nil, nil, false // nothing, or a digit, '-' or '.' first
	}
	if colon < 0 {
		return i, nil, b[start:i], true
	}
	if colon == start || colon == i-1 || nameByte[b[colon+1]]&1 == 0 {
		return i, nil, nil, false
	}
	return i, b[start:colon], b[colon+1 : i], true
}

func (s *scanner) skipSpace() bool {
	start := s.pos
	for s.pos < len(s.buf) && isXMLSpace(s.buf[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

// prolog checks the byte order mark and the XML declaration, which may only
// come first.
func (s *scanner) prolog() tokKind {
	if bytes.HasPrefix(s.buf, bomBytes) {
		s.pos = len(bomBytes)
	}
	b := s.buf[s.pos:]
	if len(b) < 6 || string(b[:5]) != "<?xml" || !isXMLSpace(b[5]) {
		return tokNone
	}
	end := bytes.Index(b, []byte("?>"))
	if end < 0 {
		return s.fail(s.pos, "XML declaration not closed by ?>")
	}
	declEnd := s.pos + end
	s.pos += 5
	// version, then optional encoding and standalone, in that order.
	names := [...]string{"version", "encoding", "standalone"}
	next := 0
	for {
		ws := s.skipSpace()
		if s.pos >= declEnd {
			break
		}
		if !ws {
			return s.fail(s.pos, "XML declaration: white space expected")
		}
		if s.pos >= declEnd {
			break
		}
		nameEnd := scanName(s.buf, s.pos)
		name := b2s(s.buf[s.pos:nameEnd])
		found := false
		for next < len(names) {
			if names[next] == name {
				found = true
				next++
				break
			}
			if next == 0 {
				break // version must come first
			}
			next++
		}
		if !found {
			return s.fail(s.pos, fmt.Sprintf("XML declaration: unexpected %q", name))
		}
		s.pos = nameEnd
		s.skipSpace()
		if s.pos >= declEnd || s.buf[s.pos] != '=' {
			return s.fail(s.pos, "XML declaration: '=' expected")
		}
		s.pos++
		s.skipSpace()
		if s.pos >= declEnd || (s.buf[s.pos] != '"' && s.buf[s.pos] != '\'') {
			return s.fail(s.pos, "XML declaration: quoted value expected")
		}
		q := s.buf[s.pos]
		vEnd := bytes.IndexByte(s.buf[s.pos+1:declEnd], q)
		if vEnd < 0 {
			return s.fail(s.pos, "XML declaration: value not closed")
		}
		if k := s.declValue(name, s.buf[s.pos+1:s.pos+1+vEnd]); k == tokErr {
			return k
		}
		s.pos += vEnd + 2
	}
	if next == 0 {
		return s.fail(s.pos, "XML declaration without version")
	}
	s.pos = declEnd + 2
	return tokNone
}

// declValue checks the value of the XML declaration's pseudo-attribute
// name (version, encoding or standalone) at s.pos: tokNone or tokErr.
func (s *scanner) declValue(name string, val []byte) tokKind {
	switch name {
	case "version":
		if string(val) != "1.0" {
			return s.fail(s.pos, fmt.Sprintf("XML version %s: only 1.0 is supported", quoteShort(val)))
		}
	case "encoding":
		if !eqFold(string(val), "utf-8") {
			return s.failKind(KindEncoding, s.pos, fmt.Sprintf("the message declares encoding %s: only UTF-8 is accepted", quoteShort(val)))
		}
	case "standalone":
		if string(val) != "yes" && string(val) != "no" {
			return s.fail(s.pos, "XML declaration: standalone must be yes or no")
		}
	}
	return tokNone
}

// next returns the next token: tokStart (space, local, attrs), tokEnd,
// tokText (text), tokEOF after the root element, or tokErr.
// Comments, processing instructions and the prolog are consumed silently.
func (s *scanner) next() tokKind {
	if s.pending {
		s.pending = false
		s.pop()
		return tokEnd
	}
	for {
		if s.pos >= len(s.buf) {
			if len(s.stack) > 0 {
				return s.fail(len(s.buf), fmt.Sprintf("the message ends inside <%s>", s.stack[len(s.stack)-1].qname))
			}
			if !s.seenRoot {
				return s.fail(len(s.buf), "no root element")
			}
			return tokEOF
		}
		if s.buf[s.pos] != '<' {
			if k := s.readText(); k != tokNone {
				return k
			}
			continue
		}
		if s.pos+1 >= len(s.buf) {
			return s.fail(s.pos, "the message ends after '<'")
		}
		switch s.buf[s.pos+1] {
		case '/':
			return s.readEnd()
		case '?':
			if k := s.readPI(); k != tokNone {
				return k
			}
		case '!':
			rest := s.buf[s.pos:]
			switch {
			case bytes.HasPrefix(rest, []byte("<!--")):
				if k := s.readComment(); k != tokNone {
					return k
				}
			case bytes.HasPrefix(rest, []byte("<![CDATA[")):
				return s.readCDATA()
			case bytes.HasPrefix(rest, []byte("<!DOCTYPE")):
				return s.failKind(KindDTD, s.pos, "<!DOCTYPE> (DTDs and entity declarations are refused)")
			case bytes.HasPrefix(rest, []byte("<!ENTITY")):
				return s.failKind(KindDTD, s.pos, "<!ENTITY> (DTDs and entity declarations are refused)")
			default:
				return s.fail(s.pos, "'<!' is not a comment or CDATA section")
			}
		default:
			return s.readStart()
		}
	}
}

func (s *scanner) pop() {
	top := s.stack[len(s.stack)-1]
	s.ns = s.ns[:top.nsMark]
	s.stack = s.stack[:len(s.stack)-1]
}

func (s *scanner) readText() tokKind {
	start := s.pos
	end := bytes.IndexByte(s.buf[start:], '<')
	if end < 0 {
		end = len(s.buf)
	} else {
		end += start
	}
	s.pos = end
	raw := s.buf[start:end]
	if len(s.stack) == 0 {
		for i, c := range raw {
			if !isXMLSpace(c) {
				if s.seenRoot {
					return s.fail(start+i, "text after the root element")
				}
				return s.fail(start+i, "text before the root element")
			}
		}
		return tokNone
	}
	plain := true
	for i, c := range raw {
		switch c {
		case '&', '\r':
			plain = false
		case ']':
			if i+2 < len(raw) && raw[i+1] == ']' && raw[i+2] == '>' {
				return s.fail(start+i, "']]>' in text")
			}
		}
	}
	if plain {
		s.text = raw
		return tokText
	}
	mark := len(s.scratch)
	for i := 0; i < len(raw); {
		c := raw[i]
		switch c {
		case '&':
			var ok bool
			s.scratch, i, ok = s.appendRef(s.scratch, raw, i, start)
			if !ok {
				return tokErr
			}
			continue
		case '\r':
			s.scratch = append(s.scratch, '\n')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
		default:
			s.scratch = append(s.scratch, c)
		}
		i++
	}
	s.text = s.scratch[mark:]
	return tokText
}

// appendRef decodes the reference at raw[i] ('&') onto dst and returns the
// index after it. base is raw's offset in the message, for errors.
func (s *scanner) appendRef(dst, raw []byte, i, base int) ([]byte, int, bool) {
	semi := bytes.IndexByte(raw[i:], ';')
	if semi < 0 {
		s.fail(base+i, "'&' not part of a reference (write &amp;)")
		return dst, i, false
	}
	ref := raw[i+1 : i+semi]
	next := i + semi + 1
	if len(ref) > 1 && ref[0] == '#' {
		var r rune
		var digitsOK bool
		if ref[1] == 'x' {
			r, digitsOK = parseCharRef(ref[2:], 16)
		} else {
			r, digitsOK = parseCharRef(ref[1:], 10)
		}
		if !digitsOK || !isXMLChar(r) {
			s.fail(base+i, fmt.Sprintf("&%s; is not a reference to a legal XML character", ref))
			return dst, i, false
		}
		return utf8.AppendRune(dst, r), next, true
	}
	switch string(ref) {
	case "lt":
		return append(dst, '<'), next, true
	case "gt":
		return append(dst, '>'), next, true
	case "amp":
		return append(dst, '&'), next, true
	case "apos":
		return append(dst, '\''), next, true
	case "quot":
		return append(dst, '"'), next, true
	}
	if scanName(ref, 0) == len(ref) && len(ref) > 0 {
		s.fail(base+i, fmt.Sprintf("undefined entity &%s;", ref))
	} else {
		s.fail(base+i, "'&' not part of a reference (write &amp;)")
	}
	return dst, i, false
}

func parseCharRef(d []byte, base rune) (rune, bool) {
	if len(d) == 0 || len(d) > 8 {
		return 0, false
	}
	var r rune
	for _, c := range d {
		var v rune
		switch {
		case '0' <= c && c <= '9':
			v = rune(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			v = rune(c-'a') + 10
		case base == 16 && 'A' <= c && c <= 'F':
			v = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*base + v
	}
	return r, true
}

func (s *scanner) readCDATA() tokKind {
	if len(s.stack) == 0 {
		return s.fail(s.pos, "CDATA section outside the root element")
	}
	start := s.pos + len("<![CDATA[")
	end := bytes.Index(s.buf[start:], []byte("]]>"))
	if end < 0 {
		return s.fail(s.pos, "CDATA section not closed by ]]>")
	}
	raw := s.buf[start : start+end]
	s.pos = start + end + 3
	if bytes.IndexByte(raw, '\r') < 0 {
		s.text = raw
		return tokText
	}
	mark := len(s.scratch)
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\r' {
			s.scratch = append(s.scratch, '\n')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			continue
		}
		s.scratch = append(s.scratch, raw[i])
	}
	s.text = s.scratch[mark:]
	return tokText
}

func (s *scanner) readComment() tokKind {
	start := s.pos + 4
	i := bytes.Index(s.buf[start:], []byte("--"))
	if i < 0 {
		return s.fail(s.pos, "comment not closed by -->")
	}
	if start+i+2 >= len(s.buf) || s.buf[start+i+2] != '>' {
		return s.fail(start+i, "'--' inside a comment")
	}
	s.pos = start + i + 3
	return tokNone
}

func (s *scanner) readPI() tokKind {
	off := s.pos
	nameEnd := scanName(s.buf, s.pos+2)
	target := s.buf[s.pos+2 : nameEnd]
	if len(target) == 0 {
		return s.fail(off, "processing instruction without a target")
	}
	if bytes.IndexByte(target, ':') >= 0 {
		return s.fail(off, "processing instruction target with a colon")
	}
	if eqFold(string(target), "xml") {
		return s.fail(off, "XML declaration not at the start of the message")
	}
	end := bytes.Index(s.buf[nameEnd:], []byte("?>"))
	if end < 0 {
		return s.fail(off, "processing instruction not closed by ?>")
	}
	if end > 0 && !isXMLSpace(s.buf[nameEnd]) {
		return s.fail(nameEnd, "white space expected after the processing instruction target")
	}
	s.pos = nameEnd + end + 2
	return tokNone
}

func (s *scanner) readEnd() tokKind {
	off := s.pos
	s.pos += 2
	// Fast path: the end tag names the open element and closes at once.
	if len(s.stack) > 0 {
		top := s.stack[len(s.stack)-1].qname
		if e := s.pos + len(top); e < len(s.buf) && s.buf[e] == '>' && bytes.Equal(s.buf[s.pos:e], top) {
			s.pos = e + 1
			s.pop()
			return tokEnd
		}
	}
	nameEnd := scanName(s.buf, s.pos)
	q := s.buf[s.pos:nameEnd]
	s.pos = nameEnd
	s.skipSpace()
	if s.pos >= len(s.buf) || s.buf[s.pos] != '>' {
		return s.fail(s.pos, fmt.Sprintf("end tag </%s not closed by '>'", q))
	}
	s.pos++
	if len(s.stack) == 0 {
		return s.fail(off, fmt.Sprintf("end tag </%s> without a start tag", q))
	}
	if top := s.stack[len(s.stack)-1].qname; !bytes.Equal(top, q) {
		return s.fail(off, fmt.Sprintf("element <%s> closed by </%s>", top, q))
	}
	s.pop()
	return tokEnd
}

// bindNamespaces applies the start tag's namespace declarations (in
// s.attrs, marked isNS) to s.ns: tokNone or tokErr (at off).
func (s *scanner) bindNamespaces(off int) tokKind {
	for i := range s.attrs {
		a := &s.attrs[i]
		switch {
		case a.prefix == nil && string(a.local) == "xmlns":
			if string(a.value) == nsXMLURI || string(a.value) == nsXMLNSURI {
				return s.fail(off, fmt.Sprintf("%q cannot be the default namespace", a.value))
			}
			a.isNS = true
			s.ns = append(s.ns, nsBind{prefix: nil, uri: a.value})
		case string(a.prefix) == "xmlns":
			a.isNS = true
			switch {
			case string(a.local) == "xmlns":
				return s.fail(off, "the xmlns prefix cannot be declared")
			case string(a.local) == "xml":
				if string(a.value) != nsXMLURI {
					return s.fail(off, "the xml prefix cannot be bound to another namespace")
				}
			case string(a.value) == nsXMLURI || string(a.value) == nsXMLNSURI:
				return s.fail(off, fmt.Sprintf("prefix %q cannot be bound to %q", a.local, a.value))
			case len(a.value) == 0:
				return s.fail(off, fmt.Sprintf("prefix %q declared with an empty namespace", a.local))
			}
			s.ns = append(s.ns, nsBind{prefix: a.local, uri: a.value})
		}
	}
	return tokNone
}

// resolveAttrs gives each prefixed attribute its namespace and refuses two
// attributes of the same name in the same namespace: tokNone or tokErr.
func (s *scanner) resolveAttrs(off int) tokKind {
	for i := range s.attrs {
		a := &s.attrs[i]
		if a.isNS || a.prefix == nil {
			continue
		}
		var ok bool
		a.space, ok = s.lookup(a.prefix)
		if !ok {
			return s.fail(off, fmt.Sprintf("undeclared namespace prefix %q on attribute %s", a.prefix, a.qname))
		}
		for j := 0; j < i; j++ {
			b := &s.attrs[j]
			if !b.isNS && b.prefix != nil && bytes.Equal(a.local, b.local) && bytes.Equal(a.space, b.space) {
				return s.fail(off, fmt.Sprintf("attributes %s and %s are the same name in the same namespace", b.qname, a.qname))
			}
		}
	}
	return tokNone
}

func (s *scanner) readStart() tokKind {
	off := s.pos
	if s.seenRoot && len(s.stack) == 0 {
		return s.fail(off, "element after the root element")
	}
	s.pos++
	nameEnd, prefix, local, ok := scanQName(s.buf, s.pos)
	qname := s.buf[s.pos:nameEnd]
	if len(qname) == 0 {
		return s.fail(s.pos, "element name expected after '<'")
	}
	if !ok {
		return s.fail(s.pos, fmt.Sprintf("element name %q is not a valid qualified name", qname))
	}
	s.pos = nameEnd
	s.attrs = s.attrs[:0]
	nsMark := len(s.ns)
	selfClose := false
	for {
		ws := s.skipSpace()
		if s.pos >= len(s.buf) {
			return s.fail(s.pos, fmt.Sprintf("the message ends inside the start tag <%s", qname))
		}
		c := s.buf[s.pos]
		if c == '>' {
			s.pos++
			break
		}
		if c == '/' {
			if s.pos+1 < len(s.buf) && s.buf[s.pos+1] == '>' {
				s.pos += 2
				selfClose = true
				break
			}
			return s.fail(s.pos, "'/' not followed by '>'")
		}
		if !ws {
			return s.fail(s.pos, fmt.Sprintf("white space expected before an attribute in <%s>", qname))
		}
		if k := s.readAttr(qname); k != tokNone {
			return k
		}
	}
	// Namespace declarations first, as they apply to this element's own name
	// and attributes.
	if k := s.bindNamespaces(off); k == tokErr {
		return k
	}
	space, ok := s.lookup(prefix)
	if !ok {
		return s.fail(off, fmt.Sprintf("undeclared namespace prefix %q in <%s>", prefix, qname))
	}
	if k := s.resolveAttrs(off); k == tokErr {
		return k
	}
	s.stack = append(s.stack, openElem{qname: qname, nsMark: nsMark})
	if len(s.stack) > maxDepth {
		return s.fail(off, fmt.Sprintf("elements nested deeper than %d", maxDepth))
	}
	s.seenRoot = true
	s.space, s.local, s.tokOff = space, local, off
	s.pending = selfClose
	return tokStart
}

// lookup resolves a prefix; the empty prefix is the default namespace.
func (s *scanner) lookup(prefix []byte) ([]byte, bool) {
	for i := len(s.ns) - 1; i >= 0; i-- {
		if bytes.Equal(s.ns[i].prefix, prefix) {
			return s.ns[i].uri, true
		}
	}
	return nil, prefix == nil
}

func (s *scanner) readAttr(elem []byte) tokKind {
	aoff := s.pos
	nameEnd, prefix, local, ok := scanQName(s.buf, s.pos)
	q := s.buf[s.pos:nameEnd]
	if len(q) == 0 {
		return s.fail(s.pos, fmt.Sprintf("attribute name expected in <%s>", elem))
	}
	if !ok {
		return s.fail(s.pos, fmt.Sprintf("attribute name %q is not a valid qualified name", q))
	}
	s.pos = nameEnd
	s.skipSpace()
	if s.pos >= len(s.buf) || s.buf[s.pos] != '=' {
		return s.fail(s.pos, fmt.Sprintf("'=' expected after attribute %s", q))
	}
	s.pos++
	s.skipSpace()
	if s.pos >= len(s.buf) || (s.buf[s.pos] != '"' && s.buf[s.pos] != '\'') {
		return s.fail(s.pos, fmt.Sprintf("quoted value expected for attribute %s", q))
	}
	quote := s.buf[s.pos]
	vstart := s.pos + 1
	vlen := bytes.IndexByte(s.buf[vstart:], quote)
	if vlen < 0 {
		return s.fail(s.pos, fmt.Sprintf("value of attribute %s not closed", q))
	}
	raw := s.buf[vstart : vstart+vlen]
	s.pos = vstart + vlen + 1
	plain := true
	for i, c := range raw {
		switch c {
		case '<':
			return s.fail(vstart+i, fmt.Sprintf("'<' in the value of attribute %s", q))
		case '&', '\t', '\n', '\r':
			plain = false
		}
	}
	val := raw
	if !plain {
		mark := len(s.scratch)
		for i := 0; i < len(raw); {
			c := raw[i]
			switch c {
			case '&':
				s.scratch, i, ok = s.appendRef(s.scratch, raw, i, vstart)
				if !ok {
					return tokErr
				}
				continue
			case '\r':
				s.scratch = append(s.scratch, ' ')
				if i+1 < len(raw) && raw[i+1] == '\n' {
					i++
				}
			case '\t', '\n':
				s.scratch = append(s.scratch, ' ')
			default:
				s.scratch = append(s.scratch, c)
			}
			i++
		}
		val = s.scratch[mark:]
	}
	if len(s.attrs) >= maxAttrs {
		return s.fail(aoff, fmt.Sprintf("more than %d attributes in <%s>", maxAttrs, elem))
	}
	for i := range s.attrs {
		if bytes.Equal(s.attrs[i].qname, q) {
			return s.fail(aoff, fmt.Sprintf("attribute %s repeated in <%s>", q, elem))
		}
	}
	s.attrs = append(s.attrs, xmlAttr{qname: q, prefix: prefix, local: local, value: val})
	return tokNone
}

// attr returns the value of the unprefixed attribute name on the current
// start tag.
func (s *scanner) attr(name string) ([]byte, bool) {
	for i := range s.attrs {
		a := &s.attrs[i]
		if a.prefix == nil && !a.isNS && string(a.local) == name {
			return a.value, true
		}
	}
	return nil, false
}
