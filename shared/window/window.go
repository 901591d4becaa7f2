// Package window splits time ranges into aligned windows and carries the
// per-unit, per-window reading counts that gap detection and verify compare.
package window

import (
	"fmt"
	"time"
)

// Count is the number of distinct readings one unit has in one window.
type Count struct {
	Unit  string
	Start time.Time // aligned window start, UTC
	N     int64
}

// Key identifies a (unit, window) pair.
type Key struct {
	Unit  string
	Start time.Time
}

// Key returns the count's (unit, window) identity.
func (c Count) Key() Key { return Key{Unit: c.Unit, Start: c.Start} }

// Align returns the start of the window of width d that holds t, as
// time.Truncate cuts it (from the zero time; for widths that divide a day,
// 1h windows start on the hour, UTC). Both stores cut windows at these instants.
func Align(t time.Time, d time.Duration) time.Time {
	return t.UTC().Truncate(d)
}

// Span is a half-open time range [From, To).
type Span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// String formats the span for logs and tables.
func (s Span) String() string {
	return fmt.Sprintf("[%s, %s)", s.From.UTC().Format(time.RFC3339), s.To.UTC().Format(time.RFC3339))
}

// Contains reports whether t lies in [From, To).
func (s Span) Contains(t time.Time) bool { return !t.Before(s.From) && t.Before(s.To) }

// Split returns the aligned windows of width d that cover [from, to): the first
// starts at Align(from, d), the last ends at or after to.
func Split(from, to time.Time, d time.Duration) []Span {
	if d <= 0 || !from.Before(to) {
		return nil
	}
	var out []Span
	for s := Align(from, d); s.Before(to); s = s.Add(d) {
		out = append(out, Span{From: s, To: s.Add(d)})
	}
	return out
}

// ParseRange parses --from/--to values: RFC 3339 times, or durations before
// now such as "24h" or "90m" (meaning now minus the duration), or "now".
func ParseRange(from, to string, now time.Time) (time.Time, time.Time, error) {
	f, err := parseTime(from, now)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("--from: %w", err)
	}
	t, err := parseTime(to, now)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("--to: %w", err)
	}
	if !f.Before(t) {
		return time.Time{}, time.Time{}, fmt.Errorf("--from %s is not before --to %s", f.Format(time.RFC3339), t.Format(time.RFC3339))
	}
	return f, t, nil
}

func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" || s == "now" {
		return now.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time, a duration before now (e.g. 24h), nor \"now\"", s)
}
