// Package gaps finds what backfill must repair: it collects the distinct
// readings of the snapshots for a range (verified, de-duplicated in bounded
// memory), counts them per unit and window, compares the counts with
// InfluxDB's, and lists the windows where InfluxDB has fewer. It also turns
// gap-ledger entries into windows.
package gaps

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/flexipack/cutover/backfill/internal/spill"
	"github.com/flexipack/cutover/shared/snapshot"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/window"
)

// Query selects the readings to look at.
type Query struct {
	// From and To bound the readings' time, [From, To); Collect only
	// keeps readings inside.
	From, To time.Time
	// Window is the width of the windows counts are compared in.
	Window time.Duration
	// Units and Sites restrict the readings when not empty.
	Units, Sites []string
	// Keep, when not nil, further restricts the readings (ledger windows).
	Keep func(unit string, timeMs int64) bool
}

// AlignedRange widens [from, to) to whole windows of width w, so that every
// window compared is complete on both sides.
func AlignedRange(from, to time.Time, w time.Duration) (time.Time, time.Time) {
	f := window.Align(from, w)
	t := window.Align(to, w)
	if t.Before(to) {
		t = t.Add(w)
	}
	return f, t
}

// Damage collects what the snapshot reader reported: counts per kind, the
// first details of each kind, and whether anything was skipped. It is safe
// for concurrent use.
type Damage struct {
	mu      sync.Mutex
	logger  *slog.Logger
	counts  map[string]int64
	details []snapshot.Damage
	perKind map[string]int
	skipped bool
}

// maxDetailsPerKind bounds the details kept (and logged) per kind; the
// counts are always complete.
const maxDetailsPerKind = 100

// NewDamage returns an empty collector that logs each kept detail.
func NewDamage(logger *slog.Logger) *Damage {
	return &Damage{logger: logger, counts: map[string]int64{}, perKind: map[string]int{}}
}

// Add records one damage report.
func (d *Damage) Add(x snapshot.Damage) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.counts[x.Kind]++
	if x.Skipped {
		d.skipped = true
	}
	if d.perKind[x.Kind] >= maxDetailsPerKind {
		if d.perKind[x.Kind] == maxDetailsPerKind {
			d.logger.Warn("more snapshot damage of this kind; only counted from now on", "kind", x.Kind)
			d.perKind[x.Kind]++
		}
		return
	}
	d.perKind[x.Kind]++
	d.details = append(d.details, x)
	lvl := slog.LevelWarn
	if !x.Skipped {
		lvl = slog.LevelInfo
	}
	d.logger.Log(context.Background(), lvl, "snapshot damage", "kind", x.Kind, "snapshot", x.Snapshot, "part", x.Part, "line", x.Line, "reason", x.Reason, "skipped", x.Skipped)
}

// Skipped reports whether any damage made readings be skipped.
func (d *Damage) Skipped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.skipped
}

// DamageSummary is the damage for summaries and JSON output.
type DamageSummary struct {
	Counts  map[string]int64  `json:"counts"`
	Details []snapshot.Damage `json:"details"`
	Skipped bool              `json:"skipped"`
}

// Summary returns counts per kind and the kept details.
func (d *Damage) Summary() DamageSummary {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := make(map[string]int64, len(d.counts))
	for k, v := range d.counts {
		c[k] = v
	}
	return DamageSummary{Counts: c, Details: append([]snapshot.Damage{}, d.details...), Skipped: d.skipped}
}

// MarshalJSON encodes the summary.
func (d *Damage) MarshalJSON() ([]byte, error) { return json.Marshal(d.Summary()) }

// CollectStats says what collection read.
type CollectStats struct {
	SnapshotsFound int      `json:"snapshots_found"`
	SnapshotsRead  []string `json:"snapshots_read"`
	// Spans are the [from, to) of the snapshots read, for ledger coverage.
	Spans        []window.Span `json:"-"`
	PartsRead    int           `json:"parts_read"`
	PartsCorrupt int           `json:"parts_skipped"`
	Lines        int64         `json:"lines"`
	Records      int64         `json:"records_in_range"`
}

// Collect reads every part of every complete snapshot whose range overlaps
// the query's and adds the matching readings to s, newest snapshot
// winning when copies differ. Damage goes to dmg.
func Collect(ctx context.Context, r *snapshot.Reader, q Query, s *spill.Sorter, dmg *Damage, logger *slog.Logger) (CollectStats, error) {
	var st CollectStats
	ms, damage, err := r.Snapshots(ctx)
	if err != nil {
		return st, err
	}
	for _, d := range damage {
		dmg.Add(d)
	}
	st.SnapshotsFound = len(ms)
	units, sites := set(q.Units), set(q.Sites)
	// Snapshots come oldest first; ord grows, so a later copy wins.
	var ord uint64
	var buf []byte
	for i := range ms {
		m := &ms[i]
		if !m.From.Before(q.To) || !q.From.Before(m.To) {
			continue
		}
		st.SnapshotsRead = append(st.SnapshotsRead, m.SnapshotID)
		st.Spans = append(st.Spans, window.Span{From: m.From, To: m.To})
		for _, p := range m.Parts {
			start := time.Now()
			ps, err := r.ReadPart(ctx, m, p, func(rec *telemetry.Record, _ int64) error {
				t := rec.Time()
				if t.Before(q.From) || !t.Before(q.To) {
					return nil
				}
				if units != nil && !units[rec.Unit] {
					return nil
				}
				if sites != nil && !sites[rec.Site] {
					return nil
				}
				if q.Keep != nil && !q.Keep(rec.Unit, rec.TimeMs) {
					return nil
				}
				ord++
				st.Records++
				// The spill keeps the decoded record, so replay writes
				// exactly what the codec decoded.
				buf = spill.AppendRecord(buf[:0], rec)
				return s.Add([]byte(rec.Unit), rec.TimeMs, ord, buf)
			}, dmg.Add)
			if err != nil {
				return st, fmt.Errorf("snapshot %s part %s: %w", m.SnapshotID, p.Key, err)
			}
			st.PartsRead++
			st.Lines += ps.Lines
			if ps.Corrupt {
				st.PartsCorrupt++
			}
			logger.Debug("snapshot part read", "snapshot", m.SnapshotID, "part", p.Key, "lines", ps.Lines,
				"records", ps.Records, "bad_lines", ps.BadLines, "corrupt", ps.Corrupt, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return st, nil
}

func set(xs []string) map[string]bool {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// SnapshotCounts counts the distinct readings in s per unit and window.
func SnapshotCounts(s *spill.Sorter, w time.Duration) ([]window.Count, error) {
	var out []window.Count
	err := s.Iterate(func(e *spill.Entry) error {
		start := window.Align(time.UnixMilli(e.TimeMs), w)
		if n := len(out); n > 0 && out[n-1].Start.Equal(start) && out[n-1].Unit == string(e.Unit) {
			out[n-1].N++
			return nil
		}
		out = append(out, window.Count{Unit: string(e.Unit), Start: start, N: 1})
		return nil
	})
	return out, err
}

// Gap is a window where InfluxDB has fewer readings than the snapshots.
type Gap struct {
	Unit     string    `json:"unit"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Snapshot int64     `json:"snapshot_readings"`
	Influx   int64     `json:"influx_readings"`
	Missing  int64     `json:"missing"`
	// LedgerIDs are the gap-ledger entries this window repairs (ledger mode).
	LedgerIDs []int64 `json:"ledger_ids,omitempty"`
}

// Key returns the gap's (unit, window).
func (g Gap) Key() window.Key { return window.Key{Unit: g.Unit, Start: g.Start} }

// Compare returns the windows where influx counts fewer readings than snap,
// ordered by unit then start, and how many windows InfluxDB has more
// readings in than the snapshots (readings newer than the last backup).
func Compare(snap, influx []window.Count, w time.Duration) (gaps []Gap, influxAhead int) {
	have := make(map[window.Key]int64, len(influx))
	for _, c := range influx {
		have[window.Key{Unit: c.Unit, Start: c.Start.UTC()}] += c.N
	}
	for _, c := range snap {
		k := window.Key{Unit: c.Unit, Start: c.Start.UTC()}
		n := have[k]
		switch {
		case n < c.N:
			gaps = append(gaps, Gap{Unit: c.Unit, Start: k.Start, End: k.Start.Add(w), Snapshot: c.N, Influx: n, Missing: c.N - n})
		case n > c.N:
			influxAhead++
		}
	}
	sort.Slice(gaps, func(i, j int) bool {
		if gaps[i].Unit != gaps[j].Unit {
			return gaps[i].Unit < gaps[j].Unit
		}
		return gaps[i].Start.Before(gaps[j].Start)
	})
	return gaps, influxAhead
}
