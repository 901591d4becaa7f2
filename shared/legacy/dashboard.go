package legacy

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flexipack/cutover/shared/window"
)

// FleetSoC runs the fleet dashboard's query on the legacy store: the average
// soc_pct of each site in each window of width every (aligned to the epoch as
// window.Align aligns) over readings with time in [from, to), and calls fn
// once per (site, window) that has a reported soc_pct, ordered by site then
// window. A reading without a site counts for site "".
func (s *Store) FleetSoC(ctx context.Context, from, to time.Time, every time.Duration, fn func(site string, start time.Time, mean float64) error) error {
	if every < time.Millisecond || every%time.Millisecond != 0 {
		return fmt.Errorf("legacy store: fleet SoC: window %s: want a whole number of milliseconds, at least 1ms", every)
	}
	origin := window.Align(time.Unix(0, 0), every)
	rows, err := s.pool.Query(ctx, `SELECT coalesce(site, ''), date_bin($3::bigint * interval '1 microsecond', ts, $4::timestamptz) AS start,
	avg((record->>'soc_pct')::float8)
FROM legacy.readings WHERE ts >= $1 AND ts < $2 AND record ? 'soc_pct'
GROUP BY 1, 2 ORDER BY 1, 2`, from, to, every.Microseconds(), origin)
	if err != nil {
		return fmt.Errorf("legacy store: fleet SoC: %w", err)
	}
	var site string
	var start time.Time
	var mean float64
	_, err = pgx.ForEachRow(rows, []any{&site, &start, &mean}, func() error { return fn(site, start.UTC(), mean) })
	if err != nil {
		return fmt.Errorf("legacy store: fleet SoC: %w", err)
	}
	return nil
}

// UnitSeries runs the unit dashboard's raw-series query on the legacy store:
// it calls fn with each value of the float field (soc_pct, voltage_v, …)
// that unit reported with time in [from, to), in time order. Readings that
// did not report the field are skipped.
func (s *Store) UnitSeries(ctx context.Context, unit string, from, to time.Time, field string, fn func(t time.Time, v float64) error) error {
	rows, err := s.pool.Query(ctx, `SELECT ts, (record->>$4)::float8 FROM legacy.readings
WHERE unit = $1 AND ts >= $2 AND ts < $3 AND record ? $4 ORDER BY ts`, unit, from, to, field)
	if err != nil {
		return fmt.Errorf("legacy store: %s series of %s: %w", field, unit, err)
	}
	var ts time.Time
	var v float64
	_, err = pgx.ForEachRow(rows, []any{&ts, &v}, func() error { return fn(ts.UTC(), v) })
	if err != nil {
		return fmt.Errorf("legacy store: %s series of %s: %w", field, unit, err)
	}
	return nil
}
