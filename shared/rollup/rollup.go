// Package rollup builds the 5-minute rollups the fleet dashboards read for
// long ranges, on any InfluxDB: it reads raw readings with InfluxQL GROUP BY
// time(5m) (the one query language InfluxDB 1.x, 2.x and 3.x share) and
// writes the results back with line protocol. It replaces the 1.8
// continuous queries, the 2.x task and the resample script, and writes
// exactly what the continuous queries wrote (deploy/influxdb keeps their
// text as the reference its test compares with):
//
//	bsu_5m (tags unit, site, model; a point per unit and 5 minutes, stamped
//	  at the window's start): mean_soc_pct, mean_soh_pct, mean_voltage_v,
//	  mean_current_a, mean_power_kw (float means), max_temp_<sensor>_c
//	  (float maxima), readings (integer count), alarms (integer sum of
//	  alarm_count).
//	bsu_site_5m (tag site; a point per site and 5 minutes): soc_pct_sum and
//	  soc_pct_count (a coarser window's mean is sum/count, exactly the mean
//	  of the raw readings), max_temp_<sensor>_c, readings, alarms, and from
//	  bsu_5m: power_kw (the sum of the site's units' mean power) and units
//	  (units that reported).
//
// Rolling a range up again overwrites the same points with the same
// values: it is idempotent, so a follow loop and a range job can overlap.
package rollup

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flexipack/cutover/shared/influx"
)

// Interval is the width of a rollup window.
const Interval = 5 * time.Minute

// Measurements the rollup writes.
const (
	MeasurementUnit = "bsu_5m"
	MeasurementSite = "bsu_site_5m"
)

// statement is one rollup query: a SELECT with a %s for the time range,
// and the measurement its rows are written into.
type statement struct {
	into, sel string
}

// Statements in the order they must run: the third reads bsu_5m. They are
// the continuous queries' SELECTs with fill(none): InfluxQL's count() is 0,
// not null, in a window without readings, and a continuous query's INTO
// writes no point for such a window.
var statements = []statement{
	{MeasurementUnit, `SELECT mean(/^(soc_pct|soh_pct|voltage_v|current_a|power_kw)$/), max(/^temp_.+_c$/), count("schema") AS "readings", sum("alarm_count") AS "alarms" FROM "bsu" WHERE %s GROUP BY time(5m), * fill(none)`},
	{MeasurementSite, `SELECT sum("soc_pct") AS "soc_pct_sum", count("soc_pct") AS "soc_pct_count", max(/^temp_.+_c$/), count("schema") AS "readings", sum("alarm_count") AS "alarms" FROM "bsu" WHERE %s GROUP BY time(5m), "site" fill(none)`},
	{MeasurementSite, `SELECT sum("mean_power_kw") AS "power_kw", count("readings") AS "units" FROM "bsu_5m" WHERE %s GROUP BY time(5m), "site" fill(none)`},
}

// integerFields are the rollup fields written as integers (counts and sums
// of integers); every other field is a float.
var integerFields = map[string]bool{"readings": true, "alarms": true, "soc_pct_count": true, "units": true}

// Querier runs InfluxQL (*influx.Client implements it).
type Querier interface {
	Query(ctx context.Context, q string, fn func(*influx.Series) error) error
}

// LineWriter writes line protocol with millisecond timestamps
// (*influx.Writer implements it).
type LineWriter interface {
	WriteLines(ctx context.Context, lines []byte) error
}

// Job rolls raw readings up.
type Job struct {
	q       Querier
	w       LineWriter
	logger  *slog.Logger
	metrics *Metrics
	// Chunk is how much time one pass of the statements covers (default
	// one day): it bounds each query's answer.
	Chunk time.Duration
}

// New returns a Job reading through q and writing through w.
func New(q Querier, w LineWriter, logger *slog.Logger) *Job {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Job{q: q, w: w, logger: logger, metrics: NewMetrics(nil), Chunk: 24 * time.Hour}
}

// WithMetrics registers the job's metrics with reg and returns j.
func (j *Job) WithMetrics(reg prometheus.Registerer) *Job {
	j.metrics = NewMetrics(reg)
	return j
}

// Result says what a Range did.
type Result struct {
	From, To time.Time // the range rolled up, widened to whole windows
	Points   int64     // rollup points written
	Elapsed  time.Duration
}

// Align widens [from, to) to whole rollup windows.
func Align(from, to time.Time) (time.Time, time.Time) {
	from, to = from.UTC().Truncate(Interval), to.UTC()
	if t := to.Truncate(Interval); t.Before(to) {
		to = t.Add(Interval)
	}
	return from, to
}

// Range rolls up [from, to), widened to whole windows, a Chunk at a time
// (every statement for a chunk before the next chunk).
func (j *Job) Range(ctx context.Context, from, to time.Time) (Result, error) {
	start := time.Now()
	from, to = Align(from, to)
	res := Result{From: from, To: to}
	if !from.Before(to) {
		return res, fmt.Errorf("rollup: range [%s, %s) is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	chunk := max(Interval, j.Chunk.Truncate(Interval))
	for s := from; s.Before(to); s = s.Add(chunk) {
		e := s.Add(chunk)
		if e.After(to) {
			e = to
		}
		for _, st := range statements {
			n, err := j.run(ctx, st, s, e)
			if err != nil {
				return res, fmt.Errorf("rollup: %s over [%s, %s): %w", st.into, s.Format(time.RFC3339), e.Format(time.RFC3339), err)
			}
			res.Points += n
			j.metrics.Points.Add(float64(n))
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// run runs one statement over [from, to) and writes its rows.
func (j *Job) run(ctx context.Context, st statement, from, to time.Time) (int64, error) {
	where := "time >= " + influx.TimeLiteral(from) + " AND time < " + influx.TimeLiteral(to)
	var buf []byte
	var points int64
	err := j.q.Query(ctx, fmt.Sprintf(st.sel, where), func(s *influx.Series) error {
		for _, row := range s.Values {
			line, err := appendPoint(nil, st.into, s.Tags, s.Columns, row)
			if err != nil {
				return err
			}
			if line == nil {
				continue
			}
			buf = append(buf, line...)
			points++
		}
		// Write as the answer streams in, so memory stays bounded.
		if len(buf) >= 1<<20 {
			if err := j.w.WriteLines(ctx, buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		return nil
	})
	if err == nil && len(buf) > 0 {
		err = j.w.WriteLines(ctx, buf)
	}
	return points, err
}

// appendPoint appends one row as a line-protocol point, as a continuous
// query's INTO writes it: the series' tags (empty ones left out), every
// non-null column as a field, stamped with the row's time. A row without a
// non-null field writes nothing (nil).
func appendPoint(dst []byte, measurement string, tags map[string]string, cols []string, row []any) ([]byte, error) {
	mark := len(dst)
	dst = append(dst, measurement...)
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = append(dst, ',')
		dst = appendEscaped(dst, k, ",= ")
		dst = append(dst, '=')
		dst = appendEscaped(dst, tags[k], ",= ")
	}
	var ms int64
	fields := 0
	for i, c := range cols {
		if i >= len(row) {
			break
		}
		if c == "time" {
			var err error
			if ms, err = influx.Int64(row[i]); err != nil {
				return nil, fmt.Errorf("time: %w", err)
			}
			continue
		}
		if row[i] == nil {
			continue
		}
		if fields == 0 {
			dst = append(dst, ' ')
		} else {
			dst = append(dst, ',')
		}
		fields++
		dst = appendEscaped(dst, c, ",= ")
		dst = append(dst, '=')
		var err error
		if dst, err = appendValue(dst, c, row[i]); err != nil {
			return nil, err
		}
	}
	if fields == 0 {
		return dst[:mark], nil
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, '\n'), nil
}

func appendValue(dst []byte, col string, v any) ([]byte, error) {
	if integerFields[col] {
		n, err := influx.Int64(v)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", col, err)
		}
		return append(strconv.AppendInt(dst, n, 10), 'i'), nil
	}
	f, err := influx.Float64(v)
	if err != nil {
		return nil, fmt.Errorf("field %s: %w", col, err)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("field %s: %v cannot be written", col, f)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64), nil
}

// appendEscaped appends s with a backslash before each byte of special.
func appendEscaped(dst []byte, s, special string) []byte {
	if !strings.ContainsAny(s, special) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		if bytes.IndexByte([]byte(special), s[i]) >= 0 {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return dst
}

// Follow keeps the recent rollups current, as the continuous queries did
// (RESAMPLE EVERY 5m FOR lookback): at each window boundary plus delay (so
// that readings stamped just before the boundary have landed), it rolls up
// the lookback before the boundary — late readings within lookback are
// folded in. A failed pass is logged and tried again at the next boundary;
// Follow returns nil when ctx ends. now is the clock (time.Now when nil),
// sleep waits (retry.Sleep in production; tests inject their own), onPass
// (optional) hears of each pass.
func (j *Job) Follow(ctx context.Context, lookback, delay time.Duration, now func() time.Time, sleep func(context.Context, time.Duration) error, onPass func(Result)) error {
	if now == nil {
		now = time.Now
	}
	lookback = max(Interval, lookback.Truncate(Interval))
	for {
		boundary := now().UTC().Truncate(Interval)
		res, err := j.Range(ctx, boundary.Add(-lookback), boundary)
		if ctx.Err() != nil {
			return nil
		}
		j.metrics.PassSeconds.Observe(res.Elapsed.Seconds())
		if err != nil {
			j.metrics.Passes.WithLabelValues("error").Inc()
			j.logger.Warn("rollup pass failed, retrying at the next window", "error", err)
		} else {
			j.metrics.Passes.WithLabelValues("ok").Inc()
			j.metrics.LastSuccess.Set(float64(res.To.Unix()))
			if onPass != nil {
				onPass(res)
			}
		}
		next := boundary.Add(Interval + delay)
		if err := sleep(ctx, next.Sub(now())); err != nil {
			return nil
		}
	}
}
