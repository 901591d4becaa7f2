package console_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

var updateDocs = flag.Bool("update-screenshots", false, "copy one screenshot per page to docs/ for the README")

// repoRoot returns the module's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// stack is the real service the browser talks to: query serve (the
// binary) over a PostgreSQL legacy store and state store.
type stack struct {
	base    string
	state   *cutover.Store
	root    string
	dsn     string // the legacy and state store
	influx  testenv.InfluxDB
	query   string // the query binary
	migrate string // the migrate binary
	planted planted
}

// planted is the one reading whose state of charge differs between the
// stores: what a shadow read of it must report.
type planted struct {
	unit             string
	at               time.Time
	legacy, influxDB float64
}

// loadStores writes the readings into both stores, one of them (FP-001, an
// hour into the data) with another state of charge in InfluxDB.
func loadStores(t *testing.T, ctx context.Context, dsn string, idb testenv.InfluxDB, readings []telemetry.Record) planted {
	t.Helper()
	leg, err := legacy.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	if err := leg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leg.Write(ctx, readings); err != nil {
		t.Fatal(err)
	}
	w, err := influx.NewWriter(influx.Config{URL: idb.URL, Token: idb.Token, Org: idb.Org, Bucket: idb.Bucket}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	different := append([]telemetry.Record(nil), readings...)
	p := planted{unit: different[12].Unit, at: time.UnixMilli(different[12].TimeMs).UTC(), legacy: different[12].SoC}
	different[12].SoC = round(different[12].SoC + 1.5)
	p.influxDB = different[12].SoC
	if err := w.Write(ctx, different); err != nil {
		t.Fatal(err)
	}
	return p
}

func startStack(t *testing.T, ctx context.Context) *stack {
	t.Helper()
	root := repoRoot(t)
	bins := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bins+"/", "github.com/flexipack/cutover/query", "github.com/flexipack/cutover/migrate").CombinedOutput(); err != nil {
		t.Fatalf("go build query migrate: %v\n%s", err, out)
	}
	bin := filepath.Join(bins, "query")
	dsn := testenv.Postgres(t)
	idb := testenv.Influx(t)
	readings := fleetReadings(time.Now())
	planted := loadStores(t, ctx, dsn, idb, readings)
	state, err := cutover.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(state.Close)

	st := &stack{state: state, root: root, dsn: dsn, migrate: filepath.Join(bins, "migrate"), query: bin, influx: idb, planted: planted}
	st.base = st.serve(t, "--shadow-rate", "1")
	return st
}

// serve starts query serve over the stack's stores and returns its base
// URL once it is ready; it stops when the test ends.
func (st *stack) serve(t *testing.T, args ...string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logf, err := os.Create(filepath.Join(t.TempDir(), "query.log"))
	if err != nil {
		t.Fatal(err)
	}
	idb := st.influx
	cmd := exec.Command(st.query, append([]string{"serve", "--http-addr", addr, "--pg-dsn", st.dsn, "--state-dsn", st.dsn, "--phase-poll", "500ms",
		"--influx-url", idb.URL, "--influx-org", idb.Org, "--influx-bucket", idb.Bucket}, args...)...)
	cmd.Env = append(os.Environ(), "INFLUX_TOKEN="+idb.Token)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("query serve log:\n%s", b)
		}
	})
	base := "http://" + addr
	testenv.Eventually(t, 30*time.Second, "query serve to be ready", func() error {
		res, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("/-/ready: %d", res.StatusCode)
		}
		return nil
	})
	return base
}

// Fleet data: 2 sites, 2 units each, one reading every 5 minutes over the
// last 6 hours, an alarm every hour.
var units = []struct{ unit, site string }{{"FP-001", "North Yard"}, {"FP-002", "North Yard"}, {"FP-101", "South Yard"}, {"FP-102", "South Yard"}}

func fleetReadings(now time.Time) []telemetry.Record {
	start := now.Add(-6 * time.Hour).Truncate(5 * time.Minute)
	var out []telemetry.Record
	for i, u := range units {
		for k, t := 0, start; t.Before(now); k, t = k+1, t.Add(5*time.Minute) {
			x := float64(k)/12 + float64(i)
			r := telemetry.Record{Unit: u.unit, Site: u.site, Model: "FlexiPack-250", Schema: "2.1", TimeMs: t.UnixMilli(),
				Has: telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
				SoC: round(50 + 30*math.Sin(x)), SoH: 97.5, Voltage: round(800 + 10*math.Sin(x)), Current: round(-20 * math.Cos(x)),
				Power: round(-16 * math.Cos(x)), Mode: "discharging"}
			if k%12 == 5 {
				r.Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: "Cell over-temperature > 30 °C"}}
			}
			out = append(out, r)
		}
	}
	return out
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

// beater is a consumer's heartbeat loop: it applies (reports) the phase the
// state store holds, like the consumer does, until stopped.
func beater(ctx context.Context, t *testing.T, s *cutover.Store, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		started := time.Now()
		for {
			if st, err := s.Current(ctx); err == nil {
				_ = s.Beat(ctx, cutover.Heartbeat{ConsumerID: id, Host: "test-host", Phase: st.Phase, PhaseVersion: st.Version, LagSeconds: 0.4, LagMessages: 12, StartedAt: started})
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// browser is headless Chromium, started with a fresh profile, collecting
// every console error, uncaught exception and failed load.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run scripts/services.sh up (it installs Debian's chromium) or apt-get install -y chromium: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{ctx: ctx}
	// Console starts the browser and subscribes before any page loads.
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" || m.Type == "assert" {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); cancelAlloc(); <-done })
	b.run(t, "set the viewport", chromedp.EmulateViewport(1280, 800))
	return b
}

func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// noErrors fails the test if the page logged an error since the last check.
func (b *browser) noErrors(t *testing.T, page string) {
	t.Helper()
	b.mu.Lock()
	errs := b.errs
	b.errs = nil
	b.mu.Unlock()
	if len(errs) > 0 {
		t.Fatalf("%s: the page logged %d errors:\n%s", page, len(errs), strings.Join(errs, "\n"))
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true or d passes.
func (b *browser) waitFor(t *testing.T, d time.Duration, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !eval[bool](t, b, "Boolean("+cond+")") {
		if time.Now().After(deadline) {
			status := eval[string](t, b, `document.getElementById("status").textContent`)
			main := eval[string](t, b, `document.getElementById("main").innerText.slice(0, 2000)`)
			t.Fatalf("%s: not within %s (%s); status %q; page:\n%s", what, d, cond, status, main)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// screenshot saves the whole page (the viewport only when viewport is set)
// to .data/console/NAME.png, and to docs/ with -update-screenshots.
func (b *browser) screenshot(t *testing.T, root, name string, viewport bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	shot := chromedp.FullScreenshot(100)
	if viewport {
		shot = chromedp.CaptureScreenshot()
	}
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(root, ".data", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if *updateDocs {
		if err := os.WriteFile(filepath.Join(root, "docs", "console-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func js(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestConsoleInChromium drives the console in headless Chromium against
// query serve over real PostgreSQL stores.
func TestConsoleInChromium(t *testing.T) {
	ctx := testenv.Context(t, 6*time.Minute)
	st := startStack(t, ctx)
	beater(ctx, t, st.state, "consumer-a")
	e := &env{ctx: ctx, st: st, stopB: beater(ctx, t, st.state, "consumer-b"), b: startBrowser(t)}

	t.Run("cutover page shows the state store's phase", func(t *testing.T) { phaseShown(t, e) })
	t.Run("the phase follows migrate advance (the binary) without a reload", func(t *testing.T) { phaseFollowsAdvance(t, e) })
	t.Run("a planted shadow mismatch appears on the cutover page", func(t *testing.T) { shadowMismatchShown(t, e) })
	t.Run("backfill progress, open gaps and the latest verify show", func(t *testing.T) { backfillGapsVerifyShown(t, e) })
	t.Run("a consumer that stops beating is highlighted", func(t *testing.T) { staleConsumerHighlighted(t, e) })
	t.Run("fleet charts draw the points the API returned", func(t *testing.T) { fleetCharts(t, e) })
	t.Run("unit page draws its series and latest reading", func(t *testing.T) { unitPage(t, e) })
	t.Run("with tokens, the console asks for one and then shows the cutover", func(t *testing.T) { tokenAsked(t, e) })
	t.Run("usable on a phone, readable in dark mode", func(t *testing.T) { phoneDark(t, e) })
}

// env is what the phases of TestConsoleInChromium share.
type env struct {
	ctx   context.Context
	st    *stack
	b     *browser
	stopB func() // stops consumer-b's heartbeats
}

// phaseEl is the element the cutover page names the phase in.
const phaseEl = `document.querySelector("[data-testid=phase-name]")`

// phaseShown: cutover page shows the state store's phase.
func phaseShown(t *testing.T, e *env) {
	ctx, st, b := e.ctx, e.st, e.b
	cur, err := st.state.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.run(t, "open the cutover page", chromedp.Navigate(st.base+"/?every=1000#/cutover"))
	b.waitFor(t, 30*time.Second, "the phase to show", phaseEl+`?.textContent === `+js(string(cur.Phase)))
	b.waitFor(t, 30*time.Second, "both consumers to show", `document.querySelectorAll("tr[data-consumer]").length === 2`)
	badge := eval[string](t, b, `document.getElementById("phase-badge").textContent`)
	if badge != string(cur.Phase) {
		t.Fatalf("the header shows phase %q; the state store holds %q", badge, cur.Phase)
	}
	b.noErrors(t, "cutover page")
}

// phaseFollowsAdvance: the phase follows migrate advance without a reload.
func phaseFollowsAdvance(t *testing.T, e *env) {
	ctx, st, b := e.ctx, e.st, e.b
	eval[bool](t, b, `window.__notReloaded = true`)
	cmd := exec.CommandContext(ctx, st.migrate, "advance", "--execute", "--actor", "console-test", "--reason", "start dual-write", "--consumer-timeout", "20s")
	cmd.Env = append(os.Environ(), "STATE_DSN="+st.dsn, "PG_DSN="+st.dsn)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate advance: %v\n%s", err, out)
	}
	b.waitFor(t, 30*time.Second, "the page to show dual-write", phaseEl+`?.textContent === "dual-write"`)
	if !eval[bool](t, b, `window.__notReloaded === true`) {
		t.Fatal("the page reloaded to show the new phase")
	}
	b.waitFor(t, 10*time.Second, "the timeline to show the advance", `document.querySelector("#timeline tbody")?.textContent.includes("console-test")`)
	b.noErrors(t, "cutover page after advance")
}

// shadowMismatchShown: a planted shadow mismatch appears on the cutover page.
func shadowMismatchShown(t *testing.T, e *env) {
	ctx, st, b := e.ctx, e.st, e.b
	cur, _ := st.state.Current(ctx)
	_, err := st.state.Transition(ctx, cutover.Change{Kind: "advance", From: cur.Phase, To: cutover.ShadowRead, ExpectVersion: cur.Version,
		Actor: "console-test", Reason: "shadow reads", Forced: true})
	if err != nil {
		t.Fatal(err)
	}
	p := st.planted
	testenv.Eventually(t, 10*time.Second, "query serve to apply shadow-read", func() error {
		res, err := http.Get(st.base + "/v1/units/" + p.unit + "/latest")
		if err != nil {
			return err
		}
		res.Body.Close()
		if got := res.Header.Get("X-Cutover-Phase"); got != string(cutover.ShadowRead) {
			return fmt.Errorf("X-Cutover-Phase %q", got)
		}
		return nil
	})
	// A real read, answered by PostgreSQL, shadowed by InfluxDB (--shadow-rate 1).
	q := url.Values{"from": {p.at.Add(-10 * time.Minute).Format(time.RFC3339)}, "to": {p.at.Add(10 * time.Minute).Format(time.RFC3339)}}
	res, err := http.Get(st.base + "/v1/units/" + p.unit + "/readings?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Served-By") != "postgres" {
		t.Fatalf("readings: %d served by %q", res.StatusCode, res.Header.Get("X-Served-By"))
	}
	ex := `document.querySelector("[data-testid=shadow-example]")`
	b.waitFor(t, 30*time.Second, "the mismatch to show", ex+`?.textContent.includes("soc_pct")`)
	text := eval[string](t, b, ex+`.textContent`)
	for _, want := range []string{"readings", p.unit, strconv.FormatFloat(p.legacy, 'f', -1, 64), strconv.FormatFloat(p.influxDB, 'f', -1, 64), "postgres", "influxdb"} {
		if !strings.Contains(text, want) {
			t.Errorf("the mismatch shown lacks %q: %q", want, text)
		}
	}
	if n := eval[string](t, b, `document.querySelector("[data-testid=shadow-mismatches]").textContent`); n != "1" {
		t.Errorf("mismatch count shown %q; want 1", n)
	}
	if got := eval[string](t, b, `document.querySelector("[data-testid=reads-served-by]").textContent`); got != "served by postgres, compared with influxdb" {
		t.Errorf("in shadow-read the page says reads are %q", got)
	}
	b.noErrors(t, "cutover page with a shadow mismatch")
}

// backfillGapsVerifyShown: backfill progress, open gaps and the latest verify show.
func backfillGapsVerifyShown(t *testing.T, e *env) {
	ctx, st, b := e.ctx, e.st, e.b
	now := time.Now().UTC()
	if err := st.state.StartBackfillRun(ctx, "bf-console-test", map[string]any{"from": now.Add(-48 * time.Hour), "to": now.Add(-24 * time.Hour), "window": "1h"}); err != nil {
		t.Fatal(err)
	}
	p := cutover.BackfillProgress{PointsTotal: 86400, PointsDone: 30240, WindowsTotal: 96, WindowsDone: 34, Rate: 1850, ETASeconds: 30.3,
		ThrottleState: "throttled", ThrottleReason: "write latency 2.4s > 2s", RateLimit: 2000}
	if err := st.state.SaveBackfillProgress(ctx, "bf-console-test", p); err != nil {
		t.Fatal(err)
	}
	gap := now.Add(-2 * time.Hour).Truncate(time.Minute)
	if err := st.state.RecordGaps(ctx, []cutover.Gap{{Sink: cutover.SinkInflux, Unit: "FP-002", From: gap, To: gap.Add(4 * time.Minute), Readings: 5, Reason: "influxdb: connection refused", ConsumerID: "consumer-a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.state.SaveVerify(ctx, cutover.VerifyRun{Actor: "console-test", From: now.Add(-48 * time.Hour), To: now.Add(-24 * time.Hour), Window: time.Hour, Windows: 96, Mismatched: 0, OK: true}); err != nil {
		t.Fatal(err)
	}
	row := `document.querySelector("#backfills tbody tr")`
	b.waitFor(t, 30*time.Second, "the backfill run to show", row+`?.textContent.includes("bf-console-test")`)
	text := eval[string](t, b, row+`.textContent`)
	for _, want := range []string{"running", "35%", "30,240 / 86,400 points", "1,850 pts/s", "throttled", "write latency 2.4s > 2s", "30s"} {
		if !strings.Contains(text, want) {
			t.Errorf("the backfill row lacks %q: %q", want, text)
		}
	}
	b.waitFor(t, 30*time.Second, "the gap to show", `document.querySelector("#gaps tbody")?.textContent.includes("FP-002")`)
	b.waitFor(t, 30*time.Second, "the gate to name the gap", `document.querySelector("[data-gate=no-open-gaps]")?.dataset.status === "fail"`)
	b.waitFor(t, 30*time.Second, "the verify to show", `document.querySelector("#verify")?.textContent.includes("all windows match")`)
	b.noErrors(t, "cutover page with a backfill, a gap and a verify")
}

// staleConsumerHighlighted: a consumer that stops beating is highlighted.
func staleConsumerHighlighted(t *testing.T, e *env) {
	st, b := e.st, e.b
	e.stopB()
	row := func(id string) string { return `document.querySelector(` + js(`tr[data-consumer="`+id+`"]`) + `)` }
	// Live within 15s (the gates' default): the row turns after that.
	b.waitFor(t, 40*time.Second, "consumer-b to be highlighted", row("consumer-b")+`?.classList.contains("laggard")`)
	if eval[bool](t, b, row("consumer-a")+`.classList.contains("laggard")`) {
		t.Fatal("consumer-a, still beating, is highlighted too")
	}
	bg := eval[string](t, b, `getComputedStyle(`+row("consumer-b")+`.cells[0]).backgroundColor`)
	if bg == "" || bg == "rgba(0, 0, 0, 0)" {
		t.Fatalf("the stale consumer's row has no highlight colour (%q)", bg)
	}
	b.noErrors(t, "cutover page with a stale consumer")
	b.screenshot(t, st.root, "cutover", false)
}

// fleetCharts: fleet charts draw the points the API returned.
func fleetCharts(t *testing.T, e *env) {
	st, b := e.st, e.b
	b.run(t, "open the fleet page", chromedp.Navigate(st.base+"/?every=60000&range=6h#/fleet"))
	checkChart(t, b, st.base, "fleet-soc", func(p map[string]any) bool { return p["soc_pct_mean"] != nil })
	checkChart(t, b, st.base, "fleet-power", func(p map[string]any) bool { return p["power_kw"] != nil })
	// The range picker: one hour asks for one hour, without a reload.
	before := eval[string](t, b, `document.querySelector("figure[data-figure=fleet-soc]").dataset.source`)
	eval[bool](t, b, `(() => { const r = document.getElementById("range"); r.value = "1h"; r.dispatchEvent(new Event("change")); return true })()`)
	b.waitFor(t, 30*time.Second, "the charts to follow the range", `document.querySelector("figure[data-figure=fleet-soc]")?.dataset.source !== `+js(before))
	checkChart(t, b, st.base, "fleet-soc", func(p map[string]any) bool { return p["soc_pct_mean"] != nil })
	src := eval[string](t, b, `document.querySelector("figure[data-figure=fleet-soc]").dataset.source`)
	u, err := url.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	from, err1 := time.Parse(time.RFC3339, u.Query().Get("from"))
	to, err2 := time.Parse(time.RFC3339, u.Query().Get("to"))
	if err1 != nil || err2 != nil || to.Sub(from).Round(time.Minute) != time.Hour {
		t.Fatalf("with range 1 hour the page asked %s", src)
	}
	eval[bool](t, b, `(() => { const r = document.getElementById("range"); r.value = "6h"; r.dispatchEvent(new Event("change")); return true })()`)
	b.noErrors(t, "fleet page")
	b.screenshot(t, st.root, "fleet", false)
}

// unitPage: unit page draws its series and latest reading.
func unitPage(t *testing.T, e *env) {
	st, b := e.st, e.b
	b.run(t, "open a unit page", chromedp.Navigate(st.base+"/?every=60000&range=6h#/unit/FP-101"))
	checkChart(t, b, st.base, "unit-soc", func(p map[string]any) bool { return p["soc_pct"] != nil })
	latest := eval[string](t, b, `document.querySelector("[data-testid=latest]").textContent`)
	if !strings.Contains(latest, "FP-101") || !strings.Contains(latest, "South Yard") {
		t.Fatalf("latest reading shown: %q", latest)
	}
	b.noErrors(t, "unit page")
	b.screenshot(t, st.root, "unit", false)
}

// phoneDark: usable on a phone, readable in dark mode.
func phoneDark(t *testing.T, e *env) {
	st, b := e.st, e.b
	dark := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, dark); err != nil {
		t.Fatal(err)
	}
	b.run(t, "phone in dark mode", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(st.base+"/?every=60000#/cutover"))
	b.waitFor(t, 30*time.Second, "the phase to show", phaseEl+`?.textContent === "shadow-read"`)
	overflow := eval[int](t, b, `document.documentElement.scrollWidth - window.innerWidth`)
	if overflow > 1 {
		t.Errorf("the page is %dpx wider than a 390px phone screen", overflow)
	}
	fg := eval[string](t, b, `getComputedStyle(document.body).color`)
	bg := eval[string](t, b, `getComputedStyle(document.body).backgroundColor`)
	if fg == bg || !strings.HasPrefix(bg, "rgb(13, 17, 23") {
		t.Errorf("dark mode: text %s on %s; want the dark palette", fg, bg)
	}
	b.noErrors(t, "cutover page on a phone in dark mode")
	b.screenshot(t, st.root, "cutover-phone-dark", true)
}

// checkChart waits for a chart, fetches the URL it was drawn from, and
// requires one marker per point the API returned with a value.
func checkChart(t *testing.T, b *browser, base, key string, has func(map[string]any) bool) {
	t.Helper()
	fig := `document.querySelector(` + js(`figure[data-figure="`+key+`"]`) + `)`
	b.waitFor(t, 30*time.Second, key+" to draw", fig+`?.querySelector("svg") != null`)
	src := eval[string](t, b, fig+`.dataset.source`)
	res, err := http.Get(base + src)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		Points []map[string]any `json:"points"`
	}
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", src, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, p := range doc.Points {
		if has(p) {
			want++
		}
	}
	drawn := eval[int](t, b, fig+`.querySelectorAll("circle.pt").length`)
	label := eval[string](t, b, fig+`.querySelector("svg").getAttribute("aria-label")`)
	if want == 0 || drawn != want {
		t.Fatalf("%s: drew %d points; the API (%s) returned %d", key, drawn, src, want)
	}
	if !strings.Contains(label, fmt.Sprintf("%d points", want)) {
		t.Fatalf("%s: accessible name %q does not say %d points", key, label, want)
	}
	rows := eval[int](t, b, fig+`.querySelectorAll("details tbody tr").length`)
	if rows == 0 {
		t.Fatalf("%s: no table view rows", key)
	}
}

// tokenAsked: against a query serve with --tokens-file, the console's files
// load, the API refuses without a token, the page asks for one, and with it
// shows the phase.
func tokenAsked(t *testing.T, e *env) {
	st, b := e.st, e.b
	const token = "console-test-token-0123456789"
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# read-only\n"+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := st.serve(t, "--tokens-file", tokens, "--shadow-rate", "0")
	b.run(t, "open the console of the service with tokens", chromedp.Navigate(base+"/?every=1000#/cutover"))
	b.waitFor(t, 30*time.Second, "the token form to show", `!document.getElementById("token-form").hidden`)
	if status := eval[string](t, b, `document.getElementById("status").textContent`); !strings.Contains(status, "bearer token") {
		t.Errorf("status line %q does not ask for a token", status)
	}
	eval[bool](t, b, `(() => { document.getElementById("token").value = `+js(token)+`; document.getElementById("token-form").requestSubmit(); return true })()`)
	cur, err := st.state.Current(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, 30*time.Second, "the phase to show with the token", phaseEl+`?.textContent === `+js(string(cur.Phase)))
	b.waitFor(t, 10*time.Second, "the token form to hide", `document.getElementById("token-form").hidden`)
	// The refused requests before the token are the only errors the page logged.
	b.mu.Lock()
	errs := b.errs
	b.errs = nil
	b.mu.Unlock()
	for _, msg := range errs {
		if !strings.Contains(msg, "401") {
			t.Errorf("unexpected error on the page: %s", msg)
		}
	}
	if got := eval[string](t, b, `sessionStorage.getItem("cutover-console-token")`); got != token {
		t.Errorf("the token is kept as %q in session storage", got)
	}
	eval[bool](t, b, `(() => { sessionStorage.clear(); return true })()`)
}
