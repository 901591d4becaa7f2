package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/obs"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	rejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "query_requests_total",
			Help: "API requests by endpoint, serving store and HTTP status.",
		}, []string{"endpoint", "store", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "query_request_duration_seconds",
			Help:    "Time to answer a successful API request, by endpoint and serving store.",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint", "store"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "query_store_inflight_queries",
			Help: "Queries running on each store now (API answers and shadow reads).",
		}, []string{"store"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "query_store_rejected_total",
			Help: "Queries refused with 503 because the store was at its concurrent-query cap.",
		}, []string{"store"}),
	}
	m.requests = obs.Register(reg, m.requests)
	m.duration = obs.Register(reg, m.duration)
	m.inflight = obs.Register(reg, m.inflight)
	m.rejected = obs.Register(reg, m.rejected)
	return m
}

func (m *metrics) observe(endpoint, store string, code int, started time.Time) {
	m.requests.WithLabelValues(endpoint, store, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(endpoint, store).Observe(time.Since(started).Seconds())
}
