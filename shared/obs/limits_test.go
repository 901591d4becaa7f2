package obs_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/testenv"
)

// start runs a server with tight limits and a /echo handler that reads
// the whole body, and returns its address.
func start(t *testing.T, l obs.Limits) string {
	t.Helper()
	s := obs.NewServer("127.0.0.1:0", obs.NewRegistry(), discard())
	s.SetLimits(l)
	s.Handle("/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		_, _ = w.Write(b)
	}))
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s.Addr()
}

// closedWithin reports whether the server closes conn within d while the
// client keeps trickling one byte every 50 ms (trickle false: stays idle).
func closedWithin(conn net.Conn, d time.Duration, trickle bool) bool {
	deadline := time.Now().Add(d)
	_ = conn.SetReadDeadline(deadline)
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn) // returns on EOF/RST from the server, or the deadline
		close(closed)
	}()
	for {
		select {
		case <-closed:
			return time.Now().Before(deadline)
		case <-time.After(50 * time.Millisecond):
			if trickle {
				if _, err := conn.Write([]byte("x")); err != nil {
					<-closed
					return time.Now().Before(deadline)
				}
			}
		}
	}
}

// Slow bodies, slow headers and idle keep-alives are cut off by the
// server, and a connection cap holds: a normal request is answered after
// the slow clients that filled every slot are dropped.
func TestSlowClientsAreCutOff(t *testing.T) {
	l := obs.Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond,
		WriteTimeout: time.Second, IdleTimeout: 400 * time.Millisecond, MaxConns: 3}
	addr := start(t, l)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	t.Run("slow body", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
		if !closedWithin(c, 3*time.Second, true) {
			t.Fatal("a client trickling its body kept the connection for 3 s")
		}
	})
	t.Run("slow headers", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		if !closedWithin(c, 3*time.Second, true) {
			t.Fatal("a client trickling its headers kept the connection for 3 s")
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial()
		fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthy: %v %v", resp, err)
		}
		if !closedWithin(c, 3*time.Second, false) {
			t.Fatal("an idle keep-alive connection stayed open for 3 s")
		}
	})
	t.Run("connection cap", func(t *testing.T) {
		for range l.MaxConns * 3 {
			c := dial()
			fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
			go func() { _ = closedWithin(c, 10*time.Second, true) }()
		}
		testenv.Eventually(t, 10*time.Second, "a normal request answered past the slow clients", func() error {
			cl := &http.Client{Timeout: 2 * time.Second}
			resp, err := cl.Post("http://"+addr+"/echo", "text/plain", strings.NewReader("hello"))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "hello" {
				return fmt.Errorf("answer %q", b)
			}
			return nil
		})
	})
	t.Run("big headers", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "http://"+addr+"/-/healthy", nil)
		req.RequestURI = ""
		req.Header.Set("X-Big", strings.Repeat("a", 200<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("200 KiB of headers: %s, want 431", resp.Status)
		}
	})
}

// TestConnectionCapHolds: with every slot taken, a further client is not
// served; it is served as soon as one slot frees.
func TestConnectionCapHolds(t *testing.T) {
	l := obs.Limits{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second, MaxConns: 2}
	addr := start(t, l)
	var holders []net.Conn
	for range l.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		holders = append(holders, c)
	}
	answered := make(chan error, 1)
	go func() {
		client := &http.Client{Timeout: 8 * time.Second}
		resp, err := client.Post("http://"+addr+"/echo", "text/plain", strings.NewReader("x"))
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a request past the cap of %d connections was served at once (err %v)", l.MaxConns, err)
	case <-time.After(500 * time.Millisecond):
	}
	holders[0].Close()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("after a slot freed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting request was not served after a slot freed")
	}
}
