//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/testenv"
)

// minShadowReads is what the story's gate into influx-primary asks of the
// query service's shadow reads.
const minShadowReads = 30

// apiReader is a client reading the query API throughout the story: every
// answer must be 200, 404 (a unit not written yet) or 503 (the serving
// store down); anything else is a failure.
type apiReader struct {
	base string
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	statuses map[string]int // "503 postgres", "200 influxdb", …
	bad      []string
}

// startQuery starts query serve (InfluxDB's rollups are not built in this
// story, so every aggregate is computed from raw readings) and the reader.
func (s *story) startQuery(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s.query = s.r.start("query", "query", "serve", "--http-addr", addr, "--phase-poll", "1s", "--shadow-rate", "1",
		"--shadow-concurrency", "4", "--rollup-lag", "87600h", "--fleet-cache-ttl", "0", "--fleet-lag", "0", "--request-timeout", "10s")
	base := "http://" + addr
	testenv.Eventually(t, 60*time.Second, "query serve is ready", func() error {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
	s.api = &apiReader{base: base, stop: make(chan struct{}), done: make(chan struct{}), statuses: map[string]int{}}
	go s.api.run(s.origin)
}

func (a *apiReader) run(origin time.Time) {
	defer close(a.done)
	client := &http.Client{Timeout: 20 * time.Second}
	paths := []string{"/v1/units", "/v1/units/%s/latest", "/v1/units/%s/readings?from=1h&limit=200",
		"/v1/units/%s/series?from=2h&step=1m", "/v1/fleet?from=" + origin.Format(time.RFC3339) + "&step=5m", "/v1/alarms?from=1h&limit=50"}
	unit := ""
	for i := 0; ; i++ {
		select {
		case <-a.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		p := paths[i%len(paths)]
		if strings.Contains(p, "%s") {
			if unit == "" {
				continue
			}
			p = fmt.Sprintf(p, unit)
		}
		resp, err := client.Get(a.base + p)
		if err != nil {
			a.record("transport", "", p, err.Error())
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.record(fmt.Sprint(resp.StatusCode), resp.Header.Get("X-Served-By"), p, string(body))
		if unit == "" && resp.StatusCode == http.StatusOK && p == "/v1/units" {
			if i := strings.Index(string(body), `"unit":"`); i >= 0 {
				rest := string(body)[i+8:]
				unit = rest[:strings.IndexByte(rest, '"')]
			}
		}
	}
}

func (a *apiReader) record(status, store, path, detail string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.statuses[status+" "+store]++
	switch status {
	case "200", "404", "503":
	default:
		if len(a.bad) < 20 {
			a.bad = append(a.bad, fmt.Sprintf("%s %s: %.300s", status, path, detail))
		}
	}
}

// checkQueryReader stops the reader and requires that it saw no failure
// but 503 while a store was down, and answers from both stores.
func (s *story) checkQueryReader(t *testing.T) {
	close(s.api.stop)
	<-s.api.done
	s.api.mu.Lock()
	defer s.api.mu.Unlock()
	var seen []string
	for k, n := range s.api.statuses {
		seen = append(seen, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(seen)
	t.Logf("query API reader: %s", strings.Join(seen, ", "))
	if len(s.api.bad) > 0 {
		t.Fatalf("the API reader got answers other than 200, 404 and 503:\n%s", strings.Join(s.api.bad, "\n"))
	}
	if s.api.statuses["200 postgres"] == 0 || s.api.statuses["200 influxdb"] == 0 {
		t.Fatalf("the reader was not served by both stores: %v", seen)
	}
}

// answers requests a fixed set of reads over [s.origin, to) that no later
// write changes.
func (s *story) answers(t *testing.T, to time.Time, unit string) map[string]string {
	rng := "from=" + url.QueryEscape(s.origin.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
	out := map[string]string{}
	for _, p := range []string{
		"/v1/units",
		"/v1/units/" + unit + "/latest",
		"/v1/units/" + unit + "/readings?" + rng + "&limit=10000",
		"/v1/units/" + unit + "/series?" + rng + "&step=1m&fields=soc_pct,power_kw,temp_cell_max_c&agg=max",
		"/v1/units/" + unit + "/series?" + rng + "&step=10m",
		"/v1/fleet?" + rng + "&step=15m",
		"/v1/alarms?" + rng + "&limit=10000",
	} {
		resp, err := http.Get(s.api.base + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", p, resp.Status, body)
		}
		out[p] = string(body)
	}
	return out
}

// shadowReadsRecorded waits until the query service recorded enough shadow
// comparisons in the current phase version.
func (s *story) shadowReadsRecorded(t *testing.T) {
	testenv.Eventually(t, 2*time.Minute, "the query service records shadow reads", func() error {
		st, err := s.state.Current(s.ctx)
		if err != nil {
			return err
		}
		stats, err := s.state.ShadowStats(s.ctx, st.Version)
		if err != nil {
			return err
		}
		if st.Phase != cutover.ShadowRead || stats.Comparisons < minShadowReads {
			return fmt.Errorf("phase %s, %d shadow comparisons (%d mismatches)", st.Phase, stats.Comparisons, stats.Mismatches)
		}
		return nil
	})
}

// servedBy waits until the query service serves from store.
func (s *story) servedBy(t *testing.T, store string) {
	testenv.Eventually(t, 30*time.Second, "query serve reads from "+store, func() error {
		resp, err := http.Get(s.api.base + "/v1/units")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Served-By"); got != store {
			return fmt.Errorf("served by %q", got)
		}
		return nil
	})
}

func firstUnit(t *testing.T, base string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/units", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	i := strings.Index(string(body), `"unit":"`)
	if i < 0 {
		t.Fatalf("no unit in %s", body)
	}
	rest := string(body)[i+8:]
	return rest[:strings.IndexByte(rest, '"')]
}
