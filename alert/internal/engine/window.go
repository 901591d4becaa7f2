package engine

import (
	"math"

	"github.com/flexipack/cutover/alert/internal/rules"
)

// window holds one unit's samples of one field over a rule's window, in
// time order, at most rules.MaxWindowPoints of them (the oldest go first).
type window struct {
	t []int64
	v []float64
}

func (w *window) reset() {
	w.t, w.v = w.t[:0], w.v[:0]
}

// add inserts a sample in time order (late samples included; a sample at a
// time already held is a redelivery and is ignored), then drops samples
// older than the newest minus span.
func (w *window) add(t int64, v float64, span int64) {
	n := len(w.t)
	i := n
	for i > 0 && w.t[i-1] > t {
		i--
	}
	if i > 0 && w.t[i-1] == t {
		return
	}
	w.t = append(w.t, 0)
	w.v = append(w.v, 0)
	copy(w.t[i+1:], w.t[i:n])
	copy(w.v[i+1:], w.v[i:n])
	w.t[i], w.v[i] = t, v
	cut := 0
	newest := w.t[len(w.t)-1]
	for cut < len(w.t) && (w.t[cut] < newest-span || len(w.t)-cut > rules.MaxWindowPoints) {
		cut++
	}
	if cut > 0 {
		w.t = append(w.t[:0], w.t[cut:]...)
		w.v = append(w.v[:0], w.v[cut:]...)
	}
}

// aggregate computes f over the window; ok is false when the window holds
// too few samples (none; fewer than two for delta and rate).
func (w *window) aggregate(f rules.Func) (float64, bool) {
	n := len(w.v)
	switch f {
	case rules.FuncDelta:
		if n < 2 {
			return 0, false
		}
		return w.v[n-1] - w.v[0], true
	case rules.FuncRate:
		if n < 2 || w.t[n-1] == w.t[0] {
			return 0, false
		}
		return (w.v[n-1] - w.v[0]) / (float64(w.t[n-1]-w.t[0]) / 60000), true
	}
	if n == 0 {
		return 0, false
	}
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, x := range w.v {
		sum += x
		lo = min(lo, x)
		hi = max(hi, x)
	}
	switch f {
	case rules.FuncMin:
		return lo, true
	case rules.FuncMax:
		return hi, true
	default:
		return sum / float64(n), true
	}
}

// bytes is the window's heap footprint.
func (w *window) bytes() int { return 48 + cap(w.t)*8 + cap(w.v)*8 }
