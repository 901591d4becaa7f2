package cmd_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/backfill/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/testenv"
)

// A running 'backfill run' serves /control/ on loopback; its POSTs need the
// control token and refuse cross-origin requests; pprof is not served
// without --pprof.
func TestRunControlNeedsTokenAndSameOrigin(t *testing.T) {
	e := newEnv(t)
	from, to := t0, t0.Add(2*time.Hour)
	e.writeSnapshot("20261120T070000Z", from, to, readings(units, from, to, time.Minute), 0)
	port := testenv.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	t.Setenv("CONTROL_TOKEN", "open-sesame")

	app := cmd.New()
	var out bytes.Buffer
	var mu sync.Mutex
	app.Writer, app.ErrWriter = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
	ctx, cancel := context.WithCancel(testenv.Context(t, time.Minute))
	done := make(chan int)
	args := append([]string{"backfill", "--log-format", "text", "run"}, e.args()...)
	args = append(args, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"--execute", "--rate", "5", "--http-addr", addr)
	go func() { done <- cliapp.ExitStatus(app, app.RunContext(ctx, args)) }()
	defer func() { cancel(); <-done }()

	base := "http://" + addr
	testenv.Eventually(t, 20*time.Second, "control status answers", func() error {
		resp, err := http.Get(base + "/control/status")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	post := func(path string, h map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, base+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := "Bearer open-sesame"
	for _, c := range []struct {
		name string
		h    map[string]string
		want int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"wrong token", map[string]string{"Authorization": "Bearer guess"}, http.StatusUnauthorized},
		{"cross-origin", map[string]string{"Authorization": bearer, "Origin": "http://evil.example"}, http.StatusForbidden},
		{"cross-site", map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"token", map[string]string{"Authorization": bearer}, http.StatusOK},
	} {
		if got := post("/control/pause", c.h); got != c.want {
			t.Errorf("POST /control/pause %s: %d, want %d", c.name, got, c.want)
		}
	}
	resp, err := http.Get(base + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --pprof: %s, want 404", resp.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(out.String(), "paused by operator") {
		t.Errorf("the authorised pause is not logged:\n%s", out.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
