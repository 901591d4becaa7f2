// Package api is the query service's HTTP API: versioned JSON endpoints
// under /v1 that read telemetry through whichever store the cutover phase
// says serves, problem+json errors, bearer-token auth, limits, and the
// OpenAPI document at /v1/openapi.json. Other route groups (the console's
// /v1/cutover/... endpoints and its assets) mount onto the same handler
// with Mount, each with its OpenAPI fragment:
//
//	a.Mount(api.RouteGroup{
//		Name:   "cutover",
//		Routes: []api.Route{{Pattern: "GET /v1/cutover/shadow", Handler: h}, {Pattern: "GET /{$}", Handler: assets, Public: true}},
//		Paths: map[string]any{"/v1/cutover/shadow": map[string]any{"get": api.Operation("shadowStats", "shadow comparisons",
//			nil, api.JSONContent(api.Ref("ShadowStats")), "401", "503")}},
//		Schemas: map[string]any{"ShadowStats": ...},
//	})
//
// Routes sit behind the bearer token unless Public; errors go out with
// WriteProblem (BadParam, NotFound, Unavailable build the usual ones); the
// OpenAPI test checks every mounted route is in the document.
package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/query/internal/route"
)

// Config holds the API's limits.
type Config struct {
	// MaxPoints caps the points per series of series and fleet answers.
	MaxPoints int
	// DefaultPage and MaxPage are the default and largest limit of the
	// paginated endpoints (readings, alarms).
	DefaultPage, MaxPage int
	// MaxRange caps the span of any range.
	MaxRange time.Duration
	// RequestTimeout bounds each request's store queries.
	RequestTimeout time.Duration
	// StreamTimeout bounds an NDJSON stream of readings.
	StreamTimeout time.Duration
	// MaxConcurrent caps concurrent queries per store; past it, 503.
	MaxConcurrent int
	// RetryAfter is what 503 answers tell clients to wait.
	RetryAfter time.Duration
	// FleetLag cuts fleet answers this long before now (down to a 5-minute
	// boundary): the fleet is served from closed, rolled-up windows, as
	// the fleet dashboard draws it, never from a scan of the newest raw
	// readings (0: up to now).
	FleetLag time.Duration
	// ShadowSettle: a shadow mismatch on a request whose range reaches
	// within this of its time (and latest) is judged again after this long,
	// both stores asked again: a reading may have been in flight to one.
	ShadowSettle time.Duration
}

// DefaultConfig returns the limits serve uses unless told otherwise.
func DefaultConfig() Config {
	return Config{MaxPoints: 10000, DefaultPage: 1000, MaxPage: 10000, MaxRange: 92 * 24 * time.Hour,
		RequestTimeout: 30 * time.Second, StreamTimeout: 10 * time.Minute, MaxConcurrent: 64, RetryAfter: 5 * time.Second, ShadowSettle: 5 * time.Second, FleetLag: 10 * time.Minute}
}

// Deps are the API's collaborators.
type Deps struct {
	Router   *route.Router
	Shadow   *route.Shadower // nil: no shadow reads
	Auth     *Auth           // nil: open (the caller checked it may be)
	Registry prometheus.Registerer
	Logger   *slog.Logger
	// Context is the service's lifetime; shadow reads run under it.
	Context context.Context
	// Now is the clock relative times are resolved against.
	Now func() time.Time
}

// API serves the /v1 endpoints.
type API struct {
	cfg     Config
	deps    Deps
	mux     *http.ServeMux
	metrics *metrics

	mu       sync.Mutex
	sems     map[string]chan struct{}
	openapi  *document
	patterns []string
}

// Route is one route of a group: a ServeMux pattern with method ("GET
// /v1/cutover/phase") and its handler. Public routes skip the bearer token.
type Route struct {
	Pattern string
	Handler http.Handler
	Public  bool
}

// RouteGroup is a set of routes mounted together, with its part of the
// OpenAPI document: Paths maps each path to its OpenAPI path item, Schemas
// adds component schemas (names must not collide with the API's).
type RouteGroup struct {
	Name    string
	Routes  []Route
	Paths   map[string]any
	Schemas map[string]any
}

// New returns the API with its own endpoints mounted.
func New(cfg Config, deps Deps) *API {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Context == nil {
		deps.Context = context.Background()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	a := &API{cfg: cfg, deps: deps, mux: http.NewServeMux(), metrics: newMetrics(deps.Registry), sems: map[string]chan struct{}{}, openapi: newDocument()}
	a.mux.HandleFunc("GET /v1/openapi.json", a.serveOpenAPI)
	a.mux.HandleFunc("/", a.notFound)
	a.Mount(a.readRoutes())
	return a
}

// Handler returns the HTTP handler of every mounted route.
func (a *API) Handler() http.Handler { return a.mux }

// Mount adds a route group: its routes (behind the bearer token unless
// public) and its OpenAPI fragment.
func (a *API) Mount(g RouteGroup) {
	for _, r := range g.Routes {
		h := r.Handler
		if !r.Public {
			h = a.authorize(h)
		}
		a.mux.Handle(r.Pattern, h)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.openapi.add(g)
	for _, r := range g.Routes {
		a.patterns = append(a.patterns, r.Pattern)
	}
}

// Patterns lists the mounted routes' patterns (the OpenAPI test checks
// them against the document).
func (a *API) Patterns() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.patterns)
}

func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		WriteProblem(w, &Problem{Type: "about:blank", Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: r.Method + " is not allowed: the API is read-only (GET)"})
		return
	}
	WriteProblem(w, NotFound("no such endpoint: "+r.URL.Path+" (see /v1/openapi.json)"))
}

func (a *API) authorize(h http.Handler) http.Handler {
	if a.deps.Auth == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := a.deps.Auth.Check(r); p != nil {
			a.metrics.requests.WithLabelValues("auth", "", strconv.Itoa(p.Status)).Inc()
			WriteProblem(w, p)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sem returns the store's concurrency semaphore.
func (a *API) sem(store string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sems[store]
	if s == nil {
		s = make(chan struct{}, max(1, a.cfg.MaxConcurrent))
		a.sems[store] = s
	}
	return s
}

// limited runs fn holding one of the store's query slots, errBusy when all
// are taken.
func (a *API) limited(store string, fn func() error) error {
	s := a.sem(store)
	select {
	case s <- struct{}{}:
	default:
		a.metrics.rejected.WithLabelValues(store).Inc()
		return errBusy
	}
	a.metrics.inflight.WithLabelValues(store).Inc()
	defer func() {
		<-s
		a.metrics.inflight.WithLabelValues(store).Dec()
	}()
	return fn()
}

// answerFunc answers a parsed request from one store, as the JSON body.
type answerFunc func(ctx context.Context, rd reader.Reader) ([]byte, error)

// query is a parsed request: its answer, and whether its range reaches the
// present (its answer may still change while readings are in flight).
type query struct {
	answer answerFunc
	recent bool
}

// notFoundBody stands for a 404 answer in shadow comparisons: both stores
// not knowing a unit agree.
var notFoundBody = []byte(`{"status":404}`)

// serveJSON runs a JSON endpoint: parse, route, answer from the primary
// store, respond, then maybe shadow.
func (a *API) serveJSON(endpoint string, parse func(r *http.Request, now time.Time) (query, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		started := time.Now()
		q, err := parse(r, a.deps.Now().UTC())
		if err != nil {
			a.fail(w, r, endpoint, "", err)
			return
		}
		d, err := a.deps.Router.Decide()
		if err != nil {
			a.fail(w, r, endpoint, "", err)
			return
		}
		setRouteHeaders(w, d)
		body, err := a.answer(r.Context(), d.Primary, q.answer)
		primaryBody := body
		if errors.Is(err, reader.ErrNotFound) {
			primaryBody = notFoundBody
		}
		if err != nil {
			a.fail(w, r, endpoint, d.Primary.Name(), err)
		} else {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
			a.metrics.observe(endpoint, d.Primary.Name(), http.StatusOK, started)
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if (err == nil || errors.Is(err, reader.ErrNotFound)) && d.Shadow != nil && a.deps.Shadow != nil && a.deps.Shadow.Sample() {
			a.deps.Shadow.Go(a.deps.Context, a.shadowJob(endpoint, r, d, q, primaryBody))
		}
	}
}

// answer runs an answerFunc under the request time-out and the store's cap.
func (a *API) answer(ctx context.Context, rd reader.Reader, fn answerFunc) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	var body []byte
	err := a.limited(rd.Name(), func() (err error) {
		body, err = fn(ctx, rd)
		return err
	})
	return body, err
}

func (a *API) shadowJob(endpoint string, r *http.Request, d route.Decision, q query, primaryBody []byte) route.Job {
	run := func(rd reader.Reader) func(ctx context.Context) ([]byte, error) {
		return func(ctx context.Context) ([]byte, error) {
			b, err := a.answer(ctx, rd, q.answer)
			if errors.Is(err, reader.ErrNotFound) {
				return notFoundBody, nil
			}
			return b, err
		}
	}
	j := route.Job{State: d.State, Endpoint: endpoint, Params: describe(r), PrimaryStore: d.Primary.Name(), ShadowStore: d.Shadow.Name(),
		PrimaryBody: bytes.Clone(primaryBody), Answer: run(d.Shadow)}
	if q.recent {
		j.Settle = a.cfg.ShadowSettle
		j.PrimaryAgain = run(d.Primary)
	}
	return j
}

// describe renders the request's path and query for the mismatch record.
func describe(r *http.Request) string {
	u := url.URL{Path: r.URL.Path, RawQuery: r.URL.Query().Encode()}
	s := u.String()
	if len(s) > 2000 {
		s = s[:2000]
	}
	return s
}

func setRouteHeaders(w http.ResponseWriter, d route.Decision) {
	h := w.Header()
	h.Set("X-Served-By", d.Primary.Name())
	h.Set("X-Cutover-Phase", string(d.State.Phase))
	h.Set("Cache-Control", "no-store")
}

// fail answers err as a problem and counts it; 500s are logged with the cause.
func (a *API) fail(w http.ResponseWriter, r *http.Request, endpoint, store string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		a.metrics.requests.WithLabelValues(endpoint, store, "499").Inc()
		return // the client went away
	}
	p := a.problemFor(err)
	switch {
	case p.Status >= 500 && p.Status != http.StatusServiceUnavailable:
		a.deps.Logger.Error("request failed", "endpoint", endpoint, "store", store, "path", r.URL.Path, "err", err)
	case p.Status == http.StatusServiceUnavailable:
		a.deps.Logger.Warn("request refused", "endpoint", endpoint, "store", store, "err", err)
	}
	a.metrics.requests.WithLabelValues(endpoint, store, strconv.Itoa(p.Status)).Inc()
	WriteProblem(w, p)
}
