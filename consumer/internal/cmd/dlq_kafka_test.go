package cmd

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/consumer/internal/consumertest"
	"github.com/flexipack/cutover/consumer/internal/dlq"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/kafka"
	"github.com/flexipack/cutover/shared/source"
	"github.com/flexipack/cutover/shared/testenv"
)

// runDLQ runs 'consumer dlq ...' in process and returns stdout, stderr and
// the exit status.
func runDLQ(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	app := New()
	var out, errw bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errw
	code := cliapp.ExitStatus(app, app.RunContext(testenv.Context(t, 60*time.Second), append([]string{"consumer", "dlq"}, args...)))
	return out.String(), errw.String(), code
}

// 'consumer dlq list|replay --bus kafka' on the local stack's broker: list
// in JSON, a dry run that changes nothing, a replay that skips the letter
// from another topic (exit 3) and replays the rest, and a rerun that finds
// nothing new.
func TestDLQCommandsKafka(t *testing.T) {
	kt := testenv.Kafka(t, 2)
	ctx := testenv.Context(t, 60*time.Second)
	w, err := dlq.NewKafkaWriter(kafka.Config{Brokers: kt.Brokers}, kt.Dead, "c1", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	letters := []dlq.Letter{
		{Kind: dlq.KindRejected, Reason: "unknown root element", Msg: source.Message{ID: "a", RoutingKey: kt.Topic, Key: "FP2-1", Body: consumertest.Gen2("FP2-1", 1, time.Now())}},
		{Kind: dlq.KindRejected, Reason: "unknown root element", Msg: source.Message{ID: "b", RoutingKey: kt.Topic, Key: "FP2-2", Body: consumertest.Gen2("FP2-2", 1, time.Now())}},
		{Kind: dlq.KindRejected, Reason: "unknown root element", Msg: source.Message{ID: "c", RoutingKey: "elsewhere", Key: "FP2-3", Body: consumertest.Gen2("FP2-3", 1, time.Now())}},
	}
	if err := w.Write(ctx, letters); err != nil {
		t.Fatal(err)
	}
	common := []string{"--bus", "kafka", "--kafka-brokers", strings.Join(kt.Brokers, ","), "--kafka-topic", kt.Topic, "--kafka-dead-topic", kt.Dead,
		"--kafka-replay-group", kt.Group + "-replay"}

	out, errs, code := runDLQ(t, append([]string{"list", "-o", "json"}, common...)...)
	var list struct {
		Topic   string      `json:"topic"`
		Read    int         `json:"read"`
		Entries []dlq.Entry `json:"entries"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || list.Read != 3 || len(list.Entries) != 3 || list.Topic != kt.Dead {
		t.Fatalf("list: exit %d, %s\n%s", code, out, errs)
	}

	out, errs, code = runDLQ(t, append([]string{"replay", "--unit", "FP2-1"}, common...)...)
	if code != 0 || !strings.Contains(out, "dry run: would replay 1 of 3") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = runDLQ(t, append([]string{"replay", "--execute"}, common...)...)
	if code != cliapp.ExitNoRecords || !strings.Contains(out, "replayed 2 of 3") || !strings.Contains(out, `from topic "elsewhere"`) {
		t.Fatalf("replay: exit %d, want %d\n%s\n%s", code, cliapp.ExitNoRecords, out, errs)
	}
	out, errs, code = runDLQ(t, append([]string{"replay", "--execute", "-o", "json"}, common...)...)
	var res dlq.ReplayResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Read != 0 {
		t.Fatalf("second replay: exit %d, %s\n%s", code, out, errs)
	}

	if _, errs, code := runDLQ(t, "list", "--bus", "kafka", "--kafka-brokers", "127.0.0.1:9092", "--kafka-sasl-mechanism", "GSSAPI",
		"--kafka-sasl-username", "u", "--kafka-sasl-password", "pw-secret"); code != cliapp.ExitFailure || !strings.Contains(errs, "GSSAPI") || strings.Contains(errs, "pw-secret") {
		t.Fatalf("bad SASL mechanism: exit %d, %s", code, errs)
	}
}
