package cmd_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/backfill/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/window"
)

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// env is one test's isolated world: a bucket, a database, a state store,
// and a counting proxy in front of InfluxDB.
type env struct {
	t      testing.TB
	s3     testenv.S3Bucket
	store  snapshot.Store
	influx testenv.InfluxDB
	state  string
	proxy  *countingProxy
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, s3: testenv.S3(t), influx: testenv.Influx(t), state: testenv.Postgres(t)}
	e.store = snapshot.NewS3StoreFromClient(e.s3.Client(), e.s3.Bucket, 0)
	e.proxy = newCountingProxy(t, e.influx.URL)
	return e
}

// args are the flags every backfill command of the test needs.
func (e *env) args() []string {
	return []string{
		"--s3-endpoint", e.s3.Endpoint, "--s3-bucket", e.s3.Bucket, "--s3-prefix", "snapshots",
		"--influx-url", e.proxy.URL(), "--influx-bucket", e.influx.Bucket,
		"--state-dsn", e.state,
	}
}

// backfill runs the backfill app in-process and returns its exit status
// and output.
func (e *env) backfill(command string, args ...string) (int, string) {
	e.t.Helper()
	app := cmd.New()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	full := []string{"backfill", "--log-format", "text", command}
	if command == "snapshot" {
		full = append(full, e.args()[:6]...) // the S3 flags only
	} else {
		full = append(full, e.args()...)
	}
	if command == "run" {
		full = append(full, "--http-addr", "127.0.0.1:0")
	}
	full = append(full, args...)
	ctx := testenv.Context(e.t, 2*time.Minute)
	code := cliapp.ExitStatus(app, app.RunContext(ctx, full))
	return code, out.String()
}

// reading returns a deterministic reading of unit at t.
func reading(unit string, t time.Time) telemetry.Record {
	i := t.UnixMilli() / 1000
	r := telemetry.Record{Unit: unit, Site: "North Yard, Bay 3", Model: "FlexiPack-250", Firmware: "2.4.1", Schema: "2.1",
		Seq: i, HasSeq: true, TimeMs: t.UnixMilli(), Has: telemetry.HasSoC | telemetry.HasVoltage,
		SoC: float64(i%100) + 0.5, Voltage: 800 + float64(i%7), Mode: "charging",
		Temps: []telemetry.Temp{{Sensor: "cell_max", C: 31.2}}}
	if i%10 == 0 {
		r.Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: "hot"}}
	}
	return r
}

// readings returns one reading per unit every step in [from, to).
func readings(units []string, from, to time.Time, step time.Duration) []telemetry.Record {
	var out []telemetry.Record
	for _, u := range units {
		for t := from; t.Before(to); t = t.Add(step) {
			out = append(out, reading(u, t))
		}
	}
	return out
}

// writeSnapshot writes recs as snapshot id covering [from, to).
func (e *env) writeSnapshot(id string, from, to time.Time, recs []telemetry.Record, partRecords int64) snapshot.Manifest {
	e.t.Helper()
	ctx := testenv.Context(e.t, time.Minute)
	w, err := snapshot.NewWriter(e.store, "snapshots", id, from, to, snapshot.WriterOptions{PartRecords: partRecords})
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range recs {
		if err := w.Add(ctx, &recs[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	m, err := w.Close(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// writeInflux writes recs straight to InfluxDB (not through the proxy).
func (e *env) writeInflux(recs []telemetry.Record) {
	e.t.Helper()
	w, err := influx.NewWriter(influx.Config{URL: e.influx.URL, Bucket: e.influx.Bucket, Org: e.influx.Org, Token: e.influx.Token}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(testenv.Context(e.t, time.Minute), recs); err != nil {
		e.t.Fatal(err)
	}
}

// influxRecords reads back every reading in [from, to), by key.
func (e *env) influxRecords(from, to time.Time) map[telemetry.Key]telemetry.Record {
	e.t.Helper()
	r, err := influx.NewReader(influx.Config{URL: e.influx.URL, Bucket: e.influx.Bucket, Org: e.influx.Org, Token: e.influx.Token}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	out := map[telemetry.Key]telemetry.Record{}
	err = r.Stream(testenv.Context(e.t, time.Minute), from, to, nil, func(rec *telemetry.Record) error {
		out[rec.Key()] = *rec
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// countingProxy forwards to InfluxDB and records the (unit, time) of every
// bsu point written through it.
type countingProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	// writes counts how many times each reading was written.
	writes map[telemetry.Key]int
	// requests are the write requests' arrival times and bsu point counts.
	requests []request
}

type request struct {
	at     time.Time
	points int
}

func newCountingProxy(t testing.TB, target string) *countingProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{writes: map[telemetry.Key]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/write") {
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			plain := body
			if r.Header.Get("Content-Encoding") == "gzip" {
				if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
					plain, _ = io.ReadAll(zr)
				}
			}
			p.count(plain)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *countingProxy) URL() string { return p.srv.URL }

func (p *countingProxy) count(body []byte) {
	at := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	defer func() { p.requests = append(p.requests, request{at: at, points: n}) }()
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "bsu,") {
			continue
		}
		i := strings.Index(line, ",unit=")
		unit := line[i+len(",unit="):]
		var b strings.Builder
		for j := 0; j < len(unit); j++ {
			if unit[j] == '\\' && j+1 < len(unit) {
				j++
				b.WriteByte(unit[j])
				continue
			}
			if unit[j] == ',' || unit[j] == ' ' {
				break
			}
			b.WriteByte(unit[j])
		}
		ts, _ := strconv.ParseInt(line[strings.LastIndexByte(line, ' ')+1:], 10, 64)
		p.writes[telemetry.Key{Unit: b.String(), TimeMs: ts}]++
		n++
	}
}

// snapshotWrites returns a copy of the write counts, and resets them.
func (p *countingProxy) take() map[telemetry.Key]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.writes
	p.writes = map[telemetry.Key]int{}
	p.requests = nil
	return out
}

// rate returns the points per second the write requests arrived at, from
// the first request to the last (the last request's points excluded: they
// arrive at its start), and the number of requests.
func (p *countingProxy) rate() (float64, time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) < 2 {
		return 0, 0, len(p.requests)
	}
	total := 0
	for _, r := range p.requests[:len(p.requests)-1] {
		total += r.points
	}
	span := p.requests[len(p.requests)-1].at.Sub(p.requests[0].at)
	return float64(total) / span.Seconds(), span, len(p.requests)
}

func windowOf(k telemetry.Key, w time.Duration) window.Key {
	return window.Key{Unit: k.Unit, Start: window.Align(time.UnixMilli(k.TimeMs), w)}
}

func sameRecord(a, b *telemetry.Record) bool {
	return bytes.Equal(telemetry.AppendJSON(nil, a), telemetry.AppendJSON(nil, b))
}

func fmtKey(k telemetry.Key) string {
	return fmt.Sprintf("(%s, %s)", k.Unit, time.UnixMilli(k.TimeMs).UTC().Format(time.RFC3339))
}

var _ = context.Background

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
