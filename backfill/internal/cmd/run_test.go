package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/window"
)

var units = []string{"FP2-000001", "FP2-000002", "FP2-000003"}

// TestRunRestoresExactlyTheGaps: InfluxDB misses readings in some windows;
// the dry run writes nothing; the run writes the readings of exactly those
// windows, once each, and InfluxDB then holds every reading, equal to the
// snapshot's.
func TestRunRestoresExactlyTheGaps(t *testing.T) {
	e := newEnv(t)
	from, to := t0, t0.Add(6*time.Hour)
	all := readings(units, from, to, time.Minute) // 3 units x 360
	e.writeSnapshot("20261120T070000Z", from, to, all, 250)

	// InfluxDB misses U1 in [01:10, 02:20) and U3 in [04:00, 05:00).
	missing := func(r *telemetry.Record) bool {
		t := r.Time()
		return r.Unit == units[0] && !t.Before(t0.Add(70*time.Minute)) && t.Before(t0.Add(140*time.Minute)) ||
			r.Unit == units[2] && !t.Before(t0.Add(4*time.Hour)) && t.Before(t0.Add(5*time.Hour))
	}
	var present []telemetry.Record
	wantGaps := map[window.Key]bool{}
	for i := range all {
		if missing(&all[i]) {
			wantGaps[windowOf(all[i].Key(), time.Hour)] = true
		} else {
			present = append(present, all[i])
		}
	}
	e.writeInflux(present)
	rng := []string{"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}

	code, out := e.backfill("gaps", append(rng, "--output", "json")...)
	if code != 0 {
		t.Fatalf("gaps exit %d:\n%s", code, out)
	}
	var doc struct {
		WindowsChecked int `json:"windows_checked"`
		Gaps           []struct {
			Unit    string    `json:"unit"`
			Start   time.Time `json:"start"`
			Missing int64     `json:"missing"`
		} `json:"gaps"`
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1][strings.Index(out, "{"):]), &doc); err != nil {
		t.Fatalf("gaps output is not JSON: %v\n%s", err, out)
	}
	if doc.WindowsChecked != 18 || len(doc.Gaps) != len(wantGaps) {
		t.Fatalf("gaps: %d windows checked, %d gaps %+v; want 18 and %d", doc.WindowsChecked, len(doc.Gaps), doc.Gaps, len(wantGaps))
	}
	for _, g := range doc.Gaps {
		if !wantGaps[window.Key{Unit: g.Unit, Start: g.Start}] {
			t.Fatalf("gap %+v is not a window with missing readings", g)
		}
	}

	code, out = e.backfill("run", rng...)
	if code != 0 || !strings.Contains(out, "dry run: would write 180 readings in 3 windows") {
		t.Fatalf("dry run exit %d:\n%s", code, out)
	}
	if w := e.proxy.take(); len(w) != 0 {
		t.Fatalf("the dry run wrote %d readings", len(w))
	}

	code, out = e.backfill("run", append(rng, "--execute")...)
	if code != 0 {
		t.Fatalf("run exit %d:\n%s", code, out)
	}
	// The run rebuilt the dashboards' rollups over the repaired windows.
	if !strings.Contains(out, "5-minute rollup points rebuilt over the repaired windows") || strings.Contains(out, " 0 5-minute rollup points") {
		t.Errorf("summary does not report rebuilt rollups:\n%s", out)
	}
	qc, err := influx.NewClient(influx.Config{URL: e.influx.URL, Bucket: e.influx.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	var rolled int64
	err = qc.Query(testenv.Context(t, time.Minute), `SELECT sum("readings") FROM "bsu_5m"`, func(s *influx.Series) error {
		rolled, err = influx.Int64(s.Values[0][1])
		return err
	})
	if err != nil || rolled < 3*60 {
		t.Errorf("bsu_5m counts %d readings (%v), want at least the 180 repaired", rolled, err)
	}
	writes := e.proxy.take()
	// Every reading of a gap window is written once (60 per window), and
	// nothing outside the gap windows.
	if len(writes) != 3*60 {
		t.Errorf("%d readings written, want 180 (the 3 gap windows)", len(writes))
	}
	for k, n := range writes {
		if !wantGaps[windowOf(k, time.Hour)] {
			t.Fatalf("reading %s outside the gaps was written", fmtKey(k))
		}
		if n != 1 {
			t.Fatalf("reading %s written %d times", fmtKey(k), n)
		}
	}
	// The run reported its progress to the state store (the console reads it there).
	checkProgress(t, e.state, 180, 3)
	got := e.influxRecords(from, to)
	if len(got) != len(all) {
		t.Fatalf("InfluxDB holds %d readings after the run, want %d", len(got), len(all))
	}
	for i := range all {
		g, ok := got[all[i].Key()]
		if !ok || !sameRecord(&g, &all[i]) {
			t.Fatalf("reading %s not restored exactly:\n got %s\nwant %s", fmtKey(all[i].Key()),
				telemetry.AppendJSON(nil, &g), telemetry.AppendJSON(nil, &all[i]))
		}
	}

	// A second run finds no gap and writes nothing.
	code, out = e.backfill("run", append(rng, "--execute")...)
	if code != 0 || !strings.Contains(out, "gaps found        0") {
		t.Fatalf("second run exit %d:\n%s", code, out)
	}
	if w := e.proxy.take(); len(w) != 0 {
		t.Fatalf("the second run wrote %d readings", len(w))
	}
}

// TestOverlapsAndDuplicatesNeverDouble: three snapshots overlap and one
// repeats lines; each reading is counted and written once.
func TestOverlapsAndDuplicatesNeverDouble(t *testing.T) {
	e := newEnv(t)
	h := time.Hour
	a := readings(units[:2], t0, t0.Add(3*h), 2*time.Minute)
	b := readings(units[:2], t0.Add(2*h), t0.Add(4*h), 2*time.Minute)
	e.writeSnapshot("20261120T030000Z", t0, t0.Add(3*h), a, 100)
	e.writeSnapshot("20261120T040000Z", t0.Add(2*h), t0.Add(4*h), b, 100)
	// The third repeats every reading of hour 1, twice, within itself.
	dup := readings(units[:2], t0.Add(h), t0.Add(2*h), 2*time.Minute)
	e.writeSnapshot("20261120T050000Z", t0, t0.Add(4*h), append(append([]telemetry.Record{}, dup...), dup...), 40)
	distinct := 2 * 4 * 30

	rng := []string{"--from", t0.Format(time.RFC3339), "--to", t0.Add(4 * h).Format(time.RFC3339)}
	code, out := e.backfill("gaps", rng...)
	if code != 0 || !strings.Contains(out, "readings missing from InfluxDB: 240") {
		t.Fatalf("gaps exit %d, want 240 missing:\n%s", code, out)
	}
	code, out = e.backfill("run", append(rng, "--execute")...)
	if code != 0 {
		t.Fatalf("run exit %d:\n%s", code, out)
	}
	writes := e.proxy.take()
	if len(writes) != distinct {
		t.Fatalf("%d distinct readings written, want %d", len(writes), distinct)
	}
	for k, n := range writes {
		if n != 1 {
			t.Fatalf("reading %s written %d times", fmtKey(k), n)
		}
	}
	if got := e.influxRecords(t0, t0.Add(4*h)); len(got) != distinct {
		t.Fatalf("InfluxDB holds %d readings, want %d", len(got), distinct)
	}
}

// TestDamagedPartsAreSkippedAndFail: a part with a wrong sha256 and a
// truncated gzip part are skipped and named, their readings are not
// written, the others are, and the exit status is 3.
func TestDamagedPartsAreSkippedAndFail(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	h := time.Hour
	recs := readings(units[:1], t0, t0.Add(3*h), time.Minute) // 180, parts of 60: one per hour
	m := e.writeSnapshot("20261120T030000Z", t0, t0.Add(3*h), recs, 60)
	if len(m.Parts) != 3 {
		t.Fatalf("%d parts, want 3", len(m.Parts))
	}
	// Part 0: replace its bytes (the manifest's sha256 no longer matches).
	// Part 2: truncate it and fix the manifest's size and sha256, so only
	// the gzip stream itself shows the damage.
	part := func(i int) []byte {
		rc, _, err := e.store.Get(ctx, "snapshots/20261120T030000Z/"+m.Parts[i].Key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(rc)
		return b.Bytes()
	}
	p0 := part(0)
	p0[len(p0)/2] ^= 0xff
	p2 := part(2)
	p2 = p2[:len(p2)-40]
	for i, b := range map[int][]byte{0: p0, 2: p2} {
		if err := e.store.Put(ctx, "snapshots/20261120T030000Z/"+m.Parts[i].Key, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	m.Parts[2].Bytes, m.Parts[2].SHA256 = int64(len(p2)), sha(p2)
	mb, _ := json.Marshal(m)
	if err := e.store.Put(ctx, "snapshots/20261120T030000Z/manifest.json", bytes.NewReader(mb)); err != nil {
		t.Fatal(err)
	}

	rng := []string{"--from", t0.Format(time.RFC3339), "--to", t0.Add(3 * h).Format(time.RFC3339)}
	code, out := e.backfill("run", append(rng, "--execute")...)
	if code != cliapp.ExitNoRecords {
		t.Fatalf("exit %d, want %d:\n%s", code, cliapp.ExitNoRecords, out)
	}
	for _, want := range []string{"part-00000.jsonl.gz: sha256", "part-00002.jsonl.gz: gzip stream ends early", "corrupt-part           2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	writes := e.proxy.take()
	if len(writes) != 60 {
		t.Fatalf("%d readings written, want the 60 of the good part", len(writes))
	}
	for k := range writes {
		if w := windowOf(k, h).Start; !w.Equal(t0.Add(h)) {
			t.Fatalf("reading %s of a corrupt part was written", fmtKey(k))
		}
	}
}

// TestSnapshotWithoutManifestIsIgnored: an unfinished backup is never read.
func TestSnapshotWithoutManifestIsIgnored(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	recs := readings(units[:1], t0, t0.Add(time.Hour), time.Minute)
	e.writeSnapshot("20261120T010000Z", t0, t0.Add(time.Hour), recs, 1000)
	if err := e.store.Put(ctx, "snapshots/20261120T010000Z/manifest.json.bak", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	// Move the manifest away: the folder is now an unfinished backup.
	rc, _, err := e.store.Get(ctx, "snapshots/20261120T010000Z/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	other := readings(units[1:2], t0, t0.Add(time.Hour), time.Minute)
	e.writeSnapshot("20261120T020000Z", t0, t0.Add(time.Hour), other, 1000)
	// Re-create the first snapshot's parts under a new id with no manifest.
	keys, _ := e.store.List(ctx, "snapshots/20261120T010000Z/part")
	for _, k := range keys {
		rc, _, err := e.store.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(rc)
		rc.Close()
		if err := e.store.Put(ctx, strings.Replace(k, "20261120T010000Z", "20261120T030000Z", 1), &b); err != nil {
			t.Fatal(err)
		}
	}
	code, out := e.backfill("run", "--from", t0.Format(time.RFC3339), "--to", t0.Add(time.Hour).Format(time.RFC3339), "--execute", "--units", units[0])
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "incomplete-snapshot") || !strings.Contains(out, "20261120T030000Z") {
		t.Fatalf("the unfinished snapshot is not reported:\n%s", out)
	}
	// U1's readings come from the complete snapshot only: written once each.
	writes := e.proxy.take()
	if len(writes) != 60 {
		t.Fatalf("%d readings written, want 60", len(writes))
	}
	for k, n := range writes {
		if n != 1 {
			t.Fatalf("reading %s written %d times", fmtKey(k), n)
		}
	}
}

// TestFromLedger: windows come from open ledger entries; covered entries
// are marked repaired by the run, an entry no snapshot covers stays open.
func TestFromLedger(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	h := time.Hour
	recs := readings(units[:2], t0, t0.Add(3*h), time.Minute)
	e.writeSnapshot("20261120T030000Z", t0, t0.Add(3*h), recs, 1000)
	st, err := cutover.Open(ctx, e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.RecordGaps(ctx, []cutover.Gap{
		{Sink: cutover.SinkInflux, Unit: units[0], From: t0.Add(30 * time.Minute), To: t0.Add(80 * time.Minute), Readings: 51, Reason: "test"},
		{Sink: cutover.SinkInflux, Unit: units[1], From: t0.Add(2*h + 5*time.Minute), To: t0.Add(4 * h), Readings: 9, Reason: "after the snapshot"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := []string{"--from", t0.Format(time.RFC3339), "--to", t0.Add(5 * h).Format(time.RFC3339), "--from-ledger"}
	code, out := e.backfill("run", append(rng, "--execute")...)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	writes := e.proxy.take()
	// U1: windows 00:00 and 01:00 (120); U2: window 02:00 (60), the rest
	// of its entry is beyond every snapshot.
	if len(writes) != 180 {
		t.Fatalf("%d readings written, want 180", len(writes))
	}
	open, err := st.Gaps(ctx, cutover.GapFilter{Sink: cutover.SinkInflux, OnlyOpen: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Unit != units[1] {
		t.Fatalf("open ledger entries %+v, want only the uncovered one", open)
	}
	if !strings.Contains(out, "left open") {
		t.Fatalf("the uncovered entry is not reported:\n%s", out)
	}
}

var _ = context.Background

// checkProgress requires the newest run's last progress report to show
// points of points and windows of windows done.
func checkProgress(t *testing.T, stateDSN string, points, windows int64) {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	st, err := cutover.Open(ctx, stateDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.BackfillRuns(ctx, 1)
	if err != nil || len(runs) != 1 {
		t.Fatalf("backfill runs: %+v, %v", runs, err)
	}
	p := runs[0].Progress
	if p == nil || runs[0].ProgressAt == nil {
		t.Fatalf("run %s recorded no progress", runs[0].RunID)
	}
	if p.PointsDone != points || p.PointsTotal != points || p.WindowsDone != windows || p.WindowsTotal != windows || p.ThrottleState != "running" {
		t.Fatalf("run %s progress %+v; want %d of %d points, %d of %d windows, running", runs[0].RunID, *p, points, points, windows, windows)
	}
}
