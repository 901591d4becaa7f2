package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/query/internal/api"
	"github.com/flexipack/cutover/query/internal/route"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/testenv"
)

func TestServeConfigValidate(t *testing.T) {
	ok := serveConfig{HTTPAddr: "127.0.0.1:0", PGMaxConns: 4, PhasePoll: time.Second, Shadow: route.ShadowConfig{Rate: 0.1, Concurrency: 2}, API: api.DefaultConfig()}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*serveConfig){
		"--tokens-file":        func(c *serveConfig) { c.HTTPAddr = ":9400" },
		"not a loopback":       func(c *serveConfig) { c.HTTPAddr = "0.0.0.0:9400" },
		"--shadow-rate":        func(c *serveConfig) { c.Shadow.Rate = 1.5 },
		"--shadow-concurrency": func(c *serveConfig) { c.Shadow.Concurrency = 0 },
		"--phase-poll":         func(c *serveConfig) { c.PhasePoll = 0 },
		"--max-points":         func(c *serveConfig) { c.API.MaxPoints = 0 },
	}
	for want, mutate := range cases {
		c := ok
		mutate(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v", want, err)
		}
	}
	withTokens := ok
	withTokens.HTTPAddr, withTokens.TokensFile = ":9400", "/etc/tokens"
	if err := withTokens.validate(); err != nil {
		t.Errorf("any address with a tokens file: %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, ":1": false, "10.0.0.1:1": false, "nonsense": false} {
		if isLoopback(addr) != want {
			t.Errorf("isLoopback(%q) != %v", addr, want)
		}
	}
	if got := withMaxConns("postgres://u@h/db?sslmode=disable", 9); !strings.Contains(got, "pool_max_conns=9") {
		t.Errorf("withMaxConns: %s", got)
	}
	if got := withMaxConns("postgres://u@h/db?pool_max_conns=3", 9); !strings.Contains(got, "pool_max_conns=3") {
		t.Errorf("withMaxConns overrode the DSN: %s", got)
	}
}

// TestServe runs serve on real PostgreSQL: the API answers, with the phase
// from the state store, next to /metrics and /-/ready.
func TestServe(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithCancel(testenv.Context(t, time.Minute))
	defer cancel()
	leg, err := legacy.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := leg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	leg.Close()
	port := testenv.FreePort(t)
	db := testenv.Influx(t)
	cfg := serveConfig{HTTPAddr: "127.0.0.1:" + strconv.Itoa(port), PGDSN: dsn, StateDSN: dsn, PGMaxConns: 4, PhasePoll: 100 * time.Millisecond,
		Influx: influx.Config{URL: db.URL, Bucket: db.Bucket, Token: db.Token},
		Shadow: route.ShadowConfig{Rate: 0.1, Concurrency: 2}, API: api.DefaultConfig()}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	base := "http://" + cfg.HTTPAddr
	testenv.Eventually(t, 20*time.Second, "query serve is ready", func() error { return get(base + "/-/ready") })
	resp, err := http.Get(base + "/v1/units")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"units":[]}` || resp.Header.Get("X-Cutover-Phase") != "legacy" || resp.Header.Get("X-Served-By") != "postgres" {
		t.Fatalf("units: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `query_requests_total{code="200",endpoint="units",store="postgres"} 1`) {
		t.Fatalf("metrics:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func get(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return nil
}
