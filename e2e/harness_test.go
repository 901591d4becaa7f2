//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// binaries builds the five binaries once into a temporary folder.
func binaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	started := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/flexipack/cutover/producer", "github.com/flexipack/cutover/consumer",
		"github.com/flexipack/cutover/backfill", "github.com/flexipack/cutover/migrate", "github.com/flexipack/cutover/query")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the binaries: %v\n%s", err, out)
	}
	t.Logf("built producer, consumer, backfill, migrate, query in %s", time.Since(started).Round(time.Millisecond))
	return dir
}

// logs collects the log files of every subprocess, so a failing test can
// show the tail of each.
type logs struct {
	mu    sync.Mutex
	dir   string
	paths []string
}

func (l *logs) file(t *testing.T, name string) (*os.File, string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	path := filepath.Join(l.dir, fmt.Sprintf("%02d-%s.log", len(l.paths), name))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	l.paths = append(l.paths, path)
	return f, path
}

// dumpOnFailure logs the last lines of every subprocess log if t failed.
func (l *logs) dumpOnFailure(t *testing.T) {
	if !t.Failed() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.paths {
		b, _ := os.ReadFile(p)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				b = b[i+1:]
			}
		}
		t.Logf("--- %s (tail):\n%s", filepath.Base(p), b)
	}
}

// runner runs the binaries with the story's environment.
type runner struct {
	t    *testing.T // the current phase: failures go here
	top  *testing.T // the whole story: processes live and are stopped here
	ctx  context.Context
	bin  string
	env  []string
	logs *logs
}

// run runs a binary to completion, wants exit status want, and returns its
// stdout; stderr (logs) goes to a log file.
func (r *runner) run(want int, name string, args ...string) string {
	r.t.Helper()
	f, path := r.logs.file(r.t, name+"-"+args[0])
	defer f.Close()
	cmd := exec.CommandContext(r.ctx, filepath.Join(r.bin, name), args...)
	cmd.Env = r.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, f
	started := time.Now()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	fmt.Fprintf(f, "\n--- stdout:\n%s", out.String())
	if code != want {
		stderr, _ := os.ReadFile(path)
		r.t.Fatalf("%s %s: exit %d, want %d\nstdout:\n%s\nstderr (tail):\n%s", name, strings.Join(args, " "), code, want, out.String(), tail(stderr, 3000))
	}
	r.t.Logf("$ %s %s   (exit %d, %s)", name, strings.Join(args, " "), code, time.Since(started).Round(time.Millisecond))
	return out.String()
}

// runJSON runs a binary with -o json and decodes its stdout into v.
func (r *runner) runJSON(v any, want int, name string, args ...string) {
	r.t.Helper()
	out := r.run(want, name, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("%s %s: output is not JSON: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// proc is a long-running subprocess: a consumer or a producer.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	out    bytes.Buffer // stdout
	exited chan struct{}
	err    error
	log    *os.File
}

// start starts a binary in the background.
func (r *runner) start(name, bin string, args ...string) *proc {
	r.t.Helper()
	f, _ := r.logs.file(r.t, name)
	p := &proc{t: r.top, name: name, exited: make(chan struct{}), log: f}
	p.cmd = exec.Command(filepath.Join(r.bin, bin), args...)
	p.cmd.Env = r.env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		r.t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); f.Close(); close(p.exited) }()
	r.top.Cleanup(func() { p.stop(20 * time.Second) })
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to die.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM, waits up to d, then kills; it returns the exit error.
func (p *proc) stop(d time.Duration) error {
	if !p.running() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(d):
		p.t.Logf("%s did not stop within %s of SIGTERM: killing it", p.name, d)
		p.kill()
	}
	return p.err
}

// deadLetters is what the dead-letter queue held, by kind.
type deadLetters struct {
	Raw         int            // messages in the queue, redeliveries included
	Distinct    int            // distinct messages (by body)
	Whole       int            // rejected whole for what the message is (kind rejected, not for its samples)
	AllRejected int            // kind rejected because every sample was (a one-reading generation-1 message)
	Partial     int            // kind partial: some samples stored, some rejected
	Samples     int            // rejected samples: x-rejected-samples of partials plus those of AllRejected
	NoReason    int            // letters without an x-reason header
	ByReason    map[string]int // distinct letters per reason class (the reason up to its first ':')
	ByKind      map[string]int // letters rejected whole, per the simulator's sim_bad header (kept from the original)
}

var samplesRejected = regexp.MustCompile(`^(\d+) of (\d+) samples rejected`)

// drainDeadLetters consumes every message of the dead-letter queue and
// classifies the distinct ones by their x-kind and x-reason headers.
func drainDeadLetters(t *testing.T, amqpURL, queue string) deadLetters {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("dead letters: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("dead letters: %v", err)
	}
	defer ch.Close()
	dl := deadLetters{ByReason: map[string]int{}, ByKind: map[string]int{}}
	seen := map[[32]byte]bool{}
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("dead letters: get from %s: %v", queue, err)
		}
		if !ok {
			break
		}
		dl.add(t, seen, d.MessageId, d.Body, func(k string) string {
			if v, ok := d.Headers[k]; ok {
				return fmt.Sprint(v)
			}
			return ""
		})
	}
	return dl
}

// add classifies one dead letter (id, body, header lookup); copies of a
// letter already seen (by body) count only in Raw.
func (dl *deadLetters) add(t *testing.T, seen map[[32]byte]bool, id string, body []byte, h func(string) string) {
	dl.Raw++
	sum := sha256.Sum256(body)
	if seen[sum] {
		return
	}
	seen[sum] = true
	dl.Distinct++
	reason := h("x-reason")
	if reason == "" {
		dl.NoReason++
	}
	class := reason
	if i := strings.IndexByte(class, ':'); i >= 0 {
		class = class[:i]
	}
	switch kind := h("x-kind"); kind {
	case "partial":
		dl.Partial++
		n, err := strconv.Atoi(h("x-rejected-samples"))
		if err != nil || n < 1 {
			t.Errorf("partial dead letter %s: x-rejected-samples %q", id, h("x-rejected-samples"))
		}
		dl.Samples += n
		class = "partial"
	case "rejected":
		if m := samplesRejected.FindStringSubmatch(reason); m != nil {
			n, _ := strconv.Atoi(m[1])
			dl.AllRejected++
			dl.Samples += n
			class = "every sample rejected"
		} else {
			dl.Whole++
			dl.ByKind[h("sim_bad")]++
		}
	default:
		t.Errorf("dead letter %s: x-kind %q, want rejected or partial", id, kind)
	}
	dl.ByReason[class]++
}

// queueState returns the messages and consumers of a queue (AMQP passive
// declare: exact, unlike the management API's sampled figures).
func queueState(amqpURL, queue string) (messages, consumers int, err error) {
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("inspect queue %s: %w", queue, err)
	}
	return q.Messages, q.Consumers, nil
}

// deleteQueues removes the run's exchanges and queues from the shared broker.
func deleteQueues(t *testing.T, amqpURL string, queues, exchanges []string) {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer ch.Close()
	for _, q := range queues {
		_, _ = ch.QueueDelete(q, false, false, false)
	}
	for _, x := range exchanges {
		_ = ch.ExchangeDelete(x, false, false)
	}
}
