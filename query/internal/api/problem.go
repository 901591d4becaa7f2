package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/query/internal/route"
)

// Problem is an RFC 9457 problem detail, the body of every error answer.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Param names the query or path parameter that was wrong, if one was.
	Param string `json:"param,omitempty"`
	// Limit is the limit a request exceeded (422), if one did.
	Limit string `json:"limit,omitempty"`
	// RetryAfter is how many seconds to wait (503), as the header says.
	RetryAfter int `json:"-"`
}

func (p *Problem) Error() string { return p.Detail }

// BadParam returns a 400 problem naming the parameter and why it is wrong.
func BadParam(param, format string, args ...any) *Problem {
	return &Problem{Type: "https://flexipack.example/problems/bad-parameter", Title: "Bad parameter", Status: http.StatusBadRequest,
		Param: param, Detail: fmt.Sprintf("%s: %s", param, fmt.Sprintf(format, args...))}
}

// OverLimit returns a 422 problem saying which limit the request exceeds.
func OverLimit(param, limit, format string, args ...any) *Problem {
	return &Problem{Type: "https://flexipack.example/problems/over-limit", Title: "Request exceeds a limit", Status: http.StatusUnprocessableEntity,
		Param: param, Limit: limit, Detail: fmt.Sprintf(format, args...)}
}

// NotFound returns a 404 problem.
func NotFound(detail string) *Problem {
	return &Problem{Type: "https://flexipack.example/problems/not-found", Title: "Not found", Status: http.StatusNotFound, Detail: detail}
}

// Unavailable returns a 503 problem with a Retry-After.
func Unavailable(detail string, retryAfter int) *Problem {
	return &Problem{Type: "https://flexipack.example/problems/unavailable", Title: "Service unavailable", Status: http.StatusServiceUnavailable,
		Detail: detail, RetryAfter: retryAfter}
}

// Unauthorized returns a 401 problem.
func Unauthorized(detail string) *Problem {
	return &Problem{Type: "https://flexipack.example/problems/unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized, Detail: detail}
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="query"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// errBusy reports a store at its concurrent-query cap.
var errBusy = errors.New("too many concurrent queries")

// problemFor maps an error of a handler to the problem the client gets:
// never a 500 carrying internals (the caller logs the error itself).
func (a *API) problemFor(err error) *Problem {
	var p *Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, reader.ErrNotFound):
		return NotFound(err.Error())
	case errors.Is(err, errBusy):
		return Unavailable(fmt.Sprintf("the serving store is at its cap of %d concurrent queries; retry later", a.cfg.MaxConcurrent), a.retryAfter())
	case errors.Is(err, reader.ErrUnavailable):
		return Unavailable("the serving store does not answer; retry later", a.retryAfter())
	case errors.Is(err, route.ErrNoPhase):
		return Unavailable("the cutover phase is not known yet (state store not read); retry later", a.retryAfter())
	case errors.Is(err, context.DeadlineExceeded):
		return Unavailable(fmt.Sprintf("the query took longer than the %s request time-out; narrow the range or retry later", a.cfg.RequestTimeout), a.retryAfter())
	default:
		return &Problem{Type: "about:blank", Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "the request failed; the service logged the cause"}
	}
}

func (a *API) retryAfter() int { return max(1, int(a.cfg.RetryAfter.Seconds())) }
