package cmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Units whose ids hold a comma (or a $, quotes, a backslash) can be chosen
// with --unit and --units-file; --units keeps splitting on commas.
func TestGapsSelectsUnitsHoldingCommas(t *testing.T) {
	e := newEnv(t)
	from, to := t0, t0.Add(2*time.Hour)
	odd := []string{"FP2,north", `FP2 "$x" \ y`, "FP2-plain"}
	e.writeSnapshot("20261120T070000Z", from, to, readings(odd, from, to, 10*time.Minute), 0)
	rng := []string{"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--output", "json"}
	gapUnits := func(args ...string) map[string]bool {
		t.Helper()
		code, out := e.backfill("gaps", append(rng, args...)...)
		if code != 0 {
			t.Fatalf("gaps %v: exit %d:\n%s", args, code, out)
		}
		var doc struct {
			Gaps []struct {
				Unit string `json:"unit"`
			} `json:"gaps"`
		}
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):strings.LastIndex(out, "}")+1]), &doc); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		got := map[string]bool{}
		for _, g := range doc.Gaps {
			got[g.Unit] = true
		}
		return got
	}
	if got := gapUnits("--unit", "FP2,north"); len(got) != 1 || !got["FP2,north"] {
		t.Fatalf("--unit FP2,north: gaps of %v", got)
	}
	file := filepath.Join(t.TempDir(), "units")
	if err := os.WriteFile(file, []byte("# the odd ones\nFP2,north\n"+odd[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := gapUnits("--units-file", file); len(got) != 2 || !got[odd[0]] || !got[odd[1]] {
		t.Fatalf("--units-file: gaps of %v", got)
	}
	if got := gapUnits("--units", "FP2-plain"); len(got) != 1 || !got["FP2-plain"] {
		t.Fatalf("--units FP2-plain: gaps of %v", got)
	}
}
