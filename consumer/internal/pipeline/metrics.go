package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/obs"
)

// metrics are the pipeline's Prometheus metrics.
type metrics struct {
	deliveries      *prometheus.CounterVec   // outcome: acked, nacked, dead_lettered, stale
	batchMessages   prometheus.Histogram     // messages per batch
	batchRecords    prometheus.Histogram     // records per batch
	batchSeconds    prometheus.Histogram     // read to ack
	sinkSeconds     *prometheus.HistogramVec // sink, outcome
	sinkUp          *prometheus.GaugeVec     // sink
	recordsWritten  *prometheus.CounterVec   // sink
	ledgerEntries   *prometheus.CounterVec   // sink
	ledgerReadings  *prometheus.CounterVec   // sink
	rejectedSamples prometheus.Counter
	phase           *prometheus.GaugeVec // phase: 1 for the applied phase
	phaseVersion    prometheus.Gauge
	lagMessages     prometheus.Gauge
	lagSeconds      prometheus.Gauge
	inflight        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	sizes := prometheus.ExponentialBuckets(1, 2, 13) // 1 .. 4096
	lat := prometheus.ExponentialBuckets(0.001, 2, 15)
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_deliveries_total",
			Help: "Messages settled, by outcome: acked (stored, or dead-lettered then acked), nacked (returned to the bus), dead_lettered (also counted in acked), stale (ack dropped after a reconnect; the bus redelivers)."}, []string{"outcome"}),
		batchMessages: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "consumer_batch_messages", Help: "Messages per batch.", Buckets: sizes}),
		batchRecords:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "consumer_batch_records", Help: "Readings per batch.", Buckets: sizes}),
		batchSeconds:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "consumer_batch_duration_seconds", Help: "Time from a batch's read to its ack.", Buckets: lat}),
		sinkSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "consumer_sink_write_duration_seconds",
			Help: "Latency of one batch write to a store, by outcome (ok, partial, error).", Buckets: lat}, []string{"sink", "outcome"}),
		sinkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consumer_sink_up", Help: "1 while the store takes writes, 0 after a failed write until it recovers."}, []string{"sink"}),
		recordsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_records_written_total",
			Help: "Readings written durably to a store."}, []string{"sink"}),
		ledgerEntries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_gap_ledger_entries_total",
			Help: "Gap-ledger entries recorded for a repairable store that missed readings."}, []string{"sink"}),
		ledgerReadings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "consumer_gap_ledger_readings_total",
			Help: "Readings covered by gap-ledger entries."}, []string{"sink"}),
		rejectedSamples: prometheus.NewCounter(prometheus.CounterOpts{Name: "consumer_rejected_samples_total", Help: "Samples rejected inside accepted messages (kept as partial dead letters)."}),
		phase:           prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "consumer_phase", Help: "1 for the cutover phase the consumer applies, 0 for the others."}, []string{"phase"}),
		phaseVersion:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "consumer_phase_version", Help: "Version of the cutover state the consumer applies."}),
		lagMessages:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "consumer_lag_messages", Help: "Messages waiting on the bus."}),
		lagSeconds:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "consumer_lag_seconds", Help: "Age of the newest acked message when it was acked."}),
		inflight:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "consumer_inflight_batches", Help: "Batches read and not yet settled."}),
	}
	for _, o := range []string{"acked", "nacked", "dead_lettered", "stale"} {
		m.deliveries.WithLabelValues(o)
	}
	for _, p := range cutover.Phases {
		m.phase.WithLabelValues(string(p))
	}
	for _, s := range []string{cutover.SinkLegacy, cutover.SinkInflux} {
		m.ledgerEntries.WithLabelValues(s)
		m.ledgerReadings.WithLabelValues(s)
		m.recordsWritten.WithLabelValues(s)
	}
	m.deliveries = obs.Register(reg, m.deliveries)
	m.batchMessages = obs.Register(reg, m.batchMessages)
	m.batchRecords = obs.Register(reg, m.batchRecords)
	m.batchSeconds = obs.Register(reg, m.batchSeconds)
	m.sinkSeconds = obs.Register(reg, m.sinkSeconds)
	m.sinkUp = obs.Register(reg, m.sinkUp)
	m.recordsWritten = obs.Register(reg, m.recordsWritten)
	m.ledgerEntries = obs.Register(reg, m.ledgerEntries)
	m.ledgerReadings = obs.Register(reg, m.ledgerReadings)
	m.rejectedSamples = obs.Register(reg, m.rejectedSamples)
	m.phase = obs.Register(reg, m.phase)
	m.phaseVersion = obs.Register(reg, m.phaseVersion)
	m.lagMessages = obs.Register(reg, m.lagMessages)
	m.lagSeconds = obs.Register(reg, m.lagSeconds)
	m.inflight = obs.Register(reg, m.inflight)
	return m
}

func (m *metrics) setPhase(st cutover.State) {
	for _, p := range cutover.Phases {
		v := 0.0
		if p == st.Phase {
			v = 1
		}
		m.phase.WithLabelValues(string(p)).Set(v)
	}
	m.phaseVersion.Set(float64(st.Version))
}
