package ingest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flexipack/cutover/producer/internal/ingest"
	"github.com/flexipack/cutover/shared/bus"
)

// checkingPublisher stores what it is given after checking what an AMQP
// broker requires of it: short strings (id, routing key, header names) of
// at most 255 bytes.
type checkingPublisher struct {
	mu   sync.Mutex
	msgs []bus.Message
	bad  string
}

func (p *checkingPublisher) Publish(_ context.Context, msgs []bus.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		if len(m.ID) > bus.MaxShortString || len(m.RoutingKey) > bus.MaxShortString {
			p.bad = "id or routing key over 255 bytes"
		}
		for k := range m.Headers {
			if len(k) > bus.MaxShortString {
				p.bad = "header name over 255 bytes"
			}
		}
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *checkingPublisher) Close() error { return nil }

// FuzzIngest posts arbitrary bodies with arbitrary X-Message-Id and
// Content-Type headers: the handler answers 202, 400 or 413 and nothing
// else, publishes exactly the body it acknowledged, byte for byte, and never
// hands the bus a message it cannot encode.
func FuzzIngest(f *testing.F) {
	f.Add([]byte(`<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:2" schemaVersion="2.1"><bsu:Unit serial="FP2-000001" site="S"/><bsu:Sample seq="1" time="2026-11-20T00:00:00Z"><bsu:SoC>55.2</bsu:SoC></bsu:Sample></bsu:Telemetry>`), "", "application/xml")
	f.Add([]byte(`<bsu:Telemetry xmlns:bsu="urn:flexipack:telemetry:2" schemaVersion="2.1"><bsu:Unit serial="`+string(bytes.Repeat([]byte("9"), 300))+`" site="S"/><bsu:Sample seq="1" time="2026-11-20T00:00:00Z"><bsu:SoC>1</bsu:SoC></bsu:Sample></bsu:Telemetry>`), string(bytes.Repeat([]byte("m"), 300)), "text/xml")
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>`), "id\x00\xff", "")
	f.Add([]byte("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>"), "é", "application/json")
	f.Add([]byte{}, "", "")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, body []byte, id, contentType string) {
		pub := &checkingPublisher{}
		h := ingest.NewHandler(pub, ingest.Options{ConfirmTimeout: time.Second}, logger, nil)
		req := httptest.NewRequest(http.MethodPost, "/ingest", bytes.NewReader(body))
		req.Header.Set(ingest.HeaderMessageID, id)
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusAccepted:
			if len(pub.msgs) != 1 || !bytes.Equal(pub.msgs[0].Body, body) {
				t.Fatalf("202 but published %d messages (body kept: %v)", len(pub.msgs), len(pub.msgs) == 1 && bytes.Equal(pub.msgs[0].Body, body))
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(pub.msgs) != 0 {
				t.Fatalf("%d but published", rec.Code)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if pub.bad != "" {
			t.Fatalf("the bus was handed a message it cannot encode: %s", pub.bad)
		}
	})
}
