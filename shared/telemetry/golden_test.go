package telemetry

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the expected files of testdata/cases/* from the codec's output")

// testNow is the clock of every golden test: later than every sample.
var testNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func testDecoder() *Decoder {
	d := NewDecoder()
	d.Now = func() time.Time { return testNow }
	return d
}

const contractDir = "../../testdata/contract"

// TestContractSamples checks every sample of the contract (copied to
// testdata/contract): valid ones against their expected records, compared
// as JSON values; bad ones yield no record, for the reason their comment gives.
func TestContractSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(contractDir, "*.xml"))
	if err != nil || len(files) < 9 {
		t.Fatalf("contract samples: %d files, %v", len(files), err)
	}
	// Why each bad sample must be rejected, from its comment.
	bad := map[string]struct {
		kind  MessageKind // whole-message rejection, or
		field string      // the field of the only sample's rejection
	}{
		"bad-entity-expansion.xml":  {kind: KindDTD},
		"bad-missing-unit.xml":      {kind: KindNoUnit},
		"bad-not-well-formed.xml":   {kind: KindNotWellFormed},
		"bad-old-timestamp.xml":     {field: "ts"},
		"bad-unknown-namespace.xml": {kind: KindUnknownRoot},
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".xml"), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := testDecoder().Decode(body)
			if want, ok := bad[name]; ok {
				if len(res.Records) != 0 {
					t.Fatalf("bad sample gave %d records", len(res.Records))
				}
				if want.kind != "" {
					var me *MessageError
					if !errors.As(err, &me) || me.Kind != want.kind {
						t.Fatalf("error = %v, want a %s message error", err, want.kind)
					}
					return
				}
				if err != nil || len(res.Rejects) != 1 || res.Rejects[0].Field != want.field {
					t.Fatalf("err %v, rejects %v: want one rejection of %s", err, res.Rejects, want.field)
				}
				return
			}
			if !strings.HasPrefix(name, "gen") {
				t.Fatalf("sample %s is neither bad-* nor a valid gen*", name)
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			wantLines := readLines(t, strings.TrimSuffix(f, ".xml")+".expected.jsonl")
			if len(res.Records) != len(wantLines) {
				t.Fatalf("%d records, want %d", len(res.Records), len(wantLines))
			}
			for i := range res.Records {
				got := AppendJSON(nil, &res.Records[i])
				if !jsonEqual(t, got, []byte(wantLines[i])) {
					t.Errorf("record %d:\n got %s\nwant %s", i, got, wantLines[i])
				}
			}
			checkRoundTrips(t, res.Records)
		})
	}
	t.Run("partial-reject-reasons", func(t *testing.T) {
		body, err := os.ReadFile(filepath.Join(contractDir, "gen2-partial-reject.xml"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := testDecoder().Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			idx        int
			seq, field string
		}{
			{1, "8", "SoC"}, {2, "9", "Voltage@unit"}, {3, "10", "SoC"}, {4, "11", "time"}, {5, "12", "Mode"},
		}
		if len(res.Rejects) != len(want) {
			t.Fatalf("rejects %v", res.Rejects)
		}
		for i, w := range want {
			r := res.Rejects[i]
			if r.Index != w.idx || r.Seq != w.seq || r.Field != w.field {
				t.Errorf("reject %d = %+v, want %+v", i, r, w)
			}
		}
		if got := res.Rejects[2].Error(); got != "sample 3 (seq 10): SoC: 140 outside 0..100" {
			t.Errorf("Error() = %q", got)
		}
	})
}

// TestSnapshotRecordsDecode reads the contract's snapshot parts through
// DecodeJSON: every line is a valid record.
func TestSnapshotRecordsDecode(t *testing.T) {
	parts, _ := filepath.Glob(filepath.Join(contractDir, "snapshot", "*", "part-*.jsonl.gz"))
	if len(parts) == 0 {
		t.Fatal("no snapshot parts")
	}
	n := 0
	for _, p := range parts {
		for i, line := range gunzipLines(t, p) {
			r, err := testDecoder().DecodeJSON([]byte(line))
			if err != nil {
				t.Fatalf("%s line %d: %v", p, i+1, err)
			}
			if !jsonEqual(t, AppendJSON(nil, &r), []byte(line)) {
				t.Errorf("%s line %d: re-encoded as %s", p, i+1, AppendJSON(nil, &r))
			}
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d snapshot lines, want 5", n)
	}
}

// TestGoldenCases runs every testdata/cases/<case>/input.xml and compares the
// records (expected.jsonl), their line protocol (expected.lp) and the
// rejections (expected.err) with the files; -update rewrites them.
func TestGoldenCases(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "cases", "*"))
	if err != nil || len(dirs) < 40 {
		t.Fatalf("%d golden cases, %v", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(dir, "input.xml"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := testDecoder().Decode(body)
			jsonl, lp, errs := render(res, err)
			for _, f := range []struct{ name, got string }{{"expected.jsonl", jsonl}, {"expected.lp", lp}, {"expected.err", errs}} {
				path := filepath.Join(dir, f.name)
				if *update {
					if err := os.WriteFile(path, []byte(f.got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if string(want) != f.got {
					t.Errorf("%s differs:\n--- got\n%s--- want\n%s", f.name, f.got, want)
				}
			}
			if err == nil {
				checkRoundTrips(t, res.Records)
			}
		})
	}
}

// render formats a decode result the way the golden files hold it.
func render(res Result, err error) (jsonl, lp, errs string) {
	var j, l, e []byte
	for i := range res.Records {
		j = AppendJSON(j, &res.Records[i])
		j = append(j, '\n')
		l = AppendLineProtocol(l, &res.Records[i])
	}
	if err != nil {
		var me *MessageError
		if errors.As(err, &me) {
			e = append(e, "message ("+string(me.Kind)+"): "+me.Reason+"\n"...)
		} else {
			e = append(e, "error: "+err.Error()+"\n"...)
		}
	}
	for _, r := range res.Rejects {
		e = append(e, r.Error()+"\n"...)
	}
	return string(j), string(l), string(e)
}

// checkRoundTrips asserts that each record passes Validate, re-encodes to
// JSON that DecodeJSON reads back to the same record, and that the line
// protocol of both is identical.
func checkRoundTrips(t *testing.T, recs []Record) {
	t.Helper()
	d := testDecoder()
	for i := range recs {
		r := &recs[i]
		if err := r.Validate(); err != nil {
			t.Errorf("record %d fails Validate: %v", i, err)
		}
		js := AppendJSON(nil, r)
		if !json.Valid(js) {
			t.Errorf("record %d: invalid JSON %s", i, js)
		}
		back, err := d.DecodeJSON(js)
		if err != nil {
			t.Errorf("record %d: DecodeJSON(%s): %v", i, js, err)
			continue
		}
		if !recordsEqual(r, &back) {
			t.Errorf("record %d: JSON round trip\n got %+v\nwant %+v", i, back, *r)
		}
		if a, b := AppendLineProtocol(nil, r), AppendLineProtocol(nil, &back); !bytes.Equal(a, b) {
			t.Errorf("record %d: line protocol differs after JSON:\n%s%s", i, a, b)
		}
	}
}

// recordsEqual compares records field by field, treating nil and empty
// slices alike.
func recordsEqual(a, b *Record) bool {
	x, y := *a, *b
	if len(x.Temps) == 0 && len(y.Temps) == 0 {
		x.Temps, y.Temps = nil, nil
	}
	if len(x.Alarms) == 0 && len(y.Alarms) == 0 {
		x.Alarms, y.Alarms = nil, nil
	}
	return reflect.DeepEqual(x, y)
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

func gunzipLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
