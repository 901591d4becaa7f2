package influx

import (
	"context"
	"fmt"
	"time"
)

// Dashboard runs the dashboards' InfluxQL queries, so the shadow-read check
// can compare what dashboards would show from InfluxDB with the legacy
// store's answer to the same question.
type Dashboard struct {
	c *Client
}

// NewDashboard returns a Dashboard for cfg's InfluxDB and database.
func NewDashboard(cfg Config) (*Dashboard, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Dashboard{c: c}, nil
}

// Close releases the client.
func (d *Dashboard) Close() { d.c.Close() }

// FleetSoC runs the fleet dashboard's query: the mean soc_pct of each site
// in each window of width every (aligned as window.Align aligns) over
// [from, to), and calls fn once per (site, window) with a value, with the
// window's start. Points without a site tag count for site "".
func (d *Dashboard) FleetSoC(ctx context.Context, from, to time.Time, every time.Duration, fn func(site string, start time.Time, mean float64) error) error {
	if every < time.Millisecond || every%time.Millisecond != 0 {
		return fmt.Errorf("influx: fleet SoC: window %s: want a whole number of milliseconds, at least 1ms", every)
	}
	q := fmt.Sprintf(`SELECT mean("soc_pct") FROM "bsu" WHERE %s GROUP BY %s, "site" fill(none)`, timeRange(from, to), GroupByTime(every))
	return d.each(ctx, q, "fleet SoC", func(s *Series, t time.Time, v float64) error { return fn(s.Tags["site"], t, v) })
}

// UnitSeries runs the unit dashboard's raw-series query: it calls fn with
// each value of the float field that unit reported in [from, to), in time
// order.
func (d *Dashboard) UnitSeries(ctx context.Context, unit string, from, to time.Time, field string, fn func(t time.Time, v float64) error) error {
	// A single-field SELECT returns only the points that have the field.
	q := fmt.Sprintf(`SELECT %s FROM "bsu" WHERE "unit" = %s AND %s`, QuoteIdent(field), QuoteString(unit), timeRange(from, to))
	return d.each(ctx, q, field+" series of "+unit, func(_ *Series, t time.Time, v float64) error { return fn(t, v) })
}

// each runs q and calls fn with each row's time and float value (column 1);
// rows without a value are skipped.
func (d *Dashboard) each(ctx context.Context, q, what string, fn func(s *Series, t time.Time, v float64) error) error {
	err := d.c.Query(ctx, q, func(s *Series) error {
		for _, row := range s.Values {
			if len(row) < 2 || row[1] == nil {
				continue
			}
			ms, err := Int64(row[0])
			if err != nil {
				return fmt.Errorf("time: %w", err)
			}
			v, err := Float64(row[1])
			if err != nil {
				return fmt.Errorf("value at %d: %w", ms, err)
			}
			if err := fn(s, time.UnixMilli(ms).UTC(), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("influx: %s: %w", what, err)
	}
	return nil
}
