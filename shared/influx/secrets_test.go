package influx

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

// Write, ping and read errors name the InfluxDB URL without its password;
// a URL that does not parse is refused without being quoted.
func TestErrorsHideTheURLPassword(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	cfg := Config{URL: fmt.Sprintf("http://admin:%s@127.0.0.1:%d", plantedSecret, testenv.FreePort(t)), Bucket: "x/autogen", MaxRetries: -1}
	w := newWriter(t, cfg)
	err := w.Write(ctx, series([]string{"FP2-000001"}, t0, time.Second, 3))
	checkNoSecret(t, "write", fmt.Sprint(err))
	checkNoSecret(t, "ping", fmt.Sprint(w.Ping(ctx)))
	r := newReader(t, cfg)
	_, err = r.Counts(ctx, t0, t0.Add(time.Hour), time.Hour, nil)
	checkNoSecret(t, "counts", fmt.Sprint(err))

	cfg.URL = "http://admin:" + plantedSecret + "#x@127.0.0.1:8086"
	if _, err := NewWriter(cfg, nil); err == nil {
		t.Fatal("NewWriter accepted an unparseable URL")
	} else {
		checkNoSecret(t, "NewWriter", err.Error())
	}
	if _, err := NewReader(cfg, nil); err == nil {
		t.Fatal("NewReader accepted an unparseable URL")
	} else {
		checkNoSecret(t, "NewReader", err.Error())
	}
}

// plantedSecret is secrettest.Secret; that package imports shared/cliapp,
// which imports this one, so the test keeps its own copy.
const plantedSecret = "Pl4nted-s3cret"

func checkNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, piece := range []string{plantedSecret, plantedSecret[:8], plantedSecret[6:]} {
		if strings.Contains(text, piece) {
			t.Errorf("%s: the planted secret (%q) appears in the output:\n%s", where, piece, text)
			return
		}
	}
}
