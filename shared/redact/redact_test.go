package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/flexipack/cutover/shared/redact"
)

const secret = "s3cr3t-P@ss:w/rd"

func TestURL(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"amqp", "amqp://guest:hunter2@127.0.0.1:5672/", "amqp://guest:xxxxx@127.0.0.1:5672/"},
		{"no password", "http://127.0.0.1:8086", "http://127.0.0.1:8086"},
		{"user only", "postgres://postgres@127.0.0.1/db?sslmode=disable", "postgres://postgres@127.0.0.1/db?sslmode=disable"},
		{"query password", "postgres://u@h/db?sslmode=disable&password=hunter2", "postgres://u@h/db?sslmode=disable&password=xxxxx"},
		{"key value dsn", "host=h user=u password=hunter2 dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"key value quoted", "host=h password='hun ter2' dbname=d", "host=h password=xxxxx dbname=d"},
		{"unparseable", "amqp://guest:hunter2@[::1:5672/%zz", "amqp://(unparseable URL)"},
		{"unparseable scheme", "ht tp://guest:hunter2@x/%zz", "(unparseable URL)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := redact.URL(c.in)
			if got != c.want {
				t.Fatalf("URL(%q) = %q, want %q", c.in, got, c.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Fatalf("URL(%q) = %q still holds the secret", c.in, got)
			}
		})
	}
}

func TestStringHidesSecretsInFreeText(t *testing.T) {
	for _, in := range []string{
		"dial amqp://guest:" + secret + "@127.0.0.1:5672/: connection refused",
		`influx: write to telemetry at http://admin:` + secret + `@127.0.0.1:8086 failed`,
		`parse "postgres://u:` + secret + `@h:5432/db": invalid port`,
		"cannot connect: host=h password=" + secret + " sslmode=disable",
		"GET /query?u=admin&p=x&token=" + secret,
	} {
		got := redact.String(in)
		if strings.Contains(got, secret) || strings.Contains(got, "rd@") {
			t.Errorf("String(%q) = %q still holds the secret", in, got)
		}
		if !strings.Contains(got, redact.Mask) {
			t.Errorf("String(%q) = %q: no mask", in, got)
		}
	}
	if got := redact.String("plain message with no secret"); got != "plain message with no secret" {
		t.Errorf("plain text changed: %q", got)
	}
}

var errBase = errors.New("base")

func TestErrorKeepsTheChain(t *testing.T) {
	err := redact.Error(fmt.Errorf("dial amqp://u:%s@h/: %w", secret, errBase))
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("Error kept the secret: %v", err)
	}
	if !errors.Is(err, errBase) {
		t.Fatalf("Error lost the chain: %v", err)
	}
	if redact.Error(nil) != nil {
		t.Fatal("Error(nil) != nil")
	}
}

func TestReplaceAttr(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: redact.ReplaceAttr}))
	u := "http://admin:" + secret + "@127.0.0.1:8086"
	log.Info("connecting to "+u, "url", u, "err", fmt.Errorf("ping %s: refused", u), "urls", []string{u})
	if strings.Contains(buf.String(), secret) {
		t.Fatalf("log line holds the secret: %s", buf.String())
	}
}
