package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flexipack/cutover/shared/testenv"
)

// refuseProduce makes the cluster answer every produce request with
// NOT_ENOUGH_REPLICAS (the acks=all write was not replicated) while refuse
// is set.
func refuseProduce(c *kfake.Cluster, refuse *atomic.Bool) {
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// TestServeKafka: 'producer serve --bus kafka' answers 202 only once the
// broker acknowledged the write with acks=all: while the broker refuses
// (not enough in-sync replicas) the answer is 503 and nothing is on the
// topic; once it accepts, 202 and the record is there, keyed by unit.
// Readiness is a metadata request: a topic the cluster does not have keeps
// serve from starting (unless it may create it, the default).
func TestServeKafka(t *testing.T) {
	const topic = "telemetry"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	ctx := testenv.Context(t, 90*time.Second)

	_, logs, err := runApp(ctx, "serve", "--bus", "kafka", "--kafka-brokers", brokers, "--kafka-topic", "no-such-topic", "--kafka-create-topics=false",
		"--listen", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "--connect-timeout", "2s")
	if err == nil || !strings.Contains(err.Error()+logs, "no-such-topic") {
		t.Fatalf("serve on a missing topic: err %v\n%s", err, logs)
	}

	// By default the producer creates a missing topic and starts.
	if _, logs, err := runApp(ctx, "simulate", "--bus", "kafka", "--kafka-brokers", brokers, "--kafka-topic", "fresh",
		"--units", "2", "--count", "10", "--time-scale", "0", "--http-addr", "", "-o", "json"); err != nil {
		t.Fatalf("simulate on a missing topic with --kafka-create-topics: %v\n%s", err, logs)
	}

	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, logs, err := runApp(runCtx, "serve", "--bus", "kafka", "--kafka-brokers", brokers, "--kafka-topic", topic, "--listen", addr, "--confirm-timeout", "3s")
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, logs)
		}
		done <- err
	}()
	base := "http://" + addr
	testenv.Eventually(t, 20*time.Second, "serve ready", func() error {
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
	body, err := os.ReadFile("../../../testdata/contract/gen2-basic.xml")
	if err != nil {
		t.Fatal(err)
	}
	post := func() int {
		resp, err := http.Post(base+"/ingest", "application/xml", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	var refuse atomic.Bool
	refuse.Store(true)
	refuseProduce(cluster, &refuse)
	if code := post(); code != http.StatusServiceUnavailable {
		t.Fatalf("broker refusing the write: %d, want 503", code)
	}
	refuse.Store(false)
	if code := post(); code != http.StatusAccepted {
		t.Fatalf("broker accepting: %d, want 202", code)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < 1 && ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		recs = append(recs, cl.PollFetches(fctx).Records()...)
		cancel()
	}
	// The 503'd message may also have been written by the writer's own
	// retries after its answer (at least once; the client retries it and
	// the stores upsert), but never a 202 without a record.
	if len(recs) < 1 || len(recs) > 2 || string(recs[0].Key) == "" || !bytes.Equal(recs[0].Value, body) {
		t.Fatalf("topic holds %d records (want the one accepted), first %+v", len(recs), recs)
	}
}
