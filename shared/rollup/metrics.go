package rollup

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/obs"
)

// Metrics are the rollup job's Prometheus metrics.
type Metrics struct {
	// Passes counts follow passes by outcome: ok or error.
	Passes *prometheus.CounterVec
	// Points counts rollup points written.
	Points prometheus.Counter
	// LastSuccess is the Unix time of the end of the last window a pass
	// rolled up successfully: how current the dashboards' rollups are.
	LastSuccess prometheus.Gauge
	// PassSeconds is the duration of one pass.
	PassSeconds prometheus.Histogram
}

// NewMetrics creates the rollup metrics and registers them with reg (nil:
// not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		Passes: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rollup_passes_total", Help: "Rollup passes by outcome (ok, error).",
		}, []string{"outcome"})),
		Points: obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rollup_points_written_total", Help: "5-minute rollup points written (bsu_5m, bsu_site_5m).",
		})),
		LastSuccess: obs.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rollup_last_success_window_end_seconds", Help: "Unix time of the end of the newest window rolled up successfully.",
		})),
		PassSeconds: obs.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rollup_pass_duration_seconds", Help: "Duration of one rollup pass.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		})),
	}
}
