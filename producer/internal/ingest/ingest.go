// Package ingest is the producer's HTTP ingest endpoint: POST one XML
// message, get 202 only once the bus has stored it.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/redact"
	"github.com/flexipack/cutover/shared/telemetry"
)

// HeaderMessageID is the request header a client may set to name its
// message (kept as the bus message id, so a client's retry of the same
// message is recognisable downstream). Without it the id is the unit and a
// hash of the body. An id over 255 bytes is replaced by bus.BoundID's
// stable short form, which the 202 answer reports.
const HeaderMessageID = "X-Message-Id"

// Options tune a Handler.
type Options struct {
	// ConfirmTimeout bounds the wait for the broker's confirm; past it the
	// answer is 503 (default 10 s).
	ConfirmTimeout time.Duration
	// Ready reports whether the bus is connected; while it fails, requests
	// get 503 at once instead of waiting ConfirmTimeout. Nil: always ready.
	Ready func(context.Context) error
	// RetryAfter is the Retry-After of a 503 (default 5 s).
	RetryAfter time.Duration
}

// Handler accepts one XML message per POST. It checks only size (over
// 1 MiB: 413) and well-formedness (telemetry.Inspect: 400 with the
// reason); the consumer validates the rest. It answers 202 only after the
// broker confirmed the message, and 503 with Retry-After when the broker
// is unreachable or does not confirm in time: it never accepts what it
// could not store.
type Handler struct {
	pub    bus.Publisher
	opts   Options
	logger *slog.Logger
	m      *metrics
}

// NewHandler returns the ingest handler publishing through pub.
func NewHandler(pub bus.Publisher, opts Options, logger *slog.Logger, reg prometheus.Registerer) *Handler {
	if opts.ConfirmTimeout <= 0 {
		opts.ConfirmTimeout = 10 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 5 * time.Second
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "producer_ingest_requests_total", Help: "Ingest requests by HTTP status code."}, []string{"code"}),
		latency:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "producer_ingest_duration_seconds", Help: "Time to answer an ingest request, broker confirm included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
	}
	m.requests = obs.Register(reg, m.requests)
	m.latency = obs.Register(reg, m.latency)
	return &Handler{pub: pub, opts: opts, logger: logger, m: m}
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  prometheus.Histogram
}

// Accepted is the body of a 202.
type Accepted struct {
	ID         string `json:"id"`
	Unit       string `json:"unit"`
	Generation int    `json:"generation"`
	Samples    int    `json:"samples"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.m.latency.Observe(time.Since(start).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(w, http.StatusMethodNotAllowed, "POST one XML message")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, telemetry.MaxMessageBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("message is over the %d-byte (1 MiB) limit", telemetry.MaxMessageBytes))
		}
		return fail(w, http.StatusBadRequest, "read body: "+err.Error())
	}
	sum, err := telemetry.Inspect(body)
	if err != nil {
		var me *telemetry.MessageError
		if errors.As(err, &me) && me.Kind == telemetry.KindTooLarge {
			return fail(w, http.StatusRequestEntityTooLarge, me.Reason)
		}
		return fail(w, http.StatusBadRequest, "rejected: "+err.Error())
	}
	if h.opts.Ready != nil {
		if err := h.opts.Ready(r.Context()); err != nil {
			return h.unavailable(w, "bus unavailable: "+err.Error())
		}
	}
	id := r.Header.Get(HeaderMessageID)
	if id == "" {
		sha := sha256.Sum256(body)
		id = sum.Unit + ":" + hex.EncodeToString(sha[:12])
	}
	id = bus.BoundID(id) // an AMQP message id is at most 255 bytes
	msg := bus.Message{
		ID:         id,
		Key:        sum.Unit,
		RoutingKey: rabbit.RoutingKey(sum.Generation, sum.Unit),
		Headers: map[string]string{
			bus.HeaderUnit:       sum.Unit,
			bus.HeaderGeneration: strconv.Itoa(sum.Generation),
			bus.HeaderSamples:    strconv.Itoa(sum.Samples),
			bus.HeaderSource:     "serve",
		},
		Body: body,
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ConfirmTimeout)
	defer cancel()
	if err := h.pub.Publish(ctx, []bus.Message{msg}); err != nil {
		if errors.Is(err, bus.ErrUnpublishable) {
			return fail(w, http.StatusBadRequest, "can never be published: "+err.Error())
		}
		if errors.Is(err, rabbit.ErrUnroutable) {
			// A configuration problem, not the client's: nothing stored.
			h.logger.Error("ingest: message unroutable", "id", id, "err", err)
			return fail(w, http.StatusInternalServerError, "not stored: "+err.Error())
		}
		h.logger.Warn("ingest: not confirmed", "id", id, "err", err)
		return h.unavailable(w, "not stored: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(Accepted{ID: id, Unit: sum.Unit, Generation: sum.Generation, Samples: sum.Samples})
	return http.StatusAccepted
}

func (h *Handler) unavailable(w http.ResponseWriter, reason string) int {
	w.Header().Set("Retry-After", strconv.Itoa(int(h.opts.RetryAfter.Round(time.Second).Seconds())))
	return fail(w, http.StatusServiceUnavailable, reason)
}

func fail(w http.ResponseWriter, code int, reason string) int {
	http.Error(w, redact.String(reason), code)
	return code
}
