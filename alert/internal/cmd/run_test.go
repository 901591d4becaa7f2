package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/alert/internal/notify"
	"github.com/flexipack/cutover/alert/internal/service"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
)

const testRules = `settings:
  allowed_lateness: 1m
rules:
  - name: Hot
    kind: threshold
    expr: temp_cell_max_c > 55
    clear: temp_cell_max_c < 50
    severity: critical
    annotations:
      summary: "{{ .Unit }} at {{ .Value }} °C"
`

// gen1 is one generation-1 message.
func gen1(unit string, at time.Time, tempC float64) []byte {
	return fmt.Appendf(nil, `<telemetry schema="1.0"><unit id="%s" site="yard" model="FlexiPack-100"/><reading ts="%d" seq="1">`+
		`<soc>50</soc><voltage>800000</voltage><current>0</current><temp_max>%d</temp_max><temp_min>200</temp_min><state>0</state></reading></telemetry>`,
		unit, at.UnixMilli(), int(tempC*10))
}

type runHarness struct {
	t   testing.TB
	ctx context.Context
	cfg runConfig
	ch  *amqp.Channel
}

func newRunHarness(t testing.TB, amURL string) *runHarness {
	ctx := testenv.Context(t, 4*time.Minute)
	name := testenv.Name(t, "alert")
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rulesFile, []byte(testRules), 0o600); err != nil {
		t.Fatal(err)
	}
	idb := testenv.Influx(t)
	h := &runHarness{t: t, ctx: ctx, cfg: runConfig{
		ID: name, HTTPAddr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), RulesFile: rulesFile,
		AMQPURL: testenv.RabbitURL(t),
		Topology: rabbit.Topology{Exchange: name + ".x", Queue: name + ".q", QueueType: "classic", BindingKey: "bsu.#",
			DeadExchange: name + ".dlx", DeadQueue: name + ".dead"},
		Prefetch: 100, StateDSN: testenv.Postgres(t), AlertmanagerURL: amURL, AMTimeout: 2 * time.Second, Resend: time.Second,
		InfluxPoints: true, Influx: notify.InfluxConfig{Influx: influx.Config{URL: idb.URL, Token: idb.Token, Org: idb.Org, Bucket: idb.Bucket}},
		Service: service.Config{BatchSize: 50, Linger: 10 * time.Millisecond, TickInterval: 100 * time.Millisecond},
	}}
	conn, err := amqp.Dial(h.cfg.AMQPURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(h.cfg.Topology.Queue, false, false, false)
			_, _ = ch.QueueDelete(h.cfg.Topology.DeadQueue, false, false, false)
			_ = ch.ExchangeDelete(h.cfg.Topology.Exchange, false, false)
			_ = ch.ExchangeDelete(h.cfg.Topology.DeadExchange, false, false)
		}
		conn.Close()
	})
	if h.ch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	return h
}

// start runs the alert service until the returned stop is called.
func (h *runHarness) start() (stop func()) {
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- runAlert(ctx, h.cfg, logger) }()
	testenv.Eventually(h.t, 30*time.Second, "alert service ready", func() error { return h.get("/-/ready") })
	return func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("alert run: %v", err)
		}
	}
}

func (h *runHarness) get(path string) error {
	resp, err := http.Get("http://" + h.cfg.HTTPAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, body)
	}
	return nil
}

func (h *runHarness) metric(name string) string {
	resp, err := http.Get("http://" + h.cfg.HTTPAddr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

func (h *runHarness) publish(unit string, at time.Time, tempC float64) {
	h.t.Helper()
	err := h.ch.PublishWithContext(h.ctx, h.cfg.Topology.Exchange, rabbit.RoutingKey(1, unit), true, false,
		amqp.Publishing{ContentType: "application/xml", DeliveryMode: amqp.Persistent, Body: gen1(unit, at, tempC)})
	if err != nil {
		h.t.Fatal(err)
	}
}

// The alert service against real RabbitMQ, PostgreSQL, InfluxDB and a
// private Alertmanager: an alert is posted and re-sent while firing,
// survives a restart of the service without a second notification, is
// resolved with endsAt at the resolving reading's time; while Alertmanager
// is down the service stays healthy and a new alert arrives once it is back.
func TestRunAgainstAlertmanager(t *testing.T) {
	hook := newWebhook(t)
	am := startPrivateAM(t, hook.srv.URL)
	h := newRunHarness(t, am.url())
	stop := h.start()
	unitA, unitB := "FPT-"+h.cfg.ID[len(h.cfg.ID)-8:]+"-A", "FPT-"+h.cfg.ID[len(h.cfg.ID)-8:]+"-B"
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)

	var firstUpdate string
	t.Run("posted and re-sent while firing", func(t *testing.T) {
		h.publish(unitA, t0, 60)
		testenv.Eventually(t, 20*time.Second, "alert in alertmanager", func() error {
			a, err := am.activeAlert(unitA)
			if err != nil || a == nil {
				return fmt.Errorf("not there yet (%v)", err)
			}
			if a["startsAt"] != t0.UTC().Format("2006-01-02T15:04:05.000Z") {
				return fmt.Errorf("startsAt %v, want %s", a["startsAt"], t0.UTC())
			}
			firstUpdate, _ = a["updatedAt"].(string)
			return nil
		})
		testenv.Eventually(t, 20*time.Second, "alert re-sent", func() error {
			a, err := am.activeAlert(unitA)
			if err != nil || a == nil || a["updatedAt"] == firstUpdate {
				return fmt.Errorf("not re-sent (%v)", err)
			}
			return nil
		})
		testenv.Eventually(t, 20*time.Second, "firing notification", func() error {
			if hook.count(unitA, "firing") == 0 {
				return fmt.Errorf("no firing notification yet")
			}
			return nil
		})
	})

	t.Run("a restart neither loses nor re-notifies", func(t *testing.T) {
		stop()
		stop = h.start()
		// Longer than a firing alert's validity (4 resend intervals): only a
		// restarted service that still knows the alert keeps it active; and
		// several group intervals, in which a changed alert would be notified again.
		time.Sleep(5 * time.Second)
		if a, err := am.activeAlert(unitA); err != nil || a == nil {
			t.Fatalf("alert gone after the restart: %v", err)
		}
		if n := hook.count(unitA, "firing"); n != 1 {
			t.Fatalf("%d firing notifications after the restart, want 1", n)
		}
	})

	t1 := t0.Add(30 * time.Second)
	t.Run("resolved with endsAt", func(t *testing.T) {
		h.publish(unitA, t1, 40)
		testenv.Eventually(t, 20*time.Second, "resolved notification", func() error {
			if e := hook.resolvedEndsAt(unitA); !e.Equal(t1) {
				return fmt.Errorf("resolved endsAt %s, want %s", e, t1)
			}
			return nil
		})
	})

	t.Run("alertmanager down: retried, never lost, healthy", func(t *testing.T) { h.alertmanagerDown(t, am, hook, unitB, t1) })

	t.Run("bsu_alert points", func(t *testing.T) {
		testenv.Eventually(t, 20*time.Second, "points in influxdb", func() error {
			return influxCount(h.cfg.Influx, unitA, 2)
		})
	})
	t.Run("SIGHUP reloads the rules", func(t *testing.T) { h.reload(t, am, hook, unitA, t1.Add(10*time.Second)) })
	stop()
}

// influxCount checks InfluxDB holds at least want bsu_alert points of unit.
func influxCount(cfg notify.InfluxConfig, unit string, want int) error {
	c, err := influx.NewClient(cfg.Influx)
	if err != nil {
		return err
	}
	defer c.Close()
	var n int64
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Query(ctx, `SELECT count("value") FROM bsu_alert WHERE unit = `+influx.QuoteString(unit), func(s *influx.Series) error {
		for _, row := range s.Values {
			v, err := influx.Int64(row[s.Col("count")])
			if err != nil {
				return err
			}
			n += v
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n < int64(want) {
		return fmt.Errorf("%d bsu_alert points of %s, want at least %d", n, unit, want)
	}
	return nil
}

// alertmanagerDown stops Alertmanager, raises an alert, checks the service
// stays healthy and ready, restarts Alertmanager and waits for the alert.
func (h *runHarness) alertmanagerDown(t *testing.T, am *privateAM, hook *webhook, unitB string, at time.Time) {
	am.stop()
	h.publish(unitB, at, 61)
	testenv.Eventually(t, 20*time.Second, "alertmanager seen down", func() error {
		if v := h.metric("alert_alertmanager_up"); v != "0" {
			return fmt.Errorf("alert_alertmanager_up %q", v)
		}
		return nil
	})
	for _, p := range []string{"/-/healthy", "/-/ready"} {
		if err := h.get(p); err != nil {
			t.Fatalf("while alertmanager is down: %v", err)
		}
	}
	am.start()
	testenv.Eventually(t, 30*time.Second, "alert delivered after alertmanager came back", func() error {
		if hook.count(unitB, "firing") == 0 {
			return fmt.Errorf("no firing notification for %s", unitB)
		}
		return nil
	})
}

// reload lowers the Hot threshold to 50 °C in the rule file, sends SIGHUP
// (the service catches it), and checks a 52 °C reading now fires.
func (h *runHarness) reload(t *testing.T, am *privateAM, hook *webhook, unit string, at time.Time) {
	rules := strings.Replace(testRules, "temp_cell_max_c > 55", "temp_cell_max_c > 50", 1)
	rules = strings.Replace(rules, "temp_cell_max_c < 50", "temp_cell_max_c < 45", 1)
	if err := os.WriteFile(h.cfg.RulesFile, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "rules reloaded", func() error {
		if v := h.metric(`alert_rule_reloads_total{result="ok"}`); v != "1" {
			return fmt.Errorf("reloads %q", v)
		}
		return nil
	})
	before := hook.count(unit, "firing")
	h.publish(unit, at, 52)
	testenv.Eventually(t, 20*time.Second, "alert under the reloaded rule", func() error {
		if a, err := am.activeAlert(unit); err != nil || a == nil {
			return fmt.Errorf("not active in alertmanager (%v)", err)
		}
		if n := hook.count(unit, "firing"); n <= before {
			return fmt.Errorf("%d firing notifications for %s, still %d", n, unit, before)
		}
		return nil
	})
}
