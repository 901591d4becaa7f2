package influx

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/influx/influxtest"
	"github.com/flexipack/cutover/shared/testenv"
)

// TestAPIGenerations checks what differs between the generations, through
// the 2.x and 3.x facades in front of the real 1.8.
func TestAPIGenerations(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	recs := series([]string{"FP2-000001"}, t0, time.Second, 3)

	t.Run("auto finds each version from /ping", func(t *testing.T) {
		for _, want := range []API{APIV1, APIV2, APIV3} {
			cfg, _ := freshDBFor(t, want)
			got, err := newQLClient(t, cfg).Ping(ctx)
			if err != nil || got != want {
				t.Fatalf("%s: got %s, %v", want, got, err)
			}
		}
	})
	t.Run("v3 writes wait for the WAL, in milliseconds", func(t *testing.T) {
		db := testenv.Influx(t)
		f := influxtest.New(t, influxtest.V3, db.URL)
		f.AddBucket("telemetry", db.DB)
		cfg := Config{URL: f.URL, Token: f.Token, Bucket: "telemetry", API: APIV3}
		if err := newWriter(t, cfg).Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
		ws := f.Writes()
		if len(ws) != 1 || ws[0].Get("no_sync") != "false" || ws[0].Get("precision") != "millisecond" || ws[0].Get("db") != "telemetry" {
			t.Fatalf("write parameters %v", ws)
		}
		n, err := newReader(t, cfg).Total(ctx, t0, t0.Add(time.Hour))
		if err != nil || n != 3 {
			t.Fatalf("read back %d, %v", n, err)
		}
	})
	t.Run("v3 has no Flux endpoint", func(t *testing.T) {
		f := influxtest.New(t, influxtest.V3, testenv.Influx(t).URL)
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/api/v2/query", strings.NewReader(`from(bucket: "x")`))
		req.Header.Set("Authorization", "Token "+f.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("/api/v2/query on 3.x: %s", resp.Status)
		}
	})
	t.Run("v2 without a DBRP mapping says how to create one", func(t *testing.T) {
		db := testenv.Influx(t)
		f := influxtest.New(t, influxtest.V2, db.URL)
		f.AddBucket("telemetry", db.Bucket)
		cfg := Config{URL: f.URL, Token: f.Token, Org: f.Org, Bucket: "telemetry"}
		if err := newWriter(t, cfg).Write(ctx, recs); err != nil {
			t.Fatalf("writes need no mapping: %v", err)
		}
		_, err := newReader(t, cfg).Total(ctx, t0, t0.Add(time.Hour))
		if !errors.Is(err, ErrNoDBRP) || !strings.Contains(err.Error(), "influx v1 dbrp create --db telemetry --rp autogen --bucket-id") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a wrong token", func(t *testing.T) {
		for _, api := range []API{APIV2, APIV3} {
			cfg, _ := freshDBFor(t, api)
			cfg.Token, cfg.MaxRetries = "wrong", -1
			if _, err := newReader(t, cfg).Total(ctx, t0, t0.Add(time.Hour)); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("%s read: got %v, want ErrUnauthorized", api, err)
			}
			cfg.API = api
			if err := newWriter(t, cfg).Write(ctx, recs); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "unauthorized") {
				t.Fatalf("%s write: got %v, want ErrUnavailable naming the refusal", api, err)
			}
		}
	})
}
