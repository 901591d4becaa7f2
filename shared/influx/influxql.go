package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/flexipack/cutover/shared/redact"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flexipack/cutover/shared/retry"
)

// This file is the InfluxQL client: the one read path of the project. It
// speaks the v1 query API (GET or POST /query) that InfluxDB 1.x serves
// natively, 2.x serves through DBRP mappings and 3.x serves as its
// v1-compatible endpoint, with epoch=ms and chunked JSON, decoded one chunk
// at a time so that a result of any size streams through bounded memory.
//
// Queries must stay inside the InfluxQL 3.x supports: no SHOW DATABASES,
// SLIMIT/SOFFSET, SHOW SERIES or INTEGRAL. Name measurements without a
// database or retention policy prefix: the Client passes db and rp as
// parameters, which every version understands.

// Defaults of the query-side Config fields left zero.
const (
	DefaultQueryTimeout  = 10 * time.Minute
	DefaultChunkSize     = 10000
	DefaultMaxChunkBytes = 64 << 20
	// getLimit is the longest query sent with GET; longer ones are POSTed
	// as a form, which every version accepts for SELECT.
	getLimit = 4 << 10
)

// ErrUnauthorized means InfluxDB refused the credentials (401 or 403).
var ErrUnauthorized = errors.New("influxdb refused the credentials")

// ErrNoDBRP means InfluxDB 2.x has no DBRP mapping for the database and
// retention policy a query names, so InfluxQL cannot find the bucket. The
// *QueryError wrapping it says how to create the mapping.
var ErrNoDBRP = errors.New("no DBRP mapping")

// QueryError is InfluxDB refusing a query it received: a syntax error, an
// unknown database or measurement, a type error, a missing DBRP mapping.
// Retrying the same query does not help. Test with errors.As.
type QueryError struct {
	Status    int    // the HTTP status (200 when the error came in the results)
	Statement int    // the statement's index in the query
	Message   string // InfluxDB's message
	Query     string // the query, cut to 200 bytes
	Hint      string // what to do about it, when known
	wrapped   error
}

// Error names the query and InfluxDB's message.
func (e *QueryError) Error() string {
	msg := fmt.Sprintf("influxql: %s (query %q)", e.Message, e.Query)
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

// Unwrap returns ErrNoDBRP or ErrUnauthorized where they apply.
func (e *QueryError) Unwrap() error { return e.wrapped }

// Series is one chunk of one series of a query's result. A series larger
// than the chunk size comes as several Series with the same Name and Tags
// (the earlier ones with Partial set). Values are as encoding/json decodes
// them with UseNumber: json.Number for numbers (the time column, with
// epoch=ms, is an integer of milliseconds), string, bool or nil; from a
// 1.x server, which answers MessagePack, numbers are int64 (uint64 past
// its range) or float64 instead. Use Int64, Float64 and String to convert
// them.
type Series struct {
	Statement int               `json:"-"`
	Name      string            `json:"name"`
	Tags      map[string]string `json:"tags"`
	Columns   []string          `json:"columns"`
	Values    [][]any           `json:"values"`
	Partial   bool              `json:"partial"`
}

// Col returns the index of column name, or -1.
func (s *Series) Col(name string) int {
	for i, c := range s.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Int64 converts a decoded value to an integer: a json.Number without
// fraction, or one with a zero fraction (InfluxDB writes the float 12.0 as 12).
func Int64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("value %d is out of the int64 range", x)
		}
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, fmt.Errorf("value %v is not an integer", x)
		}
		return int64(x), nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("value %v is %T, want a number", v, v)
	}
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || f != float64(int64(f)) {
		return 0, fmt.Errorf("value %s is not an integer", n)
	}
	return int64(f), nil
}

// Float64 converts a decoded value to a float.
func Float64(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("value %v is %T, want a number", v, v)
	}
	return n.Float64()
}

// String converts a decoded value to a string; nil becomes "".
func String(v any) (string, error) {
	switch s := v.(type) {
	case string:
		return s, nil
	case nil:
		return "", nil
	default:
		return "", fmt.Errorf("value %v is %T, want a string", v, v)
	}
}

// QuoteIdent quotes s as an InfluxQL identifier ("measurement", "tag key").
// InfluxQL's scanner knows four escapes in quoted names and strings: \\, \",
// \' and \n; a raw newline ends the token, so it must be escaped too.
func QuoteIdent(s string) string { return quote(s, '"') }

// QuoteString quotes s as an InfluxQL string literal ('tag value').
func QuoteString(s string) string { return quote(s, '\'') }

func quote(s string, q byte) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(q)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// TimeLiteral formats t as an InfluxQL time literal (RFC 3339, UTC, to the
// nanosecond), for WHERE time >= … clauses.
func TimeLiteral(t time.Time) string { return "'" + t.UTC().Format(time.RFC3339Nano) + "'" }

// Client runs InfluxQL queries against one database of one InfluxDB. It is
// safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client

	mu  sync.Mutex
	api API // resolved from cfg.API, APIAuto until Ping resolved it
}

// NewClient returns a Client for cfg. It does not contact InfluxDB: the
// first query (or Ping) does, and on --influx-api auto learns the version.
func NewClient(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hc, err := cfg.httpClient()
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, http: hc, api: cfg.API}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Database returns the database (and retention policy, "" for the
// default) the client queries.
func (c *Client) Database() (db, rp string) { return c.cfg.Database, c.cfg.RetentionPolicy }

// Query runs q (one or more statements separated by ';') and calls fn with
// each chunk of each series as it arrives. InfluxDB's answer is read one
// chunk at a time (chunked=true, Config.ChunkSize rows per chunk), so memory
// stays bounded by a chunk whatever the result's size; a chunk larger than
// Config.MaxChunkBytes is an error. fn must not keep the Series.
//
// Errors: a *QueryError when InfluxDB refused the query (wrapping ErrNoDBRP
// for a missing 2.x DBRP mapping, ErrUnauthorized for refused credentials);
// an error wrapping ErrUnavailable when InfluxDB could not be reached or
// kept failing (retried like writes, but only before fn saw any data); an
// error from fn is returned as is and stops the query.
func (c *Client) Query(ctx context.Context, q string, fn func(*Series) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.QueryTimeout)
	defer cancel()
	delivered := false
	track := func(s *Series) error { delivered = true; return fn(s) }
	bo := newBackoff(c.cfg)
	for attempt := 0; ; attempt++ {
		api, err := c.resolveAPI(ctx)
		if err != nil {
			err = &unavailableError{err: err}
		} else {
			err = c.queryOnce(ctx, api, q, track)
		}
		var ue *unavailableError
		if err == nil || !errors.As(err, &ue) {
			return err
		}
		if delivered || attempt >= c.cfg.MaxRetries || ctx.Err() != nil {
			return fmt.Errorf("influxql: query %q at %s after %d attempt(s): %w: %w", cut(q), redact.URL(c.cfg.URL), attempt+1, ErrUnavailable, redact.Error(ue.err))
		}
		if err := retry.Sleep(ctx, nextWait(bo, ue.retryAfter)); err != nil {
			return fmt.Errorf("influxql: query %q: %w", cut(q), err)
		}
	}
}

// unavailableError is a failure worth retrying: transport errors, 429, 5xx.
type unavailableError struct {
	err        error
	retryAfter time.Duration
}

func (e *unavailableError) Error() string { return e.err.Error() }

func (c *Client) newQueryRequest(ctx context.Context, api API, q string) (*http.Request, error) {
	params := url.Values{}
	params.Set("db", c.cfg.Database)
	if c.cfg.RetentionPolicy != "" {
		params.Set("rp", c.cfg.RetentionPolicy)
	}
	params.Set("epoch", "ms")
	params.Set("chunked", "true")
	params.Set("chunk_size", strconv.Itoa(c.cfg.ChunkSize))
	var req *http.Request
	var err error
	if len(q) <= getLimit {
		params.Set("q", q)
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL+"/query?"+params.Encode(), nil)
	} else {
		form := url.Values{"q": {q}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL+"/query?"+params.Encode(), strings.NewReader(form.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("influxql: build request: %w", err)
	}
	if api == APIV1 {
		// 1.x answers MessagePack at about half its JSON cost; a server
		// that answers JSON anyway is read as JSON (see queryOnce).
		req.Header.Set("Accept", mediaMsgpack+", application/json;q=0.9")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if !c.cfg.GzipQueries {
		// Set explicitly, or net/http asks for gzip on our behalf.
		req.Header.Set("Accept-Encoding", "identity")
	}
	c.cfg.authorize(req, api)
	return req, nil
}

func (c *Client) queryOnce(ctx context.Context, api API, q string, fn func(*Series) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := c.newQueryRequest(ctx, api, q)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &unavailableError{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.statusError(resp, api, q)
	}
	// A server that stops sending mid-answer would hold the query until
	// QueryTimeout: Timeout also bounds the wait for each read.
	body := newIdleReader(resp.Body, c.cfg.Timeout, cancel)
	defer body.stop()
	lim := &chunkLimit{r: body, max: c.cfg.MaxChunkBytes}
	var dec answerDecoder = newChunkDecoder(lim)
	if isMsgpack(resp.Header) {
		dec = newMsgpackDecoder(lim, c.cfg.MaxChunkBytes)
	}
	for {
		var chunk queryResponse
		lim.reset()
		if err := dec.next(&chunk); err == io.EOF {
			return nil
		} else if err != nil {
			if lim.exceeded() {
				return fmt.Errorf("influxql: query %q: one chunk of the answer exceeds %d bytes (lower the chunk size)", cut(q), c.cfg.MaxChunkBytes)
			}
			if body.timedOut() {
				return &unavailableError{err: fmt.Errorf("no data for %s while reading the answer", c.cfg.Timeout)}
			}
			return &unavailableError{err: fmt.Errorf("decode answer: %w", err)}
		}
		if chunk.Error != "" {
			return c.queryError(http.StatusOK, 0, chunk.Error, api, q)
		}
		for _, res := range chunk.Results {
			if res.Error != "" {
				return c.queryError(http.StatusOK, res.StatementID, res.Error, api, q)
			}
			for i := range res.Series {
				res.Series[i].Statement = res.StatementID
				if err := fn(&res.Series[i]); err != nil {
					return err
				}
			}
		}
	}
}

// answerDecoder reads a /query answer object by object: JSON
// (chunkDecoder) or 1.x's MessagePack (msgpackDecoder).
type answerDecoder interface {
	next(out *queryResponse) error
}

func isMsgpack(h http.Header) bool {
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), mediaMsgpack)
}

// queryResponse is one object of a (chunked) /query answer.
type queryResponse struct {
	Results []result `json:"results"`
	Error   string   `json:"error"`
}

// result is one statement's part of a queryResponse.
type result struct {
	StatementID int      `json:"statement_id"`
	Series      []Series `json:"series"`
	Error       string   `json:"error"`
}

// statusError turns a non-200 answer into a typed error.
func (c *Client) statusError(resp *http.Response, api API, q string) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var msg string
	if isMsgpack(resp.Header) {
		msg = msgpackError(raw)
	} else {
		msg = errorMessage(raw)
	}
	if msg == "" {
		msg = resp.Status
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return &unavailableError{err: fmt.Errorf("%s: %s", resp.Status, msg), retryAfter: retryAfter(resp.Header)}
	default:
		return c.queryError(resp.StatusCode, 0, msg, api, q)
	}
}

// errorMessage extracts the message of a 1.x ({"error": …}) or 2.x/3.x
// ({"code": …, "message": …}) error body.
func errorMessage(raw []byte) string {
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &body) == nil {
		if body.Error != "" {
			return body.Error
		}
		if body.Message != "" {
			return body.Message
		}
	}
	return strings.TrimSpace(string(bytes.ToValidUTF8(raw, nil)))
}

func (c *Client) queryError(status, stmt int, msg string, api API, q string) error {
	e := &QueryError{Status: status, Statement: stmt, Message: msg, Query: cut(q)}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.wrapped = ErrUnauthorized
		e.Hint = "check --influx-token (1.x: user:password; 2.x and 3.x: an API token with read access)"
	case api == APIV2 && noDBRP(status, msg):
		e.wrapped = ErrNoDBRP
		rp := c.cfg.RetentionPolicy
		if rp == "" {
			rp = "autogen"
		}
		e.Hint = fmt.Sprintf("InfluxDB 2.x answers InfluxQL only through a DBRP mapping of database %q, retention policy %q to a bucket; create it with: influx v1 dbrp create --db %s --rp %s --bucket-id <bucket-id> --default",
			c.cfg.Database, rp, c.cfg.Database, rp)
	}
	return e
}

// noDBRP reports whether a 2.x answer means the DBRP mapping is missing:
// 2.x's shard mapper answers "retention policy not found", its handlers
// "no dbrp mapping found" or "unable to find DBRP" with 404.
func noDBRP(status int, msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "retention policy not found") || strings.Contains(m, "dbrp") ||
		strings.Contains(m, "database not found") || status == http.StatusNotFound
}

func cut(q string) string {
	if len(q) > 200 {
		return q[:200] + "…"
	}
	return q
}

// chunkLimit fails reads once more than max bytes were read since the last
// reset, bounding the memory one decoded chunk can take.
type chunkLimit struct {
	r    io.Reader
	n    int64
	max  int64
	over bool
}

func (l *chunkLimit) reset()         { l.n = 0 }
func (l *chunkLimit) exceeded() bool { return l.over }

func (l *chunkLimit) Read(p []byte) (int, error) {
	if l.n >= l.max {
		l.over = true
		return 0, errors.New("chunk too large")
	}
	if int64(len(p)) > l.max-l.n {
		p = p[:l.max-l.n]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// idleReader cancels the request when one Read waits longer than d.
type idleReader struct {
	r     io.Reader
	d     time.Duration
	timer *time.Timer
	mu    sync.Mutex
	fired bool
}

func newIdleReader(r io.Reader, d time.Duration, cancel context.CancelFunc) *idleReader {
	ir := &idleReader{r: r, d: d}
	ir.timer = time.AfterFunc(d, func() {
		ir.mu.Lock()
		ir.fired = true
		ir.mu.Unlock()
		cancel()
	})
	ir.timer.Stop()
	return ir
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.timer.Reset(r.d)
	n, err := r.r.Read(p)
	r.timer.Stop()
	return n, err
}

func (r *idleReader) stop() { r.timer.Stop() }

func (r *idleReader) timedOut() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fired
}
