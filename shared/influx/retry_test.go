package influx

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/telemetry"
)

// fakeInflux answers /api/v2/write with scripted statuses, then as an
// InfluxDB 2.x that refuses a request whole when any line of it is bad.
type fakeInflux struct {
	mu       sync.Mutex
	script   []int    // statuses to answer first, in order
	bad      string   // a line containing this is refused
	accepted []string // lines stored
	requests int
	delay    time.Duration // answer the first request after this long
}

func (f *fakeInflux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	n := f.requests
	var status int
	if len(f.script) > 0 {
		status, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	if n == 1 && f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "2")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"code":"x","message":"scripted"}`))
		return
	}
	var lines []string
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if f.bad != "" && strings.Contains(sc.Text(), f.bad) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"code":"unprocessable entity","message":"failure writing points to database: partial write: field type conflict: input field \"soc_pct\" on measurement \"bsu\" is type float, already exists as type string dropped=1"}`))
			return
		}
		lines = append(lines, sc.Text())
	}
	f.mu.Lock()
	f.accepted = append(f.accepted, lines...)
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// snapshot returns the request count and stored lines.
func (f *fakeInflux) snapshot() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, slices.Clone(f.accepted)
}

func fakeWriter(t *testing.T, f *fakeInflux, cfg Config) (*Writer, *[]time.Duration) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.URL, cfg.Bucket, cfg.API = srv.URL, "db/rp", APIV2
	w := newWriter(t, cfg)
	var delays []time.Duration
	var mu sync.Mutex
	w.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
		return ctx.Err()
	}
	return w, &delays
}

func TestRetryPolicy(t *testing.T) {
	recs := series([]string{"FP2-000001"}, t0, time.Second, 4)
	cases := []struct {
		name       string
		script     []int
		delay      time.Duration
		maxRetries int
		wantErr    error
		wantReqs   int
		wantDelays func([]time.Duration) bool
	}{
		{"503 then ok", []int{503, 503}, 0, 5, nil, 3, func(d []time.Duration) bool {
			// RetryBase 100ms: first delay in [50ms, 100ms], second in [100ms, 200ms].
			return len(d) == 2 && d[0] >= 50*time.Millisecond && d[0] <= 100*time.Millisecond && d[1] >= 100*time.Millisecond && d[1] <= 200*time.Millisecond
		}},
		{"429 honours Retry-After", []int{429}, 0, 5, nil, 2, func(d []time.Duration) bool { return slices.Equal(d, []time.Duration{2 * time.Second}) }},
		{"500, 502, 504 are retried", []int{500, 502, 504}, 0, 5, nil, 4, func(d []time.Duration) bool { return len(d) == 3 }},
		{"time-out is retried", nil, 3 * time.Second, 5, nil, 2, func(d []time.Duration) bool { return len(d) == 1 }},
		{"gives up after MaxRetries", []int{503, 503, 503, 503}, 0, 2, ErrUnavailable, 3, func(d []time.Duration) bool { return len(d) == 2 }},
		{"401 is not retried", []int{401}, 0, 5, ErrUnavailable, 1, func(d []time.Duration) bool { return len(d) == 0 }},
		{"404 is not retried", []int{404}, 0, 5, ErrUnavailable, 1, func(d []time.Duration) bool { return len(d) == 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeInflux{script: c.script, delay: c.delay}
			w, delays := fakeWriter(t, f, Config{MaxRetries: c.maxRetries, RetryBase: 100 * time.Millisecond, Timeout: time.Second})
			err := w.Write(context.Background(), recs)
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
			requests, accepted := f.snapshot()
			if requests != c.wantReqs {
				t.Fatalf("%d requests, want %d", requests, c.wantReqs)
			}
			if !c.wantDelays(*delays) {
				t.Fatalf("unexpected retry delays %v", *delays)
			}
			if c.wantErr == nil && len(accepted) != len(recs)+2 { // + 2 alarm lines
				t.Fatalf("%d lines stored, want %d", len(accepted), len(recs)+2)
			}
		})
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	f := &fakeInflux{script: []int{503, 503, 503}}
	w, _ := fakeWriter(t, f, Config{RetryBase: time.Hour})
	w.sleep = retry.Sleep
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := w.Write(ctx, series([]string{"FP2-000001"}, t0, time.Second, 1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
}

// TestBisectAllOrNothing checks the split logic against a server that refuses
// a request whole when one line is bad (InfluxDB 2.x style): every good
// record must still be written, in requests of at most BatchLines lines.
func TestBisectAllOrNothing(t *testing.T) {
	recs := series([]string{"FP2-000001", "FP2-000002"}, t0, time.Second, 50)
	bad := []int{3, 4, 50, 99}
	for _, i := range bad {
		recs[i].Firmware = "BAD"
	}
	f := &fakeInflux{bad: `firmware="BAD"`}
	w, _ := fakeWriter(t, f, Config{BatchLines: 16})
	err := w.Write(context.Background(), recs)
	var pe *PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want *PartialError", err)
	}
	var got []int
	for _, r := range pe.Rejected {
		got = append(got, r.Index)
		if !strings.Contains(r.Reason, "field type conflict") {
			t.Fatalf("reason %q", r.Reason)
		}
	}
	if !slices.Equal(got, bad) {
		t.Fatalf("rejected %v, want %v", got, bad)
	}
	wantLines := 0
	for i := range recs {
		if !slices.Contains(bad, i) {
			wantLines += 1 + len(recs[i].Alarms)
		}
	}
	_, accepted := f.snapshot()
	seen := map[string]bool{}
	for _, l := range accepted {
		seen[l] = true
	}
	if len(seen) != wantLines {
		t.Fatalf("%d distinct lines stored, want %d", len(seen), wantLines)
	}
	for i := range recs {
		line := string(telemetry.AppendLineProtocol(nil, &recs[i]))
		first, _, _ := strings.Cut(line, "\n")
		if seen[first] == slices.Contains(bad, i) {
			t.Fatalf("record %d: stored=%v, bad=%v", i, seen[first], slices.Contains(bad, i))
		}
	}
}

func TestBatchesRespectBatchLines(t *testing.T) {
	recs := series([]string{"FP2-000001"}, t0, time.Second, 30) // 10 records have an alarm: 40 lines
	f := &fakeInflux{}
	w, _ := fakeWriter(t, f, Config{BatchLines: 5})
	if err := w.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	requests, accepted := f.snapshot()
	if len(accepted) != 40 {
		t.Fatalf("%d lines, want 40", len(accepted))
	}
	// Records of 1 or 2 lines, at most 5 lines per request, never split:
	// 30 records need at least 8 requests.
	if requests < 8 {
		t.Fatalf("%d requests for 40 lines in batches of 5", requests)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{{Bucket: "a/b"}, {URL: "127.0.0.1:8086", Bucket: "a/b"}, {URL: "http://x"}} {
		if _, err := NewWriter(c, discard()); err == nil {
			t.Errorf("NewWriter(%+v): no error", c)
		}
	}
}

func TestAlignOffset(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	for _, w := range []time.Duration{time.Millisecond, time.Second, 7 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 13*time.Second + 7*time.Millisecond} {
		off := alignOffset(w)
		if off < 0 || off >= w {
			t.Fatalf("%s: offset %s out of [0, w)", w, off)
		}
		// InfluxQL's GROUP BY time(w, off) boundaries are epoch + off + k·w: each must be a window.Align boundary.
		for k := int64(-3); k <= 3; k++ {
			b := epoch.Add(off + time.Duration(k)*w)
			if !b.Equal(b.Truncate(w)) {
				t.Fatalf("%s: GROUP BY time boundary %s is not aligned like window.Align", w, b)
			}
		}
	}
}

func TestCutSpan(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		d    time.Duration
		n    int
		want int
	}{{time.Hour, 2, 2}, {10 * time.Minute, 3, 3}, {2 * time.Millisecond, 5, 2}, {time.Hour, 0, 1}} {
		got := cutSpan(from, from.Add(c.d), c.n)
		if len(got) != c.want || !got[0].from.Equal(from) || !got[len(got)-1].to.Equal(from.Add(c.d)) {
			t.Fatalf("%s in %d: %v", c.d, c.n, got)
		}
		for i := 1; i < len(got); i++ {
			if !got[i].from.Equal(got[i-1].to) || got[i].from.Sub(from)%time.Millisecond != 0 {
				t.Fatalf("%s in %d: slices %v not contiguous whole milliseconds", c.d, c.n, got)
			}
		}
	}
}
