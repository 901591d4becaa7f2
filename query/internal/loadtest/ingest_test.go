package loadtest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
)

// ingest is a live stream into both stores: the real producer publishing
// a simulated fleet with confirms, the real consumer in dual-write.
type ingest struct {
	b        *testing.B
	dsn      string
	amqpURL  string
	topo     rabbit.Topology
	since    time.Time
	producer *exec.Cmd
	consumer *exec.Cmd
	pub      *rabbit.Publisher
	conn     *rabbit.Conn
	alone    string // the CPU the stream used with no reads
}

const probeUnit = "probe-0001"

func startIngest(ctx context.Context, b *testing.B, dsn string, icfg influx.Config, rate int) *ingest {
	b.Helper()
	bin := b.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./producer", "./consumer")
	build.Dir = filepath.Join("..", "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build producer and consumer: %v: %s", err, out)
	}
	state, err := cutover.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer state.Close()
	st, err := state.Current(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// The consumer writes both stores; QUERY_BENCH_INGEST_PHASE=legacy
	// writes PostgreSQL only, which shows what InfluxDB's own write load
	// does to its reads.
	to := cutover.Phase(cmp.Or(os.Getenv("QUERY_BENCH_INGEST_PHASE"), string(cutover.DualWrite)))
	if _, err := state.Transition(ctx, cutover.Change{Kind: "advance", From: st.Phase, To: to, ExpectVersion: st.Version, Actor: "bench"}); err != nil {
		b.Fatal(err)
	}
	name := testenv.Name(b, "qb")
	in := &ingest{b: b, dsn: dsn, amqpURL: testenv.RabbitURL(b), since: time.Now().UTC().Add(-time.Minute),
		topo: rabbit.Topology{Exchange: name + ".x", Queue: name + ".q", QueueType: "classic", BindingKey: "bsu.#", DeadExchange: name + ".dlx", DeadQueue: name + ".dead"}}
	b.Cleanup(in.deleteTopology)
	env := append(os.Environ(), "AMQP_URL="+in.amqpURL, "AMQP_EXCHANGE="+in.topo.Exchange, "AMQP_QUEUE="+in.topo.Queue,
		"AMQP_DEAD_EXCHANGE="+in.topo.DeadExchange, "AMQP_DEAD_QUEUE="+in.topo.DeadQueue, "PG_DSN="+dsn, "STATE_DSN="+dsn,
		"INFLUX_URL="+icfg.URL, "INFLUX_BUCKET="+icfg.Bucket, "INFLUX_TOKEN="+icfg.Token, "HTTP_ADDR=", "LOG_FORMAT=json", "LOG_LEVEL=warn")
	logs := filepath.Join(bin, "ingest.log")
	logf, err := os.Create(logs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = logf.Close() })
	in.consumer = exec.Command(filepath.Join(bin, "consumer"), "run", "--consumer-id", "bench")
	in.producer = exec.Command(filepath.Join(bin, "producer"), "simulate", "--units", fmt.Sprint(rate), "--cadence", "1s", "--time-scale", "1",
		"--rate", fmt.Sprint(rate), "--gen1-share", "0", "--offline-prob", "-1", "--progress", "1h")
	for _, c := range []*exec.Cmd{in.consumer, in.producer} {
		c.Env, c.Stdout, c.Stderr = env, io.Discard, logf
		// Services of their own: a session each (so their own scheduling
		// group where the kernel groups by session), not the benchmark's.
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
	}
	lowestPriority(b, in.producer.Process.Pid)
	in.conn, err = rabbit.Dial(ctx, in.amqpURL, name+"-probe", quiet)
	if err != nil {
		b.Fatal(err)
	}
	in.pub, err = rabbit.NewPublisher(ctx, in.conn, in.topo, rabbit.PublisherOptions{Window: 64, Name: "probe"}, quiet, nil)
	if err != nil {
		b.Fatal(err)
	}
	// The stream reaches its rate, and InfluxDB has created its units' series
	// (thousands of new series at once): the rows measure a running stream.
	time.Sleep(25 * time.Second)
	cpu, started := cpuTimes(), time.Now()
	time.Sleep(20 * time.Second)
	in.alone = cpuUse(cpu, cpuTimes(), time.Since(started))
	return in
}

// lowestPriority lets the producer simulator run only on CPU nothing else
// wants: it stands in for the fleet's units, which are not on the server,
// and its rate is reported (the ingest rows say what it achieved). Where
// the kernel groups tasks by session, the group's nice value counts.
func lowestPriority(b *testing.B, pid int) {
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19); err != nil {
		b.Fatalf("renice the producer: %v", err)
	}
	group := fmt.Sprintf("/proc/%d/autogroup", pid)
	if _, err := os.Stat(group); err == nil {
		if err := os.WriteFile(group, []byte("19"), 0); err != nil {
			b.Fatalf("renice the producer's scheduling group: %v", err)
		}
	}
}

// count returns the readings the stream wrote to the legacy store so far.
func (in *ingest) count(ctx context.Context) int64 {
	conn, err := pgx.Connect(ctx, in.dsn)
	if err != nil {
		in.b.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM legacy.readings WHERE ts >= $1`, in.since).Scan(&n); err != nil {
		in.b.Fatal(err)
	}
	return n
}

// backlog returns how many messages wait in the stream's queue.
func (in *ingest) backlog(context.Context) int {
	conn, err := amqp.Dial(in.amqpURL)
	if err != nil {
		in.b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		in.b.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(in.topo.Queue, true, false, false, false, nil)
	if err != nil {
		in.b.Fatal(err)
	}
	return q.Messages
}

// waitCaughtUp waits (up to max) until under a second of the stream
// (rate messages) waits in the queue, and returns the backlog then.
func (in *ingest) waitCaughtUp(ctx context.Context, rate int, max time.Duration) int {
	deadline := time.Now().Add(max)
	for {
		n := in.backlog(ctx)
		if n < rate || time.Now().After(deadline) || ctx.Err() != nil {
			return n
		}
		time.Sleep(time.Second)
	}
}

// probe publishes a reading of probeUnit every 200 ms for d, and returns
// for each the time from the broker's confirm to /latest showing it.
func (in *ingest) probe(ctx context.Context, baseURL string, d time.Duration) []time.Duration {
	var out []time.Duration
	client := &http.Client{Timeout: 5 * time.Second}
	end := time.Now().Add(d)
	for seq := 0; time.Now().Before(end) && ctx.Err() == nil; seq++ {
		t := time.Now().UTC().Truncate(time.Millisecond)
		msg := bus.Message{ID: fmt.Sprintf("probe-%d", seq), Key: probeUnit, RoutingKey: rabbit.RoutingKey(2, probeUnit),
			Headers: map[string]string{bus.HeaderUnit: probeUnit, bus.HeaderGeneration: "2", bus.HeaderSamples: "1"}, Body: gen2(probeUnit, seq, t)}
		if err := in.pub.Publish(ctx, []bus.Message{msg}); err != nil {
			in.b.Fatalf("probe: publish: %v", err)
		}
		confirmed := time.Now()
		want := t.Format("2006-01-02T15:04:05.000Z")
		for time.Since(confirmed) < 10*time.Second {
			if latest(ctx, client, baseURL) >= want {
				out = append(out, time.Since(confirmed))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return out
}

func latest(ctx context.Context, c *http.Client, baseURL string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/v1/units/"+probeUnit+"/latest", nil)
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var rec struct {
		Time string `json:"time"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&rec) != nil {
		return ""
	}
	return rec.Time
}

// gen2 is a generation-2 message with one sample of unit at t.
func gen2(unit string, seq int, t time.Time) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:2" schemaVersion="2.1"><bsu:Unit serial="%s" site="probe site" model="FlexiPack-250" firmware="2.4.1"/><bsu:Sample seq="%d" time="%s"><bsu:SoC>55.2</bsu:SoC><bsu:Power unit="kW">-9.99</bsu:Power><bsu:Mode>discharging</bsu:Mode></bsu:Sample></bsu:Telemetry>`,
		unit, seq, t.Format("2006-01-02T15:04:05.000Z07:00"))
}

// stop ends the stream: the producer first, then the consumer drains.
func (in *ingest) stop() {
	_ = in.pub.Close()
	_ = in.conn.Close()
	for _, c := range []*exec.Cmd{in.producer, in.consumer} {
		_ = c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = c.Process.Kill()
			<-done
		}
	}
}

func (in *ingest) deleteTopology() {
	conn, err := amqp.Dial(in.amqpURL)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	_, _ = ch.QueueDelete(in.topo.Queue, false, false, false)
	_, _ = ch.QueueDelete(in.topo.DeadQueue, false, false, false)
	_ = ch.ExchangeDelete(in.topo.Exchange, false, false)
	_ = ch.ExchangeDelete(in.topo.DeadExchange, false, false)
}
