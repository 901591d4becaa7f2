package gaps

import (
	"sort"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/window"
)

// LedgerPlan is the work the gap ledger asks for.
type LedgerPlan struct {
	// Windows maps each (unit, window) to repair to the ledger entries
	// that need it.
	Windows map[window.Key][]int64
	// Entries are the ledger entries the plan covers.
	Entries []cutover.Gap
	// From and To bound every window of the plan.
	From, To time.Time
}

// FromLedger turns open ledger entries into the windows of width w that
// hold their readings: an entry covers [From, To] inclusive of To, the last
// missed reading.
func FromLedger(entries []cutover.Gap, w time.Duration) LedgerPlan {
	p := LedgerPlan{Windows: map[window.Key][]int64{}, Entries: entries}
	for _, e := range entries {
		from, to := e.From.UTC(), e.To.UTC()
		for s := window.Align(from, w); !s.After(to); s = s.Add(w) {
			k := window.Key{Unit: e.Unit, Start: s}
			p.Windows[k] = append(p.Windows[k], e.ID)
			if p.From.IsZero() || s.Before(p.From) {
				p.From = s
			}
			if end := s.Add(w); end.After(p.To) {
				p.To = end
			}
		}
	}
	return p
}

// Keep reports whether a reading lies in one of the plan's windows.
func (p LedgerPlan) Keep(w time.Duration) func(unit string, timeMs int64) bool {
	return func(unit string, timeMs int64) bool {
		_, ok := p.Windows[window.Key{Unit: unit, Start: window.Align(time.UnixMilli(timeMs), w)}]
		return ok
	}
}

// Covered reports whether the union of spans covers [from, to] (to
// inclusive): only then can the snapshots repair a ledger entry.
func Covered(spans []window.Span, from, to time.Time) bool {
	ss := append([]window.Span(nil), spans...)
	sort.Slice(ss, func(i, j int) bool { return ss[i].From.Before(ss[j].From) })
	cur := from
	for _, s := range ss {
		if s.From.After(cur) {
			break
		}
		if s.To.After(cur) {
			cur = s.To
		}
		if cur.After(to) {
			return true
		}
	}
	return false
}
