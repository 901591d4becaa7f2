// Package poll fetches telemetry XML from unit HTTP endpoints on an
// interval and publishes the bodies as they are.
package poll

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/retry"
	"github.com/flexipack/cutover/shared/telemetry"
)

// HeaderEndpoint names the endpoint a polled message came from (without
// credentials).
const HeaderEndpoint = "endpoint"

// maxBody bounds what is read from an endpoint. Bodies over the contract's
// 1 MiB are still published (flagged by inspect_error, so the consumer
// dead-letters them where an operator sees them); past maxBody the endpoint
// is treated as failing rather than risk memory.
const maxBody = 8 << 20

// Config says what to poll and how.
type Config struct {
	Endpoints   []string
	Interval    time.Duration // between polls of one endpoint (default 10 s)
	Timeout     time.Duration // per request (default 5 s)
	Concurrency int           // requests in flight at once (default 16)
	MaxBackoff  time.Duration // cap of the per-endpoint backoff after failures (default 5 min)
	Client      *http.Client  // default: a client with no overall timeout (Timeout applies per request)
}

// Poller polls endpoints and publishes what they return.
type Poller struct {
	cfg    Config
	pub    bus.Publisher
	logger *slog.Logger
	m      *metrics
	eps    []*endpoint
}

type endpoint struct {
	url      string
	redacted string
	mu       sync.Mutex
	next     time.Time
	failures int
	backoff  *retry.Backoff // the wait after each consecutive failure
	etag     string
	lastHash [32]byte
	busy     bool
}

type metrics struct {
	requests  *prometheus.CounterVec
	published prometheus.Counter
	inspect   prometheus.Counter
	backoff   prometheus.Gauge
}

// New validates cfg and returns a poller publishing to pub.
func New(cfg Config, pub bus.Publisher, logger *slog.Logger, reg prometheus.Registerer) (*Poller, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("no endpoints to poll (--endpoint or --endpoints-file)")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	p := &Poller{cfg: cfg, pub: pub, logger: logger.With("component", "poll")}
	seen := map[string]bool{}
	for i, raw := range cfg.Endpoints {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("endpoint %d %q: want an http or https URL", i+1, raw)
		}
		if seen[raw] {
			continue
		}
		seen[raw] = true
		p.eps = append(p.eps, &endpoint{url: raw, redacted: u.Redacted(),
			backoff: retry.NewBackoff(retry.Policy{Initial: min(2*p.cfg.Interval, p.cfg.MaxBackoff), Max: p.cfg.MaxBackoff})})
	}
	p.m = &metrics{
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "producer_poll_requests_total", Help: "Endpoint polls by result: published, unchanged, empty, error."}, []string{"result"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "producer_poll_published_total", Help: "Polled messages confirmed by the bus."}),
		inspect:   prometheus.NewCounter(prometheus.CounterOpts{Name: "producer_poll_inspect_errors_total", Help: "Polled messages published with an inspect_error header."}),
		backoff:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "producer_poll_endpoints_backing_off", Help: "Endpoints whose last poll failed."}),
	}
	p.m.requests = obs.Register(reg, p.m.requests)
	p.m.published = obs.Register(reg, p.m.published)
	p.m.inspect = obs.Register(reg, p.m.inspect)
	p.m.backoff = obs.Register(reg, p.m.backoff)
	return p, nil
}

// Run polls until ctx ends. Endpoints start spread over one interval; each
// is polled every Interval, or after an exponential backoff (Interval
// doubling per consecutive failure, up to MaxBackoff, with jitter) while
// it fails. At most Concurrency requests (and their publishes) are in
// flight; a publish that fails is retried until it succeeds or ctx ends,
// so while the bus is down polling pauses instead of dropping bodies.
func (p *Poller) Run(ctx context.Context) error {
	now := time.Now()
	for i, e := range p.eps {
		e.next = now.Add(time.Duration(i) * p.cfg.Interval / time.Duration(len(p.eps)))
	}
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(min(p.cfg.Interval/10, time.Second))
	defer tick.Stop()
	for {
		now := time.Now()
		for _, e := range p.eps {
			e.mu.Lock()
			due := !e.busy && !now.Before(e.next)
			if due {
				e.busy = true
			}
			e.mu.Unlock()
			if !due {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Add(1)
			go func(e *endpoint) {
				defer wg.Done()
				defer func() { <-sem }()
				p.pollOne(ctx, e)
			}(e)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (p *Poller) pollOne(ctx context.Context, e *endpoint) {
	result, err := p.fetchAndPublish(ctx, e)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.busy = false
	if ctx.Err() != nil {
		return
	}
	p.m.requests.WithLabelValues(result).Inc()
	if err != nil {
		if e.failures == 0 {
			p.m.backoff.Inc()
		}
		e.failures++
		wait := e.backoff.Next()
		e.next = time.Now().Add(wait)
		p.logger.Warn("poll failed", "endpoint", e.redacted, "err", err, "failures", e.failures, "retry_in", wait.Round(time.Millisecond))
		return
	}
	if e.failures > 0 {
		p.m.backoff.Dec()
		p.logger.Info("endpoint recovered", "endpoint", e.redacted, "after_failures", e.failures)
	}
	e.failures = 0
	e.backoff.Reset()
	e.next = e.next.Add(p.cfg.Interval)
	if e.next.Before(time.Now()) {
		e.next = time.Now().Add(p.cfg.Interval)
	}
}

func (p *Poller) fetchAndPublish(ctx context.Context, e *endpoint) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, e.url, nil)
	if err != nil {
		return "error", err
	}
	req.Header.Set("Accept", "application/xml")
	e.mu.Lock()
	if e.etag != "" {
		req.Header.Set("If-None-Match", e.etag)
	}
	e.mu.Unlock()
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return "error", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return "unchanged", nil
	case resp.StatusCode == http.StatusNoContent:
		return "empty", nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return "error", fmt.Errorf("GET answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return "error", fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return "error", fmt.Errorf("body over %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "empty", nil
	}
	hash := sha256.Sum256(body)
	e.mu.Lock()
	unchanged := hash == e.lastHash
	e.mu.Unlock()
	if unchanged {
		return "unchanged", nil
	}
	msg := Message(body, e.redacted)
	if msg.Headers[bus.HeaderInspectError] != "" {
		p.m.inspect.Inc()
		p.logger.Warn("polled message does not inspect; publishing it for the consumer to dead-letter", "endpoint", e.redacted, "err", msg.Headers[bus.HeaderInspectError])
	}
	if err := p.publish(ctx, msg); err != nil {
		return "error", err
	}
	p.m.published.Inc()
	e.mu.Lock()
	e.lastHash = hash
	e.etag = resp.Header.Get("ETag")
	e.mu.Unlock()
	return "published", nil
}

// publish retries until the bus confirms or ctx ends: the body was fetched
// and must not be dropped.
func (p *Poller) publish(ctx context.Context, msg bus.Message) error {
	err := retry.Do(ctx, retry.Policy{OnRetry: func(_ int, err error, wait time.Duration) {
		p.logger.Warn("publish failed, retrying", "id", msg.ID, "err", err, "retry_in", wait)
	}}, func(ctx context.Context) error {
		err := p.pub.Publish(ctx, []bus.Message{msg})
		if errors.Is(err, bus.ErrUnpublishable) {
			return retry.Permanent(fmt.Errorf("publish %s, not retried: %w", msg.ID, err))
		}
		return err
	})
	var stopped *retry.StoppedError
	if errors.As(err, &stopped) {
		return fmt.Errorf("publish: %w", stopped.Err)
	}
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// Message wraps a polled body for the bus, as is. telemetry.Inspect only
// fills the headers; a body it rejects is still published, with header
// inspect_error naming the reason and routing key "bsu.v0.unknown" (or the
// unit, when found), so the consumer's dead-letter path keeps it visible
// instead of the producer dropping it. The id is the unit and a hash of the
// body, so polling the same message twice yields the same id.
func Message(body []byte, endpoint string) bus.Message {
	sum, err := telemetry.Inspect(body)
	hash := sha256.Sum256(body)
	h := hex.EncodeToString(hash[:12])
	headers := map[string]string{
		bus.HeaderUnit:       sum.Unit,
		bus.HeaderGeneration: strconv.Itoa(sum.Generation),
		bus.HeaderSamples:    strconv.Itoa(sum.Samples),
		bus.HeaderSource:     "poll",
		HeaderEndpoint:       endpoint,
	}
	if err != nil {
		headers[bus.HeaderInspectError] = err.Error()
	}
	return bus.Message{
		ID:         sum.Unit + ":" + h,
		Key:        sum.Unit,
		RoutingKey: rabbit.RoutingKey(sum.Generation, sum.Unit),
		Headers:    headers,
		Body:       body,
	}
}
