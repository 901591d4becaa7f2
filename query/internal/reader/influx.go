package reader

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/telemetry"
)

// InfluxDB measurements the reader queries besides bsu and bsu_alarm: the
// 5-minute rollups of deploy/influxdb.
const (
	measurementUnit5m = "bsu_5m"
	measurementSite5m = "bsu_site_5m"
)

// Influx reads InfluxDB through the portable InfluxQL client: raw readings
// from bsu and bsu_alarm, aggregates from the 5-minute rollups where they
// cover the range and from raw readings for the rest.
type Influx struct {
	c      *influx.Client
	cache  *stepCache[fleetKey, FleetPoint]
	series *stepCache[seriesKey, SeriesPoint]
	// rollupLag is how long after a 5-minute window ends its rollup is
	// trusted complete (the CQ interval plus late readings).
	rollupLag time.Duration
	now       func() time.Time
}

var _ Reader = (*Influx)(nil)

// DefaultRollupLag: the continuous queries run every 5 minutes and fold in
// readings up to an hour late; a window is taken as rolled up 10 minutes
// after it ends (one CQ run with a 5-minute margin for consumer lag).
const DefaultRollupLag = 10 * time.Minute

// NewInflux returns a Reader over c. rollupLag (DefaultRollupLag when 0)
// says how old a window must be for its rollup to be used; now is the
// clock (time.Now when nil).
func NewInflux(c *influx.Client, rollupLag time.Duration, now func() time.Time) *Influx {
	if rollupLag <= 0 {
		rollupLag = DefaultRollupLag
	}
	if now == nil {
		now = time.Now
	}
	return &Influx{c: c, rollupLag: rollupLag, now: now}
}

// ClosedAfter is how long after a step ends the fleet cache may keep it:
// the continuous queries recompute the last hour every 5 minutes.
const ClosedAfter = time.Hour + 10*time.Minute

// WithFleetCache keeps the closed steps (ClosedAfter) of the fleet and of
// the units' series read from the rollups for ttl, so that a 30-day query
// reads only its newest steps from InfluxDB. InvalidateCache drops them
// (after a backfill).
func (r *Influx) WithFleetCache(ttl time.Duration) *Influx {
	if ttl > 0 {
		r.cache, r.series = newFleetCache(ttl), newSeriesCache(ttl)
	}
	return r
}

// InvalidateCache drops every cached step.
func (r *Influx) InvalidateCache() {
	if r.cache != nil {
		r.cache.Invalidate()
		r.series.Invalidate()
	}
}

// Name returns StoreInflux.
func (r *Influx) Name() string { return StoreInflux }

// Ping checks InfluxDB answers.
func (r *Influx) Ping(ctx context.Context) error {
	if _, err := r.c.Ping(ctx); err != nil {
		return Unavailable(ctx, "influxdb: ping", err)
	}
	return nil
}

// query runs q, mapping the client's errors: ErrUnavailable stays
// ErrUnavailable; a refused query is a bug of this reader, reported as is.
func (r *Influx) query(ctx context.Context, what, q string, fn func(*influx.Series) error) error {
	err := r.c.Query(ctx, q, fn)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, influx.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return Unavailable(ctx, "influxdb: "+what, err)
	default:
		return fmt.Errorf("influxdb: %s: %w", what, err)
	}
}

func where(from, to time.Time) string {
	return "time >= " + influx.TimeLiteral(from) + " AND time < " + influx.TimeLiteral(to)
}

func tagIs(tag, value string) string {
	if value == "" {
		return ""
	}
	return " AND " + influx.QuoteIdent(tag) + " = " + influx.QuoteString(value)
}

func col(row []any, i int) any {
	if i < 0 || i >= len(row) {
		return nil
	}
	return row[i]
}

func str(row []any, i int) string {
	s, _ := influx.String(col(row, i))
	return s
}

// Units takes each series' last reading (a series is a unit, site and
// model) and keeps each unit's newest.
func (r *Influx) Units(ctx context.Context, f UnitFilter) ([]Unit, error) {
	q := `SELECT last("schema") FROM "bsu" GROUP BY "unit", "site", "model"`
	latest := map[string]Unit{}
	err := r.query(ctx, "units", q, func(s *influx.Series) error {
		for _, row := range s.Values {
			ms, err := influx.Int64(col(row, 0))
			if err != nil {
				return fmt.Errorf("units: time: %w", err)
			}
			u := Unit{Unit: s.Tags["unit"], Site: s.Tags["site"], Model: s.Tags["model"], LastReading: time.UnixMilli(ms).UTC()}
			if cur, ok := latest[u.Unit]; u.Unit != "" && (!ok || u.LastReading.After(cur.LastReading)) {
				latest[u.Unit] = u
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Unit, 0, len(latest))
	for _, u := range latest {
		if f.Matches(u) {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b Unit) int { return strings.Compare(a.Unit, b.Unit) })
	return out, nil
}

// latestWindow is how far back Latest looks first: most units reported
// within it, and a bounded query touches one shard instead of all.
const latestWindow = 25 * time.Hour

// Latest reads the unit's newest bsu point (within latestWindow, else over
// all time) and its alarms (only when its alarm_count says it has some).
func (r *Influx) Latest(ctx context.Context, unit string) (*telemetry.Record, error) {
	rec, alarms, err := r.latest(ctx, unit, InfluxLatestQuery(unit, r.now()))
	if err == nil && rec == nil {
		rec, alarms, err = r.latest(ctx, unit, latestQuery(unit, ""))
	}
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("unit %q: %w", unit, ErrNotFound)
	}
	if alarms > 0 {
		t := rec.Time()
		byTime, err := r.unitAlarms(ctx, unit, t, t.Add(time.Millisecond))
		if err != nil {
			return nil, err
		}
		rec.Alarms = byTime[rec.TimeMs]
	}
	return rec, nil
}

// InfluxLatestQuery is the query Latest sends first at now (the
// benchmark sends it to InfluxDB directly too, as the store's own figure).
func InfluxLatestQuery(unit string, now time.Time) string {
	return latestQuery(unit, `time >= `+influx.TimeLiteral(now.Add(-latestWindow))+` AND `)
}

func latestQuery(unit, timeCond string) string {
	return `SELECT * FROM "bsu" WHERE ` + timeCond + `"unit" = ` + influx.QuoteString(unit) + ` ORDER BY time DESC LIMIT 1`
}

func (r *Influx) latest(ctx context.Context, unit, q string) (*telemetry.Record, int64, error) {
	var rec *telemetry.Record
	var alarms int64
	err := r.query(ctx, "latest", q, func(s *influx.Series) error {
		cols := influx.NewRecordColumns(s.Columns)
		ai := s.Col("alarm_count")
		for _, row := range s.Values {
			if rec != nil {
				break
			}
			rec = &telemetry.Record{}
			if err := cols.Record(rec, s.Tags, row); err != nil {
				return fmt.Errorf("latest reading of %q: %w", unit, err)
			}
			alarms = alarmCount(row, ai)
		}
		return nil
	})
	return rec, alarms, err
}

// alarmCount reads a row's alarm_count; a row without one may have alarms.
func alarmCount(row []any, i int) int64 {
	v := col(row, i)
	if v == nil {
		return 1
	}
	return intOr0(v)
}

// unitAlarms reads the unit's alarms in [from, to), by reading time.
func (r *Influx) unitAlarms(ctx context.Context, unit string, from, to time.Time) (map[int64][]telemetry.Alarm, error) {
	q := `SELECT "text", "code", "severity" FROM "bsu_alarm" WHERE ` + where(from, to) + tagIs("unit", unit)
	out := map[int64][]telemetry.Alarm{}
	err := r.query(ctx, "alarms of a unit", q, func(s *influx.Series) error {
		ti, xi, ci, si := s.Col("time"), s.Col("text"), s.Col("code"), s.Col("severity")
		for _, row := range s.Values {
			ms, err := influx.Int64(col(row, ti))
			if err != nil {
				return fmt.Errorf("alarm time: %w", err)
			}
			out[ms] = append(out[ms], telemetry.Alarm{Code: str(row, ci), Severity: str(row, si), Text: alarmText(str(row, xi))})
		}
		return nil
	})
	return out, err
}

// Readings streams the unit's bsu points chunk by chunk; each chunk's
// alarms are read before its records go out, so memory is one chunk.
func (r *Influx) Readings(ctx context.Context, q RangeQuery, fn func(*telemetry.Record) error) error {
	iq := `SELECT * FROM "bsu" WHERE ` + where(q.From, q.To) + tagIs("unit", q.Unit) + ` ORDER BY time ASC`
	if q.Limit > 0 {
		iq += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	var recs []telemetry.Record
	var fnErr error
	err := r.query(ctx, "readings", iq, func(s *influx.Series) error {
		cols := influx.NewRecordColumns(s.Columns)
		ai := s.Col("alarm_count")
		recs = recs[:0]
		var withAlarms int64
		for _, row := range s.Values {
			var rec telemetry.Record
			if err := cols.Record(&rec, s.Tags, row); err != nil {
				return fmt.Errorf("reading of %q: %w", q.Unit, err)
			}
			recs = append(recs, rec)
			withAlarms += alarmCount(row, ai)
		}
		if len(recs) == 0 {
			return nil
		}
		alarms := map[int64][]telemetry.Alarm{}
		if withAlarms > 0 {
			var err error
			if alarms, err = r.unitAlarms(ctx, q.Unit, recs[0].Time(), recs[len(recs)-1].Time().Add(time.Millisecond)); err != nil {
				return err
			}
		}
		for i := range recs {
			recs[i].Alarms = alarms[recs[i].TimeMs]
			if err := fn(&recs[i]); err != nil {
				fnErr = err
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// coverEnd is where the rollups stop being trusted: windows ending before
// it are rolled up.
func (r *Influx) coverEnd() time.Time {
	return r.now().UTC().Add(-r.rollupLag).Truncate(RollupStep)
}

// split cuts [from, to) at the rollup cover: [from, mid) from the rollups,
// [mid, to) from raw readings (either may be empty).
func (r *Influx) split(from, to time.Time) (mid time.Time) {
	mid = r.coverEnd()
	if mid.Before(from) {
		return from
	}
	if mid.After(to) {
		return to
	}
	return mid
}

func source(from, mid, to time.Time) string {
	switch {
	case !mid.After(from):
		return "raw"
	case !mid.Before(to):
		return "rollup"
	default:
		return "rollup+raw"
	}
}

// bucket returns the start of t's step, from the Unix epoch.
func bucket(t time.Time, step time.Duration) time.Time {
	return time.UnixMilli(t.UnixMilli() - t.UnixMilli()%step.Milliseconds()).UTC()
}

// Fleet merges the site rollup per step (closed steps from the cache,
// the others computed by InfluxDB) with the raw readings after the
// rollups' cover, aggregated with the same definitions.
func (r *Influx) Fleet(ctx context.Context, q FleetQuery) (Fleet, error) {
	mid := r.split(q.From, q.To)
	type key struct {
		site string
		ms   int64
	}
	// Points of steps after the cached ones are merged by (site, step):
	// the rollup's and the raw readings' parts of one step add up.
	points := make(map[key]*FleetPoint, 256)
	var recent []*FleetPoint
	add := func(p FleetPoint) {
		k := key{p.Site, p.Time.UnixMilli()}
		if cur := points[k]; cur != nil {
			cur.Add(p)
			return
		}
		points[k] = &p
		recent = append(recent, &p)
	}
	rollFrom := q.From
	closed := bucket(r.now().Add(-ClosedAfter), q.Step)
	if mid.Before(closed) {
		closed = mid // a range in the past: mid is its end, a whole step
	}
	cache := r.cache != nil && closed.After(q.From)
	if cache {
		rollFrom = closed
	}
	// The steps after the cached ones first: the cached ones are then
	// copied once, into a slice with room for these.
	if mid.After(rollFrom) {
		if err := r.siteRollup(ctx, FleetQuery{From: rollFrom, To: mid, Step: q.Step, Site: q.Site}, add); err != nil {
			return Fleet{}, err
		}
	}
	if mid.Before(q.To) {
		if err := r.rawFleet(ctx, q, mid, add); err != nil {
			return Fleet{}, err
		}
	}
	var cached []FleetPoint
	if cache {
		// Whole steps before closed, one point per site and step, in
		// time then site order: no merging, and (checked) no sorting.
		pts, err := r.cache.points(ctx, fleetKey{q.Site, q.Step}, q.Step, q.From, closed, r.now(), len(recent), func(ctx context.Context, from, to time.Time) ([]FleetPoint, error) {
			var pts []FleetPoint
			err := r.siteRollup(ctx, FleetQuery{From: from, To: to, Step: q.Step, Site: q.Site}, func(p FleetPoint) { pts = append(pts, p) })
			return pts, err
		})
		if err != nil {
			return Fleet{}, err
		}
		cached = pts
		SortFleet(cached)
	}
	slices.SortFunc(recent, compareFleet)
	out := Fleet{Source: source(q.From, mid, q.To), Points: cached}
	for _, p := range recent {
		out.Points = append(out.Points, *p)
	}
	return out, nil
}

// siteRollup reads bsu_site_5m per step over [q.From, q.To).
func (r *Influx) siteRollup(ctx context.Context, q FleetQuery, add func(FleetPoint)) error {
	iq := `SELECT sum("soc_pct_sum"), sum("soc_pct_count"), sum("power_kw"), count("power_kw"), max("units"), sum("alarms") FROM "bsu_site_5m" WHERE ` +
		where(q.From, q.To) + tagIs("site", q.Site) + ` GROUP BY ` + GroupByTimeEpoch(q.Step) + `, "site" fill(none)`
	return r.fleetRows(ctx, iq, add)
}

// rawFleet computes the rollups' definitions from raw readings over
// [mid, q.To): InfluxDB aggregates per unit and 5-minute window (nested
// InfluxQL subqueries are far slower on 1.8), the sites and steps are
// folded here.
func (r *Influx) rawFleet(ctx context.Context, q FleetQuery, mid time.Time, add func(FleetPoint)) error {
	iq := `SELECT sum("soc_pct"), count("soc_pct"), mean("power_kw"), sum("alarm_count"), count("schema") FROM "bsu" WHERE ` +
		where(mid, q.To) + tagIs("site", q.Site) + ` GROUP BY time(5m), "unit", "site" fill(none)`
	type siteWindow struct {
		site  string
		start time.Time
	}
	wins := map[siteWindow]*FleetPoint{}
	err := r.query(ctx, "fleet from raw readings", iq, func(s *influx.Series) error {
		for _, row := range s.Values {
			ms, err := influx.Int64(col(row, 0))
			if err != nil {
				return fmt.Errorf("fleet: time: %w", err)
			}
			if intOr0(col(row, 5)) == 0 {
				continue
			}
			k := siteWindow{s.Tags["site"], time.UnixMilli(ms).UTC()}
			w := wins[k]
			if w == nil {
				w = &FleetPoint{Site: k.site, Time: k.start}
				wins[k] = w
			}
			w.SoCSum += floatOr0(col(row, 1))
			w.SoCCount += intOr0(col(row, 2))
			if p := col(row, 3); p != nil {
				w.PowerSum += floatOr0(p)
				w.PowerCount = 1 // the window has a power: the sum of its units' means
			}
			w.Alarms += intOr0(col(row, 4))
			w.Units++
		}
		return nil
	})
	for _, w := range wins {
		w.Time = bucket(w.Time, q.Step)
		add(*w)
	}
	return err
}

// GroupByTimeEpoch is InfluxQL's time(step) dimension: buckets from the Unix epoch.
func GroupByTimeEpoch(step time.Duration) string {
	return fmt.Sprintf("time(%dms)", step.Milliseconds())
}

// fleetRows reads rows of time, soc sum, soc count, power sum, power
// count, units, alarms per site.
func (r *Influx) fleetRows(ctx context.Context, q string, add func(FleetPoint)) error {
	return r.query(ctx, "fleet", q, func(s *influx.Series) error {
		for _, row := range s.Values {
			var p FleetPoint
			ms, err := influx.Int64(col(row, 0))
			if err != nil {
				return fmt.Errorf("fleet: time: %w", err)
			}
			p.Site, p.Time = s.Tags["site"], time.UnixMilli(ms).UTC()
			p.SoCSum = floatOr0(col(row, 1))
			p.SoCCount = intOr0(col(row, 2))
			p.PowerSum = floatOr0(col(row, 3))
			p.PowerCount = intOr0(col(row, 4))
			p.Units = intOr0(col(row, 5))
			p.Alarms = intOr0(col(row, 6))
			if p.SoCCount == 0 && p.PowerCount == 0 && p.Units == 0 && p.Alarms == 0 {
				continue // a bucket InfluxDB fills but no reading is in
			}
			add(p)
		}
		return nil
	})
}

func floatOr0(v any) float64 {
	f, err := influx.Float64(v)
	if err != nil {
		return 0
	}
	return f
}

func intOr0(v any) int64 {
	n, err := influx.Int64(v)
	if err != nil {
		return int64(floatOr0(v))
	}
	return n
}

var influxAgg = map[Agg]string{AggMean: "mean", AggMin: "min", AggMax: "max", AggLast: "last"}

// Series aggregates raw readings with InfluxQL, except at steps that are
// multiples of 5 minutes for mean (readings-weighted mean of the 5-minute
// means, from bsu_5m where it covers the range) and max of temperatures.
func (r *Influx) Series(ctx context.Context, q SeriesQuery) (Series, error) {
	if q.WeightedMean() || (q.Step%RollupStep == 0 && q.Agg == AggMax && allTemps(q.Fields)) {
		return r.rollupSeries(ctx, q)
	}
	return r.rawSeries(ctx, q)
}

func (r *Influx) rawSeries(ctx context.Context, q SeriesQuery) (Series, error) {
	sel := make([]string, len(q.Fields))
	for i, f := range q.Fields {
		sel[i] = fmt.Sprintf("%s(%s)", influxAgg[q.Agg], influx.QuoteIdent(f))
	}
	iq := `SELECT ` + strings.Join(sel, ", ") + ` FROM "bsu" WHERE ` + where(q.From, q.To) + tagIs("unit", q.Unit) +
		` GROUP BY ` + GroupByTimeEpoch(q.Step) + ` fill(none)`
	out := Series{Source: "raw"}
	err := r.query(ctx, "series", iq, func(s *influx.Series) error {
		for _, row := range s.Values {
			pt, err := seriesPoint(row, len(q.Fields))
			if err != nil {
				return err
			}
			out.Points = append(out.Points, pt)
		}
		return nil
	})
	return out, err
}

func seriesPoint(row []any, n int) (SeriesPoint, error) {
	ms, err := influx.Int64(col(row, 0))
	if err != nil {
		return SeriesPoint{}, fmt.Errorf("series: time: %w", err)
	}
	pt := SeriesPoint{Time: time.UnixMilli(ms).UTC(), Values: make([]*float64, n)}
	for i := range n {
		if v := col(row, i+1); v != nil {
			f, err := influx.Float64(v)
			if err != nil {
				return pt, fmt.Errorf("series: value: %w", err)
			}
			pt.Values[i] = &f
		}
	}
	return pt, nil
}

// window5m is one 5-minute window's aggregates of the series fields, and
// its number of readings (the weight of its means).
type window5m struct {
	start  time.Time
	values []*float64
	n      int64
}

// rollupSeries folds 5-minute windows into steps: from bsu_5m where the
// rollups cover the range, from raw readings (GROUP BY time(5m)) after.
func (r *Influx) rollupSeries(ctx context.Context, q SeriesQuery) (Series, error) {
	closed := bucket(r.now().Add(-ClosedAfter), q.Step)
	if r.series == nil || !closed.After(q.From) || q.From.UnixMilli()%q.Step.Milliseconds() != 0 {
		return r.readRollupSeries(ctx, q)
	}
	// Closed whole steps from the cache, the rest read.
	mid := r.split(q.From, q.To)
	k := seriesKey{q.Unit, strings.Join(q.Fields, ","), q.Agg, q.Step}
	closed = minTime(closed, bucket(mid, q.Step), bucket(q.To, q.Step))
	if !closed.After(q.From) {
		return r.readRollupSeries(ctx, q)
	}
	var rest Series
	if closed.Before(q.To) {
		var err error
		if rest, err = r.readRollupSeries(ctx, SeriesQuery{Unit: q.Unit, From: closed, To: q.To, Step: q.Step, Fields: q.Fields, Agg: q.Agg}); err != nil {
			return Series{}, err
		}
	}
	pts, err := r.series.points(ctx, k, q.Step, q.From, closed, r.now(), len(rest.Points), func(ctx context.Context, from, to time.Time) ([]SeriesPoint, error) {
		s, err := r.readRollupSeries(ctx, SeriesQuery{Unit: q.Unit, From: from, To: to, Step: q.Step, Fields: q.Fields, Agg: q.Agg})
		return s.Points, err
	})
	if err != nil {
		return Series{}, err
	}
	return Series{Points: append(pts, rest.Points...), Source: source(q.From, mid, q.To)}, nil
}

func minTime(t time.Time, more ...time.Time) time.Time {
	for _, m := range more {
		if m.Before(t) {
			t = m
		}
	}
	return t
}

// readRollupSeries reads q from the rollups up to their cover and from raw
// readings after it.
func (r *Influx) readRollupSeries(ctx context.Context, q SeriesQuery) (Series, error) {
	mid := r.split(q.From, q.To)
	var wins []window5m
	if mid.After(q.From) {
		sel := make([]string, len(q.Fields))
		for i, f := range q.Fields {
			sel[i] = influx.QuoteIdent(string(q.Agg) + "_" + f)
		}
		iq := `SELECT ` + strings.Join(sel, ", ") + `, "readings" FROM "bsu_5m" WHERE ` + where(q.From, mid) + tagIs("unit", q.Unit)
		if err := r.windows(ctx, iq, len(q.Fields), &wins); err != nil {
			return Series{}, err
		}
	}
	if mid.Before(q.To) {
		sel := make([]string, len(q.Fields))
		for i, f := range q.Fields {
			sel[i] = fmt.Sprintf("%s(%s)", influxAgg[q.Agg], influx.QuoteIdent(f))
		}
		iq := `SELECT ` + strings.Join(sel, ", ") + `, count("schema") FROM "bsu" WHERE ` + where(mid, q.To) + tagIs("unit", q.Unit) + ` GROUP BY time(5m) fill(none)`
		if err := r.windows(ctx, iq, len(q.Fields), &wins); err != nil {
			return Series{}, err
		}
	}
	return Series{Points: foldWindows(wins, q.Step, q.Agg, len(q.Fields)), Source: source(q.From, mid, q.To)}, nil
}

func (r *Influx) windows(ctx context.Context, q string, nf int, out *[]window5m) error {
	return r.query(ctx, "series windows", q, func(s *influx.Series) error {
		for _, row := range s.Values {
			pt, err := seriesPoint(row, nf)
			if err != nil {
				return err
			}
			*out = append(*out, window5m{start: pt.Time, values: pt.Values, n: intOr0(col(row, nf+1))})
		}
		return nil
	})
}

// foldWindows folds 5-minute windows into steps: mean as the mean of the
// window means weighted by their readings, max as the max.
func foldWindows(wins []window5m, step time.Duration, agg Agg, nf int) []SeriesPoint {
	type acc struct {
		sum, max []float64
		weight   []int64
		has      []bool
	}
	buckets := map[time.Time]*acc{}
	for _, w := range wins {
		b := bucket(w.start, step)
		a := buckets[b]
		if a == nil {
			a = &acc{sum: make([]float64, nf), max: make([]float64, nf), weight: make([]int64, nf), has: make([]bool, nf)}
			buckets[b] = a
		}
		for i, v := range w.values {
			if v == nil {
				continue
			}
			if !a.has[i] || *v > a.max[i] {
				a.max[i] = *v
			}
			a.has[i] = true
			a.sum[i] += *v * float64(w.n)
			a.weight[i] += w.n
		}
	}
	out := make([]SeriesPoint, 0, len(buckets))
	for b, a := range buckets {
		pt := SeriesPoint{Time: b, Values: make([]*float64, nf)}
		for i := range nf {
			switch {
			case !a.has[i]:
			case agg == AggMax:
				v := a.max[i]
				pt.Values[i] = &v
			case a.weight[i] > 0:
				v := a.sum[i] / float64(a.weight[i])
				pt.Values[i] = &v
			}
		}
		out = append(out, pt)
	}
	slices.SortFunc(out, func(x, y SeriesPoint) int { return x.Time.Compare(y.Time) })
	return out
}

// Alarms reads bsu_alarm with the tags as columns, in time order.
func (r *Influx) Alarms(ctx context.Context, q AlarmQuery) ([]Alarm, error) {
	iq := `SELECT "text", "code", "severity", "unit", "site" FROM "bsu_alarm" WHERE ` + where(q.From, q.To) +
		tagIs("unit", q.Unit) + tagIs("site", q.Site) + tagIs("severity", q.Severity) + fmt.Sprintf(` ORDER BY time ASC LIMIT %d`, q.Limit)
	var out []Alarm
	err := r.query(ctx, "alarms", iq, func(s *influx.Series) error {
		ti, xi, ci, si, ui, wi := s.Col("time"), s.Col("text"), s.Col("code"), s.Col("severity"), s.Col("unit"), s.Col("site")
		for _, row := range s.Values {
			ms, err := influx.Int64(col(row, ti))
			if err != nil {
				return fmt.Errorf("alarm time: %w", err)
			}
			out = append(out, Alarm{Time: time.UnixMilli(ms).UTC(), Unit: str(row, ui), Site: str(row, wi), Code: str(row, ci), Severity: str(row, si), Text: alarmText(str(row, xi))})
		}
		return nil
	})
	return out, err
}

// alarmText undoes what line protocol could not carry: the codec writes a
// line break in a string field as the two characters \n (and \r), which
// InfluxDB stores as such. (A text that held a backslash and an n comes
// back as a line break: line protocol cannot tell them apart.)
func alarmText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.NewReplacer(`\n`, "\n", `\r`, "\r").Replace(s)
}
