package obs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/redact/secrettest"
	"github.com/flexipack/cutover/shared/testenv"
)

var planted = "amqp://guest:" + secrettest.Secret + "@127.0.0.1:1/"

// /-/ready names the failing check without the password its error quotes.
func TestReadyBodyHidesPasswords(t *testing.T) {
	s := obs.NewServer("127.0.0.1:0", obs.NewRegistry(), discard())
	s.AddReadiness(obs.ReadinessCheck{Name: "rabbitmq", Check: func(context.Context) error {
		return fmt.Errorf("dial %s: connection refused", planted)
	}})
	body := get(t, s, "/-/ready")
	secrettest.Check(t, "/-/ready", body)
	secrettest.Check(t, "/metrics", get(t, s, "/metrics"))
}

// Every log line, whatever attribute carries the URL, hides the password.
func TestLoggerHidesPasswords(t *testing.T) {
	var buf bytes.Buffer
	for _, format := range []string{"json", "text"} {
		l, err := obs.NewLogger(&buf, "debug", format)
		if err != nil {
			t.Fatal(err)
		}
		l.Info("dialling "+planted, "url", planted, "err", fmt.Errorf("dial %s: refused", planted))
	}
	secrettest.Check(t, "log", buf.String())
}

func get(t *testing.T, s *obs.Server, path string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var body string
	testenv.Eventually(t, 5*time.Second, "GET "+path, func() error {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err
	})
	return body
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
