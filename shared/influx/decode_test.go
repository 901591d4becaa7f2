package influx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// decodeStd decodes like the client did before chunkDecoder: encoding/json
// with UseNumber, object after object.
func decodeStd(data []byte) ([]queryResponse, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out []queryResponse
	for {
		var r queryResponse
		if err := dec.Decode(&r); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

func decodeFast(data []byte) ([]queryResponse, error) {
	return decodeAll(newChunkDecoder(bytes.NewReader(data)))
}

var decodeCases = []string{
	`{"results":[{"statement_id":0,"series":[{"name":"bsu","tags":{"site":"North Yard, Bay 3","unit":"U\"1\\x"},"columns":["time","soc_pct","schema","seq","ok"],"values":[[1795251600000,50.5,"2.1",1001,true],[1795251660000,null,"",-3,false]],"partial":true}],"partial":true}]}
{"results":[{"statement_id":0,"series":[{"name":"bsu","columns":["time","v"],"values":[[1,1e-05],[2,-0.000123456],[3,123456789012345678]]}]}]}
`,
	`{"results":[{"statement_id":0}]}`,
	`{"results":[{"statement_id":1,"error":"database not found: x"}]}`,
	`{"error":"error parsing query: found SELEKT"}`,
	`{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","text"],"values":[[0,"\u00b0C \ud83d\ude00 \n\t\/ \u0000 é日本"]]}],"messages":[{"level":"warning","text":"x"}]}]}`,
	"  {\"results\" : [ { \"statement_id\" : 0 , \"series\" : [ ] } ] }  \n\n",
	`{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[[0,"\ud800 lone"]]}]}]}`,
}

func TestChunkDecoderMatchesEncodingJSON(t *testing.T) {
	for i, c := range decodeCases {
		want, werr := decodeStd([]byte(c))
		got, gerr := decodeFast([]byte(c))
		if (werr != nil) != (gerr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("case %d:\n got %+v (%v)\nwant %+v (%v)", i, got, gerr, want, werr)
		}
	}
}

func TestChunkDecoderRefusesBrokenAnswers(t *testing.T) {
	for _, c := range []string{
		`{"results":[{"statement_id":0,"series":[{"name":"m","values":[[1,`,
		`{"results":[{"statement_id":0,"series":[{"values":[[01]]}]}]}`,
		`{"results":[{"statement_id":0,"series":[{"values":[[1.]]}]}]}`,
		`{"results":[{"statement_id":0,"series":[{"values":[["a` + "\x01" + `"]]}]}]}`,
		`{"results":[{"statement_id":0,"series":[{"values":[[{"x":1}]]}]}]}`,
		`{"results" 1}`,
		`[1]`,
	} {
		if _, err := decodeFast([]byte(c)); err == nil {
			t.Errorf("%q: accepted", c)
		} else if !errors.Is(err, errSyntax) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: %v, want a syntax error or an unexpected end", c, err)
		}
	}
}

// FuzzChunkDecoder: whatever the bytes, the decoder never panics, and when
// both accept, it agrees with encoding/json — on inputs without upper-case
// or non-ASCII bytes: encoding/json also matches keys case-insensitively
// ("Columns", "ſeries"), which InfluxDB never sends and the decoder does not
// imitate.
func FuzzChunkDecoder(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := decodeFast(data)
		if bytes.ContainsFunc(data, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 0x80 }) {
			return
		}
		want, werr := decodeStd(data)
		if gerr == nil && werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"results":[{"statement_id":0,"series":[{"name":"bsu","tags":{"model":"FlexiPack-250","site":"Yard 01, Bay 2","unit":"FP2-000001"},"columns":["time","alarm_count","current_a","firmware","mode","power_kw","schema","seq","soc_pct","soh_pct","temp_ambient_c","temp_cell_max_c","temp_cell_min_c","voltage_v"],"values":[`)
	for i := range 10000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`[1795251600000,0,-12.34,"2.4.1","discharging",-9.99,"2.1",100123,57.3,98.75,21.2,31.4,29.9,812.1]`)
	}
	sb.WriteString(`],"partial":true}],"partial":true}]}` + "\n")
	data := []byte(sb.String())
	b.Run("chunkDecoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeFast(data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/row")
	})
	b.Run("encoding-json-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeStd(data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/row")
	})
}
