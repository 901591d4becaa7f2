package rabbit_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/shared/rabbit"
	"github.com/flexipack/cutover/shared/testenv"
	"github.com/flexipack/cutover/shared/tlsconf"
	"github.com/flexipack/cutover/shared/tlsconf/tlstest"
)

// tlsFront terminates TLS (server certificate of ca, client certificates
// required) in front of the shared broker, so the client's amqps:// path,
// CA verification and client certificate are exercised against the shared
// broker; TestBrokerTLS covers RabbitMQ's own TLS listener. It returns the
// amqps:// URL.
func tlsFront(t *testing.T, ca *tlstest.CA, plainURL string) string {
	t.Helper()
	u, err := amqp.ParseURI(plainURL)
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				b, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c); b.Close() }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	u.Scheme, u.Host, u.Port = "amqps", "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	return u.String()
}

// amqps:// with --amqp-ca-file and a client certificate connects and
// publishes; without the client certificate, with another CA, or with TLS
// options on an amqp:// URL it is refused.
func TestDialTLS(t *testing.T) {
	plain := testenv.RabbitURL(t)
	ca := tlstest.New(t)
	url := tlsFront(t, ca, plain)
	cfg := func(f tlsconf.Files) *tls.Config {
		c, err := tlsconf.Config(f, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := cfg(tlsconf.Files{CAFile: ca.CAFile, CertFile: ca.ClientCert, KeyFile: ca.ClientKey})

	ctx := testenv.Context(t, 30*time.Second)
	conn, err := rabbit.DialTLS(ctx, url, testenv.Name(t, "tls"), good, testLogger(t))
	if err != nil {
		t.Fatalf("amqps with CA and client certificate: %v", err)
	}
	defer conn.Close()
	topo := testTopology(t, plain)
	p, err := rabbit.NewPublisher(ctx, conn, topo, rabbit.PublisherOptions{}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Publish(ctx, testMessages("FP2-000001", 0, 5)); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	if got := drain(t, ctx, plain, topo.Queue, 5); len(got) != 5 {
		t.Fatalf("%d messages arrived over TLS, want 5", len(got))
	}

	other := tlstest.New(t)
	for name, c := range map[string]*tls.Config{
		"no client certificate": cfg(tlsconf.Files{CAFile: ca.CAFile}),
		"another CA":            cfg(tlsconf.Files{CAFile: other.CAFile, CertFile: ca.ClientCert, KeyFile: ca.ClientKey}),
		"system roots":          nil,
	} {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := rabbit.DialTLS(dctx, url, "tls-bad", c, testLogger(t))
		cancel()
		if err == nil {
			t.Errorf("%s: connected", name)
		}
	}
	if _, err := rabbit.DialTLS(ctx, plain, "tls-plain", good, testLogger(t)); err == nil || !strings.Contains(err.Error(), "not amqps") {
		t.Errorf("TLS options on amqp://: %v", err)
	}
}

// RabbitMQ's own TLS listener (a private node: verify_peer,
// fail_if_no_peer_cert, no plain listener): with the CA and a client
// certificate a publish is confirmed and consumed back byte for byte over
// amqps://; without a client certificate, with a client certificate of
// another CA, trusting another CA, or speaking plain AMQP to the TLS port,
// the connection is refused.
func TestBrokerTLS(t *testing.T) {
	ca := tlstest.New(t)
	node := testenv.StartRabbitTLS(t, ca)
	cfg := func(f tlsconf.Files) *tls.Config {
		c, err := tlsconf.Config(f, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := cfg(tlsconf.Files{CAFile: ca.CAFile, CertFile: ca.ClientCert, KeyFile: ca.ClientKey})

	ctx := testenv.Context(t, 30*time.Second)
	pubConn, err := rabbit.DialTLS(ctx, node.URL, "tls-pub", good, testLogger(t))
	if err != nil {
		t.Fatalf("amqps with CA and client certificate: %v", err)
	}
	defer pubConn.Close()
	n := testenv.Name(t, "rb")
	topo := rabbit.Topology{Exchange: n + ".x", Queue: n + ".q", QueueType: "classic", BindingKey: "bsu.#",
		DeadExchange: n + ".dlx", DeadQueue: n + ".dead"}
	p, err := rabbit.NewPublisher(ctx, pubConn, topo, rabbit.PublisherOptions{}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := testMessages("FP2-000001", 0, 20)
	if err := p.Publish(ctx, msgs); err != nil {
		t.Fatalf("publish with confirms over TLS: %v", err)
	}

	subConn, err := rabbit.DialTLS(ctx, node.URL, "tls-sub", good, testLogger(t))
	if err != nil {
		t.Fatalf("second amqps connection: %v", err)
	}
	defer subConn.Close()
	ch, err := subConn.Channel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []amqp.Delivery
	consumeOn(t, ctx, ch, topo.Queue, func(d amqp.Delivery) bool { got = append(got, d); return len(got) >= len(msgs) })
	if len(got) != len(msgs) {
		t.Fatalf("consumed %d messages over TLS, want %d", len(got), len(msgs))
	}
	for i, d := range got {
		if d.MessageId != msgs[i].ID || string(d.Body) != string(msgs[i].Body) {
			t.Fatalf("message %d over TLS: id %q (%d bytes), want %q (%d bytes)", i, d.MessageId, len(d.Body), msgs[i].ID, len(msgs[i].Body))
		}
	}

	other := tlstest.New(t)
	refused := map[string]struct {
		url string
		cfg *tls.Config
	}{
		"no client certificate":            {node.URL, cfg(tlsconf.Files{CAFile: ca.CAFile})},
		"client certificate of another CA": {node.URL, cfg(tlsconf.Files{CAFile: ca.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey})},
		"server of an unknown CA":          {node.URL, cfg(tlsconf.Files{CAFile: other.CAFile, CertFile: ca.ClientCert, KeyFile: ca.ClientKey})},
		"plain AMQP to the TLS port":       {"amqp://guest:guest@" + node.Addr + "/", nil},
	}
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for name, tc := range refused {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			c, err := rabbit.DialTLS(dctx, tc.url, "tls-bad", tc.cfg, testLogger(t))
			if err == nil {
				c.Close()
			}
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: connected", name)
			continue
		}
		t.Logf("%s: refused: %v", name, err)
	}
	if err := errs["server of an unknown CA"]; err != nil && !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("server of an unknown CA: refused for another reason: %v", err)
	}
	// The refusals were the node's doing, not its death: it still serves.
	c, err := rabbit.DialTLS(ctx, node.URL, "tls-after", good, testLogger(t))
	if err != nil {
		t.Fatalf("amqps with CA and client certificate after the refusals: %v", err)
	}
	c.Close()
}
