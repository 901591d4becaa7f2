package cmd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/redact/secrettest"
)

// A successful run whose InfluxDB URL carries credentials prints its
// summary (with the resample command) and its logs without the password.
func TestRunSummaryHidesInfluxPassword(t *testing.T) {
	e := newEnv(t)
	from, to := t0, t0.Add(2*time.Hour)
	e.writeSnapshot("20261120T070000Z", from, to, readings(units[:1], from, to, 10*time.Minute), 0)
	withCreds := strings.Replace(e.proxy.URL(), "http://", "http://admin:"+secrettest.Secret+"@", 1)
	code, out := e.backfill("run", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"--execute", "--influx-url", withCreds)
	if code != 0 {
		t.Fatalf("run exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "resample.sh") {
		t.Fatalf("no resample command in the summary:\n%s", out)
	}
	secrettest.Check(t, "backfill run", out)
}
