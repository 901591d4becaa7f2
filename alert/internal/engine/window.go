package engine

import (
	"math"

	"github.com/flexipack/cutover/alert/internal/rules"
)

// sample is one windowed value: its time as milliseconds after the
// window's base, and the value as float32 (the codec keeps 6 significant
// digits; float32 holds 7), 8 bytes in all.
type sample struct {
	dt int32
	v  float32
}

// window holds one unit's samples of one field over a rule's window, in
// time order, at most rules.MaxWindowPoints of them (the oldest go first).
type window struct {
	base int64 // ms; sample times are base + dt
	s    []sample
}

func (w *window) reset() { w.s = w.s[:0] }

func (w *window) at(i int) int64 { return w.base + int64(w.s[i].dt) }

// add inserts a sample in time order (late samples included; a sample at a
// time already held is a redelivery and is ignored), then drops samples
// older than the newest minus span.
func (w *window) add(t int64, v float64, span int64) {
	if len(w.s) == 0 {
		w.base = t
	}
	if d := t - w.base; d < math.MinInt32 || d > math.MaxInt32 {
		w.rebase(t)
	}
	n := len(w.s)
	i := n
	for i > 0 && w.at(i-1) > t {
		i--
	}
	if i > 0 && w.at(i-1) == t {
		return
	}
	w.s = append(w.s, sample{})
	copy(w.s[i+1:], w.s[i:n])
	w.s[i] = sample{dt: int32(t - w.base), v: float32(v)}
	cut := 0
	newest := w.at(len(w.s) - 1)
	for cut < len(w.s) && (w.at(cut) < newest-span || len(w.s)-cut > rules.MaxWindowPoints) {
		cut++
	}
	if cut > 0 {
		w.s = append(w.s[:0], w.s[cut:]...)
	}
	if len(w.s) > 0 && w.s[0].dt > math.MaxInt32/2 {
		w.rebase(w.at(0))
	}
}

// rebase moves the base to t, dropping samples that would not fit.
func (w *window) rebase(t int64) {
	kept := w.s[:0]
	for i := range w.s {
		d := w.at(i) - t
		if d >= math.MinInt32 && d <= math.MaxInt32 {
			kept = append(kept, sample{dt: int32(d), v: w.s[i].v})
		}
	}
	w.s, w.base = kept, t
}

// aggregate computes f over the window; ok is false when the window holds
// too few samples (none; fewer than two for delta and rate).
func (w *window) aggregate(f rules.Func) (float64, bool) {
	n := len(w.s)
	switch f {
	case rules.FuncDelta:
		if n < 2 {
			return 0, false
		}
		return float64(w.s[n-1].v) - float64(w.s[0].v), true
	case rules.FuncRate:
		if n < 2 || w.s[n-1].dt == w.s[0].dt {
			return 0, false
		}
		return (float64(w.s[n-1].v) - float64(w.s[0].v)) / (float64(w.s[n-1].dt-w.s[0].dt) / 60000), true
	}
	if n == 0 {
		return 0, false
	}
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, x := range w.s {
		v := float64(x.v)
		sum += v
		lo = min(lo, v)
		hi = max(hi, v)
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
