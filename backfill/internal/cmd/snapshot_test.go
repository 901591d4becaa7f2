package cmd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// TestSnapshotCommand exports a range of the legacy store into S3 and
// reads it back: the records of the range, in parts, with the manifest.
func TestSnapshotCommand(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	pg := testenv.Postgres(t)
	st, err := legacy.Open(ctx, pg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	recs := readings(units, t0, t0.Add(2*time.Hour), time.Minute) // 360
	if err := st.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	code, out := e.backfill("snapshot", "--pg-dsn", pg, "--from", t0.Add(30*time.Minute).Format(time.RFC3339),
		"--to", t0.Add(90*time.Minute).Format(time.RFC3339), "--part-records", "50", "--snapshot-id", "20261120T020000Z")
	if code != 0 || !strings.Contains(out, "180 records in 4 parts") {
		t.Fatalf("snapshot exit %d:\n%s", code, out)
	}
	r := snapshot.NewReader(e.store, "snapshots", snapshot.ReaderOptions{})
	ms, damage, err := r.Snapshots(ctx)
	if err != nil || len(ms) != 1 || len(damage) != 0 {
		t.Fatalf("snapshots %+v, damage %v, %v", ms, damage, err)
	}
	want := map[telemetry.Key]telemetry.Record{}
	for _, rec := range recs {
		if tm := rec.Time(); !tm.Before(t0.Add(30*time.Minute)) && tm.Before(t0.Add(90*time.Minute)) {
			want[rec.Key()] = rec
		}
	}
	n := 0
	for _, p := range ms[0].Parts {
		_, err := r.ReadPart(ctx, &ms[0], p, func(rec *telemetry.Record, _ int64) error {
			n++
			w, ok := want[rec.Key()]
			if !ok || !sameRecord(&w, rec) {
				t.Errorf("snapshot holds %s, not a legacy reading of the range", fmtKey(rec.Key()))
			}
			return nil
		}, func(d snapshot.Damage) { t.Errorf("damage: %v", d) })
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != len(want) {
		t.Fatalf("%d records read back, want %d", n, len(want))
	}
}
