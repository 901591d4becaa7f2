package kafka

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// register registers c with reg (nil: nothing) and returns the collector to
// use, the one registered before when an identical one exists.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
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
