package cmd_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flexipack/cutover/consumer/internal/cmd"
	"github.com/flexipack/cutover/consumer/internal/consumertest"
	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/testenv"
)

// buildConsumer builds the consumer binary into a temporary folder.
func buildConsumer(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(t.TempDir(), "consumer")
	build := exec.Command("go", "build", "-o", bin, "./consumer")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./consumer: %v\n%s", err, out)
	}
	return bin
}

// proc is a consumer process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	log  *bytes.Buffer
	done chan error
}

func startConsumer(t *testing.T, bin string, env *consumertest.Env, id string) *proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	c := exec.Command(bin, "--log-format", "json", "run")
	c.Env = append(os.Environ(),
		"AMQP_URL="+env.AMQPURL,
		"AMQP_EXCHANGE="+env.Topology.Exchange,
		"AMQP_QUEUE="+env.Topology.Queue,
		"AMQP_DEAD_EXCHANGE="+env.Topology.DeadExchange,
		"AMQP_DEAD_QUEUE="+env.Topology.DeadQueue,
		"PG_DSN="+env.LegacyDSN,
		"STATE_DSN="+env.StateDSN,
		"INFLUX_URL="+env.Influx.URL,
		"INFLUX_BUCKET="+env.Influx.Bucket,
		"HTTP_ADDR="+addr,
		"BUS=rabbitmq",
		"CONSUMER_ID="+id,
		"CONSUMER_PHASE_POLL=200ms",
		"CONSUMER_SHUTDOWN_TIMEOUT=10s",
	)
	p := &proc{cmd: c, addr: addr, log: &bytes.Buffer{}, done: make(chan error, 1)}
	c.Stdout, c.Stderr = p.log, p.log
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- c.Wait() }()
	t.Cleanup(func() {
		if c.ProcessState == nil {
			_ = c.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("consumer %s log:\n%s", id, tail(p.log.String(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) get(path string) (int, string, error) {
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// The consumer is SIGKILLed mid-batch, restarted, SIGTERMed mid-run and
// restarted again: the counts are exact (N distinct readings in each
// store), SIGTERM exits 0 within the deadline, /metrics and /-/ready answer,
// and the malformed messages are in the dead-letter queue, where
// 'consumer dlq list' and 'dlq replay' (dry run) see them.
func TestKillAndRestartExactCounts(t *testing.T) {
	bin := buildConsumer(t)
	env := consumertest.NewEnv(t)
	st := env.State()
	env.SetPhase(st, cutover.DualWrite)
	const n = 40000
	msgs, _ := consumertest.Messages("FP2-K", n, 500, 0)
	bad := []bus.Message{
		{ID: "bad-1", RoutingKey: "bsu.v2.FP2-X1", Body: []byte("<not-xml")},
		{ID: "bad-2", RoutingKey: "bsu.v2.FP2-X2", Body: []byte(`<Telemetry xmlns="urn:flexipack:telemetry:3"/>`)},
	}
	env.Publish(append(append(msgs[:n/2:n/2], bad...), msgs[n/2:]...))

	legacyCount := func() int { return consumertest.LegacyCount(t, env.LegacyDSN) }

	// 1: SIGKILL mid-run.
	p1 := startConsumer(t, bin, env, "c-kill")
	testenv.Eventually(t, 60*time.Second, "first consumer stores some", func() error {
		if c := legacyCount(); c < 3000 {
			return fmt.Errorf("legacy has %d", c)
		}
		return nil
	})
	if code, body, err := p1.get("/metrics"); err != nil || code != 200 || !strings.Contains(body, "consumer_deliveries_total") ||
		!strings.Contains(body, "consumer_sink_write_duration_seconds") || !strings.Contains(body, `consumer_phase{phase="dual-write"} 1`) {
		t.Fatalf("/metrics = %d, %v:\n%s", code, err, tail(body, 2000))
	}
	if code, body, err := p1.get("/-/ready"); err != nil || code != 200 {
		t.Fatalf("/-/ready = %d %q, %v", code, body, err)
	}
	_ = p1.cmd.Process.Signal(syscall.SIGKILL)
	<-p1.done
	killedAt := legacyCount()
	if killedAt >= n {
		t.Fatalf("the kill came too late to be mid-run (%d stored)", killedAt)
	}
	t.Logf("SIGKILL with %d of %d readings stored", killedAt, n)

	// 2: SIGTERM mid-run: stop consuming, finish in-flight batches, exit 0.
	p2 := startConsumer(t, bin, env, "c-term")
	testenv.Eventually(t, 60*time.Second, "second consumer stores more", func() error {
		if c := legacyCount(); c < killedAt+3000 {
			return fmt.Errorf("legacy has %d", c)
		}
		return nil
	})
	termAt := time.Now()
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p2.done:
		if err != nil {
			t.Fatalf("SIGTERM: exit %v, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SIGTERM: not exited within 20s (shutdown timeout 10s)")
	}
	t.Logf("SIGTERM exit after %s with %d stored", time.Since(termAt).Round(time.Millisecond), legacyCount())
	if hbs, _ := st.Heartbeats(testenv.Context(t, 5*time.Second), time.Minute); len(hbs) != 1 || hbs[0].ConsumerID != "c-kill" {
		t.Fatalf("heartbeats after a clean stop = %+v; want only the killed consumer's", hbs)
	}

	// 3: a fresh consumer finishes the queue.
	p3 := startConsumer(t, bin, env, "c-finish")
	testenv.Eventually(t, 120*time.Second, "exact counts", func() error {
		l := legacyCount()
		i := consumertest.InfluxCount(t, env.Influx.URL, env.InfluxDB)
		if l != n || i != n {
			return fmt.Errorf("legacy %d, influx %d, want %d", l, i, n)
		}
		if q := env.QueueMessages(env.Topology.Queue); q != 0 {
			return fmt.Errorf("queue holds %d", q)
		}
		return nil
	})
	_ = p3.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p3.done; err != nil {
		t.Fatalf("idle SIGTERM: %v", err)
	}

	// The two malformed messages are dead letters (once each, even though
	// a consumer was killed: a dead letter may repeat only if the kill
	// falls between its publish and the batch's ack).
	var out bytes.Buffer
	app := cmd.New()
	app.Writer = &out
	args := []string{"consumer", "dlq", "list", "-o", "json", "--amqp-url", env.AMQPURL, "--exchange", env.Topology.Exchange,
		"--queue", env.Topology.Queue, "--dead-exchange", env.Topology.DeadExchange, "--dead-queue", env.Topology.DeadQueue, "--kind", "rejected"}
	if err := app.Run(args); err != nil {
		t.Fatalf("dlq list: %v", err)
	}
	var listed struct {
		Read    int         `json:"read"`
		Matched int         `json:"matched"`
		Entries []dlq.Entry `json:"entries"`
	}
	if err := json.Unmarshal(out.Bytes(), &listed); err != nil {
		t.Fatalf("dlq list JSON: %v\n%s", err, out.String())
	}
	keys := map[string]bool{}
	for _, e := range listed.Entries {
		keys[e.RoutingKey] = true
		if e.Reason == "" || e.FirstFailure.IsZero() {
			t.Errorf("entry without reason or first failure: %+v", e)
		}
	}
	if !keys["bsu.v2.FP2-X1"] || !keys["bsu.v2.FP2-X2"] {
		t.Fatalf("dlq list = %s", out.String())
	}
	out.Reset()
	app = cmd.New()
	app.Writer = &out
	if err := app.Run(append([]string{"consumer", "dlq", "replay", "--reason", "namespace"}, args[5:]...)); err != nil {
		t.Fatalf("dlq replay dry run: %v", err)
	}
	if !strings.Contains(out.String(), "dry run: would replay 1 of") {
		t.Fatalf("dlq replay dry run printed:\n%s", out.String())
	}
	if q := env.QueueMessages(env.Topology.DeadQueue); q != listed.Read {
		t.Fatalf("dead-letter queue holds %d after list and a dry run, want %d", q, listed.Read)
	}
}
