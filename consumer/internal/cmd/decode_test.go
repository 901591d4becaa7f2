package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flexipack/cutover/shared/cliapp"
)

const decodeSamples = "../../../testdata/contract"

// runDecodeCLI runs the consumer app in-process and returns its exit status and output.
func runDecodeCLI(t *testing.T, stdin string, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	app := New()
	var out, errb bytes.Buffer
	app.Writer, app.ErrWriter, app.Reader = &out, &errb, strings.NewReader(stdin)
	err := app.Run(append([]string{"consumer", "--log-format", "text"}, args...))
	status = cliapp.ExitStatus(app, err)
	return status, out.String(), errb.String()
}

const decodeNow = "--now=2026-11-21T12:00:00Z"

func TestDecodeValidSample(t *testing.T) {
	status, stdout, stderr := runDecodeCLI(t, "", "decode", decodeNow, filepath.Join(decodeSamples, "gen2-default-ns-batch.xml"))
	if status != cliapp.ExitOK || stderr != "" {
		t.Fatalf("status %d, stderr %q", status, stderr)
	}
	want, err := os.ReadFile(filepath.Join(decodeSamples, "gen2-default-ns-batch.expected.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	gotLines, wantLines := strings.Split(strings.TrimSpace(stdout), "\n"), strings.Split(strings.TrimSpace(string(want)), "\n")
	if len(gotLines) != len(wantLines) {
		t.Fatalf("%d lines, want %d:\n%s", len(gotLines), len(wantLines), stdout)
	}
	for i := range gotLines {
		var g, w any
		if err := json.Unmarshal([]byte(gotLines[i]), &g); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		if err := json.Unmarshal([]byte(wantLines[i]), &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("line %d:\n got %s\nwant %s", i, gotLines[i], wantLines[i])
		}
	}
}

func TestDecodePartialRejectFromStdin(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(decodeSamples, "gen2-partial-reject.xml"))
	if err != nil {
		t.Fatal(err)
	}
	status, stdout, stderr := runDecodeCLI(t, string(body), "decode", decodeNow, "-")
	if status != cliapp.ExitOK {
		t.Fatalf("status %d", status)
	}
	if n := strings.Count(stdout, "\n"); n != 2 {
		t.Errorf("%d records, want 2:\n%s", n, stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 5 || lines[2] != "reject: sample 3 (seq 10): SoC: 140 outside 0..100" {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestDecodeNoRecords(t *testing.T) {
	for _, tc := range []struct{ file, reason string }{
		{"bad-not-well-formed.xml", "reject: message (not-well-formed): not well-formed: line 5, column 1: element <Sample> closed by </Telemetry>"},
		{"bad-entity-expansion.xml", "reject: message (dtd):"},
		{"bad-old-timestamp.xml", "reject: sample 0 (seq 1): ts: 1970-01-01T00:00:12.000Z is before 2015-01-01T00:00:00Z"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			status, stdout, stderr := runDecodeCLI(t, "", "decode", decodeNow, filepath.Join(decodeSamples, tc.file))
			if status != cliapp.ExitNoRecords || stdout != "" {
				t.Fatalf("status %d, stdout %q", status, stdout)
			}
			if !strings.HasPrefix(stderr, tc.reason) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line starting %q", stderr, tc.reason)
			}
		})
	}
}

func TestDecodeLineProtocol(t *testing.T) {
	status, stdout, _ := runDecodeCLI(t, "", "decode", decodeNow, "--format", "lp", filepath.Join(decodeSamples, "gen2-basic.xml"))
	want := "bsu,model=FlexiPack-250,site=North\\ Yard\\,\\ Bay\\ 3,unit=FP2-004211 schema=\"2.1\",soc_pct=55.2,soh_pct=97.1,voltage_v=812.1,current_a=-12.3,power_kw=-9.99,temp_ambient_c=21.2222,temp_cell_max_c=31.2,temp_cell_min_c=29.8,mode=\"discharging\",firmware=\"2.4.1\",seq=18234i,alarm_count=1i 1795251600250\n" +
		"bsu_alarm,code=OVT-1,severity=warning,site=North\\ Yard\\,\\ Bay\\ 3,unit=FP2-004211 text=\"Cell over-temperature > 30 °C\" 1795251600250\n"
	if status != cliapp.ExitOK || stdout != want {
		t.Fatalf("status %d\n got %s\nwant %s", status, stdout, want)
	}
}

func TestDecodeFutureJudgedAgainstNow(t *testing.T) {
	// gen2-basic's reading is at 09:00:00.250Z: more than 10 minutes after 08:50.
	status, _, stderr := runDecodeCLI(t, "", "decode", "--now=2026-11-21T08:50:00Z", filepath.Join(decodeSamples, "gen2-basic.xml"))
	if status != cliapp.ExitNoRecords || !strings.Contains(stderr, "more than 10 minutes after now") {
		t.Fatalf("status %d, stderr %q", status, stderr)
	}
}

func TestDecodeUsageAndIOErrors(t *testing.T) {
	for _, args := range [][]string{
		{"decode", "a.xml", "b.xml"},
		{"decode", filepath.Join(t.TempDir(), "missing.xml")},
		{"decode", "--format", "yaml", filepath.Join(decodeSamples, "gen1-basic.xml")},
		{"decode", "--now", "yesterday", filepath.Join(decodeSamples, "gen1-basic.xml")},
	} {
		status, stdout, stderr := runDecodeCLI(t, "", args...)
		if status != cliapp.ExitFailure || stdout != "" || stderr == "" {
			t.Errorf("%v: status %d, stdout %q, stderr %q", args, status, stdout, stderr)
		}
	}
}

func TestDecodeHelp(t *testing.T) {
	status, stdout, _ := runDecodeCLI(t, "", "decode", "--help")
	if status != cliapp.ExitOK {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{"[FILE|-]", "Exit status: 0", "--format", "--now", "DECODE_FORMAT"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, stdout)
		}
	}
}
