package window

import (
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	from := time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC)
	to := time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)
	got := Split(from, to, time.Hour)
	if len(got) != 3 {
		t.Fatalf("Split gave %d windows, want 3: %v", len(got), got)
	}
	if !got[0].From.Equal(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)) || !got[2].To.Equal(to) {
		t.Fatalf("Split bounds wrong: %v", got)
	}
	if Split(to, from, time.Hour) != nil {
		t.Fatal("Split of an empty range should be nil")
	}
}

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		from, to string
		wantF    time.Time
		wantErr  bool
	}{
		{"24h", "now", now.Add(-24 * time.Hour), false},
		{"2026-11-21T10:00:00+01:00", "", time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), false},
		{"now", "1h", time.Time{}, true},
		{"yesterday", "now", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.from+"→"+tt.to, func(t *testing.T) {
			f, _, err := ParseRange(tt.from, tt.to, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !f.Equal(tt.wantF) {
				t.Fatalf("from = %v, want %v", f, tt.wantF)
			}
		})
	}
}
