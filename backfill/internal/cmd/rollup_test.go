package cmd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/backfill/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/testenv"
)

// rollup runs backfill rollup in-process with the env's InfluxDB.
func (e *env) rollup(ctx context.Context, args ...string) (int, string) {
	app := cmd.New()
	var out strings.Builder
	app.Writer, app.ErrWriter = &out, &out
	full := append([]string{"backfill", "--log-format", "text", "rollup", "--influx-url", e.proxy.URL(), "--influx-bucket", e.influx.Bucket}, args...)
	return cliapp.ExitStatus(app, app.RunContext(ctx, full)), out.String()
}

func TestRollupRange(t *testing.T) {
	e := newEnv(t)
	from, to := t0, t0.Add(time.Hour)
	e.writeInflux(readings(units[:2], from, to, time.Minute))
	code, out := e.rollup(testenv.Context(t, time.Minute), "--from", from.Format(time.RFC3339), "--to", to.Add(-time.Minute).Format(time.RFC3339), "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var doc struct {
		From, To time.Time
		Points   int64
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	// 12 windows × (2 unit points + 1 site point; the site power point is
	// the same point as the site's): widened to whole windows.
	if !doc.From.Equal(from) || !doc.To.Equal(to) || doc.Points != 12*2+12+12 {
		t.Fatalf("got %+v", doc)
	}
}

// The follow mode serves /-/ready (InfluxDB answering) and its metrics,
// and stops with its context.
func TestRollupFollowServes(t *testing.T) {
	e := newEnv(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(testenv.Context(t, time.Minute))
	done := make(chan int, 1)
	go func() {
		code, _ := e.rollup(ctx, "--follow", "--http-addr", addr)
		done <- code
	}()
	testenv.Eventually(t, 20*time.Second, "follow mode ready with its metrics", func() error {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		resp, err = http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `rollup_passes_total{outcome="ok"} 1`) {
			return fmt.Errorf("no successful pass in /metrics yet")
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after cancel", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("follow mode did not stop with its context")
	}
}
