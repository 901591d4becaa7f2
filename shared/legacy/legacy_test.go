package legacy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/window"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore opens a migrated store on a fresh database.
func openStore(t testing.TB) *Store {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	s, err := Open(ctx, testenv.Postgres(t), discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// record returns a fully populated record of unit at t; i varies the values.
func record(unit string, t time.Time, i int) telemetry.Record {
	r := telemetry.Record{
		Unit: unit, Site: "North Yard, Bay 3", Model: "FlexiPack-250", Firmware: "2.4.1", Schema: "2.1",
		Seq: int64(1000 + i), HasSeq: true, TimeMs: t.UnixMilli(),
		Has: telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
		SoC: 50 + float64(i%50)/10, SoH: 97.1, Voltage: 812.1, Current: -12.3, Power: -9.99,
		Temps: []telemetry.Temp{{Sensor: "ambient", C: 21.2222}, {Sensor: "cell_max", C: 31.2}},
		Mode:  "discharging",
	}
	if i%3 == 0 {
		r.Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: `Cell "over"-temperature > 30 °C`}}
	}
	return r
}

// series returns n records per unit, every step from start.
func series(units []string, start time.Time, step time.Duration, n int) []telemetry.Record {
	var out []telemetry.Record
	for _, u := range units {
		for i := 0; i < n; i++ {
			out = append(out, record(u, start.Add(time.Duration(i)*step), i))
		}
	}
	return out
}

// streamAll returns what Stream gives, ordered by unit then time, after
// checking that each unit's readings came in time order (units interleave).
func streamAll(t *testing.T, s *Store, from, to time.Time, units []string) []telemetry.Record {
	t.Helper()
	var got []telemetry.Record
	last := map[string]int64{}
	err := s.Stream(testenv.Context(t, time.Minute), from, to, units, func(r *telemetry.Record) error {
		if ms, ok := last[r.Unit]; ok && r.TimeMs <= ms {
			t.Errorf("unit %s: reading at %d after one at %d", r.Unit, r.TimeMs, ms)
		}
		last[r.Unit] = r.TimeMs
		got = append(got, *r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(got, func(a, b telemetry.Record) int { return strings.Compare(a.Unit, b.Unit) })
	return got
}

// normalise makes empty and nil slices compare equal.
func normalise(rs []telemetry.Record) []telemetry.Record {
	out := slices.Clone(rs)
	for i := range out {
		if len(out[i].Temps) == 0 {
			out[i].Temps = nil
		}
		if len(out[i].Alarms) == 0 {
			out[i].Alarms = nil
		}
	}
	return out
}

func equalRecords(t *testing.T, got, want []telemetry.Record) {
	t.Helper()
	got, want = normalise(got), normalise(want)
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func total(t *testing.T, s *Store) int64 {
	t.Helper()
	n, err := s.Total(context.Background(), t0.Add(-24*time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriteIsIdempotent(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	recs := series([]string{"FP2-000001", "FP2-000002"}, t0, time.Second, 50)
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var writtenAt time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(written_at) FROM legacy.readings`).Scan(&writtenAt); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if n := total(t, s); n != 100 {
		t.Fatalf("after writing 100 records twice: %d rows, want 100", n)
	}
	// An identical re-delivery must not rewrite the row.
	var rewritten int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM legacy.readings WHERE written_at > $1`, writtenAt).Scan(&rewritten); err != nil {
		t.Fatal(err)
	}
	if rewritten != 0 {
		t.Fatalf("identical re-delivery rewrote %d rows, want 0", rewritten)
	}
	// A changed re-delivery replaces the stored record (last write wins).
	changed := recs[7]
	changed.SoC = 12.5
	changed.Alarms = nil
	if err := s.Write(ctx, []telemetry.Record{changed}); err != nil {
		t.Fatal(err)
	}
	got := streamAll(t, s, changed.Time(), changed.Time().Add(time.Millisecond), []string{changed.Unit})
	equalRecords(t, got, []telemetry.Record{changed})
	if n := total(t, s); n != 100 {
		t.Fatalf("after a changed re-delivery: %d rows, want 100", n)
	}
}

func TestWriteDuplicatesInOneBatch(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	a := record("FP2-000001", t0, 1)
	b := a
	b.SoC = 1.5
	c := a
	c.SoC = 2.5 // the last occurrence wins
	other := record("FP2-000001", t0.Add(time.Millisecond), 2)
	if err := s.Write(ctx, []telemetry.Record{a, other, b, a, c}); err != nil {
		t.Fatalf("batch with duplicates: %v", err)
	}
	if n := total(t, s); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	equalRecords(t, streamAll(t, s, t0, t0.Add(time.Second), nil), []telemetry.Record{c, other})
}

func TestWriteRejectsInvalidRecordsWhole(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	good := record("FP2-000001", t0, 1)
	for name, bad := range map[string]telemetry.Record{
		"no unit": {TimeMs: t0.UnixMilli(), Schema: "2.1"},
		"no time": {Unit: "FP2-000001", Schema: "2.1"},
	} {
		t.Run(name, func(t *testing.T) {
			err := s.Write(ctx, []telemetry.Record{good, bad})
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("got %v, want ErrInvalidRecord", err)
			}
			if want := "record 1"; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %q", err, want)
			}
			if n := total(t, s); n != 0 {
				t.Fatalf("%d rows written, want 0", n)
			}
		})
	}
}

func TestStreamOrdersEachUnitByTimeAcrossPages(t *testing.T) {
	s := openStore(t)
	s.SetPageSize(7)
	ctx := testenv.Context(t, time.Minute)
	units := []string{"FP2-000003", "FP1-000001", "FP2-000002"}
	recs := series(units, t0, time.Second, 21) // 21 = 3 full pages per unit
	// Write in reverse so storage order is not the answer.
	rev := slices.Clone(recs)
	slices.Reverse(rev)
	if err := s.Write(ctx, rev); err != nil {
		t.Fatal(err)
	}
	byUnitTime := func(rs []telemetry.Record) []telemetry.Record {
		out := slices.Clone(rs)
		slices.SortFunc(out, func(a, b telemetry.Record) int {
			if a.Unit != b.Unit {
				if a.Unit < b.Unit {
					return -1
				}
				return 1
			}
			return int(a.TimeMs - b.TimeMs)
		})
		return out
	}
	filter := func(from, to time.Time, units ...string) []telemetry.Record {
		var out []telemetry.Record
		for _, r := range recs {
			if (len(units) == 0 || slices.Contains(units, r.Unit)) && !r.Time().Before(from) && r.Time().Before(to) {
				out = append(out, r)
			}
		}
		return byUnitTime(out)
	}
	cases := []struct {
		name     string
		from, to time.Time
		units    []string
	}{
		{"all", t0, t0.Add(time.Hour), nil},
		{"range cut inside pages", t0.Add(3 * time.Second), t0.Add(17*time.Second + time.Millisecond), nil},
		{"end exclusive on a page boundary", t0, t0.Add(14 * time.Second), nil},
		{"units filter, unsorted, repeated", t0, t0.Add(time.Hour), []string{"FP2-000003", "FP1-000001", "FP2-000003"}},
		{"unknown unit", t0, t0.Add(time.Hour), []string{"nope"}},
		{"empty range", t0.Add(time.Hour), t0.Add(2 * time.Hour), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			equalRecords(t, streamAll(t, s, c.from, c.to, c.units), filter(c.from, c.to, c.units...))
		})
	}
	t.Run("fn error stops the stream", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.Stream(ctx, t0, t0.Add(time.Hour), nil, func(*telemetry.Record) error {
			n++
			if n == 10 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 10 {
			t.Fatalf("got %v after %d records, want stop after 10", err, n)
		}
	})
}

func TestCountsPerAlignedWindow(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, time.Minute)
	h := t0 // 09:00:00.000Z, on an hour boundary
	at := func(u string, d time.Duration) telemetry.Record { return record(u, h.Add(d), 0) }
	recs := []telemetry.Record{
		at("A", -time.Millisecond), // 08:59:59.999 → window 08:00
		at("A", 0),                 // 09:00 exactly → window 09:00
		at("A", 59*time.Minute+59*time.Second+999*time.Millisecond), // 09:59:59.999 → 09:00
		at("A", time.Hour),               // 10:00 → 10:00
		at("A", 3*time.Hour+time.Minute), // 12:01 → 12:00
		at("B", 30*time.Minute),          // 09:30 → 09:00
		at("B", 90*time.Minute),          // 10:30 → 10:00
		at("B", 91*time.Minute),          // 10:31 → 10:00
	}
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	c := func(u string, start time.Time, n int64) window.Count {
		return window.Count{Unit: u, Start: start, N: n}
	}
	tests := []struct {
		name     string
		from, to time.Time
		w        time.Duration
		units    []string
		want     []window.Count
	}{
		{"1h over everything", h.Add(-2 * time.Hour), h.Add(5 * time.Hour), time.Hour, nil, []window.Count{
			c("A", h.Add(-time.Hour), 1), c("A", h, 2), c("A", h.Add(time.Hour), 1), c("A", h.Add(3*time.Hour), 1),
			c("B", h, 1), c("B", h.Add(time.Hour), 2),
		}},
		{"from inside a window gives the aligned start; to is exclusive", h.Add(30 * time.Minute), h.Add(90 * time.Minute), time.Hour, nil, []window.Count{
			c("A", h, 1), c("A", h.Add(time.Hour), 1), c("B", h, 1),
		}},
		{"units filter", h.Add(-2 * time.Hour), h.Add(5 * time.Hour), time.Hour, []string{"B"}, []window.Count{
			c("B", h, 1), c("B", h.Add(time.Hour), 2),
		}},
		{"1d", h.Add(-24 * time.Hour), h.Add(24 * time.Hour), 24 * time.Hour, nil, []window.Count{
			c("A", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 5), c("B", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), 3),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Counts(ctx, tc.from, tc.to, tc.w, tc.units)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
	// Widths that do not divide a day: window.Align cuts from the zero
	// time, not the Unix epoch; Counts must cut at the same instants.
	for _, w := range []time.Duration{7 * time.Minute, 7 * 24 * time.Hour, 13*time.Second + 7*time.Millisecond} {
		t.Run(fmt.Sprintf("aligned like window.Align for %s", w), func(t *testing.T) {
			from, to := h.Add(-30*24*time.Hour), h.Add(30*24*time.Hour)
			got, err := s.Counts(ctx, from, to, w, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := map[window.Key]int64{}
			for _, r := range recs {
				want[window.Key{Unit: r.Unit, Start: window.Align(r.Time(), w)}]++
			}
			if len(got) != len(want) {
				t.Fatalf("got %d windows %v, want %d %v", len(got), got, len(want), want)
			}
			for _, g := range got {
				if want[g.Key()] != g.N {
					t.Fatalf("window %v: got %d, want %d (all: %v)", g.Key(), g.N, want[g.Key()], got)
				}
			}
		})
	}
	if _, err := s.Counts(ctx, h, h.Add(time.Hour), 0, nil); err == nil {
		t.Fatal("Counts with a zero width: no error")
	}
}

func TestMigrateOnceAndConcurrently(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	dsn := testenv.Postgres(t)
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, dsn, discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		stores[i] = s
	}
	var g errgroup.Group
	for _, s := range stores {
		g.Go(func() error { return s.Migrate(ctx) })
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("concurrent migrations: %v", err)
	}
	if err := stores[0].Migrate(ctx); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	files, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM legacy.schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != len(files) {
		t.Fatalf("%d migrations recorded, want %d (one per file)", applied, len(files))
	}
	if err := stores[1].Write(ctx, []telemetry.Record{record("FP2-000001", t0, 0)}); err != nil {
		t.Fatalf("write after migration: %v", err)
	}
}

func TestOpenReportsUnreachableServer(t *testing.T) {
	ctx := testenv.Context(t, 30*time.Second)
	_, err := Open(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", testenv.FreePort(t)), discard())
	if err == nil {
		t.Fatal("Open on a closed port: no error")
	}
}

// TestConcurrentOverlappingWrites: two consumers redelivering overlapping
// batches in opposite orders must not deadlock (rows are locked in key order).
func TestConcurrentOverlappingWrites(t *testing.T) {
	s := openStore(t)
	ctx := testenv.Context(t, 2*time.Minute)
	recs := series([]string{"FP2-000001", "FP2-000002", "FP2-000003", "FP2-000004"}, t0, time.Second, 100)
	rev := slices.Clone(recs)
	slices.Reverse(rev)
	var g errgroup.Group
	for _, batch := range [][]telemetry.Record{recs, rev} {
		g.Go(func() error {
			for i := 0; i < 15; i++ {
				b := slices.Clone(batch)
				b[i].SoC = float64(i) // a changed record, so rows are updated, not skipped
				if err := s.Write(ctx, b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("concurrent writes: %v", err)
	}
	if n := total(t, s); n != int64(len(recs)) {
		t.Fatalf("%d rows, want %d", n, len(recs))
	}
}
