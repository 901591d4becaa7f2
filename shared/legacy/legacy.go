// Package legacy is the legacy telemetry store: PostgreSQL, one row per
// reading in legacy.readings, keyed by (unit, ts), the normalised record
// kept as JSON. The consumer writes it; verify and migrate read it back.
//
// Writes are idempotent. A reading delivered again with the same record is a
// no-op (no new row version); delivered again with a different record it
// replaces the stored one (last write wins), which is what InfluxDB does with
// a point written twice, so both stores converge on the same value.
package legacy

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/shared/pgmigrate"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/window"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the PostgreSQL schema that holds the legacy store's tables.
const Schema = "legacy"

// DefaultPageSize is how many rows Stream fetches per query.
const DefaultPageSize = 2000

// ErrInvalidRecord reports a record that cannot be stored (no unit, no time).
var ErrInvalidRecord = errors.New("invalid record")

// Store is the legacy store. It is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	logger   *slog.Logger
	pageSize int
}

// Open connects to the PostgreSQL of dsn and checks that it answers. It does
// not change the schema: call Migrate for that.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("legacy store: parse DSN: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("legacy store: connect to %s: %w", cfg.ConnConfig.Host, err)
	}
	s := &Store{pool: pool, logger: logger, pageSize: DefaultPageSize}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// FromPool returns a Store over a pool the caller made (and closes), for a
// service that connects lazily; it does not check that PostgreSQL answers.
func FromPool(pool *pgxpool.Pool, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: pool, logger: logger, pageSize: DefaultPageSize}
}

// Migrate applies the store's pending schema migrations (embedded SQL files,
// recorded in legacy.schema_migrations). Each migration runs in its own
// transaction under an advisory lock, so several processes migrating at once
// apply each one exactly once.
func (s *Store) Migrate(ctx context.Context) error {
	n, err := pgmigrate.Apply(ctx, s.pool, Schema, migrations, "migrations")
	if err != nil {
		return fmt.Errorf("legacy store: %w", err)
	}
	if n > 0 {
		s.logger.Info("legacy store migrated", "applied", n)
	}
	return nil
}

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("legacy store: ping: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (s *Store) Close() { s.pool.Close() }

// Pool returns the store's connection pool, for tests and tools that need
// direct SQL access.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// SetPageSize sets how many rows Stream reads per query (tests use small pages).
func (s *Store) SetPageSize(n int) {
	if n > 0 {
		s.pageSize = n
	}
}

// upsertSQL inserts a batch given as parallel arrays (one round trip,
// prepared once per connection). A conflicting row is replaced only when the
// record differs, so a plain re-delivery writes nothing.
const upsertSQL = `INSERT INTO legacy.readings AS r (unit, ts, site, record)
SELECT u, t, NULLIF(s, ''), j FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::jsonb[]) AS b(u, t, s, j)
ON CONFLICT (unit, ts) DO UPDATE
SET site = EXCLUDED.site, record = EXCLUDED.record, written_at = now()
WHERE r.record IS DISTINCT FROM EXCLUDED.record`

// batch is a write batch as parallel column arrays, duplicates removed.
type batch struct {
	units []string
	times []time.Time
	sites []string
	recs  [][]byte
	buf   []byte
}

// newBatch validates recs, keeps the last of each (unit, time) (ON CONFLICT
// cannot touch one row twice in a statement) and encodes the records.
func newBatch(recs []telemetry.Record) (*batch, error) {
	last := make(map[telemetry.Key]int, len(recs))
	for i := range recs {
		r := &recs[i]
		if r.Unit == "" {
			return nil, fmt.Errorf("record %d (time %d): no unit: %w", i, r.TimeMs, ErrInvalidRecord)
		}
		if r.TimeMs == 0 {
			return nil, fmt.Errorf("record %d (unit %q): no time: %w", i, r.Unit, ErrInvalidRecord)
		}
		last[r.Key()] = i
	}
	n := len(last)
	b := &batch{
		units: make([]string, 0, n),
		times: make([]time.Time, 0, n),
		sites: make([]string, 0, n),
		recs:  make([][]byte, 0, n),
		buf:   make([]byte, 0, n*320),
	}
	// Rows in key order: concurrent writers of overlapping batches then lock
	// rows in the same order and cannot deadlock each other.
	keep := make([]int, 0, n)
	for i := range recs {
		if last[recs[i].Key()] == i {
			keep = append(keep, i)
		}
	}
	slices.SortFunc(keep, func(x, y int) int {
		return cmp.Or(strings.Compare(recs[x].Unit, recs[y].Unit), cmp.Compare(recs[x].TimeMs, recs[y].TimeMs))
	})
	ends := make([]int, 0, n)
	for _, i := range keep {
		r := &recs[i]
		b.units = append(b.units, r.Unit)
		b.times = append(b.times, r.Time())
		b.sites = append(b.sites, r.Site)
		b.buf = telemetry.AppendJSON(b.buf, r)
		ends = append(ends, len(b.buf))
	}
	// Slice after encoding: appends may have moved the buffer.
	start := 0
	for _, end := range ends {
		b.recs = append(b.recs, b.buf[start:end:end])
		start = end
	}
	return b, nil
}

// Write stores recs idempotently in one statement: the same (unit, time)
// twice is one row, a changed record replaces the stored one, duplicates in
// recs are resolved in favour of the last. It writes all records or none.
func (s *Store) Write(ctx context.Context, recs []telemetry.Record) error {
	if len(recs) == 0 {
		return nil
	}
	b, err := newBatch(recs)
	if err != nil {
		return fmt.Errorf("legacy store: write: %w", err)
	}
	if _, err := s.pool.Exec(ctx, upsertSQL, b.units, b.times, b.sites, b.recs); err != nil {
		return fmt.Errorf("legacy store: write %d records: %w", len(b.units), err)
	}
	return nil
}

// unitsSQL lists the distinct units with a loose index scan over the primary
// key: one index probe per unit instead of a scan of every row.
const unitsSQL = `WITH RECURSIVE u(unit) AS (
    (SELECT unit FROM legacy.readings ORDER BY unit LIMIT 1)
  UNION ALL
    SELECT (SELECT r.unit FROM legacy.readings r WHERE r.unit > u.unit ORDER BY r.unit LIMIT 1)
    FROM u WHERE u.unit IS NOT NULL
) SELECT unit FROM u WHERE unit IS NOT NULL`

// Units returns every unit with at least one stored reading, sorted.
func (s *Store) Units(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, unitsSQL)
	if err != nil {
		return nil, fmt.Errorf("legacy store: list units: %w", err)
	}
	units, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("legacy store: list units: %w", err)
	}
	return units, nil
}

const pageSQL = `SELECT ts, record FROM legacy.readings
WHERE unit = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4`

// Stream calls fn for each stored reading with time in [from, to), only for
// units when units is not empty: each unit's readings in time order, the
// units shared out between streamWorkers workers, so units interleave
// (fn is never called concurrently). Each worker pages through the primary
// key one unit at a time (keyset pagination), so memory stays bounded by
// the page size whatever the range, and no transaction stays open while fn
// runs; while one worker waits for PostgreSQL the other decodes. fn's
// record is reused after fn returns; an error from fn stops the stream and
// is returned as is.
func (s *Store) Stream(ctx context.Context, from, to time.Time, units []string, fn func(*telemetry.Record) error) error {
	units, err := s.unitList(ctx, units)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var failed error
	serial := func(r *telemetry.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if failed != nil {
			return failed // fn is not called again once it failed
		}
		failed = fn(r)
		return failed
	}
	g, gctx := errgroup.WithContext(ctx)
	for w := range min(streamWorkers, len(units)) {
		g.Go(func() error {
			dec := telemetry.NewDecoder()
			page := make([]pageRow, 0, s.pageSize)
			for i := w; i < len(units); i += streamWorkers {
				if err := s.streamUnit(gctx, dec, &page, units[i], from, to, serial); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// streamWorkers is how many units Stream reads at once.
const streamWorkers = 2

type pageRow struct {
	ts  time.Time
	rec []byte
}

// streamUnit streams one unit's readings of [from, to), page by page.
func (s *Store) streamUnit(ctx context.Context, dec *telemetry.Decoder, page *[]pageRow, unit string, from, to time.Time, fn func(*telemetry.Record) error) error {
	lower := from
	for {
		*page = (*page)[:0]
		rows, err := s.pool.Query(ctx, pageSQL, unit, lower, to, s.pageSize)
		if err != nil {
			return fmt.Errorf("legacy store: stream unit %q from %s: %w", unit, lower.Format(time.RFC3339Nano), err)
		}
		var r pageRow
		_, err = pgx.ForEachRow(rows, []any{&r.ts, &r.rec}, func() error {
			*page = append(*page, pageRow{ts: r.ts, rec: slices.Clone(r.rec)})
			return nil
		})
		if err != nil {
			return fmt.Errorf("legacy store: stream unit %q from %s: %w", unit, lower.Format(time.RFC3339Nano), err)
		}
		for _, p := range *page {
			rec, err := dec.DecodeJSON(p.rec)
			if err != nil {
				return fmt.Errorf("legacy store: reading (%s, %s): stored record: %w", unit, p.ts.UTC().Format(time.RFC3339Nano), err)
			}
			if rec.Unit != unit || rec.TimeMs != p.ts.UnixMilli() {
				return fmt.Errorf("legacy store: reading (%s, %s): stored record is for (%s, %d)", unit, p.ts.UTC().Format(time.RFC3339Nano), rec.Unit, rec.TimeMs)
			}
			if err := fn(&rec); err != nil {
				return err
			}
		}
		if len(*page) < s.pageSize {
			return nil
		}
		// Next page: strictly after the last time seen (ts is unique per unit).
		lower = (*page)[len(*page)-1].ts.Add(time.Microsecond)
	}
}

// unitList returns the sorted, distinct units to visit.
func (s *Store) unitList(ctx context.Context, units []string) ([]string, error) {
	if len(units) == 0 {
		return s.Units(ctx)
	}
	out := slices.Clone(units)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Counts returns, per unit and per window of width w aligned as window.Align
// aligns, the number of readings with time in [from, to), only for units when
// not empty. Windows without readings are omitted. The result is ordered by
// unit then window start.
func (s *Store) Counts(ctx context.Context, from, to time.Time, w time.Duration, units []string) ([]window.Count, error) {
	if w < time.Millisecond || w%time.Millisecond != 0 {
		return nil, fmt.Errorf("legacy store: counts: window width %s: want a whole number of milliseconds, at least 1ms", w)
	}
	// date_bin's origin is a window boundary as window.Align defines it, so
	// both sides cut time at the same instants whatever w is.
	origin := window.Align(time.Unix(0, 0), w)
	q := `SELECT unit, date_bin($3::bigint * interval '1 microsecond', ts, $4::timestamptz) AS start, count(*)
FROM legacy.readings WHERE ts >= $1 AND ts < $2`
	args := []any{from, to, w.Microseconds(), origin}
	if len(units) > 0 {
		q += ` AND unit = ANY($5::text[])`
		args = append(args, units)
	}
	q += ` GROUP BY 1, 2 ORDER BY 1, 2`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("legacy store: counts: %w", err)
	}
	counts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (window.Count, error) {
		var c window.Count
		err := row.Scan(&c.Unit, &c.Start, &c.N)
		c.Start = c.Start.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("legacy store: counts: %w", err)
	}
	return counts, nil
}

// Total returns the number of readings with time in [from, to).
func (s *Store) Total(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM legacy.readings WHERE ts >= $1 AND ts < $2`, from, to).Scan(&n); err != nil {
		return 0, fmt.Errorf("legacy store: total: %w", err)
	}
	return n, nil
}

// String describes the store for logs, without credentials.
func (s *Store) String() string {
	c := s.pool.Config().ConnConfig
	return fmt.Sprintf("postgres://%s:%d/%s", c.Host, c.Port, strings.TrimPrefix(c.Database, "/"))
}
