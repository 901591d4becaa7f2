// Package obs provides the observability pieces every binary shares: a slog
// logger configured from flags, and an HTTP server for /metrics, /-/healthy
// and /-/ready.
package obs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/term"

	"github.com/flexipack/cutover/shared/redact"
)

// NewLogger returns a logger writing to w at the named level ("debug",
// "info", "warn", "error"). format is "json", "text" or "auto"; auto picks
// text on a terminal and JSON otherwise.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: redact.ReplaceAttr}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "", "auto":
		if IsTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want auto, json or text", format)
	}
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// NewRegistry returns a Prometheus registry with the Go and process
// collectors registered. Each process makes one and passes it down.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ReadinessCheck names one condition of readiness; Check returns nil when it holds.
type ReadinessCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Server serves /metrics, /-/healthy and /-/ready.
type Server struct {
	addr   string
	reg    *prometheus.Registry
	logger *slog.Logger
	mux    *http.ServeMux

	limits Limits

	mu       sync.Mutex
	checks   []ReadinessCheck
	draining bool
	ln       net.Listener
}

// NewServer returns a server for addr ("" disables serving; Run then only
// waits for ctx).
func NewServer(addr string, reg *prometheus.Registry, logger *slog.Logger) *Server {
	s := &Server{addr: addr, reg: reg, logger: logger, mux: http.NewServeMux()}
	s.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "healthy\n")
	})
	s.mux.HandleFunc("/-/ready", s.serveReady)
	return s
}

// SetLimits replaces the server's limits (DefaultLimits otherwise); call it
// before Run.
func (s *Server) SetLimits(l Limits) { s.limits = l }

// Handle adds a handler, for binaries with extra endpoints (control, ingest).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// AddReadiness adds a condition that /-/ready checks on every request.
func (s *Server) AddReadiness(c ReadinessCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, c)
}

// SetDraining marks the process as draining: /-/ready answers 503 from now on.
func (s *Server) SetDraining() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
}

// Ready evaluates every readiness condition and returns the first failure.
func (s *Server) Ready(ctx context.Context) error {
	s.mu.Lock()
	checks := append([]ReadinessCheck(nil), s.checks...)
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return errors.New("draining")
	}
	for _, c := range checks {
		if err := c.Check(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return nil
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		http.Error(w, "not ready: "+redact.String(err.Error()), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// Addr returns the address the server listens on, once Listen has run.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Listen binds the address; it is separate from Run so that a caller learns
// of a port in use before it starts work.
func (s *Server) Listen() error {
	if s.addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return nil
}

// Run serves until ctx ends. It calls Listen first if that has not happened.
func (s *Server) Run(ctx context.Context) error {
	if s.addr == "" {
		<-ctx.Done()
		return nil
	}
	if s.Addr() == "" {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	srv, ln := newHTTPServer(s.mux, s.ln, s.limits)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("http server listening", "addr", s.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		return nil
	}
}
