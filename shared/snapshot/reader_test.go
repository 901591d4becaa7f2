package snapshot_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// readAll reads every part of every complete snapshot and returns the
// records, the lines each came from, and the damage reported.
func readAll(t *testing.T, r *snapshot.Reader) ([]telemetry.Record, []snapshot.Damage) {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	ms, damage, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var recs []telemetry.Record
	for i := range ms {
		for _, p := range ms[i].Parts {
			_, err := r.ReadPart(ctx, &ms[i], p, func(rec *telemetry.Record, _ int64) error {
				recs = append(recs, *rec)
				return nil
			}, func(d snapshot.Damage) { damage = append(damage, d) })
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return recs, damage
}

func distinct(recs []telemetry.Record) int {
	seen := map[telemetry.Key]bool{}
	for i := range recs {
		seen[recs[i].Key()] = true
	}
	return len(seen)
}

// copyDir uploads the files of a local folder into st under prefix.
func copyDir(t *testing.T, st snapshot.Store, dir, prefix string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return st.Put(context.Background(), prefix+"/"+filepath.ToSlash(rel), f)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestContractSample reads the contract's sample snapshot: 5 lines, 4
// distinct readings, no damage, from either store.
func TestContractSample(t *testing.T) {
	foreachStore(t, func(t *testing.T, st snapshot.Store) {
		copyDir(t, st, "../../testdata/contract/snapshot", "snapshots")
		recs, damage := readAll(t, snapshot.NewReader(st, "snapshots", snapshot.ReaderOptions{}))
		if len(damage) != 0 {
			t.Fatalf("damage in the contract sample: %v", damage)
		}
		if len(recs) != 5 || distinct(recs) != 4 {
			t.Fatalf("%d records, %d distinct; want 5 and 4", len(recs), distinct(recs))
		}
	})
}

func rec(unit string, t time.Time) *telemetry.Record {
	return &telemetry.Record{Unit: unit, Site: "north-yard", Model: "FlexiPack-100", Schema: "1.0", TimeMs: t.UnixMilli(),
		Has: telemetry.HasSoC, SoC: 50, Mode: "idle"}
}

var (
	day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	day1 = day0.Add(24 * time.Hour)
)

// writeSnapshot writes a snapshot of n readings of unit U1 a minute apart,
// in parts of partRecords.
func writeSnapshot(t *testing.T, st snapshot.Store, id string, n, partRecords int) snapshot.Manifest {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	w, err := snapshot.NewWriter(st, "snaps", id, day0, day1, snapshot.WriterOptions{PartRecords: int64(partRecords)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := w.Add(ctx, rec("U1", day0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func gz(lines ...string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	w.Close()
	return b.Bytes()
}

// gzLines counts the lines of a gzip'd part, 2 when it is not whole.
func gzLines(b []byte) int64 {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return 2
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 2
	}
	return int64(bytes.Count(data, []byte{'\n'}))
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// putRaw writes a snapshot by hand: parts as given, a manifest describing
// them (with the true size and sha256 unless tamper changes it).
func putRaw(t *testing.T, st snapshot.Store, id string, parts map[string][]byte, tamper func(*snapshot.Manifest)) {
	t.Helper()
	ctx := context.Background()
	m := snapshot.Manifest{SnapshotID: id, CreatedAt: day1, From: day0, To: day1, Format: snapshot.Format}
	for _, k := range []string{"part-00000.jsonl.gz", "part-00001.jsonl.gz", "part-00002.jsonl.gz"} {
		b, ok := parts[k]
		if !ok {
			continue
		}
		if err := st.Put(ctx, "snaps/"+id+"/"+k, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		m.Parts = append(m.Parts, snapshot.Part{Key: k, Records: gzLines(b), Bytes: int64(len(b)), SHA256: sha(b)})
	}
	if tamper != nil {
		tamper(&m)
	}
	data, _ := json.Marshal(m)
	if err := st.Put(ctx, "snaps/"+id+"/manifest.json", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func line(unit string, t time.Time) string {
	return string(telemetry.AppendJSON(nil, rec(unit, t)))
}

func TestWriterRoundTrip(t *testing.T) {
	foreachStore(t, func(t *testing.T, st snapshot.Store) {
		m := writeSnapshot(t, st, "20261121T000000Z", 25, 10)
		if len(m.Parts) != 3 || m.Records != 25 || m.Parts[2].Records != 5 {
			t.Fatalf("manifest %+v: want 3 parts of 10, 10, 5", m)
		}
		recs, damage := readAll(t, snapshot.NewReader(st, "snaps", snapshot.ReaderOptions{}))
		if len(damage) != 0 || len(recs) != 25 || distinct(recs) != 25 {
			t.Fatalf("%d records (%d distinct), damage %v; want 25 clean", len(recs), distinct(recs), damage)
		}
		if recs[7].TimeMs != day0.Add(7*time.Minute).UnixMilli() || recs[7].SoC != 50 || recs[7].Mode != "idle" {
			t.Fatalf("record 7 changed in the round trip: %+v", recs[7])
		}
	})
}

func TestWriterRefusesOutOfRange(t *testing.T) {
	st, _ := snapshot.NewDirStore(t.TempDir())
	w, err := snapshot.NewWriter(st, "", "20261121T000000Z", day0, day1, snapshot.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(context.Background(), rec("U1", day1)); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("err = %v, want a record outside the range refused", err)
	}
	if _, err := snapshot.NewWriter(st, "", "yesterday", day0, day1, snapshot.WriterOptions{}); err == nil {
		t.Fatal("a bad snapshot id was accepted")
	}
}

// TestDamage covers each kind of damage the contract names: what is
// skipped, what is reported, and that the rest is still read.
func TestDamage(t *testing.T) {
	good := gz(line("U1", day0), line("U1", day0.Add(time.Minute)))
	truncated := good[:len(good)-12]
	for _, tc := range []struct {
		name     string
		parts    map[string][]byte
		tamper   func(*snapshot.Manifest)
		noManif  bool
		wantRecs int
		want     []string // kinds, in order
		wantLine int64
	}{
		{name: "wrong sha256", parts: map[string][]byte{"part-00000.jsonl.gz": good, "part-00001.jsonl.gz": gz(line("U2", day0))},
			tamper: func(m *snapshot.Manifest) { m.Parts[0].SHA256 = strings.Repeat("ab", 32) }, wantRecs: 1, want: []string{snapshot.KindCorruptPart}},
		{name: "wrong size", parts: map[string][]byte{"part-00000.jsonl.gz": good},
			tamper: func(m *snapshot.Manifest) { m.Parts[0].Bytes++ }, wantRecs: 0, want: []string{snapshot.KindCorruptPart}},
		{name: "truncated gzip with matching sha256", parts: map[string][]byte{"part-00000.jsonl.gz": truncated, "part-00001.jsonl.gz": good},
			wantRecs: 2, want: []string{snapshot.KindCorruptPart}},
		{name: "not gzip", parts: map[string][]byte{"part-00000.jsonl.gz": []byte("{\"unit\":\"U1\"}\n")},
			wantRecs: 0, want: []string{snapshot.KindCorruptPart}},
		{name: "missing part", parts: map[string][]byte{"part-00000.jsonl.gz": good},
			tamper: func(m *snapshot.Manifest) {
				m.Parts = append(m.Parts, snapshot.Part{Key: "part-00009.jsonl.gz", Records: 1, Bytes: 1, SHA256: strings.Repeat("0", 64)})
			}, wantRecs: 2, want: []string{snapshot.KindCorruptPart}},
		{name: "bad line", parts: map[string][]byte{"part-00000.jsonl.gz": gz(line("U1", day0), `{"unit": 7}`, line("U1", day0.Add(time.Minute)))},
			wantRecs: 2, want: []string{snapshot.KindBadLine}, wantLine: 2},
		{name: "out of range", parts: map[string][]byte{"part-00000.jsonl.gz": gz(line("U1", day0), line("U1", day1))},
			wantRecs: 1, want: []string{snapshot.KindOutOfRange}, wantLine: 2},
		{name: "record count differs", parts: map[string][]byte{"part-00000.jsonl.gz": good},
			tamper: func(m *snapshot.Manifest) { m.Parts[0].Records = 5 }, wantRecs: 2, want: []string{snapshot.KindRecordCount}},
		{name: "unknown format", parts: map[string][]byte{"part-00000.jsonl.gz": good},
			tamper: func(m *snapshot.Manifest) { m.Format = "parquet" }, wantRecs: 0, want: []string{snapshot.KindInvalidManifest}},
		{name: "no manifest", parts: map[string][]byte{"part-00000.jsonl.gz": good}, noManif: true,
			wantRecs: 0, want: []string{snapshot.KindIncomplete}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := snapshot.NewDirStore(t.TempDir())
			putRaw(t, st, "20261121T000000Z", tc.parts, tc.tamper)
			if tc.noManif {
				os.Remove(filepath.Join(st.String()[len("file://"):], "snaps/20261121T000000Z/manifest.json"))
			}
			recs, damage := readAll(t, snapshot.NewReader(st, "snaps", snapshot.ReaderOptions{}))
			if len(recs) != tc.wantRecs {
				t.Errorf("%d records, want %d", len(recs), tc.wantRecs)
			}
			var kinds []string
			for _, d := range damage {
				kinds = append(kinds, d.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("damage %v, want kinds %v", damage, tc.want)
			}
			d := damage[0]
			if d.Snapshot != "20261121T000000Z" || d.Reason == "" {
				t.Errorf("damage does not say where and why: %+v", d)
			}
			wantSkipped := tc.want[0] != snapshot.KindIncomplete && tc.want[0] != snapshot.KindRecordCount
			if d.Skipped != wantSkipped {
				t.Errorf("Skipped = %v, want %v: %+v", d.Skipped, wantSkipped, d)
			}
			if tc.wantLine != 0 && (d.Line != tc.wantLine || d.Part != "part-00000.jsonl.gz") {
				t.Errorf("damage names part %q line %d, want part-00000.jsonl.gz line %d", d.Part, d.Line, tc.wantLine)
			}
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	for name, body := range map[string]string{
		"not json":        `{`,
		"bad id":          `{"snapshot_id":"x","format":"jsonl+gzip","from":"2026-11-20T00:00:00Z","to":"2026-11-21T00:00:00Z"}`,
		"empty range":     `{"snapshot_id":"20261121T000000Z","format":"jsonl+gzip","from":"2026-11-21T00:00:00Z","to":"2026-11-21T00:00:00Z"}`,
		"escaping key":    `{"snapshot_id":"20261121T000000Z","format":"jsonl+gzip","from":"2026-11-20T00:00:00Z","to":"2026-11-21T00:00:00Z","parts":[{"key":"../x","sha256":"` + strings.Repeat("0", 64) + `"}]}`,
		"short sha":       `{"snapshot_id":"20261121T000000Z","format":"jsonl+gzip","from":"2026-11-20T00:00:00Z","to":"2026-11-21T00:00:00Z","parts":[{"key":"p","sha256":"00"}]}`,
		"duplicate parts": `{"snapshot_id":"20261121T000000Z","format":"jsonl+gzip","from":"2026-11-20T00:00:00Z","to":"2026-11-21T00:00:00Z","parts":[{"key":"p","sha256":"` + strings.Repeat("0", 64) + `"},{"key":"p","sha256":"` + strings.Repeat("0", 64) + `"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := snapshot.ParseManifest("snaps/x/manifest.json", []byte(body))
			if err == nil || !strings.Contains(err.Error(), "snaps/x/manifest.json") {
				t.Fatalf("err = %v, want an error naming the manifest", err)
			}
		})
	}
}
