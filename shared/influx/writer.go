package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/redact"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/telemetry"
)

// ErrUnavailable means InfluxDB could not take a write (or answer a query):
// it did not answer, kept answering 429/5xx or timing out after all retries,
// or refused the request as a whole (authentication, unknown bucket). Test
// with errors.Is; the wrapped error says what happened.
var ErrUnavailable = errors.New("influxdb unavailable")

// Rejected is one record InfluxDB refused.
type Rejected struct {
	Index  int           // index into the records given to Write
	Key    telemetry.Key // the reading's identity
	Reason string        // InfluxDB's message, e.g. a field type conflict
}

// PartialError is returned by Write when InfluxDB refused some records (a
// field type conflict, an unparsable line, a point outside the retention
// policy) and accepted all the others. Test with errors.As.
type PartialError struct {
	Rejected []Rejected // in index order
}

// Error summarises the rejected records, naming the first.
func (e *PartialError) Error() string {
	if len(e.Rejected) == 0 {
		return "influx: no records rejected"
	}
	r := e.Rejected[0]
	msg := fmt.Sprintf("influx: %d record(s) rejected; first: record %d (unit %q, time %s): %s",
		len(e.Rejected), r.Index, r.Key.Unit, time.UnixMilli(r.Key.TimeMs).UTC().Format("2006-01-02T15:04:05.000Z"), r.Reason)
	return msg
}

// Writer writes records to InfluxDB as line protocol with millisecond
// timestamps, to the endpoint of the API generation: 1.x /write (db, rp;
// Basic auth from user:password), 2.x /api/v2/write (org, bucket; Token),
// 3.x /api/v3/write_lp (db; Token; no_sync=false, so InfluxDB answers only
// once the write-ahead log has the points). It is safe for concurrent use.
type Writer struct {
	cfg     Config
	client  *Client // the HTTP client and the API generation (auto: /ping)
	logger  *slog.Logger
	metrics *Metrics
	// sleep waits between retries; tests replace it to observe delays.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewWriter returns a Writer for cfg. It does not contact InfluxDB: use Ping.
func NewWriter(cfg Config, logger *slog.Logger) (*Writer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{
		cfg:     client.cfg,
		client:  client,
		logger:  logger,
		metrics: NewMetrics(nil),
		sleep:   retry.Sleep,
	}, nil
}

// WithMetrics registers the writer's metrics with reg and returns w.
func (w *Writer) WithMetrics(reg prometheus.Registerer) *Writer {
	w.metrics = NewMetrics(reg)
	return w
}

// Metrics returns the writer's metrics.
func (w *Writer) Metrics() *Metrics { return w.metrics }

// Ping checks that InfluxDB answers on /ping (and, on --influx-api auto,
// learns its version).
func (w *Writer) Ping(ctx context.Context) error {
	_, err := w.client.Ping(ctx)
	return err
}

// Close releases the client's connections.
func (w *Writer) Close() { w.client.Close() }

// Bucket returns the bucket the writer writes to.
func (w *Writer) Bucket() string { return w.cfg.Bucket }

// encoded is a batch of records as line protocol, with where each record's
// lines end, so that any run of records can be re-sent without re-encoding.
type encoded struct {
	buf   []byte
	ends  []int // ends[i]: offset after record i's lines
	lines []int // lines[i]: number of lines of record i
}

// bufPool recycles encoding buffers (a 5000-record batch is ~2 MB). Safe
// because the client is handed a string copy, never the buffer itself.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

func encode(recs []telemetry.Record) *encoded {
	bp := bufPool.Get().(*[]byte)
	e := &encoded{
		buf:   (*bp)[:0],
		ends:  make([]int, len(recs)),
		lines: make([]int, len(recs)),
	}
	for i := range recs {
		start := len(e.buf)
		e.buf = telemetry.AppendLineProtocol(e.buf, &recs[i])
		e.ends[i] = len(e.buf)
		e.lines[i] = bytes.Count(e.buf[start:], []byte{'\n'})
	}
	return e
}

// release returns the buffer to the pool; e must not be used afterwards.
func (e *encoded) release() {
	buf := e.buf[:0]
	e.buf = nil
	bufPool.Put(&buf)
}

func (e *encoded) body(lo, hi int) []byte {
	start := 0
	if lo > 0 {
		start = e.ends[lo-1]
	}
	return e.buf[start:e.ends[hi-1]]
}

func (e *encoded) lineCount(lo, hi int) int {
	n := 0
	for _, l := range e.lines[lo:hi] {
		n += l
	}
	return n
}

// Write writes recs as line protocol, in requests of up to BatchLines lines,
// and returns once InfluxDB has accepted them. Retryable failures (429, 5xx,
// network errors, time-outs) are retried with exponential back-off, honouring
// Retry-After. A request InfluxDB refuses in part or whole because of its
// points (400 "partial write", a field type conflict, 413, 422) is split in
// halves until the refused records are isolated; all the others are written
// and Write returns a *PartialError naming the refused ones. InfluxDB 1.8
// already stores the good points of a partially refused request: the
// re-writes of the halves are idempotent (same points, same timestamps).
//
// Any other failure returns an error wrapping ErrUnavailable (and the
// client's error); when ctx ends first, the error wraps ctx.Err() instead.
// Either way the records of earlier requests of the same call may have been
// written, and writing them again is harmless.
func (w *Writer) Write(ctx context.Context, recs []telemetry.Record) error {
	if len(recs) == 0 {
		return nil
	}
	enc := encode(recs)
	defer enc.release()
	var rejected []Rejected
	for lo := 0; lo < len(recs); {
		hi, lines := lo, 0
		for hi < len(recs) && (hi == lo || lines+enc.lines[hi] <= w.cfg.BatchLines) {
			lines += enc.lines[hi]
			hi++
		}
		if err := w.writeRange(ctx, recs, enc, lo, hi, &rejected); err != nil {
			return err
		}
		lo = hi
	}
	if len(rejected) > 0 {
		w.metrics.Rejected.Add(float64(len(rejected)))
		return &PartialError{Rejected: rejected}
	}
	return nil
}

// WriteLines writes line protocol that is not records (the rollups), with
// millisecond timestamps, in requests of at most BatchLines lines, retried
// like Write. lines must end with a newline. A refused point is an error
// (naming InfluxDB's reason): such lines are a bug of their writer, not
// bad input.
func (w *Writer) WriteLines(ctx context.Context, lines []byte) error {
	for len(lines) > 0 {
		end, n := 0, 0
		for end < len(lines) && n < w.cfg.BatchLines {
			i := bytes.IndexByte(lines[end:], '\n')
			if i < 0 {
				end = len(lines)
				break
			}
			end += i + 1
			n++
		}
		if err := w.send(ctx, lines[:end]); err != nil {
			var ref *refusal
			if errors.As(err, &ref) {
				return fmt.Errorf("influx: write to %s: points refused: %s", w.cfg.Bucket, ref.msg)
			}
			return err
		}
		w.metrics.Points.Add(float64(n))
		lines = lines[end:]
	}
	return nil
}

// writeRange writes records [lo, hi), bisecting when InfluxDB refuses points.
func (w *Writer) writeRange(ctx context.Context, recs []telemetry.Record, enc *encoded, lo, hi int, rejected *[]Rejected) error {
	lines := enc.lineCount(lo, hi)
	err := w.send(ctx, enc.body(lo, hi))
	if err == nil {
		w.metrics.Points.Add(float64(lines))
		w.metrics.Records.Add(float64(hi - lo))
		return nil
	}
	var ref *refusal
	if !errors.As(err, &ref) {
		return err
	}
	if len(ref.lines) > 0 {
		// 3.x names the refused lines and stored all the others.
		w.rejectLines(recs, enc, lo, hi, ref, rejected)
		return nil
	}
	// Every line dropped (1.8 says so with dropped=N): the whole range is
	// refused; no need to bisect to learn that.
	if hi-lo == 1 || (ref.dropped > 0 && ref.dropped >= lines) {
		for i := lo; i < hi; i++ {
			*rejected = append(*rejected, Rejected{Index: i, Key: recs[i].Key(), Reason: ref.msg})
		}
		if hi-lo > 1 {
			w.logger.Warn("influx refused every point of a batch", "records", hi-lo, "reason", ref.msg)
		}
		return nil
	}
	w.metrics.Splits.Inc()
	mid := lo + (hi-lo)/2
	if err := w.writeRange(ctx, recs, enc, lo, mid, rejected); err != nil {
		return err
	}
	return w.writeRange(ctx, recs, enc, mid, hi, rejected)
}

// rejectLines records as rejected the records of [lo, hi) owning the
// lines 3.x refused, and counts the others as written.
func (w *Writer) rejectLines(recs []telemetry.Record, enc *encoded, lo, hi int, ref *refusal, rejected *[]Rejected) {
	bad := map[int]bool{}
	for _, l := range ref.lines {
		bad[l] = true
	}
	line, written, points := 1, 0, 0
	for i := lo; i < hi; i++ {
		refused := false
		for k := 0; k < enc.lines[i]; k++ {
			refused = refused || bad[line+k]
		}
		line += enc.lines[i]
		if refused {
			*rejected = append(*rejected, Rejected{Index: i, Key: recs[i].Key(), Reason: ref.msg})
			continue
		}
		written++
		points += enc.lines[i]
	}
	w.metrics.Points.Add(float64(points))
	w.metrics.Records.Add(float64(written))
}

// refusal is InfluxDB refusing some or all points of a request because of
// the points themselves.
type refusal struct {
	status  int
	msg     string
	dropped int   // 1.8's dropped=N, 0 when not given
	lines   []int // 3.x: the refused lines (1-based), the others are stored
}

// Error describes the refusal.
func (r *refusal) Error() string { return fmt.Sprintf("influx: %d: %s", r.status, r.msg) }

var droppedRE = regexp.MustCompile(`dropped=(\d+)`)

// send writes one request body, retrying retryable failures.
func (w *Writer) send(ctx context.Context, body []byte) error {
	bo := newBackoff(w.cfg)
	for attempt := 0; ; attempt++ {
		start := time.Now()
		// On --influx-api auto the version comes from /ping, asked until
		// it answers: an InfluxDB that is down is retried like a write.
		api, err := w.client.resolveAPI(ctx)
		var c *failure
		if err != nil {
			c = &failure{msg: err.Error(), retryable: true, reason: "network"}
		} else {
			c = w.post(ctx, api, body)
		}
		elapsed := time.Since(start).Seconds()
		if c == nil {
			w.metrics.RequestSeconds.WithLabelValues("ok").Observe(elapsed)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("influx: write to %s: %w", w.cfg.Bucket, ctx.Err())
		}
		switch {
		case c.refused:
			w.metrics.RequestSeconds.WithLabelValues("rejected").Observe(elapsed)
			ref := &refusal{status: c.status, msg: c.msg, lines: c.lines}
			if m := droppedRE.FindStringSubmatch(c.msg); m != nil {
				ref.dropped, _ = strconv.Atoi(m[1])
			}
			return ref
		case c.retryable && attempt < w.cfg.MaxRetries:
			w.metrics.RequestSeconds.WithLabelValues("retry").Observe(elapsed)
			w.metrics.Retries.WithLabelValues(c.reason).Inc()
			d := nextWait(bo, c.retryAfter)
			w.logger.Warn("influx write failed, retrying", "bucket", w.cfg.Bucket, "reason", c.reason, "error", redact.String(c.msg), "attempt", attempt+1, "delay", d)
			if err := w.sleep(ctx, d); err != nil {
				return fmt.Errorf("influx: write to %s: %w", w.cfg.Bucket, err)
			}
		default:
			w.metrics.RequestSeconds.WithLabelValues("error").Observe(elapsed)
			return fmt.Errorf("influx: write to %s at %s failed after %d attempt(s): %w: %s", w.cfg.Bucket, redact.URL(w.cfg.URL), attempt+1, ErrUnavailable, redact.String(c.msg))
		}
	}
}

// writeURL returns the write endpoint of api with its parameters:
// millisecond precision always (never "auto": a timestamp's digits must not
// decide its unit).
func (w *Writer) writeURL(api API) string {
	q := url.Values{}
	switch api {
	case APIV2:
		q.Set("org", w.cfg.Org)
		q.Set("bucket", w.cfg.Bucket)
		q.Set("precision", "ms")
		return w.cfg.URL + "/api/v2/write?" + q.Encode()
	case APIV3:
		q.Set("db", w.cfg.Database)
		q.Set("precision", "millisecond")
		q.Set("no_sync", "false")
		q.Set("accept_partial", "true")
		return w.cfg.URL + "/api/v3/write_lp?" + q.Encode()
	default:
		q.Set("db", w.cfg.Database)
		if w.cfg.RetentionPolicy != "" {
			q.Set("rp", w.cfg.RetentionPolicy)
		}
		q.Set("precision", "ms")
		return w.cfg.URL + "/write?" + q.Encode()
	}
}

// post sends one write request and classifies its outcome (nil: written).
func (w *Writer) post(ctx context.Context, api API, body []byte) *failure {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.writeURL(api), bytes.NewReader(body))
	if err != nil {
		return &failure{msg: err.Error()}
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	w.cfg.authorize(req, api)
	resp, err := w.client.http.Do(req)
	if err != nil {
		return classifyTransport(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return classifyStatus(api, resp.StatusCode, resp.Header, raw)
}

// failure is a classified write error.
type failure struct {
	status     int
	msg        string
	reason     string // metric label: status code, "timeout" or "network"
	refused    bool   // the points were refused: split to isolate them
	retryable  bool
	retryAfter time.Duration
	lines      []int // 3.x: the 1-based numbers of the refused lines
}

// classifyStatus sorts an HTTP answer into refused points, retryable, or
// final. Refused points: 1.x answers 400 ("partial write: … dropped=N",
// or an unparsable line), 2.x 422 (partial write) or 400 (unparsable),
// 3.x 400 with the list of refused lines; 413 is a body too large, split
// like a refusal. 429 and 5xx are retried (1.x answers 500 for write
// time-outs and a full cache; a write is idempotent, so retrying is safe).
func classifyStatus(api API, status int, h http.Header, raw []byte) *failure {
	f := &failure{status: status, reason: strconv.Itoa(status), msg: errorMessage(raw), retryAfter: retryAfter(h)}
	if f.msg == "" {
		f.msg = http.StatusText(status)
	}
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		f.refused = true
		if api == APIV3 {
			f.lines, f.msg = v3Rejected(raw, f.msg)
		}
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		f.retryable = true
	}
	return f
}

// v3Rejected reads 3.x's partial-write answer: {"error": …, "data": [{
// "original_line": …, "line_number": N, "error_message": …}, …]}.
func v3Rejected(raw []byte, msg string) ([]int, string) {
	var body struct {
		Error string `json:"error"`
		Data  []struct {
			Line    int    `json:"line_number"`
			Message string `json:"error_message"`
		} `json:"data"`
	}
	if json.Unmarshal(raw, &body) != nil || len(body.Data) == 0 {
		return nil, msg
	}
	lines := make([]int, 0, len(body.Data))
	for _, d := range body.Data {
		lines = append(lines, d.Line)
	}
	return lines, body.Data[0].Message
}

// classifyTransport sorts a transport error: every one is retryable.
func classifyTransport(err error) *failure {
	f := &failure{msg: err.Error(), retryable: true, reason: "network"}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		f.reason = "timeout"
	}
	if strings.TrimSpace(f.msg) == "" {
		f.msg = "unknown error"
	}
	return f
}
