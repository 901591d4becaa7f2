package cmd

import (
	"crypto/tls"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
)

// TestSimulateRabbitTLS runs 'producer simulate' with AMQP_URL=amqps://
// and the --amqp-ca-file, --amqp-cert-file and --amqp-key-file flags
// against RabbitMQ's own TLS listener (a private node that requires client
// certificates), and reads every message back over TLS.
func TestSimulateRabbitTLS(t *testing.T) {
	ca := tlstest.New(t)
	node := testenv.StartRabbitTLS(t, ca)
	ctx := testenv.Context(t, 60*time.Second)
	n := testenv.Name(t, "prodtls")
	t.Setenv("AMQP_URL", node.URL)
	out, logs, err := runApp(ctx, "simulate", "--units", "5", "--count", "200", "--time-scale", "0", "--seed", "3", "-o", "json",
		"--amqp-ca-file", ca.CAFile, "--amqp-cert-file", ca.ClientCert, "--amqp-key-file", ca.ClientKey,
		"--exchange", n+".x", "--queue", n+".q", "--dead-exchange", n+".dlx", "--dead-queue", n+".dead", "--http-addr", "")
	if err != nil {
		t.Fatalf("simulate over amqps: %v\n%s", err, logs)
	}
	if s := parseSummary(t, out); s.Messages != 200 {
		t.Fatalf("summary %+v, want 200 messages", s)
	}
	cert, err := tls.LoadX509KeyPair(ca.ClientCert, ca.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.DialTLS(node.URL, &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("consumer over amqps: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < 200 {
		d, ok, err := ch.Get(n+".q", true)
		if err != nil {
			t.Fatalf("get from %s.q over amqps: %v", n, err)
		}
		if !ok {
			if ctx.Err() != nil {
				t.Fatalf("%d of 200 messages in %s.q over amqps", len(seen), n)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if d.MessageId == "" || seen[d.MessageId] {
			t.Fatalf("message id %q empty or repeated after %d messages", d.MessageId, len(seen))
		}
		seen[d.MessageId] = true
	}
	q, err := ch.QueueDeclarePassive(n+".q", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s.q over amqps: %v", n, err)
	}
	if q.Messages != 0 {
		t.Errorf("%d messages left in %s.q after the 200 simulated", q.Messages, n)
	}
}
