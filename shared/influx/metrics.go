package influx

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/obs"
)

// Metrics are the Writer's Prometheus metrics.
type Metrics struct {
	// RequestSeconds is the latency of one write request, by outcome: ok,
	// rejected (400/422, some points refused), retry (a retryable failure),
	// error (any other failure).
	RequestSeconds *prometheus.HistogramVec
	// Points counts line-protocol lines of write requests InfluxDB accepted
	// in full.
	Points prometheus.Counter
	// Records counts records written completely.
	Records prometheus.Counter
	// Rejected counts records InfluxDB refused (field type conflicts and the like).
	Rejected prometheus.Counter
	// Retries counts retried requests, by reason (the HTTP status, "timeout" or "network").
	Retries *prometheus.CounterVec
	// Splits counts batches split in two to isolate rejected records.
	Splits prometheus.Counter
}

// NewMetrics creates the Writer metrics and registers them with reg (nil:
// not registered). Registering twice in one registry reuses the collectors
// registered first, so several writers in one process share them.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RequestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "influx_write_request_duration_seconds",
			Help:    "Latency of one InfluxDB write request, by outcome (ok, rejected, retry, error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		Points:   prometheus.NewCounter(prometheus.CounterOpts{Name: "influx_write_points_total", Help: "Line-protocol lines of write requests InfluxDB accepted in full."}),
		Records:  prometheus.NewCounter(prometheus.CounterOpts{Name: "influx_write_records_total", Help: "Records written to InfluxDB completely."}),
		Rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "influx_write_rejected_records_total", Help: "Records InfluxDB refused (field type conflicts and other per-point errors)."}),
		Retries:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "influx_write_retries_total", Help: "Retried InfluxDB write requests, by reason."}, []string{"reason"}),
		Splits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "influx_write_splits_total", Help: "Write batches split to isolate rejected records."}),
	}
	m.RequestSeconds = obs.Register(reg, m.RequestSeconds)
	m.Points = obs.Register(reg, m.Points)
	m.Records = obs.Register(reg, m.Records)
	m.Rejected = obs.Register(reg, m.Rejected)
	m.Retries = obs.Register(reg, m.Retries)
	m.Splits = obs.Register(reg, m.Splits)
	return m
}
