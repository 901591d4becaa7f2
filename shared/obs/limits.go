package obs

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound what one client can hold of a server: how long it may take
// to send its headers and body, how long a response may take, how long an
// idle keep-alive connection stays open, how big its headers may be and
// how many connections are served at once. Zero fields take the defaults
// of DefaultLimits.
type Limits struct {
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included: a client
	// trickling a body is cut off after it.
	ReadTimeout time.Duration
	// WriteTimeout bounds one response, from the end of the request's
	// headers; it must exceed the longest handler (a CPU profile runs 30 s).
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	// MaxConns is the most connections served at once; more wait in the
	// kernel's accept queue until one closes.
	MaxConns int
}

// DefaultLimits are the limits every server gets unless told otherwise.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      65 * time.Second,
	IdleTimeout:       60 * time.Second,
	MaxHeaderBytes:    64 << 10,
	MaxConns:          512,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	return l
}

// newHTTPServer returns a server for h with every limit of l set, and the
// listener ln capped at l.MaxConns connections.
func newHTTPServer(h http.Handler, ln net.Listener, l Limits) (*http.Server, net.Listener) {
	l = l.withDefaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
	return srv, netutil.LimitListener(ln, l.MaxConns)
}

// RequireToken guards state-changing requests (every method but GET, HEAD
// and OPTIONS) to h: they must carry "Authorization: Bearer <token>" and
// must not come from another origin (an Origin header naming another host,
// or Sec-Fetch-Site other than same-origin or none), so a web page the
// operator happens to open cannot drive the endpoint. With an empty token
// every state-changing request is refused: the endpoint is read-only until
// the operator sets one. Read-only requests pass through.
func RequireToken(token string, h http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		if reason := crossOrigin(r); reason != "" {
			http.Error(w, "cross-origin request refused: "+reason, http.StatusForbidden)
			return
		}
		if len(want) == 0 {
			http.Error(w, "control endpoint disabled: start the process with a control token (--control-token or --control-token-file)", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="control"`)
			http.Error(w, "missing or wrong control token (Authorization: Bearer <token>)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// crossOrigin says why r comes from another origin, or "" if it does not.
func crossOrigin(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return "Sec-Fetch-Site: " + site
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || origin == "null" || !strings.EqualFold(u.Host, r.Host) {
		return "Origin " + origin + " is not " + r.Host
	}
	return ""
}
