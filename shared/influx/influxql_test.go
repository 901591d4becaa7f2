package influx

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

func newQLClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// specialNames are unit and site names made of every printable ASCII
// punctuation character, a space, non-ASCII letters and a few classic
// injection shapes. Control characters cannot be tag values (line protocol
// has no escape for them); a trailing backslash cannot either.
func specialNames() []string {
	var names []string
	for _, c := range "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ " {
		names = append(names, "u"+string(c)+"x")
	}
	return append(names,
		`$unit`, `${unit}`, `a\'b`, `a\"b`, `a\\b`, `a\,b`, `'; DROP DATABASE x; --`, `" OR 1=1 --`,
		`/.*/`, `Bay 3, North=Yard`, "Zürich °C 日本", `\n`, `a'b"c\d$e{f}g`)
}

func TestQuoteRoundTripThroughInfluxDB(t *testing.T) {
	cfg, _ := freshDB(t)
	ctx := testenv.Context(t, time.Minute)
	names := specialNames()
	var recs []telemetry.Record
	for i, n := range names {
		r := record(n, t0.Add(time.Duration(i)*time.Second), i)
		r.Site = "site " + n
		recs = append(recs, r)
	}
	if err := newWriter(t, cfg).Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	c := newQLClient(t, cfg)
	for i, n := range names {
		q := fmt.Sprintf(`SELECT count(%s) FROM %s WHERE %s = %s AND %s = %s AND time >= %s AND time < %s GROUP BY %s`,
			QuoteIdent("schema"), QuoteIdent("bsu"), QuoteIdent("unit"), QuoteString(n), QuoteIdent("site"), QuoteString("site "+n),
			TimeLiteral(t0), TimeLiteral(t0.Add(time.Hour)), QuoteIdent("unit"))
		var got []string
		err := c.Query(ctx, q, func(s *Series) error {
			cnt, err := Int64(s.Values[0][1])
			if err != nil {
				return err
			}
			got = append(got, fmt.Sprintf("%s=%d", s.Tags["unit"], cnt))
			return nil
		})
		if err != nil {
			t.Fatalf("name %d %q: %v", i, n, err)
		}
		if want := []string{n + "=1"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("name %d %q: got %q, want %q", i, n, got, want)
		}
	}
	// Every read path that filters by unit: counts, stream, the dashboard's
	// unit series.
	r := newReader(t, cfg)
	d, err := NewDashboard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	from, to := t0, t0.Add(time.Hour)
	for i, n := range names {
		counts, err := r.Counts(ctx, from, to, time.Hour, []string{n})
		if err != nil || len(counts) != 1 || counts[0].Unit != n || counts[0].N != 1 {
			t.Errorf("name %d %q: counts %v, %v", i, n, counts, err)
		}
		var streamed []string
		err = r.Stream(ctx, from, to, []string{n}, func(rec *telemetry.Record) error {
			streamed = append(streamed, rec.Unit+"|"+rec.Site)
			return nil
		})
		if want := n + "|site " + n; err != nil || len(streamed) != 1 || streamed[0] != want {
			t.Errorf("name %d %q: stream %q, %v; want %q", i, n, streamed, err, want)
		}
		points := 0
		err = d.UnitSeries(ctx, n, from, to, "soc_pct", func(time.Time, float64) error { points++; return nil })
		if err != nil || points != 1 {
			t.Errorf("name %d %q: unit series %d points, %v", i, n, points, err)
		}
	}
}

func TestQuoteIdentRoundTripThroughInfluxDB(t *testing.T) {
	cfg, db := freshDB(t)
	ctx := testenv.Context(t, time.Minute)
	// Line protocol escapes: measurement ',' and ' '; tag key ',', '=' and ' '.
	meas, key := `m"'\$ é{x},y`, `k"'\$=é ,z`
	lpMeas := strings.NewReplacer(",", `\,`, " ", `\ `).Replace(meas)
	lpKey := strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `).Replace(key)
	line := fmt.Sprintf("%s,%s=v1 f=1 %d\n", lpMeas, lpKey, t0.UnixMilli())
	resp, err := http.Post(db.URL+"/write?precision=ms&db="+db.DB, "text/plain", strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write %q: %s", line, resp.Status)
	}
	c := newQLClient(t, cfg)
	q := fmt.Sprintf(`SELECT "f", %s FROM %s WHERE %s = 'v1'`, QuoteIdent(key), QuoteIdent(meas), QuoteIdent(key))
	var rows int
	err = c.Query(ctx, q, func(s *Series) error {
		if s.Name != meas || s.Columns[2] != key {
			return fmt.Errorf("series %q columns %q", s.Name, s.Columns)
		}
		rows += len(s.Values)
		return nil
	})
	if err != nil || rows != 1 {
		t.Fatalf("query %s: rows %d, err %v", q, rows, err)
	}
}

func TestQueryStreamsChunks(t *testing.T) {
	cfg, _ := freshDB(t)
	ctx := testenv.Context(t, time.Minute)
	recs := series([]string{"A", "B"}, t0, time.Second, 250)
	if err := newWriter(t, cfg).Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	cfg.ChunkSize = 100
	c := newQLClient(t, cfg)
	var chunks, rows int
	var last int64
	err := c.Query(ctx, `SELECT "seq" FROM "bsu" WHERE time >= `+TimeLiteral(t0)+` GROUP BY "unit"`, func(s *Series) error {
		chunks++
		rows += len(s.Values)
		for _, v := range s.Values {
			ms, err := Int64(v[0])
			if err != nil {
				return err
			}
			last = ms
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows != 500 || chunks < 5 {
		t.Fatalf("rows %d in %d chunks, want 500 in at least 5", rows, chunks)
	}
	if want := t0.Add(249 * time.Second).UnixMilli(); last != want {
		t.Fatalf("last time %d, want %d (epoch=ms)", last, want)
	}
}

func TestQueryErrors(t *testing.T) {
	cfg, _ := freshDB(t)
	ctx := testenv.Context(t, time.Minute)
	c := newQLClient(t, cfg)
	var qe *QueryError
	err := c.Query(ctx, `SELEKT 1`, func(*Series) error { return nil })
	if !errors.As(err, &qe) || qe.Status != http.StatusBadRequest || errors.Is(err, ErrUnavailable) {
		t.Fatalf("syntax error: %v", err)
	}
	bad := cfg
	bad.Bucket, bad.Database = "nope_db/autogen", ""
	err = newQLClient(t, bad).Query(ctx, `SELECT * FROM "bsu"`, func(*Series) error { return nil })
	if !errors.As(err, &qe) || !strings.Contains(qe.Message, "database not found") {
		t.Fatalf("unknown database: %v", err)
	}
	down := cfg
	down.URL, down.MaxRetries = fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), -1
	err = newQLClient(t, down).Query(ctx, `SELECT * FROM "bsu"`, func(*Series) error { return nil })
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no server: %v", err)
	}
	stop := errors.New("stop")
	if err := c.Query(ctx, `SHOW MEASUREMENTS`, func(*Series) error { return stop }); err != nil && !errors.Is(err, stop) {
		t.Fatalf("fn error: %v", err)
	}
}

// fakeQuery answers /ping as version and /query with handler.
func fakeQuery(t *testing.T, version string, handler http.HandlerFunc) Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Influxdb-Version", version)
		if r.URL.Path == "/ping" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return Config{URL: srv.URL, Bucket: "telemetry", Token: "tok", Timeout: 200 * time.Millisecond, RetryBase: time.Millisecond}
}

func TestQueryProtocol(t *testing.T) {
	ctx := testenv.Context(t, 30*time.Second)
	t.Run("v2 missing DBRP names the fix", func(t *testing.T) {
		cfg := fakeQuery(t, "v2.7.10", func(w http.ResponseWriter, r *http.Request) {
			if got := r.Header.Get("Authorization"); got != "Token tok" {
				t.Errorf("Authorization %q", got)
			}
			fmt.Fprint(w, `{"results":[{"statement_id":0,"error":"retention policy not found: "}]}`)
		})
		err := newQLClient(t, cfg).Query(ctx, `SELECT 1`, func(*Series) error { return nil })
		if !errors.Is(err, ErrNoDBRP) || !strings.Contains(err.Error(), "influx v1 dbrp create --db telemetry --rp autogen") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("v1 basic auth and 401", func(t *testing.T) {
		cfg := fakeQuery(t, "1.8.3", func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "me" || p != "pw:x" {
				t.Errorf("basic auth %q %q %v", u, p, ok)
			}
			if q := r.URL.Query(); q.Get("epoch") != "ms" || q.Get("chunked") != "true" || q.Get("db") != "telemetry" {
				t.Errorf("params %v", q)
			}
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"authorization failed"}`)
		})
		cfg.Token = "me:pw:x"
		err := newQLClient(t, cfg).Query(ctx, `SELECT 1`, func(*Series) error { return nil })
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("retries 503 with Retry-After before data", func(t *testing.T) {
		var calls atomic.Int32
		cfg := fakeQuery(t, "3.0.1", func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, `{"results":[{"statement_id":0,"series":[{"name":"bsu","columns":["time","v"],"values":[[1,2.5]]}]}]}`)
		})
		var rows int
		err := newQLClient(t, cfg).Query(ctx, `SELECT 1`, func(s *Series) error { rows += len(s.Values); return nil })
		if err != nil || rows != 1 || calls.Load() != 2 {
			t.Fatalf("err %v rows %d calls %d", err, rows, calls.Load())
		}
	})
	t.Run("a stalled answer times out", func(t *testing.T) {
		cfg := fakeQuery(t, "1.8.3", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"results":[{"statement_id":0,"series":[`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		cfg.MaxRetries = -1
		err := newQLClient(t, cfg).Query(ctx, `SELECT 1`, func(*Series) error { return nil })
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no data for") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("an oversized chunk is refused", func(t *testing.T) {
		cfg := fakeQuery(t, "1.8.3", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"results":[{"statement_id":0,"series":[{"name":"%s"}]}]}`, strings.Repeat("x", 4096))
		})
		cfg.MaxChunkBytes = 1024
		err := newQLClient(t, cfg).Query(ctx, `SELECT 1`, func(*Series) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "exceeds 1024 bytes") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAPIFromPing(t *testing.T) {
	for _, tc := range []struct {
		version, build string
		want           API
	}{{"1.8.3", "OSS", APIV1}, {"unknown", "OSS", APIV1}, {"v2.7.10", "OSS", APIV2}, {"3.0.1", "Core", APIV3}, {"", "Enterprise", APIV3}} {
		h := http.Header{}
		h.Set("X-Influxdb-Version", tc.version)
		h.Set("X-Influxdb-Build", tc.build)
		if got := apiFromPing(h); got != tc.want {
			t.Errorf("%s/%s: got %s, want %s", tc.version, tc.build, got, tc.want)
		}
	}
}
