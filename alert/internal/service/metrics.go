package service

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/shared/obs"
)

type metrics struct {
	messages    *prometheus.CounterVec
	rejected    prometheus.Counter
	readings    *prometheus.CounterVec
	evaluations prometheus.Counter
	evalSeconds prometheus.Histogram
	transitions *prometheus.CounterVec
	alerts      *prometheus.GaugeVec
	units       prometheus.Gauge
	rules       prometheus.Gauge
	lag         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		messages: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alert_messages_total",
			Help: "Messages read, by result: ok, or undecodable (counted and skipped; the consumer dead-letters them)."}, []string{"result"})),
		rejected: obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "alert_rejected_samples_total",
			Help: "Samples the codec rejected inside otherwise decodable messages."})),
		readings: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alert_readings_total",
			Help: "Readings seen, by timeliness: on_time, late (within the allowed lateness), too_late (dropped), duplicate (ignored), future (more than the allowed lateness ahead of the clock, dropped)."}, []string{"timeliness"})),
		evaluations: obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "alert_evaluations_total",
			Help: "Rule evaluations (one per rule per reading)."})),
		evalSeconds: obs.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "alert_evaluation_seconds",
			Help: "Time to decode and evaluate one batch.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)})),
		transitions: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alert_transitions_total",
			Help: "Alert state changes, by rule and new state (pending, firing, resolved, inactive)."}, []string{"rule", "state"})),
		alerts: obs.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "alert_alerts",
			Help: "Alerts by state (pending, firing)."}, []string{"state"})),
		units: obs.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "alert_units",
			Help: "Units the engine tracks."})),
		rules: obs.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "alert_rules",
			Help: "Rules loaded."})),
		lag: obs.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "alert_watermark_lag_seconds",
			Help: "Wall clock minus the newest reading time evaluated (the fleet clock absence rules read): how far behind live the evaluation is."})),
	}
}

func (m *metrics) restore(alerts []engine.Alert) {
	for _, a := range alerts {
		m.alerts.WithLabelValues(a.State.String()).Inc()
	}
}

// observe folds the engine's counters and a batch's changes into the metrics.
func (m *metrics) observe(st engine.Stats, prev *engine.Stats, changes []engine.Change, units int) {
	m.readings.WithLabelValues("on_time").Add(float64((st.Readings - st.Late) - (prev.Readings - prev.Late)))
	m.readings.WithLabelValues("late").Add(float64(st.Late - prev.Late))
	m.readings.WithLabelValues("too_late").Add(float64(st.TooLate - prev.TooLate))
	m.readings.WithLabelValues("duplicate").Add(float64(st.Duplicates - prev.Duplicates))
	m.readings.WithLabelValues("future").Add(float64(st.Future - prev.Future))
	m.evaluations.Add(float64(st.Evaluations - prev.Evaluations))
	*prev = st
	m.units.Set(float64(units))
	for i := range changes {
		c := &changes[i]
		if c.From != engine.Inactive {
			m.alerts.WithLabelValues(c.From.String()).Dec()
		}
		if c.State != engine.Inactive {
			m.alerts.WithLabelValues(c.State.String()).Inc()
		}
		m.transitions.WithLabelValues(c.Rule, stateName(c)).Inc()
	}
}
