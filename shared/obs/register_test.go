package obs_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flexipack/cutover/shared/obs"
)

func TestRegisterReusesIdenticalCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "things_total", Help: "Things."}
	first := obs.Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	second := obs.Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	if first != second {
		t.Fatal("the second registration did not return the collector registered first")
	}
	second.WithLabelValues("a").Add(2)
	if got := value(t, first.WithLabelValues("a")); got != 2 {
		t.Fatalf("shared counter = %v, want 2", got)
	}
	if n := count(t, reg, "things_total"); n != 1 {
		t.Fatalf("%d series exported, want 1", n)
	}
}

func TestRegisterNeverPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	gauge := obs.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "clash", Help: "A gauge."}))
	gauge.Set(3)
	// Same name, other type and labels: a clash Register survives; the
	// returned collector works but is not exported.
	clash := obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clash", Help: "A counter."}, []string{"x"}))
	clash.WithLabelValues("y").Inc()
	if got := value(t, gauge); got != 3 {
		t.Fatalf("registered gauge = %v, want 3", got)
	}
	if n := count(t, reg, "clash"); n != 1 {
		t.Fatalf("%d series named clash exported, want the gauge alone", n)
	}
}

func TestRegisterWithoutRegistry(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered_total", Help: "Unregistered."})
	if got := obs.Register(nil, c); got != c {
		t.Fatal("a nil registry must return the collector as is")
	}
}

// value reads one counter's or gauge's value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if pb.Counter != nil {
		return pb.Counter.GetValue()
	}
	return pb.Gauge.GetValue()
}

// count returns how many series named name reg exports.
func count(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return len(f.Metric)
		}
	}
	return 0
}
