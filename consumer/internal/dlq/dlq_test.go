package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/bus"
	"github.com/flexipack/cutover/shared/source"
)

func TestLetterMessage(t *testing.T) {
	now := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	earlier := "2026-11-01T00:00:00Z"
	tests := []struct {
		name                  string
		letter                Letter
		wantFirst, wantRK     string
		wantRejected, wantKey string
	}{
		{"first failure", Letter{Msg: source.Message{ID: "m1", RoutingKey: "bsu.v2.FP2-1", Headers: map[string]any{"unit": "FP2-1"}, Body: []byte("x")}, Kind: KindRejected, Reason: "not well-formed"},
			now.Format(time.RFC3339), "bsu.v2.FP2-1", "", "FP2-1"},
		// A replayed letter arrives under its original key; a header naming
		// another key is the message's own (forgeable) and never routes.
		{"replayed keeps first failure, routes by the delivery's key", Letter{Msg: source.Message{RoutingKey: "bsu.v2.other", Headers: map[string]any{HeaderFirstFailure: earlier, HeaderRoutingKey: "bsu.v2.FP2-9", HeaderRejected: "3"}}, Kind: KindRejected, Reason: "r"},
			earlier, "bsu.v2.other", "", ""},
		{"forged future first failure replaced", Letter{Msg: source.Message{RoutingKey: "bsu.v2.x", Headers: map[string]any{HeaderFirstFailure: "2099-01-01T00:00:00Z"}}, Kind: KindRejected, Reason: "r"},
			now.Format(time.RFC3339), "bsu.v2.x", "", ""},
		{"partial counts samples", Letter{Msg: source.Message{RoutingKey: "bsu.v2.FP2-2", Key: "FP2-2"}, Kind: KindPartial, Reason: "2 of 7", Rejected: 2},
			now.Format(time.RFC3339), "bsu.v2.FP2-2", "2", "FP2-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.letter.Message("c1", now)
			h := m.Headers
			if h[HeaderFirstFailure] != tt.wantFirst || h[HeaderRoutingKey] != tt.wantRK || m.RoutingKey != tt.wantRK {
				t.Fatalf("headers %v, routing key %q", h, m.RoutingKey)
			}
			if h[HeaderKind] != tt.letter.Kind || h[HeaderReason] != tt.letter.Reason || h[HeaderConsumer] != "c1" {
				t.Fatalf("headers %v", h)
			}
			if h[HeaderRejected] != tt.wantRejected || m.Key != tt.wantKey {
				t.Fatalf("rejected %q key %q", h[HeaderRejected], m.Key)
			}
		})
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", 10) // 2 bytes each
	got := truncate(s, 5)
	if !strings.HasPrefix(got, "éé") || strings.ContainsRune(got, '\uFFFD') || !strings.HasSuffix(got, "(truncated)") {
		t.Fatalf("truncate = %q", got)
	}
	if truncate("short", 10) != "short" {
		t.Fatal("short string changed")
	}
}

func TestFilterAndUnit(t *testing.T) {
	e := Entry{Kind: KindPartial, Reason: "3 of 7 samples rejected: SoC: 140 outside 0..100", Unit: "FP2-1"}
	tests := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Kind: KindPartial, Unit: "FP2-1", Reason: "outside"}, true},
		{Filter{Reason: "SOC: 140"}, true},
		{Filter{Kind: KindRejected}, false},
		{Filter{Unit: "FP2-2"}, false},
		{Filter{Reason: "namespace"}, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(&e); got != tt.want {
			t.Errorf("%+v.Match = %v, want %v", tt.f, got, tt.want)
		}
	}
	if u := UnitOf(nil, "bsu.v2.FP2-7"); u != "FP2-7" {
		t.Errorf("UnitOf routing key = %q", u)
	}
	if u := UnitOf(map[string]string{"unit": "U"}, "x"); u != "U" {
		t.Errorf("UnitOf header = %q", u)
	}
	if u := UnitOf(nil, "other.key"); u != "" {
		t.Errorf("UnitOf foreign key = %q", u)
	}
}

// refusingPublisher refuses as unpublishable every message carrying the
// header "refuse-me" (standing for whatever the bus cannot take), as
// rabbit.Publisher does: alone, the others stored. It records what it stored.
type refusingPublisher struct{ stored []bus.Message }

func (p *refusingPublisher) PublishTo(_ context.Context, _ string, msgs []bus.Message) error {
	var errs []error
	for _, m := range msgs {
		if _, bad := m.Headers["refuse-me"]; bad {
			errs = append(errs, &bus.MessageError{ID: bus.BoundID(m.ID), Err: fmt.Errorf("header name: %w", bus.ErrUnpublishable)})
			continue
		}
		p.stored = append(p.stored, m)
	}
	return errors.Join(errs...)
}

// Copied headers are bounded; a letter the bus still refuses goes out in its
// minimal form, and its neighbours as they are.
func TestWriteBoundsAndFallsBackToMinimal(t *testing.T) {
	many := map[string]any{}
	for i := range 100 {
		many[fmt.Sprintf("h%03d", i)] = strings.Repeat("v", 5000)
	}
	many[strings.Repeat("a", 300)] = "forged"
	letters := []Letter{
		{Msg: source.Message{ID: "ok", RoutingKey: "bsu.v2.a", Headers: many, Body: []byte("a")}, Kind: KindRejected, Reason: "r"},
		{Msg: source.Message{ID: strings.Repeat("i", 300), RoutingKey: "bsu.v2.b", Body: []byte("b")}, Kind: KindRejected, Reason: "r"},
	}
	m := letters[0].Message("c1", time.Now())
	if len(m.Headers) > maxCopiedHeaders+8 {
		t.Fatalf("%d headers copied", len(m.Headers))
	}
	for k, v := range m.Headers {
		if len(v) > maxCopiedHeaderSize+20 {
			t.Fatalf("header %s of %d bytes copied", k, len(v))
		}
	}
	if _, copied := m.Headers[strings.Repeat("a", 300)]; copied {
		t.Fatal("a 300-byte header name was copied")
	}
	// The publisher refuses letter 0 as is, so it must go out minimal.
	letters[0].Msg.Headers = map[string]any{"refuse-me": "1"}
	p := &refusingPublisher{}
	w := &RabbitWriter{Pub: p, Exchange: "dlx", ConsumerID: "c1"}
	if err := w.Write(context.Background(), letters); err != nil {
		t.Fatalf("write: %v", err)
	}
	if len(p.stored) != 2 {
		t.Fatalf("stored %d letters, want 2", len(p.stored))
	}
	min := p.stored[1]
	if string(min.Body) != "a" || min.Headers[HeaderReason] != "r" || min.Headers[HeaderRoutingKey] != "bsu.v2.a" || len(min.Headers) > 6 {
		t.Fatalf("minimal letter = %+v", min)
	}
}
