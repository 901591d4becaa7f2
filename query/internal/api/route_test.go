package api

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/query/internal/route"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/testenv"
)

// TestRoutingByPhase: each phase is served by its store, headers say so.
// The second store is another PostgreSQL database under the name
// influxdb: routing does not care what is behind a Reader.
func TestRoutingByPhase(t *testing.T) {
	recs := testFleet.Records()[:20]
	pg, _ := loadPG(t, recs)
	other, _ := loadPG(t, recs)
	h := newHarness(t, DefaultConfig(), pg, renamed{other, reader.StoreInflux}, cutover.Legacy, nil, nil)
	want := map[cutover.Phase]string{cutover.Legacy: "postgres", cutover.DualWrite: "postgres", cutover.ShadowRead: "postgres",
		cutover.InfluxPrimary: "influxdb", cutover.InfluxOnly: "influxdb"}
	for _, ph := range cutover.Phases {
		h.phase.set(ph)
		if err := h.router.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		resp := h.getJSON(t, "/v1/units/bsu-0000/latest", 200, nil)
		if got := resp.Header.Get("X-Served-By"); got != want[ph] || resp.Header.Get("X-Cutover-Phase") != string(ph) {
			t.Errorf("phase %s: served by %s (phase header %s), want %s", ph, got, resp.Header.Get("X-Cutover-Phase"), want[ph])
		}
	}
	t.Run("state store down keeps the last phase", func(t *testing.T) {
		h.phase.mu.Lock()
		h.phase.err = fmt.Errorf("connection refused")
		h.phase.mu.Unlock()
		if err := h.router.Refresh(context.Background()); err == nil {
			t.Fatal("want the refresh error")
		}
		resp := h.getJSON(t, "/v1/units/bsu-0000/latest", 200, nil)
		if resp.Header.Get("X-Cutover-Phase") != string(cutover.InfluxOnly) {
			t.Fatalf("phase %s", resp.Header.Get("X-Cutover-Phase"))
		}
	})
	t.Run("phase never read is 503", func(t *testing.T) {
		r := route.NewRouter(&phaseSource{err: fmt.Errorf("down")}, pg, nil, testLogger)
		_ = r.Refresh(context.Background())
		a := New(DefaultConfig(), Deps{Router: r, Logger: testLogger, Registry: prometheus.NewRegistry()})
		h2 := &harness{api: a}
		h2.srv = newServer(t, a)
		resp, _ := h2.get(t, "/v1/units")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

// TestPhaseChangesUnderLoad: clients read throughout every phase change,
// the router rereading the phase on its own; no request fails and each
// answer carries a phase header consistent with its store.
func TestPhaseChangesUnderLoad(t *testing.T) {
	recs := testFleet.Records()[:50]
	pg, _ := loadPG(t, recs)
	other, _ := loadPG(t, recs)
	h := newHarness(t, DefaultConfig(), pg, renamed{other, reader.StoreInflux}, cutover.Legacy, nil, nil)
	ctx, cancel := context.WithCancel(testenv.Context(t, time.Minute))
	go h.router.Watch(ctx, 10*time.Millisecond)
	var failed, total atomic.Int64
	seen := sync.Map{}
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, body := h.get(t, "/v1/units/bsu-0000/readings?from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z&limit=20")
				total.Add(1)
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Errorf("status %d: %s", resp.StatusCode, body)
					continue
				}
				seen.Store(resp.Header.Get("X-Cutover-Phase")+"/"+resp.Header.Get("X-Served-By"), true)
			}
		}()
	}
	for _, ph := range cutover.Phases[1:] {
		time.Sleep(100 * time.Millisecond)
		h.phase.set(ph)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), total.Load())
	}
	var combos []string
	seen.Range(func(k, _ any) bool { combos = append(combos, k.(string)); return true })
	for _, c := range combos {
		ph, store, _ := strings.Cut(c, "/")
		if p, _ := route.For(cutover.Phase(ph), pg, renamed{other, reader.StoreInflux}); p.Name() != store {
			t.Errorf("phase %s served by %s", ph, store)
		}
	}
	if len(combos) < 4 {
		t.Fatalf("saw only %v over %d requests: the router did not follow the phase", combos, total.Load())
	}
}

type memRecorder struct {
	mu         sync.Mutex
	counts     []cutover.ShadowCount
	mismatches []cutover.ShadowMismatch
}

func (m *memRecorder) RecordShadow(_ context.Context, c []cutover.ShadowCount, mm []cutover.ShadowMismatch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts = append(m.counts, c...)
	m.mismatches = append(m.mismatches, mm...)
	return nil
}

// TestShadowMismatchRecorded: in shadow-read, a difference planted in the
// shadow store shows up as a recorded mismatch in the state store with the
// request, the first differing record and both values; agreeing answers
// count as matches; the shadow never changes the response.
func TestShadowMismatchRecorded(t *testing.T) {
	recs := testFleet.Records()[:30]
	pg, _ := loadPG(t, recs)
	planted := append(recs[:0:0], recs...)
	planted[7].SoC = 12.5 // the shadow store disagrees on one reading
	other, _ := loadPG(t, planted)
	state, err := cutover.Open(testenv.Context(t, time.Minute), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(state.Close)
	reg := prometheus.NewRegistry()
	sh := route.NewShadower(route.ShadowConfig{Rate: 1, Concurrency: 8}, state, reg, testLogger)
	h := newHarness(t, DefaultConfig(), pg, renamed{other, reader.StoreInflux}, cutover.ShadowRead, sh, nil)
	path := "/v1/units/bsu-0000/readings?from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z"
	_, body := h.get(t, path)
	if !strings.Contains(string(body), fmt.Sprintf(`"soc_pct":%g`, recs[7].SoC)) {
		t.Fatalf("the response is not the primary's: %s", body)
	}
	h.get(t, "/v1/units/bsu-0000/latest")
	h.get(t, "/v1/units/nope/latest") // both stores: 404, a match
	sh.Wait()
	ctx := testenv.Context(t, time.Minute)
	if err := sh.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := state.ShadowStats(ctx, h.phase.st.Version)
	if err != nil {
		t.Fatal(err)
	}
	if st.Comparisons != 3 || st.Mismatches != 1 {
		t.Fatalf("stats %+v, want 3 comparisons, 1 mismatch", st)
	}
	ms, err := state.ShadowMismatches(ctx, 0, 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("mismatches %+v, %v", ms, err)
	}
	m := ms[0]
	if m.Endpoint != EndpointReadings || m.Path != "readings[7].soc_pct" || m.PrimaryStore != "postgres" || m.ShadowStore != "influxdb" ||
		!strings.Contains(m.PrimaryValue, fmt.Sprintf(`"soc_pct":%g`, recs[7].SoC)) || !strings.Contains(m.ShadowValue, `"soc_pct":12.5`) ||
		!strings.Contains(m.Params, "/v1/units/bsu-0000/readings?from=") || m.Phase != cutover.ShadowRead {
		t.Fatalf("mismatch %+v", m)
	}
	if got := testutil.ToFloat64(sh.Metrics().WithLabelValues(EndpointReadings, "mismatch")); got != 1 {
		t.Fatalf("mismatch metric %g", got)
	}
}

// TestShadowNeverDelays: a shadow store that hangs does not slow answers,
// and past the concurrency budget requests are not shadowed.
func TestShadowNeverDelays(t *testing.T) {
	pg, _ := loadPG(t, testFleet.Records()[:10])
	hang := &blocking{Reader: pg, entered: make(chan struct{}, 100), release: make(chan struct{})}
	rec := &memRecorder{}
	sh := route.NewShadower(route.ShadowConfig{Rate: 1, Concurrency: 1, Timeout: 5 * time.Second}, rec, prometheus.NewRegistry(), testLogger)
	cfg := DefaultConfig()
	cfg.ShadowSettle = 10 * time.Millisecond
	h := newHarness(t, cfg, pg, renamed{hang, reader.StoreInflux}, cutover.ShadowRead, sh, nil)
	for i := 0; i < 5; i++ {
		start := time.Now()
		h.getJSON(t, "/v1/units", 200, nil)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("request %d took %s while the shadow store hangs", i, d)
		}
	}
	if got := testutil.ToFloat64(sh.Metrics().WithLabelValues(EndpointUnits, "skipped")); got != 4 {
		t.Fatalf("skipped %g, want 4 (budget 1)", got)
	}
	close(hang.release)
	sh.Wait()
}
