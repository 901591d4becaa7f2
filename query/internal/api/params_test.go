package api

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/telemetry"
)

// TestBadRequests: every bad parameter gets its 4xx naming the parameter
// (and the limit for 422), as problem+json.
func TestBadRequests(t *testing.T) {
	pg, _ := loadPG(t, testFleet.Records()[:10])
	cfg := DefaultConfig()
	cfg.MaxPage, cfg.MaxPoints, cfg.MaxRange = 100, 500, 40*24*time.Hour
	h := newHarness(t, cfg, pg, nil, cutover.Legacy, nil, nil)
	u := "/v1/units/bsu-0000"
	cases := []struct {
		path   string
		status int
		param  string
	}{
		{u + "/readings?from=yesterday", 400, "from"},
		{u + "/readings?to=2026-13-01T00:00:00Z", 400, "to"},
		{u + "/readings?from=1h&to=2h", 400, "from"},
		{u + "/readings?from=-1h", 400, "from"},
		{u + "/readings?limit=0", 400, "limit"},
		{u + "/readings?limit=ten", 400, "limit"},
		{u + "/readings?limit=101", 422, "limit"},
		{u + "/readings?cursor=!!!", 400, "cursor"},
		{u + "/readings?cursor=eyJ0IjoxfQ", 400, "cursor"}, // {"t":1}: outside the range
		{u + "/readings?from=50d", 422, "from"},
		{u + "/readings?bogus=1", 400, "bogus"},
		{u + "/readings?limit=1&limit=2", 400, "limit"},
		{u + "/series?step=0s", 400, "step"},
		{u + "/series?step=1.5s", 400, "step"},
		{u + "/series?step=fast", 400, "step"},
		{u + "/series?from=7d&step=1m", 422, "step"},
		{u + "/series?fields=soc", 400, "fields"},
		{u + "/series?fields=soc_pct,soc_pct", 400, "fields"},
		{u + "/series?fields=temp_Cell_c", 400, "fields"},
		{u + "/series?agg=median", 400, "agg"},
		{"/v1/fleet?step=7m", 400, "step"},
		{"/v1/fleet?step=1m", 400, "step"},
		{"/v1/fleet?from=30d&step=5m", 422, "step"},
		{"/v1/alarms?limit=-3", 400, "limit"},
		{"/v1/alarms?severity=" + strings.Repeat("x", 300), 400, "severity"},
		{"/v1/units?color=red", 400, "color"},
		{u + "/latest?from=1h", 400, "from"},
		{"/v1/units/" + strings.Repeat("u", 300) + "/latest", 400, "unit"},
	}
	for _, c := range cases {
		t.Run(c.path[:min(len(c.path), 60)], func(t *testing.T) {
			resp, body := h.get(t, c.path)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if p.Param != c.param || p.Status != c.status || p.Detail == "" {
				t.Fatalf("problem %+v, want param %q", p, c.param)
			}
			if c.status == 422 && p.Limit == "" {
				t.Fatalf("422 without the limit: %+v", p)
			}
		})
	}
	t.Run("unknown route and method", func(t *testing.T) {
		h.getJSON(t, "/v1/nothing", 404, nil)
		resp, err := http.Post(h.srv.URL+"/v1/units", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Fatalf("POST: status %d, want 405", resp.StatusCode)
		}
	})
}

func TestAuth(t *testing.T) {
	pg, _ := loadPG(t, testFleet.Records()[:10])
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	const tokA, tokB = "token-a-0123456789abcdef", "token-b-0123456789abcdef"
	if err := os.WriteFile(file, []byte("# readers\n"+tokA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := NewAuth(file)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, DefaultConfig(), pg, nil, cutover.Legacy, nil, auth)
	status := func(tok string) int {
		hdr := []string{}
		if tok != "" {
			hdr = []string{"Authorization", tok}
		}
		resp, body := h.get(t, "/v1/units", hdr...)
		if resp.StatusCode == 401 && (resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(string(body), "token-")) {
			t.Fatalf("401 without WWW-Authenticate or echoing the token: %s", body)
		}
		return resp.StatusCode
	}
	for tok, want := range map[string]int{"": 401, "Bearer " + tokA: 200, "bearer " + tokA: 200, "Bearer " + tokB: 401, "Basic " + tokA: 401, "Bearer": 401} {
		if got := status(tok); got != want {
			t.Errorf("Authorization %q: %d, want %d", tok, got, want)
		}
	}
	if resp, _ := h.get(t, "/v1/openapi.json"); resp.StatusCode != 200 {
		t.Errorf("openapi.json needs no token: %d", resp.StatusCode)
	}
	// Reload: B in, A out; a broken file keeps B.
	if err := os.WriteFile(file, []byte(tokB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := auth.Reload(); err != nil {
		t.Fatal(err)
	}
	if status("Bearer "+tokA) != 401 || status("Bearer "+tokB) != 200 {
		t.Fatal("reload did not swap the tokens")
	}
	for _, bad := range []string{"", "short\n", "has space in it 0123456789\n"} {
		if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := auth.Reload(); err == nil {
			t.Fatalf("tokens file %q accepted", bad)
		}
	}
	if status("Bearer "+tokB) != 200 {
		t.Fatal("a failed reload dropped the tokens in force")
	}
}

// blocking is a reader whose Units blocks until released, and whose other
// methods fail as a store that is down.
type blocking struct {
	reader.Reader
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Units(ctx context.Context, f reader.UnitFilter) ([]reader.Unit, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return nil, nil
}

func (b *blocking) Latest(ctx context.Context, unit string) (*telemetry.Record, error) {
	return nil, reader.Unavailable(ctx, "test store", errors.New("connection refused"))
}

func TestLimits(t *testing.T) {
	pg, _ := loadPG(t, testFleet.Records()[:10])
	cfg := DefaultConfig()
	cfg.MaxConcurrent, cfg.RequestTimeout = 1, 300*time.Millisecond
	b := &blocking{Reader: pg, entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := newHarness(t, cfg, b, nil, cutover.Legacy, nil, nil)

	t.Run("store down is 503 with Retry-After", func(t *testing.T) {
		resp, body := h.get(t, "/v1/units/bsu-0000/latest")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(string(body), "refused") {
			t.Fatalf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})
	t.Run("concurrency cap is 503", func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); h.get(t, "/v1/units") }()
		<-b.entered
		resp, body := h.get(t, "/v1/units")
		close(b.release)
		wg.Wait()
		if resp.StatusCode != 503 || !strings.Contains(string(body), "cap of 1") {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("time-out is 503", func(t *testing.T) {
		b2 := &blocking{Reader: pg, entered: make(chan struct{}, 1), release: make(chan struct{})}
		h2 := newHarness(t, cfg, b2, nil, cutover.Legacy, nil, nil)
		resp, body := h2.get(t, "/v1/units")
		if resp.StatusCode != 503 || !strings.Contains(string(body), "time-out") {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}

// TestRound6 makes two sums of the same readings in another order (a hair
// apart) print alike, even at a halfway point.
func TestRound6(t *testing.T) {
	a, b := 55.23455, 0.0
	for _, v := range []float64{55.2345, 55.2346} {
		b += v
	}
	b /= 2
	if lo, hi := math.Nextafter(a, 0), math.Nextafter(a, 100); round6(lo) != round6(hi) || round6(b) != round6(a) {
		t.Fatalf("round6: %v %v %v %v", round6(lo), round6(hi), round6(a), round6(b))
	}
	if round6(-0.0) != 0 || math.Signbit(round6(-0.0)) || round6(123.4567891) != 123.457 {
		t.Fatalf("round6: %v %v", round6(-0.0), round6(123.4567891))
	}
}

// TestFleetHorizon: the fleet ends --fleet-lag before now, on a 5-minute
// boundary, whatever to asks; 0 serves up to to.
func TestFleetHorizon(t *testing.T) {
	pg, _ := loadPG(t, testFleet.Records()[:10])
	now := testFleet.From.Add(72 * time.Hour)
	for lag, want := range map[time.Duration]time.Time{10 * time.Minute: now.Add(-10 * time.Minute), 7 * time.Minute: now.Add(-10 * time.Minute), 0: now} {
		cfg := DefaultConfig()
		cfg.FleetLag = lag
		h := newHarness(t, cfg, pg, nil, cutover.Legacy, nil, nil)
		var out fleetAnswer
		h.getJSON(t, "/v1/fleet?from=3h&step=1h", 200, &out)
		if out.To != fmtTime(want) || out.From != fmtTime(now.Add(-3*time.Hour)) {
			t.Errorf("--fleet-lag %s: answer %s..%s, want ..%s", lag, out.From, out.To, fmtTime(want))
		}
	}
}
