package dlq

import (
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/consumer/internal/source"
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
		{"replayed keeps first failure and original key", Letter{Msg: source.Message{RoutingKey: "bsu.v2.other", Headers: map[string]any{HeaderFirstFailure: earlier, HeaderRoutingKey: "bsu.v2.FP2-9", HeaderRejected: "3"}}, Kind: KindRejected, Reason: "r"},
			earlier, "bsu.v2.FP2-9", "", ""},
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
