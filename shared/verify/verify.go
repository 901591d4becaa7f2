// Package verify compares the legacy store with InfluxDB: per unit and per
// time window, the number of readings and an order-independent checksum of
// their values, and (shadow read) the answers of representative dashboard
// queries run against both stores.
package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/window"
)

// Source is a store that streams its readings back: every reading with time
// in [from, to), only of units when units is not empty. The order does not
// matter to Compare. The record passed to fn may be reused after fn returns.
type Source interface {
	Stream(ctx context.Context, from, to time.Time, units []string, fn func(*telemetry.Record) error) error
}

// Defaults of Options' zero fields.
const (
	DefaultWindow        = time.Hour
	DefaultChunk         = 12 * time.Hour
	DefaultMaxMismatches = 1000
)

// Options says what Compare compares.
type Options struct {
	From, To time.Time // the half-open range [From, To) of reading times
	Units    []string  // empty: every unit either store has
	// Window is the width of the compared windows, aligned to the epoch as
	// window.Align aligns (default 1h).
	Window time.Duration
	// Chunk is how much time one pass streams from both stores (rounded up
	// to a whole number of windows; default 12h). Memory is bounded by the
	// number of (unit, window) pairs in one chunk, whatever the range.
	Chunk time.Duration
	// MaxMismatches caps the mismatching windows listed in the result (all
	// are counted; default 1000).
	MaxMismatches int
	// Progress, if set, is called after each chunk.
	Progress func(Progress)
}

// Progress reports how far a Compare has got.
type Progress struct {
	Chunk, Chunks  int       // chunks done, of the total
	Through        time.Time // readings before this time are compared
	LegacyReadings int64
	InfluxReadings int64
	Windows        int64
	Mismatched     int64
}

// Sum is what one store holds in one (unit, window): the number of
// readings and the sum of their RecordHash values.
type Sum struct {
	N        int64  `json:"readings"`
	Checksum uint64 `json:"checksum"`
}

// Mismatch kinds.
const (
	MissingInInflux = "missing-in-influx" // the window has readings only in the legacy store
	MissingInLegacy = "missing-in-legacy" // the window has readings only in InfluxDB
	CountDiffers    = "count-differs"     // both have readings, not as many
	ValuesDiffer    = "values-differ"     // as many readings, different values
)

// Mismatch is one (unit, window) whose stores disagree.
type Mismatch struct {
	Unit   string    `json:"unit"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Kind   string    `json:"kind"`
	Legacy Sum       `json:"legacy"`
	Influx Sum       `json:"influx"`
}

// Result is a comparison's outcome.
type Result struct {
	From           time.Time     `json:"from"`
	To             time.Time     `json:"to"`
	Window         time.Duration `json:"-"`
	WindowText     string        `json:"window"`
	Units          []string      `json:"units,omitempty"`
	LegacyReadings int64         `json:"legacy_readings"`
	InfluxReadings int64         `json:"influx_readings"`
	// Windows counts the (unit, window) pairs that hold a reading in
	// either store; Rate is Mismatched / Windows (0 when Windows is 0).
	Windows    int64      `json:"windows"`
	Mismatched int64      `json:"mismatched"`
	Rate       float64    `json:"mismatch_rate"`
	Mismatches []Mismatch `json:"mismatches,omitempty"`
	Truncated  bool       `json:"mismatches_truncated,omitempty"`
	Elapsed    string     `json:"elapsed"`
}

// Compare streams both stores over opts' range, chunk by chunk, and
// compares them per (unit, window).
func Compare(ctx context.Context, legacy, influx Source, opts Options) (Result, error) {
	if !opts.From.Before(opts.To) {
		return Result{}, fmt.Errorf("verify: range [%s, %s) is empty", opts.From.UTC().Format(time.RFC3339), opts.To.UTC().Format(time.RFC3339))
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Window%time.Millisecond != 0 {
		return Result{}, fmt.Errorf("verify: window %s: want a whole number of milliseconds", opts.Window)
	}
	if opts.Chunk <= 0 {
		opts.Chunk = DefaultChunk
	}
	// A window never straddles two chunks: chunks are whole windows, and
	// their boundaries are window boundaries.
	perChunk := max(1, int64((opts.Chunk+opts.Window-1)/opts.Window))
	chunk := time.Duration(perChunk) * opts.Window
	if opts.MaxMismatches <= 0 {
		opts.MaxMismatches = DefaultMaxMismatches
	}
	from, to := opts.From.UTC(), opts.To.UTC()
	started := time.Now()
	res := Result{From: from, To: to, Window: opts.Window, WindowText: opts.Window.String(), Units: opts.Units}

	var spans []window.Span
	for s := window.Align(from, opts.Window); s.Before(to); s = s.Add(chunk) {
		sp := window.Span{From: s, To: s.Add(chunk)}
		if sp.From.Before(from) {
			sp.From = from
		}
		if sp.To.After(to) {
			sp.To = to
		}
		spans = append(spans, sp)
	}
	// Each store streams its chunks one after another, up to one chunk
	// ahead of the comparison: neither waits for the other at every chunk
	// boundary (memory: at most three chunks' sums per store).
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	stream := func(src Source, what string) <-chan chunkSums {
		out := make(chan chunkSums, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, sp := range spans {
				m, err := sums(ctx, src, sp, opts.Units, opts.Window)
				if err != nil {
					err = fmt.Errorf("verify: read %s %s: %w", what, sp, err)
				}
				select {
				case out <- chunkSums{m, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
		return out
	}
	lc, fc := stream(legacy, "legacy store"), stream(influx, "InfluxDB")
	for i, sp := range spans {
		l, f := <-lc, <-fc
		if err := cmp.Or(l.err, f.err); err != nil {
			return res, err
		}
		compareChunk(&res, l.m, f.m, opts.Window, opts.MaxMismatches)
		if opts.Progress != nil {
			opts.Progress(Progress{Chunk: i + 1, Chunks: len(spans), Through: sp.To, LegacyReadings: res.LegacyReadings,
				InfluxReadings: res.InfluxReadings, Windows: res.Windows, Mismatched: res.Mismatched})
		}
	}
	if res.Windows > 0 {
		res.Rate = float64(res.Mismatched) / float64(res.Windows)
	}
	res.Elapsed = time.Since(started).Round(time.Millisecond).String()
	return res, nil
}

// chunkSums is one store's sums over one chunk, or why it has none.
type chunkSums struct {
	m   map[window.Key]Sum
	err error
}

// errOutOfRange reports a store that returned a reading it was not asked for.
var errOutOfRange = errors.New("reading outside the requested range")

func sums(ctx context.Context, src Source, sp window.Span, units []string, w time.Duration) (map[window.Key]Sum, error) {
	out := map[window.Key]Sum{}
	want := map[string]bool{}
	for _, u := range units {
		want[u] = true
	}
	err := src.Stream(ctx, sp.From, sp.To, units, func(r *telemetry.Record) error {
		t := r.Time()
		if !sp.Contains(t) || (len(want) > 0 && !want[r.Unit]) {
			return fmt.Errorf("%w: (%s, %s) not in %s", errOutOfRange, r.Unit, t.Format(time.RFC3339Nano), sp)
		}
		k := window.Key{Unit: r.Unit, Start: window.Align(t, w)}
		s := out[k]
		s.N++
		s.Checksum += RecordHash(r)
		out[k] = s
		return nil
	})
	return out, err
}

func compareChunk(res *Result, l, f map[window.Key]Sum, w time.Duration, maxList int) {
	check := func(k window.Key, ls, fs Sum) {
		res.Windows++
		if ls == fs {
			return
		}
		res.Mismatched++
		if len(res.Mismatches) >= maxList {
			res.Truncated = true
			return
		}
		kind := ValuesDiffer
		switch {
		case fs.N == 0:
			kind = MissingInInflux
		case ls.N == 0:
			kind = MissingInLegacy
		case ls.N != fs.N:
			kind = CountDiffers
		}
		res.Mismatches = append(res.Mismatches, Mismatch{Unit: k.Unit, Start: k.Start, End: k.Start.Add(w), Kind: kind, Legacy: ls, Influx: fs})
	}
	var keys []window.Key
	for k, ls := range l {
		res.LegacyReadings += ls.N
		keys = append(keys, k)
	}
	for k, fs := range f {
		res.InfluxReadings += fs.N
		if _, ok := l[k]; !ok {
			keys = append(keys, k)
		}
	}
	sortKeys(keys)
	for _, k := range keys {
		check(k, l[k], f[k])
	}
}

func sortKeys(keys []window.Key) {
	slices.SortFunc(keys, func(a, b window.Key) int {
		if c := strings.Compare(a.Unit, b.Unit); c != 0 {
			return c
		}
		return a.Start.Compare(b.Start)
	})
}
