package reader

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flexipack/cutover/shared/telemetry"
)

// Postgres reads the legacy store's rows (legacy.readings, the normalised
// record as JSON). Aggregates are computed from the raw rows: the legacy
// store has no rollups.
type Postgres struct {
	pool   *pgxpool.Pool
	now    func() time.Time
	fleet  *stepCache[fleetKey, FleetPoint]
	series *stepCache[seriesKey, SeriesPoint]
}

var _ Reader = (*Postgres)(nil)

// NewPostgres returns a Reader over the legacy store's pool.
func NewPostgres(pool *pgxpool.Pool) *Postgres { return &Postgres{pool: pool, now: time.Now} }

// WithCache keeps the closed steps (ClosedAfter) of the fleet and of the
// units' series for ttl, as the InfluxDB reader does: computed from raw
// rows, a fleet of 1,000 units over 30 days takes PostgreSQL longer than a
// request may wait (query bench), while its newest steps take milliseconds.
// Fills read a day at a time (pgFillSpan), each day kept once read.
// A late reading in a closed step shows after twice ttl at most. now is the
// clock (time.Now when nil).
func (p *Postgres) WithCache(ttl time.Duration, now func() time.Time) *Postgres {
	if now != nil {
		p.now = now
	}
	if ttl > 0 {
		p.fleet, p.series = newFleetCache(ttl), newSeriesCache(ttl)
		p.fleet.fillSpan, p.series.fillSpan = pgFillSpan, pgFillSpan
	}
	return p
}

// pgFillSpan is the longest range one cache fill reads from PostgreSQL:
// a day of 1,000 units at a 10-minute cadence is 144,000 rows.
const pgFillSpan = 24 * time.Hour

// Name returns StorePostgres.
func (p *Postgres) Name() string { return StorePostgres }

// Ping checks PostgreSQL answers.
func (p *Postgres) Ping(ctx context.Context) error {
	if err := p.pool.Ping(ctx); err != nil {
		return Unavailable(ctx, "postgres: ping", err)
	}
	return nil
}

// unitsSQL walks the distinct units with a loose index scan and takes each
// one's newest row: one index probe per unit.
const unitsSQL = `WITH RECURSIVE u(unit) AS (
    (SELECT unit FROM legacy.readings ORDER BY unit LIMIT 1)
  UNION ALL
    SELECT (SELECT r.unit FROM legacy.readings r WHERE r.unit > u.unit ORDER BY r.unit LIMIT 1)
    FROM u WHERE u.unit IS NOT NULL
) SELECT u.unit, coalesce(l.site, ''), coalesce(l.record->>'model', ''), l.ts FROM u
  CROSS JOIN LATERAL (SELECT site, record, ts FROM legacy.readings r WHERE r.unit = u.unit ORDER BY ts DESC LIMIT 1) l
  WHERE u.unit IS NOT NULL ORDER BY u.unit`

// Units lists the units and their latest reading's site and model.
func (p *Postgres) Units(ctx context.Context, f UnitFilter) ([]Unit, error) {
	rows, err := p.pool.Query(ctx, unitsSQL)
	if err != nil {
		return nil, Unavailable(ctx, "postgres: units", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Unit, error) {
		var u Unit
		err := r.Scan(&u.Unit, &u.Site, &u.Model, &u.LastReading)
		u.LastReading = u.LastReading.UTC()
		return u, err
	})
	if err != nil {
		return nil, Unavailable(ctx, "postgres: units", err)
	}
	out := all[:0]
	for _, u := range all {
		if f.Matches(u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// Latest returns the unit's newest reading.
func (p *Postgres) Latest(ctx context.Context, unit string) (*telemetry.Record, error) {
	var raw []byte
	err := p.pool.QueryRow(ctx, `SELECT record FROM legacy.readings WHERE unit = $1 ORDER BY ts DESC LIMIT 1`, unit).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("unit %q: %w", unit, ErrNotFound)
	}
	if err != nil {
		return nil, Unavailable(ctx, "postgres: latest", err)
	}
	rec, err := telemetry.NewDecoder().DecodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("postgres: latest reading of %q: stored record: %w", unit, err)
	}
	return &rec, nil
}

// readingsPage is how many rows one query of Readings fetches.
const readingsPage = 2000

// Readings pages through the primary key (keyset pagination), so memory is
// bounded by one page whatever the range.
func (p *Postgres) Readings(ctx context.Context, q RangeQuery, fn func(*telemetry.Record) error) error {
	dec := telemetry.NewDecoder()
	lower, sent := q.From, 0
	for {
		n := readingsPage
		if q.Limit > 0 {
			n = min(n, q.Limit-sent)
		}
		if n <= 0 {
			return nil
		}
		rows, err := p.pool.Query(ctx, `SELECT ts, record FROM legacy.readings WHERE unit = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4`, q.Unit, lower, q.To, n)
		if err != nil {
			return Unavailable(ctx, "postgres: readings", err)
		}
		type row struct {
			ts  time.Time
			rec []byte
		}
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			err := r.Scan(&x.ts, &x.rec)
			return x, err
		})
		if err != nil {
			return Unavailable(ctx, "postgres: readings", err)
		}
		for _, x := range page {
			rec, err := dec.DecodeJSON(x.rec)
			if err != nil {
				return fmt.Errorf("postgres: reading (%s, %s): stored record: %w", q.Unit, x.ts.UTC().Format(time.RFC3339Nano), err)
			}
			if err := fn(&rec); err != nil {
				return err
			}
		}
		sent += len(page)
		if len(page) < n {
			return nil
		}
		lower = page[len(page)-1].ts.Add(time.Microsecond)
	}
}

// fieldExpr is the SQL reading a float field from the record; the key is
// passed as parameter $n.
func fieldExpr(field string, n int) (expr string, arg any, err error) {
	sensor, err := CheckField(field)
	if err != nil {
		return "", nil, err
	}
	if sensor != "" {
		return fmt.Sprintf("(record->'temp_c'->>$%d)::float8", n), sensor, nil
	}
	return fmt.Sprintf("(record->>$%d)::float8", n), field, nil
}

func aggExpr(a Agg, x string) string {
	switch a {
	case AggMin:
		return "min(" + x + ")"
	case AggMax:
		return "max(" + x + ")"
	case AggLast:
		return "(array_agg(" + x + " ORDER BY ts DESC) FILTER (WHERE " + x + " IS NOT NULL))[1]"
	default:
		return "avg(" + x + ")"
	}
}

// Series aggregates the raw rows per step with date_bin from the epoch.
func (p *Postgres) Series(ctx context.Context, q SeriesQuery) (Series, error) {
	k := seriesKey{q.Unit, strings.Join(q.Fields, ","), q.Agg, q.Step}
	pts, err := closedThenRest(ctx, p.series, k, q.Step, q.From, q.To, p.now(), func(ctx context.Context, from, to time.Time) ([]SeriesPoint, error) {
		r := q
		r.From, r.To = from, to
		return p.readSeries(ctx, r)
	})
	if err != nil {
		return Series{}, err
	}
	return Series{Points: pts, Source: "raw"}, nil
}

func (p *Postgres) readSeries(ctx context.Context, q SeriesQuery) ([]SeriesPoint, error) {
	args := []any{q.Unit, q.From, q.To, q.Step.Microseconds()}
	cols := make([]string, len(q.Fields))
	exprs := make([]string, len(q.Fields))
	for i, f := range q.Fields {
		x, arg, err := fieldExpr(f, len(args)+1)
		if err != nil {
			return nil, err
		}
		args = append(args, arg)
		cols[i], exprs[i] = aggExpr(q.Agg, x), x
	}
	sql := `SELECT date_bin($4::bigint * interval '1 microsecond', ts, timestamptz 'epoch') AS b, ` + strings.Join(cols, ", ") +
		` FROM legacy.readings WHERE unit = $1 AND ts >= $2 AND ts < $3 GROUP BY b ORDER BY b`
	if q.WeightedMean() {
		sql = weightedMeanSQL(exprs)
	}
	rows, err := p.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, Unavailable(ctx, "postgres: series", err)
	}
	defer rows.Close()
	var out []SeriesPoint
	for rows.Next() {
		pt := SeriesPoint{Values: make([]*float64, len(q.Fields))}
		dst := []any{&pt.Time}
		for i := range pt.Values {
			dst = append(dst, &pt.Values[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, Unavailable(ctx, "postgres: series", err)
		}
		pt.Time = pt.Time.UTC()
		out = append(out, pt)
	}
	if err := rows.Err(); err != nil {
		return nil, Unavailable(ctx, "postgres: series", err)
	}
	return out, nil
}

// weightedMeanSQL is SeriesQuery.WeightedMean's definition: per
// 5-minute window the mean of each field and the number of readings, then
// per step the window means weighted by their readings.
func weightedMeanSQL(exprs []string) string {
	inner := make([]string, len(exprs))
	outer := make([]string, len(exprs))
	for i, x := range exprs {
		inner[i] = fmt.Sprintf("avg(%s) AS m%d", x, i)
		outer[i] = fmt.Sprintf("sum(m%d * n) / nullif(sum(n) FILTER (WHERE m%d IS NOT NULL), 0)", i, i)
	}
	return `WITH w AS (SELECT date_bin(interval '5 minutes', ts, timestamptz 'epoch') AS w, count(*) AS n, ` + strings.Join(inner, ", ") +
		` FROM legacy.readings WHERE unit = $1 AND ts >= $2 AND ts < $3 GROUP BY 1)
SELECT date_bin($4::bigint * interval '1 microsecond', w, timestamptz 'epoch') AS b, ` + strings.Join(outer, ", ") + ` FROM w GROUP BY b ORDER BY b`
}

// fleetSQL computes the rollups' definitions from the raw rows: per unit
// and 5-minute window, then per site and window, then per site and step.
// The fields are taken out of the JSON first (r, materialised), so that the
// grouping works on narrow rows: grouping the rows themselves sorted the
// whole records, on disk past work_mem (a day of 1,000 units: about
// 440 ms of PostgreSQL against 640).
const fleetSQL = `WITH r AS MATERIALIZED (
  SELECT coalesce(site, '') AS site, unit, date_bin(interval '5 minutes', ts, timestamptz 'epoch') AS w,
    (record->>'soc_pct')::float8 AS soc, (record->>'power_kw')::float8 AS pw,
    coalesce(jsonb_array_length(record->'alarms'), 0) AS a
  FROM legacy.readings WHERE ts >= $1 AND ts < $2 AND ($3 = '' OR coalesce(site, '') = $3)
), u AS (
  SELECT site, unit, w, sum(soc) AS s, count(soc) AS c, avg(pw) AS p, sum(a) AS a FROM r GROUP BY 1, 2, 3
), w AS (
  SELECT site, w, sum(s) AS s, sum(c) AS c, sum(p) AS p, count(*) AS n, sum(a) AS a FROM u GROUP BY 1, 2
) SELECT site, date_bin($4::bigint * interval '1 microsecond', w, timestamptz 'epoch') AS b,
    coalesce(sum(s), 0), sum(c)::bigint, coalesce(sum(p), 0), count(p), max(n), sum(a)::bigint
  FROM w GROUP BY 1, 2 ORDER BY 2, 1`

// Fleet aggregates the raw rows with the rollups' definitions.
func (p *Postgres) Fleet(ctx context.Context, q FleetQuery) (Fleet, error) {
	pts, err := closedThenRest(ctx, p.fleet, fleetKey{q.Site, q.Step}, q.Step, q.From, q.To, p.now(), func(ctx context.Context, from, to time.Time) ([]FleetPoint, error) {
		return p.readFleet(ctx, from, to, q)
	})
	if err != nil {
		return Fleet{}, err
	}
	return Fleet{Points: pts, Source: "raw"}, nil
}

func (p *Postgres) readFleet(ctx context.Context, from, to time.Time, q FleetQuery) ([]FleetPoint, error) {
	rows, err := p.pool.Query(ctx, fleetSQL, from, to, q.Site, q.Step.Microseconds())
	if err != nil {
		return nil, Unavailable(ctx, "postgres: fleet", err)
	}
	pts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FleetPoint, error) {
		var f FleetPoint
		err := r.Scan(&f.Site, &f.Time, &f.SoCSum, &f.SoCCount, &f.PowerSum, &f.PowerCount, &f.Units, &f.Alarms)
		f.Time = f.Time.UTC()
		return f, err
	})
	if err != nil {
		return nil, Unavailable(ctx, "postgres: fleet", err)
	}
	return pts, nil
}

// Alarms unnests the alarms of the rows in the range.
func (p *Postgres) Alarms(ctx context.Context, q AlarmQuery) ([]Alarm, error) {
	rows, err := p.pool.Query(ctx, `SELECT r.ts, r.unit, coalesce(r.site, ''), a->>'code', a->>'severity', coalesce(a->>'text', '')
		FROM legacy.readings r CROSS JOIN LATERAL jsonb_array_elements(r.record->'alarms') a
		WHERE r.ts >= $1 AND r.ts < $2 AND r.record ? 'alarms' AND ($3 = '' OR r.unit = $3) AND ($4 = '' OR coalesce(r.site, '') = $4)
		AND ($5 = '' OR a->>'severity' = $5) ORDER BY r.ts LIMIT $6`, q.From, q.To, q.Unit, q.Site, q.Severity, q.Limit)
	if err != nil {
		return nil, Unavailable(ctx, "postgres: alarms", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Alarm, error) {
		var a Alarm
		err := r.Scan(&a.Time, &a.Unit, &a.Site, &a.Code, &a.Severity, &a.Text)
		a.Time = a.Time.UTC()
		return a, err
	})
	if err != nil {
		return nil, Unavailable(ctx, "postgres: alarms", err)
	}
	return out, nil
}
