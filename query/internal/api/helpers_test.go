package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/query/internal/querytest"
	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/query/internal/route"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

var testLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testFleet: 6 units on 3 sites, 2 days at 10 minutes, ending well before now.
var testFleet = querytest.Fleet{Units: 6, Sites: 3, From: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Cadence: 10 * time.Minute, Steps: 288}

// loadPG returns a PostgreSQL reader over a fresh legacy store holding recs.
func loadPG(t *testing.T, recs []telemetry.Record) (*reader.Postgres, *legacy.Store) {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	dsn := testenv.Postgres(t)
	st, err := legacy.Open(ctx, dsn, testLogger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := querytest.Load(ctx, st, recs); err != nil {
		t.Fatal(err)
	}
	return reader.NewPostgres(st.Pool()), st
}

// phaseSource is a settable phase (a fake state store, for routing logic).
type phaseSource struct {
	mu  sync.Mutex
	st  cutover.State
	err error
}

func (p *phaseSource) Current(context.Context) (cutover.State, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st, p.err
}

func (p *phaseSource) set(ph cutover.Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st = cutover.State{Phase: ph, Version: p.st.Version + 1}
}

// renamed presents a reader under another store name (a second PostgreSQL
// database standing in for the other store in routing tests).
type renamed struct {
	reader.Reader
	name string
}

func (r renamed) Name() string { return r.name }

type harness struct {
	api    *API
	srv    *httptest.Server
	phase  *phaseSource
	router *route.Router
	reg    *prometheus.Registry
}

// newHarness serves an API over pg and influx (either may be nil) in phase ph.
func newHarness(t *testing.T, cfg Config, pg, influx reader.Reader, ph cutover.Phase, shadow *route.Shadower, auth *Auth) *harness {
	t.Helper()
	h := &harness{phase: &phaseSource{}, reg: prometheus.NewRegistry()}
	h.phase.set(ph)
	h.router = route.NewRouter(h.phase, pg, influx, testLogger)
	if err := h.router.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.api = New(cfg, Deps{Router: h.router, Shadow: shadow, Auth: auth, Registry: h.reg, Logger: testLogger,
		Now: func() time.Time { return testFleet.From.Add(3 * 24 * time.Hour) }})
	h.srv = httptest.NewServer(h.api.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

// get requests path and returns the response and its body.
func (h *harness) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp, body
}

// getJSON requests path, requires status want and decodes the body into v.
func (h *harness) getJSON(t *testing.T, path string, want int, v any) *http.Response {
	t.Helper()
	resp, body := h.get(t, path)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp
}

func newServer(t *testing.T, a *API) *httptest.Server {
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return srv
}
