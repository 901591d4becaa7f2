package notify

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/retry"
)

// Measurement is where state changes go in InfluxDB.
const Measurement = "bsu_alert"

// InfluxConfig names the InfluxDB bucket bsu_alert points go to.
type InfluxConfig struct {
	// Influx is where the points go, written through the project's one
	// InfluxDB writer (every API version, TLS, retries of 429/5xx).
	Influx influx.Config
	// MaxQueued bounds the points held while InfluxDB is down; the oldest
	// are dropped (and counted) beyond it. Default 100,000.
	MaxQueued int
	Retry     retry.Policy
}

// InfluxPoints writes one bsu_alert point per state change, at the
// change's reading time: tags alertname, unit, site, severity, state
// (pending, firing, resolved, inactive); fields value, active_at_ms and
// summary. Points are queued and written every second; while InfluxDB is
// down they wait (bounded), and delivery to Alertmanager never waits for
// them.
type InfluxPoints struct {
	cfg    InfluxConfig
	writer *influx.Writer
	logger *slog.Logger

	mu    sync.Mutex
	lines [][]byte

	written, dropped, failures prometheus.Counter
}

// NewInfluxPoints returns a writer; Run writes.
func NewInfluxPoints(cfg InfluxConfig, logger *slog.Logger, reg prometheus.Registerer) (*InfluxPoints, error) {
	cfg.Influx.MaxRetries = -1 // Run retries, with the queue kept
	wr, err := influx.NewWriter(cfg.Influx, logger)
	if err != nil {
		return nil, fmt.Errorf("bsu_alert points: %w", err)
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 100000
	}
	return &InfluxPoints{cfg: cfg, writer: wr, logger: logger,
		written:  obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "alert_influx_points_written_total", Help: "bsu_alert points written to InfluxDB."})),
		dropped:  obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "alert_influx_points_dropped_total", Help: "bsu_alert points dropped because the queue was full while InfluxDB was down."})),
		failures: obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "alert_influx_write_failures_total", Help: "Failed writes of bsu_alert points (retried)."})),
	}, nil
}

// Add queues one point per change.
func (w *InfluxPoints) Add(changes []engine.Change) {
	if len(changes) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range changes {
		w.lines = append(w.lines, AppendPoint(nil, &changes[i]))
	}
	if over := len(w.lines) - w.cfg.MaxQueued; over > 0 {
		w.lines = append(w.lines[:0], w.lines[over:]...)
		w.dropped.Add(float64(over))
	}
}

// Run writes queued points every second until ctx ends.
func (w *InfluxPoints) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	b := retry.NewBackoff(w.cfg.Retry)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = w.Flush(fctx)
			cancel()
			return nil
		case <-tick.C:
		}
		if err := w.Flush(ctx); err != nil {
			w.failures.Inc()
			wait := b.Next()
			w.logger.Warn("write bsu_alert points failed, retrying", "err", err, "retry_in", wait)
			if retry.Sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		b.Reset()
	}
}

// Flush writes what is queued.
func (w *InfluxPoints) Flush(ctx context.Context) error {
	w.mu.Lock()
	lines := w.lines
	w.mu.Unlock()
	if len(lines) == 0 {
		return nil
	}
	var body []byte
	for _, l := range lines {
		body = append(append(body, l...), '\n')
	}
	if err := w.writer.WriteLines(ctx, body); err != nil {
		return fmt.Errorf("write %d bsu_alert points: %w", len(lines), err)
	}
	w.mu.Lock()
	w.lines = append(w.lines[:0], w.lines[len(lines):]...)
	w.mu.Unlock()
	w.written.Add(float64(len(lines)))
	return nil
}

// stateTag names a change for the dashboards.
func stateTag(c *engine.Change) string {
	switch {
	case c.Resolved():
		return "resolved"
	case c.State == engine.Inactive:
		return "inactive" // pending that did not last
	default:
		return c.State.String()
	}
}

// AppendPoint appends a change's bsu_alert line to dst.
func AppendPoint(dst []byte, c *engine.Change) []byte {
	t := c.ActiveAt
	switch {
	case c.State == engine.Firing && !c.FiredAt.IsZero():
		t = c.FiredAt
	case c.State == engine.Inactive && !c.ResolvedAt.IsZero():
		t = c.ResolvedAt
	}
	tags := map[string]string{"alertname": c.Rule, "severity": c.Severity, "state": stateTag(c),
		"unit": c.Labels["unit"], "site": c.Labels["site"]}
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	dst = append(dst, Measurement...)
	for _, k := range keys {
		dst = append(dst, ',')
		dst = append(dst, k...)
		dst = append(dst, '=')
		dst = escapeTag(dst, tags[k])
	}
	dst = append(dst, " value="...)
	dst = strconv.AppendFloat(dst, c.Value, 'g', -1, 64)
	dst = append(dst, ",active_at_ms="...)
	dst = strconv.AppendInt(dst, c.ActiveAt.UnixMilli(), 10)
	dst = append(dst, 'i')
	if s := c.Annotations["summary"]; s != "" {
		dst = append(dst, `,summary="`...)
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '"', '\\':
				dst = append(dst, '\\', s[i])
			case '\n':
				dst = append(dst, '\\', 'n')
			default:
				dst = append(dst, s[i])
			}
		}
		dst = append(dst, '"')
	}
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, t.UnixMilli(), 10)
}

func escapeTag(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ',', '=', ' ', '\\':
			dst = append(dst, '\\', c)
		case '\n', '\r', '\t':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
