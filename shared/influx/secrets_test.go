package influx

import (
	"fmt"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/redact/secrettest"
	"github.com/flexipack/cutover/shared/testenv"
)

// Write, ping and read errors name the InfluxDB URL without its password;
// a URL that does not parse is refused without being quoted.
func TestErrorsHideTheURLPassword(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	cfg := Config{URL: fmt.Sprintf("http://admin:%s@127.0.0.1:%d", secrettest.Secret, testenv.FreePort(t)), Bucket: "x/autogen", MaxRetries: -1}
	w := newWriter(t, cfg)
	err := w.Write(ctx, series([]string{"FP2-000001"}, t0, time.Second, 3))
	secrettest.Check(t, "write", fmt.Sprint(err))
	secrettest.Check(t, "ping", fmt.Sprint(w.Ping(ctx)))
	r := newReader(t, cfg)
	_, err = r.Counts(ctx, t0, t0.Add(time.Hour), time.Hour, nil)
	secrettest.Check(t, "counts", fmt.Sprint(err))

	cfg.URL = "http://admin:" + secrettest.Secret + "#x@127.0.0.1:8086"
	if _, err := NewWriter(cfg, nil); err == nil {
		t.Fatal("NewWriter accepted an unparseable URL")
	} else {
		secrettest.Check(t, "NewWriter", err.Error())
	}
	if _, err := NewReader(cfg, nil); err == nil {
		t.Fatal("NewReader accepted an unparseable URL")
	} else {
		secrettest.Check(t, "NewReader", err.Error())
	}
}
