package rollup

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/influx"
)

func TestAppendPoint(t *testing.T) {
	cols := []string{"time", "mean_soc_pct", "mean_power_kw", "readings", "alarms"}
	row := []any{json.Number("1795251600000"), json.Number("50"), nil, json.Number("12"), json.Number("0")}
	got, err := appendPoint(nil, MeasurementUnit, map[string]string{"unit": "FP2 a,b=c", "site": "", "model": "M"}, cols, row)
	if err != nil {
		t.Fatal(err)
	}
	want := "bsu_5m,model=M,unit=FP2\\ a\\,b\\=c mean_soc_pct=50,readings=12i,alarms=0i 1795251600000\n"
	if string(got) != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if got, _ := appendPoint(nil, MeasurementUnit, nil, cols[:3], []any{json.Number("1"), nil, nil}); len(got) != 0 {
		t.Fatalf("a row without values wrote %q", got)
	}
	if _, err := appendPoint(nil, MeasurementUnit, nil, cols[:4], []any{json.Number("1"), json.Number("1"), nil, json.Number("1.5")}); err == nil {
		t.Fatal("a fractional count was accepted")
	}
}

// recorder is a Querier and LineWriter that records what it is asked.
type recorder struct {
	queries []string
	lines   []string
}

func (r *recorder) Query(_ context.Context, q string, fn func(*influx.Series) error) error {
	r.queries = append(r.queries, q)
	return fn(&influx.Series{Tags: map[string]string{"site": "S"}, Columns: []string{"time", "readings"}, Values: [][]any{{json.Number("0"), json.Number("3")}}})
}

func (r *recorder) WriteLines(_ context.Context, lines []byte) error {
	r.lines = append(r.lines, strings.Split(strings.TrimSpace(string(lines)), "\n")...)
	return nil
}

func TestRangeAlignsAndChunks(t *testing.T) {
	rec := &recorder{}
	j := New(rec, rec, nil)
	j.Chunk = 12 * time.Hour
	from := time.Date(2026, 11, 1, 0, 2, 0, 0, time.UTC)
	res, err := j.Range(context.Background(), from, from.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !res.From.Equal(from.Truncate(Interval)) || !res.To.Equal(from.Add(24*time.Hour+3*time.Minute)) {
		t.Fatalf("range [%s, %s), want whole windows", res.From, res.To)
	}
	// 3 chunks (12h, 12h, 5m) × 3 statements, in order.
	if len(rec.queries) != 9 || !strings.Contains(rec.queries[2], `FROM "bsu_5m"`) || !strings.Contains(rec.queries[3], "time >= '2026-11-01T12:00:00Z'") {
		t.Fatalf("queries %q", rec.queries)
	}
	if res.Points != 9 || len(rec.lines) != 9 {
		t.Fatalf("points %d, lines %d", res.Points, len(rec.lines))
	}
	if _, err := j.Range(context.Background(), res.From, res.From); err == nil {
		t.Fatal("an empty range was accepted")
	}
}

func TestFollowRollsUpTheLookbackAfterEachBoundary(t *testing.T) {
	rec := &recorder{}
	j := New(rec, rec, nil)
	clock := time.Date(2026, 11, 1, 10, 7, 30, 0, time.UTC)
	var sleeps []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var passes []Result
	err := j.Follow(ctx, time.Hour, 30*time.Second, func() time.Time { return clock }, func(_ context.Context, d time.Duration) error {
		sleeps = append(sleeps, d)
		clock = clock.Add(d)
		if len(sleeps) == 2 {
			cancel()
			return errors.New("stopped")
		}
		return nil
	}, func(r Result) { passes = append(passes, r) })
	if err != nil {
		t.Fatal(err)
	}
	if len(passes) != 2 {
		t.Fatalf("%d passes", len(passes))
	}
	first := time.Date(2026, 11, 1, 10, 5, 0, 0, time.UTC)
	if !passes[0].From.Equal(first.Add(-time.Hour)) || !passes[0].To.Equal(first) || !passes[1].To.Equal(first.Add(Interval)) {
		t.Fatalf("passes %+v", passes)
	}
	if sleeps[0] != 3*time.Minute || sleeps[1] != 5*time.Minute {
		t.Fatalf("sleeps %v, want 3m (to 10:10:30) then 5m", sleeps)
	}
}
