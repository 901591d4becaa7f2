package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flexipack/cutover/producer/internal/ingest"
	"github.com/flexipack/cutover/shared/rabbit/rabbittest"
	"github.com/flexipack/cutover/shared/testenv"
)

// proxy forwards TCP connections to a target and can cut them all, to make
// the shared broker unreachable for one client without stopping it.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

// cut closes the listener and every proxied connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *proxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

const gen2 = `<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:2" schemaVersion="2.1"><bsu:Unit serial="FP2-%06d" site="North Yard, Bay 3"/><bsu:Sample seq="%d" time="%s"><bsu:SoC>55.2</bsu:SoC></bsu:Sample></bsu:Telemetry>`

func body(i int) []byte {
	return []byte(fmt.Sprintf(gen2, 1, i, time.Now().UTC().Add(-time.Duration(i)*time.Second).Format(time.RFC3339Nano)))
}

func post(t *testing.T, url string, b []byte) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(url, "application/xml", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), resp.Header
}

func TestIngestAcceptsOnlyWhatTheBrokerStored(t *testing.T) {
	url := testenv.RabbitURL(t)
	ctx := testenv.Context(t, 120*time.Second)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	n := testenv.Name(t, "ingest")
	topo := rabbittest.Topology(t, url, "ingest")
	u, err := amqp.ParseURI(url)
	if err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, fmt.Sprintf("%s:%d", u.Host, u.Port))
	u.Host, u.Port = "127.0.0.1", px.ln.Addr().(*net.TCPAddr).Port
	conn, pub := rabbittest.Publisher(t, ctx, u.String(), n, topo, logger, prometheus.NewRegistry())
	ready := func(ctx context.Context) error { return errors.Join(conn.Check(ctx), pub.Check(ctx)) }
	// fast answers 503 as soon as the broker is down; bounded waits for the
	// confirm and answers 503 when it does not come in time.
	fast := httptest.NewServer(ingest.NewHandler(pub, ingest.Options{Ready: ready, ConfirmTimeout: 5 * time.Second}, logger, prometheus.NewRegistry()))
	defer fast.Close()
	bounded := httptest.NewServer(ingest.NewHandler(pub, ingest.Options{ConfirmTimeout: time.Second}, logger, nil))
	defer bounded.Close()

	accepted := map[string]bool{}
	seq := 0
	postOK := func(srv *httptest.Server) {
		seq++
		b := body(seq)
		code, resp, _ := post(t, srv.URL+"/ingest", b)
		if code != http.StatusAccepted {
			t.Fatalf("POST seq %d: %d %s", seq, code, resp)
		}
		accepted[string(b)] = true
	}
	for i := 0; i < 20; i++ {
		postOK(fast)
		postOK(bounded)
	}

	// Client errors.
	if code, resp, _ := post(t, fast.URL, []byte("<bsu:Telemetry xmlns:bsu=")); code != http.StatusBadRequest || !strings.Contains(resp, "not well-formed") {
		t.Errorf("malformed: %d %s", code, resp)
	}
	if code, resp, _ := post(t, fast.URL, bytes.Repeat([]byte("x"), 1<<20+1)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d %s", code, resp)
	}
	if resp, err := http.Get(fast.URL); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp.StatusCode, err)
	}

	// The broker becomes unreachable: 503 with Retry-After, never 202.
	px.cut()
	testenv.Eventually(t, 10*time.Second, "503 while the broker is down", func() error {
		code, resp, h := post(t, fast.URL, body(9999))
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("%d %s", code, resp)
		}
		if h.Get("Retry-After") == "" {
			t.Fatalf("503 without Retry-After")
		}
		return nil
	})
	begin := time.Now()
	if code, resp, _ := post(t, bounded.URL, body(9998)); code != http.StatusServiceUnavailable {
		t.Fatalf("bounded handler while down: %d %s", code, resp)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("bounded handler took %s to give up", took)
	}

	// Back up: 202 again.
	px.restore(t)
	testenv.Eventually(t, 30*time.Second, "202 after the broker is back", func() error {
		seq++
		b := body(seq)
		code, resp, _ := post(t, fast.URL, b)
		if code != http.StatusAccepted {
			return fmt.Errorf("%d %s", code, resp)
		}
		accepted[string(b)] = true
		return nil
	})
	for i := 0; i < 10; i++ {
		postOK(bounded)
	}

	// Everything that got a 202 is in the queue.
	c2, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ch, err := c2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	testenv.Eventually(t, 20*time.Second, "every accepted message in the queue", func() error {
		for {
			d, ok, err := ch.Get(topo.Queue, true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if accepted[string(d.Body)] {
				delete(accepted, string(d.Body))
				found++
			}
			if d.Headers["unit"] != "FP2-000001" || d.Headers["samples"] != "1" || d.Headers["generation"] != "2" {
				t.Fatalf("headers %v", d.Headers)
			}
		}
		if len(accepted) > 0 {
			return fmt.Errorf("%d accepted messages not in the queue", len(accepted))
		}
		return nil
	})
	t.Logf("%d accepted messages all stored", found)
}
