package influx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

// rawAnswer asks the real InfluxDB for q's answer in the given format.
func rawAnswer(t *testing.T, cfg Config, q, accept string) ([]byte, string) {
	t.Helper()
	cfg = cfg.withDefaults()
	v := url.Values{"db": {cfg.Database}, "q": {q}, "epoch": {"ms"}, "chunked": {"true"}, "chunk_size": {"7"}}
	req, err := http.NewRequest(http.MethodGet, cfg.URL+"/query?"+v.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body, resp.Header.Get("Content-Type")
}

func decodeAll(d answerDecoder) ([]queryResponse, error) {
	var out []queryResponse
	for {
		var r queryResponse
		if err := d.next(&r); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

// sameValue reports whether a MessagePack value says what a JSON value says:
// JSON's numbers are untyped text, MessagePack's typed.
func sameValue(j, m any) bool {
	n, ok := j.(json.Number)
	if !ok {
		return j == m
	}
	switch m.(type) {
	case int64, uint64:
		ji, err1 := Int64(n)
		mi, err2 := Int64(m)
		return err1 == nil && err2 == nil && ji == mi
	case float64:
		jf, err1 := Float64(n)
		mf, _ := Float64(m)
		return err1 == nil && jf == mf
	}
	return false
}

// TestMsgpackMatchesJSONOnInfluxDB asks the real InfluxDB 1.8 the same
// queries in JSON and in MessagePack and requires the same answers: every
// series, tag, column and value (numbers by value), every error.
func TestMsgpackMatchesJSONOnInfluxDB(t *testing.T) {
	cfg, _ := freshDB(t)
	ctx := testenv.Context(t, time.Minute)
	recs := series([]string{"A", `Yard "7", Bay\3 ü`}, t0, time.Minute, 40)
	if err := newWriter(t, cfg).Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	extra := []string{
		`m,t=x f=12.0,i=-7i,b=true,s="é \" \\ 日本" ` + fmt.Sprint(t0.UnixMilli()),
		`m,t=y f=-0.000123456,i=9223372036854775807i,b=false,s="" ` + fmt.Sprint(t0.Add(time.Second).UnixMilli()),
		`m,t=y f=1e300 ` + fmt.Sprint(t0.Add(2*time.Second).UnixMilli()),
	}
	if err := newWriter(t, cfg).WriteLines(ctx, []byte(strings.Join(extra, "\n")+"\n")); err != nil {
		t.Fatal(err)
	}
	queries := []string{
		`SELECT * FROM "bsu" GROUP BY *`,
		`SELECT * FROM "bsu_alarm" GROUP BY "unit"`,
		`SELECT mean("soc_pct"), count("seq"), last("mode") FROM "bsu" WHERE time >= ` + TimeLiteral(t0) + ` AND time < ` + TimeLiteral(t0.Add(time.Hour)) + ` GROUP BY time(10m), "unit" fill(none)`,
		`SELECT * FROM "m"`,
		`SELECT * FROM "m" GROUP BY *; SELECT count(*) FROM "m"`,
		`SHOW MEASUREMENTS`,
		`SHOW TAG VALUES FROM "bsu" WITH KEY = "unit"`,
		`SHOW FIELD KEYS FROM "m"`,
		`SELECT * FROM "nope"`,
		`SELECT "f" FROM "m" WHERE "t" = 'x'; SELEKT`,
		`SELECT mean("s") FROM "m"`,
	}
	for _, q := range queries {
		jb, jct := rawAnswer(t, cfg, q, "application/json")
		mb, mct := rawAnswer(t, cfg, q, mediaMsgpack)
		if !strings.HasPrefix(mct, mediaMsgpack) || !strings.HasPrefix(jct, "application/json") {
			t.Fatalf("%s: content types %q and %q", q, jct, mct)
		}
		want, jerr := decodeAll(newChunkDecoder(bytes.NewReader(jb)))
		got, merr := decodeAll(newMsgpackDecoder(bytes.NewReader(mb), 1<<20))
		if jerr != nil || merr != nil {
			t.Fatalf("%s: JSON %v, MessagePack %v", q, jerr, merr)
		}
		if err := sameAnswers(want, got); err != nil {
			t.Errorf("%s: %v\nJSON %s", q, err, jb)
		}
	}
}

func sameAnswers(want, got []queryResponse) error {
	if len(want) != len(got) {
		return fmt.Errorf("%d objects, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Error != g.Error || len(w.Results) != len(g.Results) {
			return fmt.Errorf("object %d: error %q, %d results; want %q, %d", i, g.Error, len(g.Results), w.Error, len(w.Results))
		}
		for k := range w.Results {
			wr, gr := w.Results[k], g.Results[k]
			if wr.StatementID != gr.StatementID || wr.Error != gr.Error || len(wr.Series) != len(gr.Series) {
				return fmt.Errorf("result %d: %+v, want %+v", k, gr, wr)
			}
			for s := range wr.Series {
				ws, gs := wr.Series[s], gr.Series[s]
				if ws.Name != gs.Name || ws.Partial != gs.Partial || fmt.Sprint(ws.Tags) != fmt.Sprint(gs.Tags) ||
					fmt.Sprint(ws.Columns) != fmt.Sprint(gs.Columns) || len(ws.Values) != len(gs.Values) {
					return fmt.Errorf("series %d: %s %v %v %d rows partial %v; want %s %v %v %d rows partial %v", s,
						gs.Name, gs.Tags, gs.Columns, len(gs.Values), gs.Partial, ws.Name, ws.Tags, ws.Columns, len(ws.Values), ws.Partial)
				}
				for r := range ws.Values {
					if len(ws.Values[r]) != len(gs.Values[r]) {
						return fmt.Errorf("series %d row %d: %v, want %v", s, r, gs.Values[r], ws.Values[r])
					}
					for c := range ws.Values[r] {
						if !sameValue(ws.Values[r][c], gs.Values[r][c]) {
							return fmt.Errorf("series %d row %d column %s: %v (%T), want %v", s, r, ws.Columns[c], gs.Values[r][c], gs.Values[r][c], ws.Values[r][c])
						}
					}
				}
			}
		}
	}
	return nil
}

// TestClientReadsMsgpackFrom1x checks, through a recording proxy in front
// of the real 1.8, that the client asks a 1.x server for MessagePack, gets
// it, and decodes it; and that a 1.x error answer in MessagePack still
// becomes a QueryError with InfluxDB's message.
func TestClientReadsMsgpackFrom1x(t *testing.T) {
	cfg, _ := freshDB(t)
	ctx := testenv.Context(t, time.Minute)
	if err := newWriter(t, cfg).Write(ctx, series([]string{"A"}, t0, time.Second, 30)); err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	var msgpackAnswers atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.URL.Path == "/query" && isMsgpack(r.Header) {
			msgpackAnswers.Add(1)
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	cfg.URL = srv.URL
	c := newQLClient(t, cfg)
	var rows int
	err = c.Query(ctx, `SELECT * FROM "bsu" GROUP BY *`, func(s *Series) error {
		for _, row := range s.Values {
			if _, err := Int64(row[s.Col("time")]); err != nil {
				return err
			}
			if _, err := Float64(row[s.Col("soc_pct")]); err != nil {
				return err
			}
			rows++
		}
		return nil
	})
	if err != nil || rows != 30 {
		t.Fatalf("rows %d, err %v", rows, err)
	}
	var qe *QueryError
	err = c.Query(ctx, `SELEKT 1`, func(*Series) error { return nil })
	if !errors.As(err, &qe) || !strings.Contains(qe.Message, "SELEKT") {
		t.Fatalf("syntax error: %v", err)
	}
	if n := msgpackAnswers.Load(); n < 2 {
		t.Fatalf("%d MessagePack answers, want every /query answer (2)", n)
	}
}

func TestMsgpackDecoderRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated map", []byte{0x81, 0xa7, 'r', 'e', 's', 'u', 'l', 't', 's', 0x91}, "unexpected EOF"},
		{"not a map", []byte{0x93}, "where the map of answer starts"},
		{"huge string", []byte{0x81, 0xdb, 0xff, 0xff, 0xff, 0xff}, "exceeds the 64-byte chunk limit"},
		{"huge array", []byte{0x81, 0xa7, 'r', 'e', 's', 'u', 'l', 't', 's', 0xdd, 0x7f, 0xff, 0xff, 0xff}, "exceeds the 64-byte chunk limit"},
		{"extension value", []byte{0x81, 0xa5, 'e', 'r', 'r', 'o', 'r', 0xd6, 0xff, 0, 0, 0, 0}, "0xd6 where a value starts"},
		{"error not a string", []byte{0x81, 0xa5, 'e', 'r', 'r', 'o', 'r', 0x01}, "int64 where a string was expected"},
		{"deep nesting", append([]byte{0x81, 0xa1, 'x'}, bytes.Repeat([]byte{0x91}, 40)...), "nested more than 32 deep"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeAll(newMsgpackDecoder(bytes.NewReader(c.in), 64))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// FuzzMsgpackDecoder: any input decodes or fails with an error, never a
// panic, and never allocates past the chunk limit for a length it read.
func FuzzMsgpackDecoder(f *testing.F) {
	f.Add([]byte{0x81, 0xa5, 'e', 'r', 'r', 'o', 'r', 0xa1, 'x'})
	f.Add([]byte{0x81, 0xa7, 'r', 'e', 's', 'u', 'l', 't', 's', 0x91, 0x82, 0xac, 's', 't', 'a', 't', 'e', 'm', 'e', 'n', 't', '_', 'i', 'd', 0x00,
		0xa6, 's', 'e', 'r', 'i', 'e', 's', 0x91, 0x82, 0xa7, 'c', 'o', 'l', 'u', 'm', 'n', 's', 0x92, 0xa1, 't', 0xa1, 'v', 0xa6, 'v', 'a', 'l', 'u', 'e', 's', 0x91, 0x92, 0xcf, 0, 0, 1, 0, 0, 0, 0, 0, 0xcb, 0x40, 0x28, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = decodeAll(newMsgpackDecoder(bytes.NewReader(in), 4096))
	})
}
