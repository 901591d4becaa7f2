package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

func TestParseFlagsRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-topics", "telemetry"}, "want name:partitions"},
		{[]string{"-topics", "telemetry:0"}, "want name:partitions"},
		{[]string{"-tls-cert", "c.pem"}, "go together"},
		{[]string{"-sasl-user", "u"}, "needs -sasl-password"},
		{[]string{"-sasl-user", "u", "-sasl-password", "p", "-sasl-mechanism", "GSSAPI"}, "want PLAIN"},
		{[]string{"-default-partitions", "0"}, "want 1..10000"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := clusterOpts(config{Addr: "0.0.0.0:9092"}, io.Discard); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a non-loopback address: err %v", err)
	}
}

// The broker starts on the address given, seeds its topics and answers the
// metadata request that services.sh uses as its health check; it stops
// when its context ends.
func TestServeAndCheck(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", addr, "-topics", "a:3,b.dead:2"}, io.Discard, io.Discard) }()
	var out bytes.Buffer
	testenv.Eventually(t, 10*time.Second, "broker answers metadata", func() error {
		out.Reset()
		return run(context.Background(), []string{"-check", addr, "-timeout", "1s"}, &out, io.Discard)
	})
	if got := out.String(); !strings.Contains(got, "1 broker(s), 2 topic(s) a:3,b.dead:2") {
		t.Fatalf("check printed %q", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("broker did not stop")
	}
	if err := run(context.Background(), []string{"-check", addr, "-timeout", "500ms"}, io.Discard, io.Discard); err == nil {
		t.Fatal("check of a stopped broker succeeded")
	}
}
