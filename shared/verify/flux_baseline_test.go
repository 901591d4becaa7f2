package verify_test

// This file is the baseline of the verify and gap-counting benchmarks:
// the Flux reader the project used before every read moved to InfluxQL
// (shared/influx/reader.go before the move), kept here only so that
// `make bench` measures the InfluxQL reads next to it in the same run.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/window"
)

const (
	MeasurementReading = influx.MeasurementReading
	MeasurementAlarm   = influx.MeasurementAlarm
	FieldSchema        = influx.FieldSchema
	ErrUnavailable     = "influxdb unavailable"
)

// Every query filters r._time < stop after range(): InfluxDB 1.8's storage
// returns points at exactly range's stop (inclusive), 2.x does not. The time
// filter is separate from the tag filter so that the tag filter can still be
// pushed down to storage.

// unitsPerQuery bounds the unit filter of one Flux query.
const unitsPerQuery = 100

// Reader reads readings back from InfluxDB through Flux. It is safe for
// concurrent use.
type fluxReader struct {
	cfg    fluxConfig
	client influxdb2.Client
	q      api.QueryAPI
}

type fluxConfig struct {
	Bucket       string
	StreamWindow time.Duration
}

func newFluxReader(url, token, org, bucket string) *fluxReader {
	c := influxdb2.NewClientWithOptions(url, token, influxdb2.DefaultOptions().SetHTTPRequestTimeout(600))
	return &fluxReader{cfg: fluxConfig{Bucket: bucket, StreamWindow: 24 * time.Hour}, client: c, q: c.QueryAPI(org)}
}

// fluxString quotes s as a Flux string literal.
func fluxString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, c := range s {
		switch c {
		case '"', '\\', '$':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// fluxTime formats t as a Flux time literal.
func fluxTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// unitPredicate returns ` and (r.unit == "a" or …)`, or "" for all units.
func unitPredicate(units []string) string {
	if len(units) == 0 {
		return ""
	}
	parts := make([]string, len(units))
	for i, u := range units {
		parts[i] = "r.unit == " + fluxString(u)
	}
	return " and (" + strings.Join(parts, " or ") + ")"
}

// query runs a Flux query and calls fn for each row.
func (r *fluxReader) query(ctx context.Context, what, flux string, fn func(*query.FluxRecord) error) error {
	res, err := r.q.Query(ctx, flux)
	if err != nil {
		return fmt.Errorf("influx: %s: %s: %w", what, ErrUnavailable, err)
	}
	defer res.Close()
	for res.Next() {
		if err := fn(res.Record()); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("influx: %s: %w", what, err)
	}
	return nil
}

// alignOffset is the Flux window offset that puts Flux's window boundaries
// (epoch + offset + k·w) on window.Align's boundaries, which Go computes from
// the zero time, not the Unix epoch: they differ when w does not divide a day.
func alignOffset(w time.Duration) time.Duration {
	epoch := time.Unix(0, 0).UTC()
	d := epoch.Sub(window.Align(epoch, w)) // in [0, w)
	return (w - d) % w
}

// Counts returns, per unit and per window of width w aligned as window.Align
// aligns, how many bsu readings (points with the schema field) have a time in
// [from, to), only for units when not empty. Windows without readings are
// omitted; the result is ordered by unit then window start.
func (r *fluxReader) Counts(ctx context.Context, from, to time.Time, w time.Duration, units []string) ([]window.Count, error) {
	if w < time.Millisecond || w%time.Millisecond != 0 {
		return nil, fmt.Errorf("influx: counts: window width %s: want a whole number of milliseconds, at least 1ms", w)
	}
	sums := map[window.Key]int64{}
	run := func(units []string) error {
		flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field == %q%s)
  |> filter(fn: (r) => r._time < %s)
  |> group(columns: ["unit"])
  |> window(every: %dns, offset: %dns, createEmpty: false)
  |> count()`,
			fluxString(r.cfg.Bucket), fluxTime(from), fluxTime(to), MeasurementReading, FieldSchema,
			unitPredicate(units), fluxTime(to), w.Nanoseconds(), alignOffset(w).Nanoseconds())
		return r.query(ctx, "counts", flux, func(rec *query.FluxRecord) error {
			unit, _ := rec.ValueByKey("unit").(string)
			n, ok := rec.Value().(int64)
			if !ok {
				return fmt.Errorf("influx: counts: unit %q window %s: count is %T, want int64", unit, rec.Start(), rec.Value())
			}
			// _start is the window start, or from for a first window cut
			// by the range: Align maps both to the window's start.
			sums[window.Key{Unit: unit, Start: window.Align(rec.Start(), w)}] += n
			return nil
		})
	}
	if len(units) == 0 {
		if err := run(nil); err != nil {
			return nil, err
		}
	}
	for chunk := range slices.Chunk(units, unitsPerQuery) {
		if err := run(chunk); err != nil {
			return nil, err
		}
	}
	out := make([]window.Count, 0, len(sums))
	for k, n := range sums {
		out = append(out, window.Count{Unit: k.Unit, Start: k.Start, N: n})
	}
	slices.SortFunc(out, func(a, b window.Count) int {
		return cmp.Or(strings.Compare(a.Unit, b.Unit), a.Start.Compare(b.Start))
	})
	return out, nil
}

// Total returns how many bsu readings have a time in [from, to).
func (r *fluxReader) Total(ctx context.Context, from, to time.Time) (int64, error) {
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field == %q)
  |> filter(fn: (r) => r._time < %s)
  |> group()
  |> count()`, fluxString(r.cfg.Bucket), fluxTime(from), fluxTime(to), MeasurementReading, FieldSchema, fluxTime(to))
	var total int64
	err := r.query(ctx, "total", flux, func(rec *query.FluxRecord) error {
		n, ok := rec.Value().(int64)
		if !ok {
			return fmt.Errorf("influx: total: count is %T, want int64", rec.Value())
		}
		total += n
		return nil
	})
	return total, err
}

// Units returns the units with at least one reading in [from, to), sorted.
func (r *fluxReader) Units(ctx context.Context, from, to time.Time) ([]string, error) {
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field == %q)
  |> filter(fn: (r) => r._time < %s)
  |> keep(columns: ["unit", "_value"])
  |> group()
  |> distinct(column: "unit")`, fluxString(r.cfg.Bucket), fluxTime(from), fluxTime(to), MeasurementReading, FieldSchema, fluxTime(to))
	var units []string
	err := r.query(ctx, "list units", flux, func(rec *query.FluxRecord) error {
		if u, ok := rec.Value().(string); ok && u != "" {
			units = append(units, u)
		}
		return nil
	})
	slices.Sort(units)
	return slices.Compact(units), err
}

// Stream calls fn for each bsu reading with a time in [from, to), only for
// units when not empty, ordered by unit then time, rebuilt as a Record from
// the point's tags and fields (temp_<sensor>_c fields become Temps) and the
// bsu_alarm points of the same unit and time. Alarms come back sorted by
// code then severity: InfluxDB does not keep the order of a message.
//
// It reads one unit and one StreamWindow at a time, so memory stays bounded
// whatever the range. An error from fn stops the stream and is returned as is.
func (r *fluxReader) Stream(ctx context.Context, from, to time.Time, units []string, fn func(*telemetry.Record) error) error {
	if len(units) == 0 {
		var err error
		if units, err = r.Units(ctx, from, to); err != nil {
			return err
		}
	} else {
		units = slices.Compact(slices.Sorted(slices.Values(units)))
	}
	for _, unit := range units {
		for start := from; start.Before(to); start = start.Add(r.cfg.StreamWindow) {
			stop := start.Add(r.cfg.StreamWindow)
			if stop.After(to) {
				stop = to
			}
			recs, err := r.readWindow(ctx, unit, start, stop)
			if err != nil {
				return err
			}
			for i := range recs {
				if err := fn(&recs[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// readWindow reads one unit's readings in [start, stop), sorted by time.
func (r *fluxReader) readWindow(ctx context.Context, unit string, start, stop time.Time) ([]telemetry.Record, error) {
	// One query, two results: the unit's alarms and its pivoted readings.
	flux := fmt.Sprintf(`from(bucket: %[1]s)
  |> range(start: %[2]s, stop: %[3]s)
  |> filter(fn: (r) => r._measurement == %[4]q and r.unit == %[6]s and r._field == "text")
  |> filter(fn: (r) => r._time < %[3]s)
  |> yield(name: "alarms")
from(bucket: %[1]s)
  |> range(start: %[2]s, stop: %[3]s)
  |> filter(fn: (r) => r._measurement == %[5]q and r.unit == %[6]s)
  |> filter(fn: (r) => r._time < %[3]s)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> yield(name: "readings")`,
		fluxString(r.cfg.Bucket), fluxTime(start), fluxTime(stop), MeasurementAlarm, MeasurementReading, fluxString(unit))
	alarms := map[int64][]telemetry.Alarm{}
	var recs []telemetry.Record
	err := r.query(ctx, "stream unit "+unit, flux, func(row *query.FluxRecord) error {
		at := row.Time().UTC()
		switch row.Result() {
		case "alarms":
			// Flux's CSV cannot tell an empty string from null: an empty
			// alarm text comes back as nil.
			text, ok := row.Value().(string)
			if !ok && row.Value() != nil {
				return fmt.Errorf("influx: alarm of unit %q at %s: text is %T, want string", unit, at.Format(time.RFC3339Nano), row.Value())
			}
			code, _ := row.ValueByKey("code").(string)
			sev, _ := row.ValueByKey("severity").(string)
			alarms[at.UnixMilli()] = append(alarms[at.UnixMilli()], telemetry.Alarm{Code: code, Severity: sev, Text: text})
		case "readings":
			rec, err := recordFromRow(row.Values())
			if err != nil {
				return fmt.Errorf("influx: reading of unit %q at %s: %w", unit, at.Format(time.RFC3339Nano), err)
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Several series (a unit whose site or model changed) come as separate
	// tables: merge them by time.
	slices.SortStableFunc(recs, func(a, b telemetry.Record) int { return cmp.Compare(a.TimeMs, b.TimeMs) })
	for i := range recs {
		if as := alarms[recs[i].TimeMs]; len(as) > 0 {
			slices.SortStableFunc(as, func(a, b telemetry.Alarm) int {
				return cmp.Or(strings.Compare(a.Code, b.Code), strings.Compare(a.Severity, b.Severity))
			})
			recs[i].Alarms = as
		}
	}
	return recs, nil
}

// recordFromRow rebuilds a Record from one pivoted bsu row.
func recordFromRow(v map[string]any) (telemetry.Record, error) {
	var rec telemetry.Record
	t, ok := v["_time"].(time.Time)
	if !ok {
		return rec, fmt.Errorf("no _time")
	}
	rec.TimeMs = t.UnixMilli()
	for k, val := range v {
		if val == nil {
			continue // a field this point does not have
		}
		var err error
		switch k {
		case "unit":
			rec.Unit, err = asString(k, val)
		case "site":
			rec.Site, err = asString(k, val)
		case "model":
			rec.Model, err = asString(k, val)
		case "firmware":
			rec.Firmware, err = asString(k, val)
		case "schema":
			rec.Schema, err = asString(k, val)
		case "mode":
			rec.Mode, err = asString(k, val)
		case "seq":
			rec.Seq, err = asInt(k, val)
			rec.HasSeq = err == nil
		case "soc_pct":
			rec.SoC, err = asFloat(k, val)
			rec.Has |= telemetry.HasSoC
		case "soh_pct":
			rec.SoH, err = asFloat(k, val)
			rec.Has |= telemetry.HasSoH
		case "voltage_v":
			rec.Voltage, err = asFloat(k, val)
			rec.Has |= telemetry.HasVoltage
		case "current_a":
			rec.Current, err = asFloat(k, val)
			rec.Has |= telemetry.HasCurrent
		case "power_kw":
			rec.Power, err = asFloat(k, val)
			rec.Has |= telemetry.HasPower
		default:
			if sensor, ok := strings.CutPrefix(k, "temp_"); ok && strings.HasSuffix(sensor, "_c") && len(sensor) > 2 {
				var c float64
				c, err = asFloat(k, val)
				rec.Temps = append(rec.Temps, telemetry.Temp{Sensor: strings.TrimSuffix(sensor, "_c"), C: c})
			}
			// Anything else (alarm_count, result, table, _start, _stop,
			// _measurement) is not part of a Record.
		}
		if err != nil {
			return rec, err
		}
	}
	if rec.Unit == "" {
		return rec, fmt.Errorf("no unit tag")
	}
	slices.SortFunc(rec.Temps, func(a, b telemetry.Temp) int { return strings.Compare(a.Sensor, b.Sensor) })
	return rec, nil
}

func asString(k string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("field %s is %T, want string", k, v)
	}
	return s, nil
}

func asFloat(k string, v any) (float64, error) {
	f, ok := v.(float64)
	if !ok {
		return 0, fmt.Errorf("field %s is %T, want float", k, v)
	}
	return f, nil
}

func asInt(k string, v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case uint64:
		return int64(n), nil
	default:
		return 0, fmt.Errorf("field %s is %T (%s), want integer", k, v, strconv.Quote(fmt.Sprint(v)))
	}
}
