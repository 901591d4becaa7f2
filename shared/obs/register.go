package obs

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns the collector to use: c itself,
// or the identical collector registered before (same names, labels and
// help), so several components of one process, or one component built
// twice, share their metrics instead of failing. A nil reg registers
// nothing. Register never panics: a collector whose descriptors clash with
// another of a different type or shape is returned unregistered (it works,
// its values are just not exported) — a programming error the
// metric-name tests catch, not a reason to stop a service.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}
