package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	http2 "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/redact"
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

// Writer writes records to InfluxDB. It is safe for concurrent use.
type Writer struct {
	cfg     Config
	client  influxdb2.Client
	api     api.WriteAPIBlocking
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
	client := newClient(cfg)
	return &Writer{
		cfg:     cfg,
		client:  client,
		api:     client.WriteAPIBlocking(cfg.Org, cfg.Bucket),
		logger:  logger,
		metrics: NewMetrics(nil),
		sleep:   sleepCtx,
	}, nil
}

// newClient builds a client that writes with millisecond precision, without
// the client's own retries or logging, and with a connection pool sized for
// a few concurrent writers.
func newClient(cfg Config) influxdb2.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	opts := influxdb2.DefaultOptions().
		SetPrecision(time.Millisecond).
		SetLogLevel(0).
		SetMaxRetries(0).
		SetUseGZip(false).
		SetHTTPClient(&http.Client{Transport: tr, Timeout: cfg.Timeout + 5*time.Second})
	return influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
}

// WithMetrics registers the writer's metrics with reg and returns w.
func (w *Writer) WithMetrics(reg prometheus.Registerer) *Writer {
	w.metrics = NewMetrics(reg)
	return w
}

// Metrics returns the writer's metrics.
func (w *Writer) Metrics() *Metrics { return w.metrics }

// Ping checks that InfluxDB answers on /ping.
func (w *Writer) Ping(ctx context.Context) error {
	return ping(ctx, w.client, w.cfg)
}

func ping(ctx context.Context, c influxdb2.Client, cfg Config) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		return fmt.Errorf("influx: ping %s: %w: %w", redact.URL(cfg.URL), ErrUnavailable, err)
	}
	return nil
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

// refusal is InfluxDB refusing some or all points of a request because of
// the points themselves.
type refusal struct {
	status  int
	msg     string
	dropped int // 1.8's dropped=N, 0 when not given
}

// Error describes the refusal.
func (r *refusal) Error() string { return fmt.Sprintf("influx: %d: %s", r.status, r.msg) }

var droppedRE = regexp.MustCompile(`dropped=(\d+)`)

// send writes one request body, retrying retryable failures.
func (w *Writer) send(ctx context.Context, body []byte) error {
	data := string(body)
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		start := time.Now()
		err := w.api.WriteRecord(actx, data)
		cancel()
		elapsed := time.Since(start).Seconds()
		if err == nil {
			w.metrics.RequestSeconds.WithLabelValues("ok").Observe(elapsed)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("influx: write to %s: %w", w.cfg.Bucket, ctx.Err())
		}
		c := classify(err)
		switch {
		case c.refused:
			w.metrics.RequestSeconds.WithLabelValues("rejected").Observe(elapsed)
			ref := &refusal{status: c.status, msg: c.msg}
			if m := droppedRE.FindStringSubmatch(c.msg); m != nil {
				ref.dropped, _ = strconv.Atoi(m[1])
			}
			return ref
		case c.retryable && attempt < w.cfg.MaxRetries:
			w.metrics.RequestSeconds.WithLabelValues("retry").Observe(elapsed)
			w.metrics.Retries.WithLabelValues(c.reason).Inc()
			d := w.backoff(attempt, c.retryAfter)
			w.logger.Warn("influx write failed, retrying", "bucket", w.cfg.Bucket, "reason", c.reason, "error", c.msg, "attempt", attempt+1, "delay", d)
			if err := w.sleep(ctx, d); err != nil {
				return fmt.Errorf("influx: write to %s: %w", w.cfg.Bucket, err)
			}
		default:
			w.metrics.RequestSeconds.WithLabelValues("error").Observe(elapsed)
			return fmt.Errorf("influx: write to %s at %s failed after %d attempt(s): %w: %w", w.cfg.Bucket, redact.URL(w.cfg.URL), attempt+1, ErrUnavailable, err)
		}
	}
}

// backoff returns the delay before retry attempt+1: Retry-After when the
// server gave one, else RetryBase·2^attempt with jitter, capped at RetryMax.
func (w *Writer) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	d := w.cfg.RetryBase << min(attempt, 20)
	if d > w.cfg.RetryMax || d <= 0 {
		d = w.cfg.RetryMax
	}
	// Equal jitter: half fixed, half random, so writers restarted together
	// spread out without ever retrying immediately.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// failure is a classified write error.
type failure struct {
	status     int
	msg        string
	reason     string // metric label: status code, "timeout" or "network"
	refused    bool   // the points were refused: split to isolate them
	retryable  bool
	retryAfter time.Duration
}

// classify sorts a client error into refused points, retryable, or final.
func classify(err error) failure {
	f := failure{msg: err.Error()}
	var he *http2.Error
	if errors.As(err, &he) && he.StatusCode != 0 {
		f.status = he.StatusCode
		f.reason = strconv.Itoa(he.StatusCode)
		if he.Message != "" {
			f.msg = he.Message
		}
		f.retryAfter = time.Duration(he.RetryAfter) * time.Second
		switch he.StatusCode {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			f.refused = true
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			// 1.8 answers 500 for write time-outs and a full cache; a write is
			// idempotent, so retrying it is safe.
			f.retryable = true
		}
		return f
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		f.reason, f.retryable = "timeout", true
	default:
		// Connection refused or reset, EOF: InfluxDB restarting or a proxy
		// dropping the connection.
		f.reason, f.retryable = "network", true
	}
	if strings.TrimSpace(f.msg) == "" {
		f.msg = "unknown error"
	}
	return f
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
