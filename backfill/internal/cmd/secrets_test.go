package cmd_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/redact/secrettest"
)

// A successful run whose InfluxDB URL carries credentials prints its
// summary (with its rollup line) and its logs without the password.
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
	if !strings.Contains(out, "rollup points rebuilt") {
		t.Fatalf("no rollup line in the summary:\n%s", out)
	}
	secrettest.Check(t, "backfill run", out)
}

// --aws-access-key-id and --aws-secret-access-key are the credentials when
// given (no AWS variables in the environment): right keys read the
// snapshots, wrong keys are refused by the store.
func TestAWSKeyFlagsAreHonoured(t *testing.T) {
	e := newEnv(t)
	from, to := t0, t0.Add(time.Hour)
	e.writeSnapshot("20261120T070000Z", from, to, readings(units[:1], from, to, 10*time.Minute), 0)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	rng := []string{"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}
	code, out := e.backfill("gaps", append(rng, "--aws-access-key-id", e.s3.AccessKey, "--aws-secret-access-key", e.s3.SecretKey)...)
	if code != 0 || !strings.Contains(out, "1 gap") && !strings.Contains(out, "FP2-000001") {
		t.Fatalf("gaps with the key flags: exit %d:\n%s", code, out)
	}
	code, out = e.backfill("gaps", append(rng, "--aws-access-key-id", e.s3.AccessKey, "--aws-secret-access-key", "wrong-"+e.s3.SecretKey)...)
	if code == 0 {
		t.Fatalf("gaps with a wrong secret key succeeded:\n%s", out)
	}
	secrettest.Check(t, "gaps with a wrong key", strings.ReplaceAll(out, e.s3.SecretKey, secrettest.Secret))
}
