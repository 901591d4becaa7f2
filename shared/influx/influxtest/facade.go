// Package influxtest puts the documented HTTP surface of InfluxDB 2.x or
// 3.x in front of a real InfluxDB 1.8, so that the store's tests run
// against each API generation without those servers (they do not build
// here). It is a test double of the protocol, not of the storage: every
// point is stored and every InfluxQL query answered by the real 1.8.
//
// InfluxDB 2.x (OSS 2.7) surface:
//   - GET /ping: 204, X-Influxdb-Version v2.7.11, X-Influxdb-Build OSS.
//   - Every other endpoint needs "Authorization: Token <token>"; else 401
//     {"code":"unauthorized","message":"unauthorized access"}.
//   - POST /api/v2/write?org=&bucket=&precision=: 204; an unknown org or
//     bucket 404 {"code":"not found","message":"bucket \"b\" not found"};
//     a partial write (field type conflict) 422 {"code":"unprocessable
//     entity","message":"failure writing points to database: partial
//     write: … dropped=N"}; an unparsable line 400 {"code":"invalid",…}.
//   - GET|POST /query (v1 compatibility, InfluxQL): db and rp resolve
//     through DBRP mappings (rp empty: the mapping marked default); no
//     mapping answers 200 with the statement error "retention policy not
//     found: <rp>", as 2.x's shard mapper does.
//   - /write (v1 compatibility) is not offered: the store writes v2.
//
// InfluxDB 3 Core surface:
//   - GET /ping: 200 {"version":"3.1.0","revision":"…"} with
//     X-Influxdb-Version 3.1.0, X-Influxdb-Build Core; needs the token.
//   - "Authorization: Token <token>" or "Bearer <token>"; else 401.
//   - POST /api/v3/write_lp?db=&precision=&no_sync=&accept_partial=: 204;
//     precision must be auto, nanosecond, microsecond, millisecond or
//     second, else 400; refused lines (accept_partial true, the default)
//     400 {"error":"partial write of line protocol occurred","data":[
//     {"original_line":…,"line_number":N,"error_message":…}]} with the
//     other lines stored; an unknown database 404.
//   - GET|POST /query (v1 compatibility, InfluxQL) with db (the database)
//     and rp ignored.
//   - No Flux: /api/v2/query answers 404.
package influxtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the InfluxDB generation a Facade presents.
type Version int

// The generations a Facade can present.
const (
	V2 Version = 2
	V3 Version = 3
)

// DBRP maps a 2.x database and retention policy to a bucket.
type DBRP struct {
	Database, RetentionPolicy, Bucket string
	Default                           bool
}

// Facade is an InfluxDB 2.x or 3.x HTTP surface over a real 1.8.
type Facade struct {
	Version Version
	URL     string // the facade's base URL
	Token   string // the one token it accepts
	Org     string // 2.x: the one organisation

	backend string // the 1.8 base URL
	client  *http.Client

	mu      sync.Mutex
	buckets map[string]string // 2.x bucket name → 1.8 "db/rp"; 3.x database → 1.8 db
	dbrps   []DBRP
	writes  []url.Values // the query parameters of every write, for assertions
}

// New starts a facade presenting version in front of the 1.8 at backend
// and stops it when t ends.
func New(t testing.TB, version Version, backend string) *Facade {
	t.Helper()
	f := &Facade{Version: version, Token: "test-token-" + fmt.Sprint(time.Now().UnixNano()), Org: "flexipack",
		backend: strings.TrimRight(backend, "/"), client: &http.Client{Timeout: time.Minute}, buckets: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// AddBucket makes a 2.x bucket (or a 3.x database) named name that stores
// into the 1.8 database db (retention policy autogen).
func (f *Facade) AddBucket(name, db string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buckets[name] = db
}

// AddDBRP adds a 2.x DBRP mapping.
func (f *Facade) AddDBRP(m DBRP) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dbrps = append(f.dbrps, m)
}

// Writes returns the query parameters of the writes received so far.
func (f *Facade) Writes() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.writes...)
}

// ServeHTTP routes a request as the presented version would.
func (f *Facade) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.Version == V2 {
		w.Header().Set("X-Influxdb-Version", "v2.7.11")
		w.Header().Set("X-Influxdb-Build", "OSS")
	} else {
		w.Header().Set("X-Influxdb-Version", "3.1.0")
		w.Header().Set("X-Influxdb-Build", "Core")
	}
	if r.URL.Path == "/ping" && f.Version == V2 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !f.authorized(r) {
		f.fail(w, http.StatusUnauthorized, "unauthorized", "unauthorized access")
		return
	}
	switch {
	case r.URL.Path == "/ping":
		writeJSON(w, http.StatusOK, map[string]string{"version": "3.1.0", "revision": "facade"})
	case r.URL.Path == "/query":
		f.query(w, r)
	case r.URL.Path == "/api/v2/write" && f.Version == V2:
		f.writeV2(w, r)
	case r.URL.Path == "/api/v3/write_lp" && f.Version == V3:
		f.writeV3(w, r)
	default:
		f.fail(w, http.StatusNotFound, "not found", "path not found")
	}
}

func (f *Facade) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if h == "Token "+f.Token {
		return true
	}
	return f.Version == V3 && h == "Bearer "+f.Token
}

// fail answers an error in the version's body shape.
func (f *Facade) fail(w http.ResponseWriter, status int, code, msg string) {
	if f.Version == V2 {
		writeJSON(w, status, map[string]string{"code": code, "message": msg})
		return
	}
	writeJSON(w, status, map[string]any{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// query resolves db/rp as the version does and forwards to 1.8.
func (f *Facade) query(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.fail(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	params := url.Values{}
	for k, v := range r.Form {
		params[k] = v
	}
	db, rp := params.Get("db"), params.Get("rp")
	target, ok := f.resolve(db, rp)
	if !ok {
		if f.Version == V2 {
			writeJSON(w, http.StatusOK, map[string]any{"results": []any{map[string]any{"statement_id": 0, "error": "retention policy not found: " + rp}}})
		} else {
			f.fail(w, http.StatusNotFound, "not found", fmt.Sprintf("database not found: %s", db))
		}
		return
	}
	tdb, trp, _ := strings.Cut(target, "/")
	params.Set("db", tdb)
	params.Del("rp")
	if trp != "" {
		params.Set("rp", trp)
	}
	f.forward(w, r, http.MethodPost, "/query", params, strings.NewReader(""))
}

// resolve maps a query's db and rp to a 1.8 "db/rp".
func (f *Facade) resolve(db, rp string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Version == V3 {
		target, ok := f.buckets[db]
		return target, ok
	}
	for _, m := range f.dbrps {
		if m.Database == db && (m.RetentionPolicy == rp || rp == "" && m.Default) {
			target, ok := f.buckets[m.Bucket]
			return target, ok
		}
	}
	return "", false
}

// forward sends a request to 1.8 and copies its answer.
func (f *Facade) forward(w http.ResponseWriter, r *http.Request, method, path string, params url.Values, body io.Reader) {
	req, err := http.NewRequestWithContext(r.Context(), method, f.backend+path+"?"+params.Encode(), body)
	if err != nil {
		f.fail(w, http.StatusInternalServerError, "internal error", err.Error())
		return
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.fail(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(flushWriter{w}, resp.Body)
}

type flushWriter struct{ w http.ResponseWriter }

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fl, ok := fw.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// write18 writes line protocol to 1.8 and returns its status and error.
func (f *Facade) write18(r *http.Request, target string, body []byte) (int, string, error) {
	db, rp, _ := strings.Cut(target, "/")
	params := url.Values{"db": {db}, "precision": {"ms"}}
	if rp != "" {
		params.Set("rp", rp)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, f.backend+"/write?"+params.Encode(), bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Error, nil
}

func (f *Facade) record(q url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, q)
}

// writeV2 is 2.x's /api/v2/write.
func (f *Facade) writeV2(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.record(q)
	if q.Get("org") != f.Org {
		f.fail(w, http.StatusNotFound, "not found", fmt.Sprintf("organization name %q not found", q.Get("org")))
		return
	}
	if p := q.Get("precision"); p != "ms" {
		f.fail(w, http.StatusBadRequest, "invalid", fmt.Sprintf("precision %q: the facade stores milliseconds only", p))
		return
	}
	f.mu.Lock()
	target, ok := f.buckets[q.Get("bucket")]
	f.mu.Unlock()
	if !ok {
		f.fail(w, http.StatusNotFound, "not found", fmt.Sprintf("bucket %q not found", q.Get("bucket")))
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	status, msg, err := f.write18(r, target, body)
	switch {
	case err != nil:
		f.fail(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	case status/100 == 2:
		w.WriteHeader(http.StatusNoContent)
	case strings.Contains(msg, "partial write"):
		f.fail(w, http.StatusUnprocessableEntity, "unprocessable entity", "failure writing points to database: "+msg)
	case status == http.StatusBadRequest:
		f.fail(w, http.StatusBadRequest, "invalid", msg)
	default:
		f.fail(w, status, "internal error", msg)
	}
}

// writeV3 is 3.x's /api/v3/write_lp: it finds the refused lines by writing
// them one at a time to 1.8 when 1.8 refuses the batch (1.8 has stored the
// others already; writing them again is idempotent).
func (f *Facade) writeV3(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.record(q)
	switch q.Get("precision") {
	case "", "auto", "nanosecond", "microsecond", "millisecond", "second":
	default:
		f.fail(w, http.StatusBadRequest, "invalid", fmt.Sprintf("invalid precision %q", q.Get("precision")))
		return
	}
	if q.Get("precision") != "millisecond" {
		f.fail(w, http.StatusBadRequest, "invalid", "the facade stores milliseconds only: want precision=millisecond")
		return
	}
	f.mu.Lock()
	target, ok := f.buckets[q.Get("db")]
	f.mu.Unlock()
	if !ok {
		f.fail(w, http.StatusNotFound, "not found", fmt.Sprintf("database not found: %s", q.Get("db")))
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	status, _, err := f.write18(r, target, body)
	if err != nil {
		f.fail(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	if status/100 == 2 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	type rejected struct {
		Line    string `json:"original_line"`
		Number  int    `json:"line_number"`
		Message string `json:"error_message"`
	}
	var bad []rejected
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if st, msg, err := f.write18(r, target, []byte(line+"\n")); err == nil && st/100 != 2 {
			bad = append(bad, rejected{Line: line, Number: n, Message: msg})
		}
	}
	if len(bad) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": "partial write of line protocol occurred", "data": bad})
}
