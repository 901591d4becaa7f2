package verify

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/window"
)

// Dashboard answers the dashboard queries that the shadow-read check runs
// against both stores (legacy.Store and influx.Dashboard implement it).
type Dashboard interface {
	// FleetSoC calls fn with the average state of charge of each site in
	// each window of width every (aligned to the epoch) in [from, to).
	FleetSoC(ctx context.Context, from, to time.Time, every time.Duration, fn func(site string, start time.Time, mean float64) error) error
	// UnitSeries calls fn with each value of field (a float field such as
	// soc_pct) that unit reported in [from, to).
	UnitSeries(ctx context.Context, unit string, from, to time.Time, field string, fn func(t time.Time, v float64) error) error
}

// ShadowOptions says which dashboard queries the shadow-read check runs.
type ShadowOptions struct {
	At         time.Time     // the queries' "now": they end here
	Period     time.Duration // fleet query span (default 24h)
	Every      time.Duration // fleet query resolution (default 5m)
	Unit       string        // the unit whose raw series is compared; "" skips that query
	UnitPeriod time.Duration // raw series span (default 1h)
	Fields     []string      // raw series fields (default the five float fields)
	// Tolerance is the relative difference two averages may have (float
	// sums in another order; default 1e-9).
	Tolerance float64
	// MaxDiffs caps the differences listed per query (default 20).
	MaxDiffs int
}

// ShadowDiff is one point where the two stores answer differently.
type ShadowDiff struct {
	Key    string   `json:"key"`
	Legacy *float64 `json:"legacy"` // nil: no row from the legacy store
	Influx *float64 `json:"influx"` // nil: no row from InfluxDB
}

// ShadowQuery is one dashboard query's comparison.
type ShadowQuery struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	LegacyRows  int          `json:"legacy_rows"`
	InfluxRows  int          `json:"influx_rows"`
	Differences int          `json:"differences"`
	Examples    []ShadowDiff `json:"examples,omitempty"`
}

// ShadowResult is the shadow-read check's outcome.
type ShadowResult struct {
	OK      bool          `json:"ok"`
	Queries []ShadowQuery `json:"queries"`
}

// DefaultFields are the float fields the raw-series query compares.
var DefaultFields = []string{"soc_pct", "soh_pct", "voltage_v", "current_a", "power_kw"}

// Shadow runs the representative dashboard queries against both stores and
// compares their answers: fleet-average state of charge per site per 5
// minutes over 24 hours, and one unit's raw series over an hour.
func Shadow(ctx context.Context, legacy, influx Dashboard, opts ShadowOptions) (ShadowResult, error) {
	if opts.Period <= 0 {
		opts.Period = 24 * time.Hour
	}
	if opts.Every <= 0 {
		opts.Every = 5 * time.Minute
	}
	if opts.UnitPeriod <= 0 {
		opts.UnitPeriod = time.Hour
	}
	if len(opts.Fields) == 0 {
		opts.Fields = DefaultFields
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = 1e-9
	}
	if opts.MaxDiffs <= 0 {
		opts.MaxDiffs = 20
	}
	// The first window starts on a boundary, so both stores cut the same
	// windows; the last may be partial, cut at At by both.
	to := opts.At.UTC().Truncate(time.Millisecond)
	from := window.Align(to.Add(-opts.Period), opts.Every)
	res := ShadowResult{OK: true}

	fleet := ShadowQuery{Name: "fleet-soc", Description: fmt.Sprintf("fleet-average soc_pct per site per %s over [%s, %s)", opts.Every, from.Format(time.RFC3339), to.Format(time.RFC3339))}
	var l, f map[string]float64
	var err error
	if l, err = fleetMap(ctx, legacy, from, to, opts.Every); err != nil {
		return res, fmt.Errorf("shadow read: fleet query on the legacy store: %w", err)
	}
	if f, err = fleetMap(ctx, influx, from, to, opts.Every); err != nil {
		return res, fmt.Errorf("shadow read: fleet query on InfluxDB: %w", err)
	}
	diff(&fleet, l, f, opts.Tolerance, opts.MaxDiffs)
	res.Queries = append(res.Queries, fleet)

	if opts.Unit != "" {
		uto := opts.At.UTC().Truncate(time.Millisecond)
		ufrom := uto.Add(-opts.UnitPeriod)
		for _, field := range opts.Fields {
			q := ShadowQuery{Name: "unit-series/" + field, Description: fmt.Sprintf("%s of unit %s over [%s, %s)", field, opts.Unit, ufrom.Format(time.RFC3339), uto.Format(time.RFC3339))}
			if l, err = seriesMap(ctx, legacy, opts.Unit, ufrom, uto, field); err != nil {
				return res, fmt.Errorf("shadow read: %s series of %s on the legacy store: %w", field, opts.Unit, err)
			}
			if f, err = seriesMap(ctx, influx, opts.Unit, ufrom, uto, field); err != nil {
				return res, fmt.Errorf("shadow read: %s series of %s on InfluxDB: %w", field, opts.Unit, err)
			}
			diff(&q, l, f, 0, opts.MaxDiffs) // raw values must be identical
			res.Queries = append(res.Queries, q)
		}
	}
	for _, q := range res.Queries {
		if q.Differences > 0 {
			res.OK = false
		}
	}
	return res, nil
}

func fleetMap(ctx context.Context, d Dashboard, from, to time.Time, every time.Duration) (map[string]float64, error) {
	m := map[string]float64{}
	err := d.FleetSoC(ctx, from, to, every, func(site string, start time.Time, mean float64) error {
		m[fmt.Sprintf("site=%q %s", site, start.UTC().Format(time.RFC3339))] = mean
		return nil
	})
	return m, err
}

func seriesMap(ctx context.Context, d Dashboard, unit string, from, to time.Time, field string) (map[string]float64, error) {
	m := map[string]float64{}
	err := d.UnitSeries(ctx, unit, from, to, field, func(t time.Time, v float64) error {
		m[t.UTC().Format("2006-01-02T15:04:05.000Z07:00")] = v
		return nil
	})
	return m, err
}

func diff(q *ShadowQuery, l, f map[string]float64, tol float64, maxList int) {
	q.LegacyRows, q.InfluxRows = len(l), len(f)
	keys := make([]string, 0, len(l)+len(f))
	for k := range l {
		keys = append(keys, k)
	}
	for k := range f {
		if _, ok := l[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, strings.Compare)
	for _, k := range keys {
		lv, lok := l[k]
		fv, fok := f[k]
		if lok && fok && near(lv, fv, tol) {
			continue
		}
		q.Differences++
		if len(q.Examples) < maxList {
			d := ShadowDiff{Key: k}
			if lok {
				d.Legacy = &lv
			}
			if fok {
				d.Influx = &fv
			}
			q.Examples = append(q.Examples, d)
		}
	}
}

func near(a, b, tol float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}
