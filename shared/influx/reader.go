package influx

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/window"
)

// Measurements and fields of the InfluxDB schema (TELEMETRY_XML.md).
const (
	MeasurementReading = "bsu"
	MeasurementAlarm   = "bsu_alarm"
	// FieldSchema is on every bsu point, so counting it counts readings.
	FieldSchema = "schema"
)

// unitsPerQuery bounds the unit filter of one query.
const unitsPerQuery = 100

// maxAlarmsPerSpan bounds the alarms Stream holds to join them to their
// readings: one StreamWindow of alarms of the units of one query.
const maxAlarmsPerSpan = 1_000_000

// Reader reads readings back from InfluxDB with InfluxQL (through Client),
// the one read language InfluxDB 1.x, 2.x (with a DBRP mapping) and 3.x all
// serve. It is safe for concurrent use.
type Reader struct {
	cfg    Config
	c      *Client
	logger *slog.Logger
}

// NewReader returns a Reader for cfg. It does not contact InfluxDB: use Ping.
func NewReader(cfg Config, logger *slog.Logger) (*Reader, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reader{cfg: c.cfg, c: c, logger: logger}, nil
}

// Client returns the reader's InfluxQL client.
func (r *Reader) Client() *Client { return r.c }

// Ping checks that InfluxDB answers on /ping.
func (r *Reader) Ping(ctx context.Context) error {
	_, err := r.c.Ping(ctx)
	return err
}

// Close releases the client's connections.
func (r *Reader) Close() { r.c.Close() }

// timeRange returns the WHERE clause of [from, to).
func timeRange(from, to time.Time) string {
	return "time >= " + TimeLiteral(from) + " AND time < " + TimeLiteral(to)
}

// unitPredicate returns ` AND ("unit" = 'a' OR …)`, or "" for all units.
func unitPredicate(units []string) string {
	if len(units) == 0 {
		return ""
	}
	parts := make([]string, len(units))
	for i, u := range units {
		parts[i] = `"unit" = ` + QuoteString(u)
	}
	return " AND (" + strings.Join(parts, " OR ") + ")"
}

// unitChunks returns units sorted, deduplicated and cut into query-sized
// chunks; one nil chunk (every unit) when units is empty.
func unitChunks(units []string) [][]string {
	if len(units) == 0 {
		return [][]string{nil}
	}
	units = slices.Compact(slices.Sorted(slices.Values(units)))
	return slices.Collect(slices.Chunk(units, unitsPerQuery))
}

// alignOffset is the InfluxQL GROUP BY time() offset that puts InfluxDB's
// window boundaries (epoch + offset + k·w) on window.Align's boundaries,
// which Go computes from the zero time, not the Unix epoch: they differ
// when w does not divide a day.
func alignOffset(w time.Duration) time.Duration {
	epoch := time.Unix(0, 0).UTC()
	d := epoch.Sub(window.Align(epoch, w)) // in [0, w)
	return (w - d) % w
}

// GroupByTime returns the InfluxQL `time(w, offset)` dimension whose
// windows are window.Align's windows of width w.
func GroupByTime(w time.Duration) string {
	return fmt.Sprintf("time(%dms, %dms)", w.Milliseconds(), alignOffset(w).Milliseconds())
}

// Counts returns, per unit and per window of width w aligned as window.Align
// aligns, how many bsu readings (points with the schema field) have a time in
// [from, to), only for units when not empty. Windows without readings are
// omitted; the result is ordered by unit then window start. InfluxDB counts
// (GROUP BY time(), "unit"): only the counts cross the wire.
func (r *Reader) Counts(ctx context.Context, from, to time.Time, w time.Duration, units []string) ([]window.Count, error) {
	if w < time.Millisecond || w%time.Millisecond != 0 {
		return nil, fmt.Errorf("influx: counts: window width %s: want a whole number of milliseconds, at least 1ms", w)
	}
	var out []window.Count
	for _, chunk := range unitChunks(units) {
		q := fmt.Sprintf(`SELECT count(%s) FROM %s WHERE %s%s GROUP BY %s, "unit" fill(none)`,
			QuoteIdent(FieldSchema), QuoteIdent(MeasurementReading), timeRange(from, to), unitPredicate(chunk), GroupByTime(w))
		err := r.c.Query(ctx, q, func(s *Series) error {
			unit := s.Tags["unit"]
			for _, row := range s.Values {
				ms, err := Int64(row[0])
				if err != nil {
					return fmt.Errorf("influx: counts: unit %q: time: %w", unit, err)
				}
				n, err := Int64(row[1])
				if err != nil {
					return fmt.Errorf("influx: counts: unit %q window %d: count: %w", unit, ms, err)
				}
				if n > 0 {
					out = append(out, window.Count{Unit: unit, Start: window.Align(time.UnixMilli(ms), w), N: n})
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("influx: counts: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b window.Count) int {
		return cmp.Or(strings.Compare(a.Unit, b.Unit), a.Start.Compare(b.Start))
	})
	return out, nil
}

// Total returns how many bsu readings have a time in [from, to).
func (r *Reader) Total(ctx context.Context, from, to time.Time) (int64, error) {
	q := fmt.Sprintf(`SELECT count(%s) FROM %s WHERE %s`, QuoteIdent(FieldSchema), QuoteIdent(MeasurementReading), timeRange(from, to))
	var total int64
	err := r.c.Query(ctx, q, func(s *Series) error {
		for _, row := range s.Values {
			n, err := Int64(row[1])
			if err != nil {
				return fmt.Errorf("count: %w", err)
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("influx: total: %w", err)
	}
	return total, nil
}

// Units returns the units with at least one reading in [from, to), sorted.
// (Counted per unit rather than SHOW TAG VALUES, whose time filter 1.x
// ignores.)
func (r *Reader) Units(ctx context.Context, from, to time.Time) ([]string, error) {
	q := fmt.Sprintf(`SELECT count(%s) FROM %s WHERE %s GROUP BY "unit"`, QuoteIdent(FieldSchema), QuoteIdent(MeasurementReading), timeRange(from, to))
	var units []string
	err := r.c.Query(ctx, q, func(s *Series) error {
		if u := s.Tags["unit"]; u != "" {
			units = append(units, u)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("influx: list units: %w", err)
	}
	slices.Sort(units)
	return slices.Compact(units), nil
}

// Stream calls fn for each bsu reading with a time in [from, to), only for
// units when not empty, rebuilt as a Record from the point's tags and fields
// (temp_<sensor>_c fields become Temps) and the bsu_alarm points of the same
// unit and time. Alarms come back sorted by code then severity: InfluxDB
// does not keep the order of a message. Readings come one StreamWindow at a
// time; within it, with ReadParallelism 1, series by series (a series is a
// unit with its site and model), each in time order; with more, the
// window's slices interleave (each slice series by series).
//
// Per StreamWindow (and per 100 units when units are given) one query reads
// the alarms, held to be joined, and ReadParallelism queries, one per slice
// of the window, read every unit's readings, streamed chunk by chunk. fn is
// never called concurrently. Memory is bounded by ReadParallelism chunks and
// one window's alarms. fn may not keep the Record: it is reused. An error
// from fn stops the stream and is returned as is.
func (r *Reader) Stream(ctx context.Context, from, to time.Time, units []string, fn func(*telemetry.Record) error) error {
	chunks := unitChunks(units)
	var mu sync.Mutex
	serial := func(rec *telemetry.Record) error {
		mu.Lock()
		defer mu.Unlock()
		return fn(rec)
	}
	for start := from; start.Before(to); start = start.Add(r.cfg.StreamWindow) {
		stop := start.Add(r.cfg.StreamWindow)
		if stop.After(to) {
			stop = to
		}
		for _, chunk := range chunks {
			alarms, err := r.alarms(ctx, start, stop, chunk)
			if err != nil {
				return err
			}
			g, gctx := errgroup.WithContext(ctx)
			for _, sl := range cutSpan(start, stop, r.cfg.ReadParallelism) {
				g.Go(func() error { return r.readings(gctx, sl.from, sl.to, chunk, alarms, serial) })
			}
			if err := g.Wait(); err != nil {
				return err
			}
		}
	}
	return nil
}

type span struct{ from, to time.Time }

// cutSpan cuts [from, to) into n slices of whole milliseconds.
func cutSpan(from, to time.Time, n int) []span {
	total := to.Sub(from)
	n = max(1, min(n, int(total/time.Millisecond)))
	step := (total / time.Duration(n)).Truncate(time.Millisecond)
	out := make([]span, 0, n)
	for i := range n {
		s := span{from.Add(time.Duration(i) * step), from.Add(time.Duration(i+1) * step)}
		if i == n-1 {
			s.to = to
		}
		out = append(out, s)
	}
	return out
}

// alarmKey is a reading's identity, for joining alarms to it.
type alarmKey struct {
	unit string
	ms   int64
}

// alarms reads the bsu_alarm points of [start, stop), by unit and time.
func (r *Reader) alarms(ctx context.Context, start, stop time.Time, units []string) (map[alarmKey][]telemetry.Alarm, error) {
	q := fmt.Sprintf(`SELECT "text", "code", "severity" FROM %s WHERE %s%s GROUP BY "unit"`,
		QuoteIdent(MeasurementAlarm), timeRange(start, stop), unitPredicate(units))
	out := map[alarmKey][]telemetry.Alarm{}
	n := 0
	err := r.c.Query(ctx, q, func(s *Series) error {
		unit := s.Tags["unit"]
		ti, xi, ci, si := s.Col("time"), s.Col("text"), s.Col("code"), s.Col("severity")
		for _, row := range s.Values {
			if n++; n > maxAlarmsPerSpan {
				return fmt.Errorf("more than %d alarms in %s–%s: lower the stream window (influx.Config.StreamWindow)", maxAlarmsPerSpan, start.Format(time.RFC3339), stop.Format(time.RFC3339))
			}
			ms, err := Int64(row[ti])
			if err != nil {
				return fmt.Errorf("alarm of unit %q: time: %w", unit, err)
			}
			var a telemetry.Alarm
			var e1, e2, e3 error
			a.Text, e1 = String(at(row, xi))
			a.Code, e2 = String(at(row, ci))
			a.Severity, e3 = String(at(row, si))
			if err := cmp.Or(e1, e2, e3); err != nil {
				return fmt.Errorf("alarm of unit %q at %d: %w", unit, ms, err)
			}
			k := alarmKey{unit, ms}
			out[k] = append(out[k], a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("influx: read alarms: %w", err)
	}
	for _, as := range out {
		slices.SortStableFunc(as, func(a, b telemetry.Alarm) int {
			return cmp.Or(strings.Compare(a.Code, b.Code), strings.Compare(a.Severity, b.Severity))
		})
	}
	return out, nil
}

func at(row []any, i int) any {
	if i < 0 || i >= len(row) {
		return nil
	}
	return row[i]
}

// readings streams the bsu points of [start, stop) to fn.
func (r *Reader) readings(ctx context.Context, start, stop time.Time, units []string, alarms map[alarmKey][]telemetry.Alarm, fn func(*telemetry.Record) error) error {
	// GROUP BY * is InfluxDB's cheapest way to return raw points (each
	// series on its own, no merge by time; 1.8 answers it about twice as
	// fast as GROUP BY "unit") and the tags come once per series.
	q := fmt.Sprintf(`SELECT * FROM %s WHERE %s%s GROUP BY *`, QuoteIdent(MeasurementReading), timeRange(start, stop), unitPredicate(units))
	var rec telemetry.Record
	err := r.c.Query(ctx, q, func(s *Series) error {
		unit := s.Tags["unit"]
		cols := columnsOf(s.Columns)
		for _, row := range s.Values {
			if err := cols.record(&rec, s.Tags, row); err != nil {
				return fmt.Errorf("reading of unit %q: %w", unit, err)
			}
			rec.Alarms = alarms[alarmKey{unit, rec.TimeMs}]
			if err := fn(&rec); err != nil {
				return &stopError{err}
			}
		}
		return nil
	})
	if se, ok := err.(*stopError); ok {
		return se.err
	}
	if err != nil {
		return fmt.Errorf("influx: stream %s–%s: %w", start.Format(time.RFC3339), stop.Format(time.RFC3339), err)
	}
	return nil
}

// stopError carries fn's error through Query unwrapped.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }
