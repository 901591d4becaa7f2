//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// The alert service end to end: the real producer simulates a fleet (with
// the simulator's faults, alarms and outages, then a healthy fleet) onto its
// own exchange; the real alert binary evaluates the default rules and
// delivers to a real (private) Alertmanager. What it raised is compared
// with what the readings themselves say, decoded from a second queue on the
// same exchange: every fault, critical alarm and long outage raises its
// alert, ended conditions resolve, no other alert fires; a healthy fleet
// raises none (the false-positive count is in the summary line).
func TestAlertEndToEnd(t *testing.T) {
	bin := alertBinaries(t)
	// --time-scale 30: an hour of readings in two minutes. Absence runs on
	// reading time, so a publishing worker that stalls for a second on a
	// busy machine looks like half a minute of silence; at 60× a stall of
	// 17 s (seen on a loaded CI machine) fired UnitSilent for units that
	// never went quiet.
	faulty := runAlertScenario(t, bin, "faulty", []string{"--units", "100", "--duration", "120s", "--time-scale", "30", "--seed", "42"})
	healthy := runAlertScenario(t, bin, "healthy", []string{"--units", "100", "--duration", "60s", "--time-scale", "30", "--seed", "43",
		"--fault-prob", "0", "--offline-prob", "0"})

	truth := faulty.truth
	t.Run("faults raise their alerts and ended ones resolve", func(t *testing.T) {
		checkSet(t, "CriticalAlarm fired (bsu_alert)", faulty.points["CriticalAlarm/firing"], truth.criticalUnits)
		checkSubset(t, "CriticalAlarm resolved (bsu_alert)", truth.criticalResolved, faulty.points["CriticalAlarm/resolved"])
		checkSubset(t, "CriticalAlarm resolved only where it fired", faulty.points["CriticalAlarm/resolved"], truth.criticalUnits)
		checkSet(t, "UnitInFault fired (bsu_alert)", faulty.points["UnitInFault/firing"], truth.faultUnits)
		checkSubset(t, "UnitInFault resolved (bsu_alert)", truth.faultResolved, faulty.points["UnitInFault/resolved"])
		checkSubset(t, "UnitInFault resolved only where it fired", faulty.points["UnitInFault/resolved"], truth.faultUnits)
		checkSubset(t, "CriticalAlarm notified by Alertmanager (alarm seen live)", truth.criticalLive, faulty.hook.units("CriticalAlarm", "firing"))
		checkSubset(t, "UnitInFault notified by Alertmanager (fault seen live)", truth.faultLive, faulty.hook.units("UnitInFault", "firing"))
	})
	t.Run("long outages raise UnitSilent, short ones do not", func(t *testing.T) {
		silent := faulty.points["UnitSilent/firing"]
		checkSubset(t, "UnitSilent for silences of 17.5 minutes or more", truth.longGaps, silent)
		checkSubset(t, "UnitSilent resolved by the unit's flush", truth.longFlushed, faulty.points["UnitSilent/resolved"])
		for u := range silent {
			if !truth.maybeGaps[u] {
				t.Errorf("UnitSilent fired for %s, whose longest silence on the bus (to the end of the run included) is %s (under 15.5 minutes)", u, truth.maxGap[u])
			}
		}
		checkSubset(t, "UnitSilent notified by Alertmanager", truth.longGaps, faulty.hook.units("UnitSilent", "firing"))
	})
	falsePos := 0
	t.Run("no other alert in the faulty fleet", func(t *testing.T) {
		for k, units := range faulty.points {
			rule := strings.Split(k, "/")[0]
			switch rule {
			case "CriticalAlarm", "UnitInFault", "UnitSilent", "SiteFaults":
				continue
			}
			falsePos += len(units)
			t.Errorf("%s: %d units (%v): the simulated fleet never crosses that rule", k, len(units), keys(units))
		}
	})
	t.Run("a healthy fleet raises nothing", func(t *testing.T) {
		n := 0
		for k, units := range healthy.points {
			n += len(units)
			t.Errorf("healthy fleet: %s for %v", k, keys(units))
		}
		if notes := healthy.hook.count(); notes > 0 {
			t.Errorf("healthy fleet: %d Alertmanager notifications", notes)
		}
		falsePos += n
	})
	line := fmt.Sprintf("e2e: alert faulty_readings=%d critical_alarm_units=%d fault_units=%d long_outages=%d (at_end=%d) alerts_fired=%d resolved=%d "+
		"am_notifications=%d site_faults=%d | healthy_readings=%d healthy_alerts=%d false_positives=%d",
		truth.readings, len(truth.criticalUnits), len(truth.faultUnits), len(truth.longGaps), len(truth.longAtEnd), faulty.fired(), faulty.resolved(),
		faulty.hook.count(), len(faulty.points["SiteFaults/firing"]), healthy.truth.readings, healthy.fired(), falsePos)
	t.Log(line)
	fmt.Println(line)
}

// alertBinaries builds the producer and the alert service.
func alertBinaries(t *testing.T) string {
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/flexipack/cutover/producer", "github.com/flexipack/cutover/alert")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build producer and alert: %v\n%s", err, out)
	}
	return dir
}

// scenario is one simulated run and what came out of it.
type scenario struct {
	truth  alertTruth
	points map[string]map[string]bool // "rule/state" -> units (or sites) with such a bsu_alert point
	hook   *amHook
}

func (s *scenario) fired() int {
	n := 0
	for k, v := range s.points {
		if strings.HasSuffix(k, "/firing") {
			n += len(v)
		}
	}
	return n
}

func (s *scenario) resolved() int {
	n := 0
	for k, v := range s.points {
		if strings.HasSuffix(k, "/resolved") {
			n += len(v)
		}
	}
	return n
}

func runAlertScenario(t *testing.T, bin, name string, simArgs []string) *scenario {
	ctx := testenv.Context(t, 6*time.Minute)
	amqpURL := testenv.RabbitURL(t)
	base := testenv.Name(t, "alert_"+name)
	x, truthQ, alertQ, dlx, dq := base+".x", base+".truth", base+".alert", base+".dlx", base+".dead"
	t.Cleanup(func() { deleteQueues(t, amqpURL, []string{truthQ, alertQ, dq}, []string{x, dlx}) })
	idb := testenv.Influx(t)
	hook := newAMHook(t)
	am := startAM(t, hook.srv.URL)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logDir := t.TempDir()

	env := append(os.Environ(), "AMQP_URL="+amqpURL, "AMQP_EXCHANGE="+x, "AMQP_DEAD_EXCHANGE="+dlx, "AMQP_DEAD_QUEUE="+dq,
		"STATE_DSN="+testenv.Postgres(t), "INFLUX_URL="+idb.URL, "INFLUX_TOKEN="+idb.Token, "INFLUX_ORG="+idb.Org, "INFLUX_BUCKET="+idb.Bucket,
		"ALERTMANAGER_URL="+am, "ALERT_QUEUE="+alertQ, "ALERT_RULES="+filepath.Join("..", "alert", "rules", "default.yml"),
		"ALERT_RESEND_INTERVAL=5s", "ALERT_TICK=200ms", "HTTP_ADDR="+httpAddr, "LOG_FORMAT=json")
	alert := startLogged(t, filepath.Join(bin, "alert"), env, filepath.Join(logDir, "alert.log"), "run")
	defer alert.stop(t)
	testenv.Eventually(t, 60*time.Second, "alert service ready", func() error { return httpGet("http://" + httpAddr + "/-/ready") })

	prodArgs := append([]string{"simulate", "--queue", truthQ, "--progress", "-1s"}, simArgs...)
	prodEnv := append(append([]string(nil), env...), "HTTP_ADDR=")
	prod := exec.CommandContext(ctx, filepath.Join(bin, "producer"), prodArgs...)
	prod.Env = prodEnv
	var perr bytes.Buffer
	prod.Stderr = &perr
	if err := prod.Run(); err != nil {
		t.Fatalf("producer %v: %v\n%s", prodArgs, err, tail(perr.Bytes(), 3000))
	}
	truth := readTruth(t, amqpURL, truthQ)
	testenv.Eventually(t, 3*time.Minute, "alert queue drained", func() error {
		n, _, err := queueState(amqpURL, alertQ)
		if err != nil || n > 0 {
			return fmt.Errorf("%d messages left (%v)", n, err)
		}
		return nil
	})
	// Resolutions and points are delivered within a second or two; wait
	// until the points stop changing.
	var points map[string]map[string]bool
	last := -1
	testenv.Eventually(t, 30*time.Second, "bsu_alert points settled", func() error {
		time.Sleep(2 * time.Second)
		points = alertPoints(t, idb)
		n := 0
		for _, v := range points {
			n += len(v)
		}
		if n != last {
			last = n
			return fmt.Errorf("%d points, still changing", n)
		}
		return nil
	})
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(logDir, "alert.log"))
		t.Logf("alert log (tail):\n%s", tail(b, 4000))
	}
	return &scenario{truth: truth, points: points, hook: hook}
}

// alertTruth is what the readings say should alert.
type alertTruth struct {
	readings         int
	criticalUnits    map[string]bool // a critical alarm at some point
	criticalResolved map[string]bool // ... and 10 minutes of the unit's readings without one after its last
	criticalLive     map[string]bool // ... whose first critical alarm came in a live (single-reading) message
	faultUnits       map[string]bool // fault mode for at least a minute of readings
	faultResolved    map[string]bool // ... followed by a reading in another mode
	faultLive        map[string]bool // ... where the minute was completed by a live message
	longGaps         map[string]bool // silent on the bus for 17.5 minutes or more (for 15m + lateness 2m, and a margin)
	longFlushed      map[string]bool // ... and such a silence ended by a message
	longAtEnd        map[string]bool // ... or still silent at the end of the run (offline, its readings unsent)
	maybeGaps        map[string]bool // silent for 15.5 minutes or more (see addSilence)
	maxGap           map[string]time.Duration
}

type truthReading struct {
	ms       int64
	fault    bool
	critical bool
	live     bool
}

// readTruth drains the truth queue and derives the expected alerts.
func readTruth(t *testing.T, amqpURL, queue string) alertTruth {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	dec := &telemetry.Decoder{}
	byUnit := map[string][]truthReading{}
	// The newest reading time of each of a unit's messages, in arrival
	// order: a unit offline for an hour flushes readings without gaps, but
	// was silent on the bus for that hour.
	msgTimes := map[string][]int64{}
	seen := map[telemetry.Key]bool{}
	fleetNewest := int64(0) // the absence clock at the end (before lateness)
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		res, err := dec.Decode(d.Body)
		if err != nil {
			continue
		}
		if len(res.Records) > 0 {
			u := strings.Clone(res.Records[0].Unit)
			newest := int64(0)
			for _, r := range res.Records {
				newest = max(newest, r.TimeMs)
			}
			msgTimes[u] = append(msgTimes[u], newest)
			fleetNewest = max(fleetNewest, newest)
		}
		for _, r := range res.Records {
			// Records alias the decoder's buffer: keep copies of what outlives it.
			key := telemetry.Key{Unit: strings.Clone(r.Unit), TimeMs: r.TimeMs}
			if seen[key] {
				continue
			}
			seen[key] = true
			tr := truthReading{ms: r.TimeMs, fault: r.Mode == telemetry.ModeFault, live: len(res.Records) == 1}
			for _, a := range r.Alarms {
				tr.critical = tr.critical || a.Severity == "critical"
			}
			byUnit[key.Unit] = append(byUnit[key.Unit], tr)
		}
	}
	tr := alertTruth{readings: len(seen), criticalUnits: map[string]bool{}, criticalResolved: map[string]bool{}, criticalLive: map[string]bool{},
		faultUnits: map[string]bool{}, faultResolved: map[string]bool{}, faultLive: map[string]bool{},
		longGaps: map[string]bool{}, longFlushed: map[string]bool{}, longAtEnd: map[string]bool{}, maybeGaps: map[string]bool{}, maxGap: map[string]time.Duration{}}
	for u, rs := range byUnit {
		sort.Slice(rs, func(i, j int) bool { return rs[i].ms < rs[j].ms })
		tr.addUnit(u, rs)
		tr.addSilence(u, msgTimes[u], fleetNewest)
	}
	return tr
}

func (tr *alertTruth) addUnit(u string, rs []truthReading) {
	var lastCrit, faultStart int64 = -1, -1
	firstCritLive := false
	for _, r := range rs {
		if r.critical {
			if lastCrit < 0 {
				firstCritLive = r.live
			}
			lastCrit = r.ms
		}
		switch {
		case r.fault && faultStart < 0:
			faultStart = r.ms
		case r.fault && r.ms-faultStart >= time.Minute.Milliseconds():
			if !tr.faultUnits[u] {
				tr.faultLive[u] = r.live
			}
			tr.faultUnits[u] = true
		case !r.fault && faultStart >= 0:
			if tr.faultUnits[u] {
				tr.faultResolved[u] = true
			}
			faultStart = -1
		}
	}
	if lastCrit >= 0 {
		tr.criticalUnits[u] = true
		if firstCritLive {
			tr.criticalLive[u] = true
		}
		if rs[len(rs)-1].ms-lastCrit >= (10 * time.Minute).Milliseconds() {
			tr.criticalResolved[u] = true
		}
	}
	if !tr.faultLive[u] {
		delete(tr.faultLive, u)
	}
}

// addSilence records a unit's longest silence on the bus: the largest step
// between the newest reading times of consecutive messages, or from its
// last message to the fleet's newest reading. The simulator stops with
// some units offline and their readings unsent: such a unit is silent from
// its last message to the end of the run, and UnitSilent rightly fires for
// it once that exceeds the rule's for, with no flush to resolve it.
func (tr *alertTruth) addSilence(u string, newest []int64, fleetNewest int64) {
	const long = 17*time.Minute + 30*time.Second
	for i := 1; i < len(newest); i++ {
		gap := time.Duration(newest[i]-newest[i-1]) * time.Millisecond
		tr.maxGap[u] = max(tr.maxGap[u], gap)
		if gap >= long {
			tr.longFlushed[u] = true
		}
	}
	if n := len(newest); n > 0 {
		gap := time.Duration(fleetNewest-newest[n-1]) * time.Millisecond
		tr.maxGap[u] = max(tr.maxGap[u], gap)
		if gap >= long {
			tr.longAtEnd[u] = true
		}
	}
	if tr.maxGap[u] >= long {
		tr.longGaps[u] = true
	}
	// The fleet clock is the newest reading from any unit: the simulator's
	// four publishing workers drift apart by up to a second or so, which at
	// --time-scale 30 is half a minute of reading time, so a unit may look
	// silent that much longer than it was. Silences from 15.5 minutes may fire.
	if tr.maxGap[u] >= 15*time.Minute+30*time.Second {
		tr.maybeGaps[u] = true
	}
}

// alertPoints reads the bsu_alert points: "rule/state" -> keys.
func alertPoints(t *testing.T, idb testenv.InfluxDB) map[string]map[string]bool {
	q := url.Values{"db": {idb.DB}, "q": {`SELECT "value", "alertname", "state", "unit", "site" FROM bsu_alert`}}
	resp, err := http.Get(idb.URL + "/query?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Series []struct {
				Columns []string `json:"columns"`
				Values  [][]any  `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	points := map[string]map[string]bool{}
	for _, r := range out.Results {
		for _, s := range r.Series {
			col := map[string]int{}
			for i, c := range s.Columns {
				col[c] = i
			}
			for _, v := range s.Values {
				str := func(name string) string { x, _ := v[col[name]].(string); return x }
				key := str("unit")
				if key == "" {
					key = str("site")
				}
				k := str("alertname") + "/" + str("state")
				if points[k] == nil {
					points[k] = map[string]bool{}
				}
				points[k][key] = true
			}
		}
	}
	delete(points, "") // no points at all
	for k := range points {
		if strings.HasSuffix(k, "/pending") || strings.HasSuffix(k, "/inactive") {
			delete(points, k) // pending that did not last: not an alert
		}
	}
	return points
}

func checkSet(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	var missing, extra []string
	for u := range want {
		if !got[u] {
			missing = append(missing, u)
		}
	}
	for u := range got {
		if !want[u] {
			extra = append(extra, u)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s: %d expected, %d got; missing %v, unexpected %v", what, len(want), len(got), missing, extra)
	}
}

func checkSubset(t *testing.T, what string, want, got map[string]bool) {
	t.Helper()
	var missing []string
	for u := range want {
		if !got[u] {
			missing = append(missing, u)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s: %d expected, missing %v", what, len(want), missing)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func httpGet(u string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return nil
}

// loggedProc is a background process whose output goes to a file.
type loggedProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startLogged(t *testing.T, path string, env []string, logPath string, args ...string) *loggedProc {
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &loggedProc{cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	return p
}

func (p *loggedProc) stop(t *testing.T) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0", filepath.Base(p.cmd.Path), code)
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 20s of SIGTERM", filepath.Base(p.cmd.Path))
	}
}

// amHook records a private Alertmanager's webhook notifications.
type amHook struct {
	mu    sync.Mutex
	notes []amNotification
	srv   *httptest.Server
}

// amNotification is the part of a webhook notification the test reads.
type amNotification struct {
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func newAMHook(t *testing.T) *amHook {
	h := &amHook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		var n amNotification
		if err := json.NewDecoder(r.Body).Decode(&n); err == nil {
			h.notes = append(h.notes, n)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *amHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.notes)
}

// units returns the units Alertmanager notified with rule's alert in status.
func (h *amHook) units(rule, status string) map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]bool{}
	for _, n := range h.notes {
		for _, a := range n.Alerts {
			if a.Labels["alertname"] == rule && a.Status == status {
				out[a.Labels["unit"]] = true
			}
		}
	}
	return out
}

// startAM starts a private Alertmanager (the binary scripts/services.sh
// builds) notifying url within a second; it returns its base URL.
func startAM(t *testing.T, hook string) string {
	bin, err := exec.LookPath("alertmanager")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "alertmanager")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("alertmanager binary not found; build it with: scripts/services.sh start alertmanager")
		}
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("route:\n  receiver: hook\n  group_by: [alertname, unit]\n  group_wait: 200ms\n  group_interval: 1s\n  repeat_interval: 4h\n"+
		"receivers:\n  - name: hook\n    webhook_configs:\n      - url: %s\n        send_resolved: true\n", hook)
	if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testenv.Eventually(t, 30*time.Second, "private alertmanager ready", func() error { return httpGet("http://" + addr + "/-/ready") })
	return "http://" + addr
}
