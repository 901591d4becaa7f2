package telemetry

import (
	"strings"
	"testing"
)

// TestScannerAgainstEncodingXML embeds XML constructs in a valid message (as
// a vendor extension, or in the prolog/epilog) and checks the scanner's
// verdict: well-formed ones are accepted, the others refused, and nothing is
// accepted that encoding/xml refuses.
func TestScannerAgainstEncodingXML(t *testing.T) {
	const head = `<Telemetry xmlns="urn:flexipack:telemetry:2" xmlns:v="urn:v"><Unit serial="U"/><Sample time="2026-11-21T08:00:00Z"><SoC>1</SoC></Sample>`
	wrap := func(inner string) string { return head + inner + `</Telemetry>` }
	for _, tc := range []struct {
		name string
		body string
		ok   bool
	}{
		{"non-ASCII names", wrap(`<v:café v:naïve="1"><v:日本/></v:café>`), true},
		{"name chars . - _ digits", wrap(`<v:a.b-c_1 v:x.y="1"/>`), true},
		{"xml:lang attribute", wrap(`<v:a xml:lang="en"/>`), true},
		{"xml prefix bound correctly", wrap(`<v:a xmlns:xml="http://www.w3.org/XML/1998/namespace"/>`), true},
		{"default namespace undeclared", wrap(`<v:a><b xmlns=""><c/></b></v:a>`), true},
		{"single-quoted attribute with double quote", wrap(`<v:a v:b='say "hi"'/>`), true},
		{"gt in attribute and text", wrap(`<v:a v:b="x>y">a>b</v:a>`), true},
		{"empty comment and PI with no data", "<!----><?p?>" + wrap(`<?q?><!---->`) + "<!---->", true},
		{"white space in end tag", wrap(`<v:a></v:a   >`), true},
		{"white space around =", wrap(`<v:a v:b = "1" />`), true},
		{"character references at the limits", wrap(`<v:a>&#x9;&#xA;&#xD;&#x20;&#xD7FF;&#xE000;&#xFFFD;&#x10000;&#x10FFFF;&#65;</v:a>`), true},
		{"CDATA with markup", wrap(`<v:a><![CDATA[<b>&amp;</b>]]]]></v:a>`), true},
		{"xml-stylesheet PI is not a declaration", `<?xml-stylesheet href="x"?>` + wrap(``), true},

		{"name starting with a digit", wrap(`<v:1a/>`), false},
		{"name starting with '-'", wrap(`<-a/>`), false},
		{"empty prefix", wrap(`<:a/>`), false},
		{"two colons", wrap(`<v:a:b/>`), false},
		{"undeclared attribute prefix", wrap(`<v:a q:b="1"/>`), false},
		{"xmlns prefix declared", wrap(`<v:a xmlns:xmlns="urn:x"/>`), false},
		{"xml prefix rebound", wrap(`<v:a xmlns:xml="urn:x"/>`), false},
		{"prefix undeclared with empty value", wrap(`<v:a xmlns:p=""/>`), false},
		{"element with xmlns prefix", wrap(`<xmlns:a/>`), false},
		{"unquoted attribute", wrap(`<v:a v:b=1/>`), false},
		{"attribute without value", wrap(`<v:a v:b/>`), false},
		{"character reference to U+FFFE", wrap(`<v:a>&#xFFFE;</v:a>`), false},
		{"character reference to a surrogate", wrap(`<v:a>&#xD800;</v:a>`), false},
		{"character reference beyond U+10FFFF", wrap(`<v:a>&#x110000;</v:a>`), false},
		{"character reference with upper-case X", wrap(`<v:a>&#X41;</v:a>`), false},
		{"empty character reference", wrap(`<v:a>&#;</v:a>`), false},
		{"reference without semicolon", wrap(`<v:a>&amp</v:a>`), false},
		{"U+FFFF written literally", wrap("<v:a>\uffff</v:a>"), false},
		{"NUL written literally", wrap("<v:a>\x00</v:a>"), false},
		{"surrogate bytes", wrap("<v:a>\xed\xa0\x80</v:a>"), false},
		{"overlong UTF-8", wrap("<v:a>\xc0\xaf</v:a>"), false},
		{"comment ending --->", wrap(`<!-- a --->`), false},
		{"unterminated comment", wrap(`<!-- a`), false},
		{"unterminated CDATA", wrap(`<v:a><![CDATA[x</v:a>`), false},
		{"unterminated PI", wrap(`<?p x`), false},
		{"PI target xml", wrap(`<?xml version="1.0"?>`), false},
		{"PI target with colon", wrap(`<?a:b?>`), false},
		{"CDATA after the root", wrap(``) + `<![CDATA[x]]>`, false},
		{"reference after the root", wrap(``) + `&amp;`, false},
		{"end tag after the root", wrap(``) + `</x>`, false},
		{"text before the root", `x` + wrap(``), false},
		{"BOM not at the start", " \ufeff" + wrap(``), false},
		{"declaration without version", `<?xml encoding="UTF-8"?>` + wrap(``), false},
		{"declaration attributes out of order", `<?xml encoding="UTF-8" version="1.0"?>` + wrap(``), false},
		{"bad standalone", `<?xml version="1.0" standalone="maybe"?>` + wrap(``), false},
		{"<!ELEMENT", wrap(`<!ELEMENT a ANY>`), false},
		{"<!ENTITY", `<!ENTITY a "b">` + wrap(``), false},
		{"deep nesting", wrap(strings.Repeat("<v:a>", 300) + strings.Repeat("</v:a>", 300)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := testDecoder().Decode([]byte(tc.body))
			_, ierr := Inspect([]byte(tc.body))
			xerr := encodingXMLAccepts([]byte(tc.body))
			if (err == nil) != tc.ok || (ierr == nil) != tc.ok {
				t.Errorf("Decode: %v, Inspect: %v; want accepted=%v", err, ierr, tc.ok)
			}
			if (err == nil || ierr == nil) && xerr != nil {
				t.Errorf("accepted what encoding/xml refuses: %v", xerr)
			}
		})
	}
}

// TestScanQNameMatchesReference: the one-pass QName scanner agrees with
// scanName followed by splitQName on random names.
func TestScanQNameMatchesReference(t *testing.T) {
	alphabet := []string{"a", "Z", "_", ":", "1", "-", ".", "é", "·", " ", ">", "日"}
	rng := uint64(1)
	next := func(n int) int {
		rng = rng*6364136223846793005 + 1442695040888963407
		return int(rng>>33) % n
	}
	for range 200000 {
		var sb strings.Builder
		for range next(8) {
			sb.WriteString(alphabet[next(len(alphabet))])
		}
		b := []byte(sb.String())
		refEnd := scanName(b, 0)
		end, prefix, local, ok := scanQName(b, 0)
		if refEnd == 0 {
			if end != 0 {
				t.Fatalf("%q: end %d, reference finds no name", b, end)
			}
			continue
		}
		rp, rl, rok := splitQName(b[:refEnd])
		if end != refEnd || ok != rok || ok && (string(prefix) != string(rp) || string(local) != string(rl)) {
			t.Fatalf("%q: got (%d %q %q %v), reference (%d %q %q %v)", b, end, prefix, local, ok, refEnd, rp, rl, rok)
		}
	}
}
