package cmd

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

// webhook records what a private Alertmanager notifies.
type webhook struct {
	mu    sync.Mutex
	notes []amNote
	srv   *httptest.Server
}

type amNote struct {
	Status string `json:"status"`
	Alerts []struct {
		Status   string            `json:"status"`
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
		EndsAt   time.Time         `json:"endsAt"`
	} `json:"alerts"`
}

func newWebhook(t testing.TB) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n amNote
		if err := json.NewDecoder(r.Body).Decode(&n); err == nil {
			w.mu.Lock()
			w.notes = append(w.notes, n)
			w.mu.Unlock()
		}
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// count returns how many notifications carried unit's alert with status.
func (w *webhook) count(unit, status string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, note := range w.notes {
		for _, a := range note.Alerts {
			if a.Labels["unit"] == unit && a.Status == status {
				n++
			}
		}
	}
	return n
}

// resolvedEndsAt returns the endsAt of unit's resolved notification.
func (w *webhook) resolvedEndsAt(unit string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, note := range w.notes {
		for _, a := range note.Alerts {
			if a.Labels["unit"] == unit && a.Status == "resolved" {
				return a.EndsAt
			}
		}
	}
	return time.Time{}
}

// privateAM is an Alertmanager of this test's own, notifying a webhook
// within a second, on a port it can stop and start.
type privateAM struct {
	t    testing.TB
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
}

func alertmanagerBin(t testing.TB) string {
	if p, err := exec.LookPath("alertmanager"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "alertmanager")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("alertmanager binary not found on PATH or in GOPATH/bin; build it with: scripts/services.sh start alertmanager")
	}
	return p
}

func startPrivateAM(t testing.TB, hook string) *privateAM {
	am := &privateAM{t: t, bin: alertmanagerBin(t), dir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, unit]
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: true
`, hook)
	if err := os.WriteFile(filepath.Join(am.dir, "am.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	am.start()
	t.Cleanup(am.stop)
	return am
}

func (am *privateAM) url() string { return "http://" + am.addr }

func (am *privateAM) start() {
	am.cmd = exec.Command(am.bin, "--config.file="+filepath.Join(am.dir, "am.yml"), "--storage.path="+filepath.Join(am.dir, "data"),
		"--web.listen-address="+am.addr, "--cluster.listen-address=", "--log.level=warn")
	am.cmd.Stdout, am.cmd.Stderr = os.Stderr, os.Stderr
	if err := am.cmd.Start(); err != nil {
		am.t.Fatalf("start alertmanager: %v", err)
	}
	testenv.Eventually(am.t, 30*time.Second, "private alertmanager ready", func() error {
		resp, err := http.Get(am.url() + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	})
}

func (am *privateAM) stop() {
	if am.cmd == nil || am.cmd.Process == nil {
		return
	}
	_ = am.cmd.Process.Kill()
	_ = am.cmd.Wait()
	am.cmd = nil
}

// activeAlert returns the active alert of unit in Alertmanager, if any.
func (am *privateAM) activeAlert(unit string) (map[string]any, error) {
	resp, err := http.Get(am.url() + "/api/v2/alerts?filter=" + fmt.Sprintf("unit=%q", unit))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out[0], nil
}
