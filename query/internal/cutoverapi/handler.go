package cutoverapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
)

// Prefix is where the API is mounted.
const Prefix = "/v1/cutover/"

// Limits of the list parameters.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	MaxExamples  = 50
)

// Overview is every section of the cutover page in one document, read in
// one pass so the page shows one consistent moment. A section that could
// not be read is named in Errors and the others are still shown.
type Overview struct {
	At        time.Time            `json:"at"`
	State     StateView            `json:"state"`
	Timeline  []cutover.AuditEntry `json:"timeline"`
	Next      *NextStep            `json:"next"`
	Consumers *ConsumersView       `json:"consumers"`
	Gaps      *GapsView            `json:"gaps"`
	Backfills []BackfillView       `json:"backfills"`
	Verify    *VerifyView          `json:"verify"`
	Shadow    *ShadowReport        `json:"shadow"`
	Errors    map[string]string    `json:"errors,omitempty"`
}

// Route is one GET route: a ServeMux pattern and its handler.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// Routes returns the API's routes, for mounting on the query service's mux
// (behind its bearer tokens).
func (a *API) Routes() []Route {
	one := func(read func(ctx context.Context, q query) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, read) }
	}
	withState := func(read func(ctx context.Context, st cutover.State, q query) (any, error)) http.HandlerFunc {
		return one(func(ctx context.Context, q query) (any, error) {
			st, err := a.state.Current(ctx)
			if err != nil {
				return nil, err
			}
			return read(ctx, st, q)
		})
	}
	return []Route{
		{"GET " + Prefix + "overview", a.serveOverview},
		{"GET " + Prefix + "state", one(func(ctx context.Context, q query) (any, error) { return a.stateView(ctx) })},
		{"GET " + Prefix + "timeline", one(func(ctx context.Context, q query) (any, error) { return a.timeline(ctx, q.limit) })},
		{"GET " + Prefix + "gates", one(func(ctx context.Context, q query) (any, error) { return a.nextStep(ctx) })},
		{"GET " + Prefix + "consumers", withState(func(ctx context.Context, st cutover.State, q query) (any, error) { return a.consumers(ctx, st) })},
		{"GET " + Prefix + "gaps", one(func(ctx context.Context, q query) (any, error) { return a.gaps(ctx, q.limit) })},
		{"GET " + Prefix + "backfills", one(func(ctx context.Context, q query) (any, error) { return a.backfills(ctx, min(q.limit, 100)) })},
		{"GET " + Prefix + "verify", one(func(ctx context.Context, q query) (any, error) { return a.lastVerify(ctx) })},
		{"GET " + Prefix + "shadow", withState(func(ctx context.Context, st cutover.State, q query) (any, error) {
			return a.shadowReport(ctx, st.Version, q.examples)
		})},
	}
}

// Handler returns a handler of every route under Prefix, answering 404 and
// 405 problems for anything else (standalone use and tests; the query
// service mounts Routes on its own mux).
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range a.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem(w, http.StatusMethodNotAllowed, "method not allowed", fmt.Sprintf("%s %s: the cutover API is read-only; actions stay in the migrate CLI", r.Method, r.URL.Path))
			return
		}
		problem(w, http.StatusNotFound, "not found", fmt.Sprintf("%s: no such cutover resource; see /v1/openapi.json", r.URL.Path))
	})
	return mux
}

// Close stops a background gate evaluation.
func (a *API) Close() {
	if a.recent != nil {
		a.recent.close()
	}
}

func (a *API) timeline(ctx context.Context, limit int) ([]cutover.AuditEntry, error) {
	h, err := a.state.History(ctx, limit)
	if h == nil && err == nil {
		h = []cutover.AuditEntry{}
	}
	return h, err
}

type query struct {
	limit    int
	examples int
}

// parseQuery reads a route's parameters: only those it takes (routeDocs),
// each at most once, within bounds.
func parseQuery(r *http.Request) (query, error) {
	q := query{limit: DefaultLimit, examples: 10}
	vals := r.URL.Query()
	takes := routeDocs[strings.TrimPrefix(r.URL.Path, Prefix)].params
	for name, v := range vals {
		if !slices.Contains(takes, name) {
			if len(takes) == 0 {
				return q, fmt.Errorf("parameter %s: unknown; this endpoint takes no parameters", name)
			}
			return q, fmt.Errorf("parameter %s: unknown; this endpoint takes %s", name, strings.Join(takes, ", "))
		}
		if len(v) > 1 {
			return q, fmt.Errorf("parameter %s: given %d times; give it once", name, len(v))
		}
	}
	for name, bound := range map[string]struct {
		dst *int
		max int
	}{"limit": {&q.limit, MaxLimit}, "examples": {&q.examples, MaxExamples}} {
		s := vals.Get(name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > bound.max {
			return q, fmt.Errorf("parameter %s=%q: want a whole number from 1 to %d", name, s, bound.max)
		}
		*bound.dst = n
	}
	return q, nil
}

func (a *API) serve(w http.ResponseWriter, r *http.Request, read func(ctx context.Context, q query) (any, error)) {
	q, err := parseQuery(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad parameter", err.Error())
		return
	}
	v, err := read(r.Context(), q)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	writeJSON(w, v)
}

// unavailable answers 503: the state store did not answer. The cause goes
// to the log, not to the client (it may name hosts and users).
func (a *API) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.logger.Warn("cutover API: state store read failed", "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	problem(w, http.StatusServiceUnavailable, "state store unavailable", "the cutover state store did not answer; retry shortly")
}

func (a *API) serveOverview(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad parameter", err.Error())
		return
	}
	ctx := r.Context()
	o := Overview{At: a.now().UTC(), Errors: map[string]string{}}
	if o.State, err = a.stateView(ctx); err != nil {
		a.unavailable(w, r, err)
		return
	}
	ok := func(name string, err error) bool {
		if err != nil {
			a.logger.Warn("cutover API: section read failed", "section", name, "err", err)
			o.Errors[name] = "could not read the " + name + " from the state store; retry shortly"
		}
		return err == nil
	}
	tl, err := a.timeline(ctx, q.limit)
	if ok("timeline", err) {
		o.Timeline = tl
	}
	n, err := a.nextStep(ctx)
	if ok("gates", err) {
		o.Next = &n
	}
	c, err := a.consumers(ctx, o.State.State)
	if ok("consumers", err) {
		o.Consumers = &c
	}
	g, err := a.gaps(ctx, q.limit)
	if ok("gaps", err) {
		o.Gaps = &g
	}
	b, err := a.backfills(ctx, 10)
	if ok("backfills", err) {
		o.Backfills = b
	}
	v, err := a.lastVerify(ctx)
	if ok("verify", err) {
		o.Verify = &v
	}
	sh, err := a.shadowReport(ctx, o.State.Version, q.examples)
	if ok("shadow comparisons", err) {
		o.Shadow = &sh
	}
	if len(o.Errors) == 0 {
		o.Errors = nil
	}
	writeJSON(w, o)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail})
}
