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
// CA verification and client certificate are exercised for real without a
// second RabbitMQ node. It returns the amqps:// URL.
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
