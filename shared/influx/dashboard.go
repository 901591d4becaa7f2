package influx

import (
	"context"
	"fmt"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
)

// Dashboard runs the dashboards' Flux queries, so the shadow-read check can
// compare what dashboards would show from InfluxDB with the legacy store's
// answer to the same question.
type Dashboard struct {
	client influxdb2.Client
	query  api.QueryAPI
	bucket string
}

// NewDashboard returns a Dashboard for cfg's InfluxDB and bucket.
func NewDashboard(cfg Config) (*Dashboard, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts := influxdb2.DefaultOptions().SetHTTPRequestTimeout(uint(max(1, cfg.Timeout/time.Second)))
	c := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &Dashboard{client: c, query: c.QueryAPI(cfg.Org), bucket: cfg.Bucket}, nil
}

// Close releases the client.
func (d *Dashboard) Close() { d.client.Close() }

// FleetSoC runs the fleet dashboard's query: the mean soc_pct of each site
// in each window of width every (aligned to the epoch) over [from, to), and
// calls fn once per (site, window) with a value. Points without a site tag
// count for site "".
func (d *Dashboard) FleetSoC(ctx context.Context, from, to time.Time, every time.Duration, fn func(site string, start time.Time, mean float64) error) error {
	if every < time.Millisecond || every%time.Millisecond != 0 {
		return fmt.Errorf("influx: fleet SoC: window %s: want a whole number of milliseconds, at least 1ms", every)
	}
	q := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == "bsu" and r._field == "soc_pct")
  |> group(columns: ["site"])
  |> aggregateWindow(every: %dms, fn: mean, createEmpty: false, timeSrc: "_start")`,
		dashQuote(d.bucket), dashTime(from), dashTime(to), every.Milliseconds())
	return d.each(ctx, q, "fleet SoC", func(site string, t time.Time, v float64) error { return fn(site, t, v) }, "site")
}

// UnitSeries runs the unit dashboard's raw-series query: it calls fn with
// each value of the float field that unit reported in [from, to), in time
// order.
func (d *Dashboard) UnitSeries(ctx context.Context, unit string, from, to time.Time, field string, fn func(t time.Time, v float64) error) error {
	q := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == "bsu" and r.unit == %s and r._field == %s)
  |> group()
  |> sort(columns: ["_time"])`,
		dashQuote(d.bucket), dashTime(from), dashTime(to), dashQuote(unit), dashQuote(field))
	return d.each(ctx, q, field+" series of "+unit, func(_ string, t time.Time, v float64) error { return fn(t, v) }, "")
}

// each runs q and calls fn with each row's tag column (if tag is not ""),
// _time and float _value.
func (d *Dashboard) each(ctx context.Context, q, what string, fn func(tag string, t time.Time, v float64) error, tag string) error {
	res, err := d.query.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("influx: %s: %w", what, err)
	}
	defer res.Close()
	for res.Next() {
		r := res.Record()
		v, ok := r.Value().(float64)
		if !ok {
			return fmt.Errorf("influx: %s: value %v at %s is %T, not a float", what, r.Value(), r.Time().Format(time.RFC3339Nano), r.Value())
		}
		var tv string
		if tag != "" {
			tv, _ = r.ValueByKey(tag).(string)
		}
		if err := fn(tv, r.Time().UTC(), v); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("influx: %s: %w", what, err)
	}
	return nil
}

// dashQuote quotes s as a Flux string literal (escaping the interpolation
// marker too).
func dashQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "${", `\${`)
	return `"` + r.Replace(s) + `"`
}

// dashTime formats t as a Flux time literal, to the nanosecond.
func dashTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
