package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flexipack/cutover/shared/testenv"
)

// TestServeCommand runs 'producer serve' and posts the contract's samples.
func TestServeCommand(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 60*time.Second)
	_, args := topoArgs(t, url)
	args = args[:len(args)-2] // serve has no --http-addr: everything is on --listen
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var logs string
	go func() {
		var err error
		_, logs, err = runApp(runCtx, append([]string{"serve", "--listen", addr}, args...)...)
		done <- err
	}()
	base := "http://" + addr
	testenv.Eventually(t, 20*time.Second, "serve ready", func() error {
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, logs)
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ready: %s", resp.Status)
		}
		return nil
	})
	for _, tc := range []struct {
		file string
		code int
	}{
		{"gen1-basic.xml", http.StatusAccepted},
		{"gen2-basic.xml", http.StatusAccepted},
		{"gen2-default-ns-batch.xml", http.StatusAccepted},
		{"gen2-partial-reject.xml", http.StatusAccepted}, // the consumer rejects samples, not the producer
		{"bad-not-well-formed.xml", http.StatusBadRequest},
		{"bad-entity-expansion.xml", http.StatusBadRequest},
	} {
		b, err := os.ReadFile("../../../testdata/contract/" + tc.file) // the contract samples, copied into the repo
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(base+"/ingest", "application/xml", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.file, resp.StatusCode, out, tc.code)
		}
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`producer_ingest_requests_total{code="202"} 4`, `rabbitmq_publisher_confirmed_total{publisher="producer"} 4`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
}

// TestSimulateKafka runs 'producer simulate --bus kafka' against an
// in-process Kafka and checks keys, per-unit order and the codec.
func TestSimulateKafka(t *testing.T) {
	const topic = "telemetry"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	ctx := testenv.Context(t, 60*time.Second)
	out, logs, err := runApp(ctx, "simulate", "--bus", "kafka", "--kafka-brokers", strings.Join(cluster.ListenAddrs(), ","), "--kafka-topic", topic,
		"--units", "30", "--count", "2000", "--time-scale", "0", "--seed", "9", "--offline-prob", "0", "--http-addr", "", "-o", "json")
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, logs)
	}
	s := parseSummary(t, out)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	d := newDecodeTally()
	lastSeq := map[string]int64{}
	for d.messages < int(s.Messages) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d", d.messages, s.Messages)
		}
		fs.EachRecord(func(r *kgo.Record) {
			before := d.records
			d.add(t, r.Value, nil)
			res, err := d.dec.Decode(r.Value)
			if err != nil || d.records != before+1 {
				t.Fatalf("record %s: %v", r.Key, err)
			}
			if string(r.Key) != res.Unit {
				t.Fatalf("key %q for unit %q", r.Key, res.Unit)
			}
			if seq := res.Records[0].Seq; seq <= lastSeq[res.Unit] {
				t.Fatalf("%s: seq %d after %d", res.Unit, seq, lastSeq[res.Unit])
			} else {
				lastSeq[strings.Clone(res.Unit)] = seq
			}
		})
	}
	if d.records != int(s.Readings) || d.bad != 0 || d.rejects != 0 || len(lastSeq) != 30 {
		t.Fatalf("decoded %d readings (%d bad, %d rejects) from %d units; summary %+v", d.records, d.bad, d.rejects, len(lastSeq), s)
	}
}
