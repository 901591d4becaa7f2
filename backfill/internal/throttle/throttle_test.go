package throttle

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPauseBlocksUntilResume(t *testing.T) {
	th := New(Config{})
	th.Pause("test")
	done := make(chan error, 1)
	go func() { done <- th.Wait(context.Background(), 10) }()
	select {
	case err := <-done:
		t.Fatalf("Wait returned while paused: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if s := th.Status(); s.State != "paused" || s.Reason != "test" {
		t.Fatalf("status %+v, want paused with reason", s)
	}
	th.Resume()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked 5s after Resume")
	}
}

func TestPausedWaitEndsWithContext(t *testing.T) {
	th := New(Config{})
	th.Pause("")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := th.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestRateLimits(t *testing.T) {
	th := New(Config{Rate: 2000})
	if got := th.BatchSize(); got != 200 {
		t.Fatalf("batch size %d at 2000/s, want 200 (a tenth of a second)", got)
	}
	start := time.Now()
	n := 0
	for time.Since(start) < 500*time.Millisecond {
		if err := th.Wait(context.Background(), th.BatchSize()); err != nil {
			t.Fatal(err)
		}
		n += th.BatchSize()
	}
	got := float64(n) / time.Since(start).Seconds()
	// Half a second is short: allow the initial burst.
	if got < 1600 || got > 2600 {
		t.Fatalf("achieved %.0f points/s with a 2000/s target", got)
	}
}

func TestAutomaticSlowingReportsReason(t *testing.T) {
	depth := int64(50)
	th := New(Config{Rate: 1000, MaxWriteLatency: 100 * time.Millisecond, MaxQueueDepth: 100, QueueName: "telemetry.ingest",
		QueueDepth: func(context.Context) (int64, error) { return depth, nil }})
	th.ObserveWrite(500 * time.Millisecond)
	th.evaluate()
	s := th.Status()
	if s.State != "throttled" || s.EffectiveRate != 500 || !strings.Contains(s.Reason, "write latency 500ms > 100ms") {
		t.Fatalf("after a slow write: %+v", s)
	}
	th.mu.Lock()
	th.queueDepth = 150
	th.mu.Unlock()
	th.evaluate()
	s = th.Status()
	if s.EffectiveRate != 250 || !strings.Contains(s.Reason, "queue telemetry.ingest depth 150 > 100") {
		t.Fatalf("with a deep queue: %+v", s)
	}
	for range 20 {
		th.evaluate()
	}
	if s := th.Status(); s.Factor != minFactor {
		t.Fatalf("factor %v after long trouble, want floor %v", s.Factor, minFactor)
	}
	// Trouble over: the rate recovers to the target and the reason clears.
	th.mu.Lock()
	th.queueDepth, th.latencyEWMA = 10, 0.01
	th.mu.Unlock()
	for range 20 {
		th.evaluate()
	}
	if s := th.Status(); s.State != "running" || s.EffectiveRate != 1000 || s.Reason != "" {
		t.Fatalf("after recovery: %+v", s)
	}
}

func TestApplyCommands(t *testing.T) {
	th := New(Config{})
	for _, tc := range []struct {
		cmd     string
		wantErr bool
		check   func(Status) bool
	}{
		{"pause", false, func(s Status) bool { return s.State == "paused" }},
		{"resume", false, func(s Status) bool { return s.State == "running" }},
		{"rate 300", false, func(s Status) bool { return s.TargetRate == 300 }},
		{"RATE 0", false, func(s Status) bool { return s.TargetRate == 0 && s.EffectiveRate == 0 }},
		{"rate -1", true, nil},
		{"rate fast", true, nil},
		{"explode", true, nil},
	} {
		err := th.Apply(tc.cmd)
		if (err != nil) != tc.wantErr {
			t.Fatalf("Apply(%q) err = %v, wantErr %v", tc.cmd, err, tc.wantErr)
		}
		if tc.check != nil && !tc.check(th.Status()) {
			t.Fatalf("after %q: %+v", tc.cmd, th.Status())
		}
	}
}

func TestHTTPControl(t *testing.T) {
	th := New(Config{Rate: 100})
	srv := httptest.NewServer(th.Handler(slog.New(slog.NewTextHandler(io.Discard, nil)), func() any { return map[string]int{"points": 7} }))
	defer srv.Close()
	post := func(path string) (int, map[string]any) {
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		return resp.StatusCode, doc
	}
	if code, doc := post("/control/pause"); code != 200 || doc["throttle"].(map[string]any)["state"] != "paused" {
		t.Fatalf("pause: %d %v", code, doc)
	}
	if code, _ := post("/control/resume"); code != 200 || th.Status().State != "running" {
		t.Fatalf("resume: %d %+v", code, th.Status())
	}
	if code, _ := post("/control/rate?points_per_second=750"); code != 200 || th.Status().TargetRate != 750 {
		t.Fatalf("rate: %d %+v", code, th.Status())
	}
	if code, _ := post("/control/rate?points_per_second=lots"); code != http.StatusBadRequest {
		t.Fatalf("bad rate: status %d, want 400", code)
	}
	resp, err := http.Get(srv.URL + "/control/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	if doc["progress"].(map[string]any)["points"] != float64(7) {
		t.Fatalf("status lacks progress: %v", doc)
	}
}

func TestControlFile(t *testing.T) {
	th := New(Config{})
	path := filepath.Join(t.TempDir(), "control")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = th.WatchFile(ctx, path, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	if err := os.WriteFile(path, []byte("# operator\npause\nrate 40\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { s := th.Status(); return s.State == "paused" && s.TargetRate == 40 })
	if err := os.WriteFile(path, []byte("resume\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return th.Status().State == "running" })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Raising the rate (here to unlimited) shortens a wait already booked at
// the old rate at once; so does a pause stop it.
func TestRateChangeTakesEffectAtOnce(t *testing.T) {
	th := New(Config{Rate: 0.1}) // one point per 10 s, burst 1
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		if err := th.Wait(ctx, 3); err != nil {
			t.Error(err)
		}
		done <- time.Since(start)
	}()
	time.Sleep(200 * time.Millisecond) // the second point is booked 10 s out
	if err := th.SetRate(0); err != nil {
		t.Fatal(err)
	}
	select {
	case took := <-done:
		if took > 2*time.Second {
			t.Fatalf("wait took %s after the rate went unlimited", took)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a wait booked at 0.1 points/s outlived a change to unlimited by 3 s")
	}
}
