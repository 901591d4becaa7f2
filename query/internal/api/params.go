package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flexipack/cutover/query/internal/reader"
)

// params reads a request's query parameters: each at most once, and none
// the endpoint does not know.
type params struct {
	q   url.Values
	now time.Time
}

func newParams(q url.Values, now time.Time, known ...string) (*params, error) {
	for k, v := range q {
		if !slices.Contains(known, k) {
			return nil, BadParam(k, "unknown parameter (this endpoint takes %s)", strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return nil, BadParam(k, "given %d times; give it once", len(v))
		}
	}
	return &params{q: q, now: now}, nil
}

func (p *params) str(name string, maxLen int) (string, error) {
	v := p.q.Get(name)
	if len(v) > maxLen {
		return "", BadParam(name, "longer than %d bytes", maxLen)
	}
	return v, nil
}

// timeParam parses an RFC 3339 time, a duration before now ("24h") or "now".
func (p *params) timeParam(name string, def time.Time) (time.Time, error) {
	s := p.q.Get(name)
	switch {
	case s == "":
		return def, nil
	case s == "now":
		return p.now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := parseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, BadParam(name, "%q: a negative duration; durations count back from now (24h = 24 hours ago)", s)
		}
		return p.now.Add(-d).UTC(), nil
	}
	return time.Time{}, BadParam(name, "%q is neither an RFC 3339 time, a duration before now (e.g. 24h, 30d), nor \"now\"", s)
}

// parseDuration is time.ParseDuration plus whole days ("30d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100000 {
			return 0, fmt.Errorf("%q: want whole days", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// timeRange parses from and to (defaults: 24h before now, now) and checks
// from < to and the span against maxRange.
func (p *params) timeRange(maxRange time.Duration) (from, to time.Time, err error) {
	if to, err = p.timeParam("to", p.now); err != nil {
		return
	}
	if from, err = p.timeParam("from", to.Add(-24*time.Hour)); err != nil {
		return
	}
	if !from.Before(to) {
		return from, to, BadParam("from", "%s is not before to (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	if maxRange > 0 && to.Sub(from) > maxRange {
		return from, to, OverLimit("from", maxRange.String(), "the range %s..%s spans %s, more than the limit of %s",
			from.Format(time.RFC3339), to.Format(time.RFC3339), to.Sub(from), maxRange)
	}
	return from, to, nil
}

func (p *params) intParam(name string, def, lo, hi int) (int, error) {
	s := p.q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, BadParam(name, "%q is not an integer", s)
	}
	if n < lo {
		return 0, BadParam(name, "%d is less than %d", n, lo)
	}
	if n > hi {
		return 0, OverLimit(name, strconv.Itoa(hi), "%s %d is more than the limit of %d", name, n, hi)
	}
	return n, nil
}

// step parses a step ("1h", "5m"): at least min, a multiple of multiple
// when that is not 0.
func (p *params) step(def, minStep, multiple time.Duration) (time.Duration, error) {
	s := p.q.Get("step")
	if s == "" {
		return def, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, BadParam("step", "%q is not a duration (e.g. 5m, 1h)", s)
	}
	if d < minStep {
		return 0, BadParam("step", "%s is shorter than %s", d, minStep)
	}
	if d%time.Second != 0 {
		return 0, BadParam("step", "%s is not a whole number of seconds", d)
	}
	if multiple > 0 && d%multiple != 0 {
		return 0, BadParam("step", "%s is not a multiple of %s", d, multiple)
	}
	return d, nil
}

// alignRange widens [from, to) to whole steps from the Unix epoch and
// checks the number of steps against maxPoints.
func alignRange(from, to time.Time, step time.Duration, maxPoints int) (time.Time, time.Time, error) {
	f := time.Unix(0, 0).Add(from.Sub(time.Unix(0, 0)).Truncate(step)).UTC()
	if f.After(from) { // before the epoch: Truncate rounds towards zero
		f = f.Add(-step)
	}
	t := time.Unix(0, 0).Add(to.Sub(time.Unix(0, 0)).Truncate(step)).UTC()
	if t.Before(to) {
		t = t.Add(step)
	}
	if n := int64(t.Sub(f) / step); n > int64(maxPoints) {
		return f, t, OverLimit("step", strconv.Itoa(maxPoints), "%s..%s at step %s is %d points per series, more than the limit of %d; use a longer step",
			f.Format(time.RFC3339), t.Format(time.RFC3339), step, n, maxPoints)
	}
	return f, t, nil
}

func (p *params) fields() ([]string, error) {
	s := p.q.Get("fields")
	if s == "" {
		return slices.Clone(reader.FloatFields), nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if _, err := reader.CheckField(f); err != nil {
			return nil, BadParam("fields", "%v", err)
		}
		if slices.Contains(out, f) {
			return nil, BadParam("fields", "%q listed twice", f)
		}
		out = append(out, f)
	}
	if len(out) > maxFields {
		return nil, OverLimit("fields", strconv.Itoa(maxFields), "%d fields, more than the limit of %d", len(out), maxFields)
	}
	return out, nil
}

const maxFields = 16

// cursor is the opaque position of the next page: the time of the last
// item sent and how many items at that time were sent.
type cursor struct {
	T int64 `json:"t"` // Unix milliseconds
	N int   `json:"n,omitempty"`
}

func (c cursor) encode() string {
	p, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(p)
}

// cursorParam decodes the cursor, which must lie in [from, to).
func (p *params) cursorParam(from, to time.Time) (*cursor, error) {
	s := p.q.Get("cursor")
	if s == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 100 {
		return nil, BadParam("cursor", "not a cursor this API returned (pass next_cursor back unchanged)")
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.N < 0 {
		return nil, BadParam("cursor", "not a cursor this API returned (pass next_cursor back unchanged)")
	}
	if t := time.UnixMilli(c.T); t.Before(from) || !t.Before(to) {
		return nil, BadParam("cursor", "points at %s, outside the range %s..%s: pass the same from and to as the first page", t.UTC().Format(time.RFC3339Nano), from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	return &c, nil
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func checkUnit(unit string) error {
	if unit == "" || len(unit) > 256 || strings.ContainsAny(unit, "\x00\n\r\t") {
		return BadParam("unit", "%q: want a unit identifier (1..256 printable bytes)", fmt.Sprintf("%.40s", unit))
	}
	return nil
}
