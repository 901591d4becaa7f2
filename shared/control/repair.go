package control

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/telemetry"
)

// RecordStream streams InfluxDB's readings (influx.Reader implements it).
type RecordStream interface {
	Stream(ctx context.Context, from, to time.Time, units []string, fn func(*telemetry.Record) error) error
}

// RecordWriter writes readings idempotently (legacy.Store implements it).
type RecordWriter interface {
	Write(ctx context.Context, recs []telemetry.Record) error
}

// GapRepairer reads and closes gap-ledger entries.
type GapRepairer interface {
	Gaps(ctx context.Context, f cutover.GapFilter) ([]cutover.Gap, error)
	MarkRepaired(ctx context.Context, ids []int64, by string) error
}

// RepairOptions say what repair-legacy copies.
type RepairOptions struct {
	From, To time.Time // [From, To) of reading times (range mode)
	Units    []string  // empty: every unit InfluxDB has
	Batch    int       // records per legacy write (default 1000)
	Execute  bool      // false: count what would be copied, write nothing
	Actor    string
	// Progress, if set, is called after each written batch and at the end.
	Progress func(RepairProgress)
}

// RepairProgress reports a repair's progress.
type RepairProgress struct {
	Read    int64     `json:"read"`
	Written int64     `json:"written"`
	Through time.Time `json:"through"` // time of the last reading read
	Unit    string    `json:"unit"`
}

// RepairResult is what a repair did (or would do).
type RepairResult struct {
	Executed bool          `json:"executed"`
	Read     int64         `json:"read"`
	Written  int64         `json:"written"`
	Ranges   []RepairRange `json:"ranges"`
	Elapsed  string        `json:"elapsed"`
	Message  string        `json:"message"`
}

// RepairRange is one copied range, with its ledger entry when from the ledger.
type RepairRange struct {
	GapID   int64     `json:"gap_id,omitempty"`
	Unit    string    `json:"unit,omitempty"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Read    int64     `json:"read"`
	Closed  bool      `json:"closed,omitempty"` // ledger entry marked repaired
	Missing int       `json:"missing,omitempty"`
}

// RepairLegacy copies InfluxDB's readings in [From, To) into the legacy
// store (idempotently: a reading already there is left alone). It repairs
// what the legacy store missed while it was off (influx-only).
func RepairLegacy(ctx context.Context, src RecordStream, dst RecordWriter, opts RepairOptions) (RepairResult, error) {
	started := time.Now()
	if !opts.From.Before(opts.To) {
		return RepairResult{}, fmt.Errorf("repair-legacy: range [%s, %s) is empty", opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	var res RepairResult
	rr := RepairRange{From: opts.From.UTC(), To: opts.To.UTC()}
	if err := copyRange(ctx, src, dst, opts, opts.From, opts.To, opts.Units, &res, &rr); err != nil {
		return res, err
	}
	res.Ranges = []RepairRange{rr}
	res.Executed = opts.Execute
	res.Elapsed = time.Since(started).Round(time.Millisecond).String()
	res.Message = summary(res)
	return res, nil
}

// RepairLedger repairs the open legacy gap-ledger entries (writes the legacy
// store missed in influx-primary, where it was repairable): it copies each
// entry's readings from InfluxDB and marks the entry repaired. An entry
// whose readings InfluxDB does not all have stays open.
func RepairLedger(ctx context.Context, ledger GapRepairer, src RecordStream, dst RecordWriter, opts RepairOptions) (RepairResult, error) {
	started := time.Now()
	gaps, err := ledger.Gaps(ctx, cutover.GapFilter{Sink: cutover.SinkLegacy, OnlyOpen: true, Units: opts.Units})
	if err != nil {
		return RepairResult{}, err
	}
	res := RepairResult{Ranges: []RepairRange{}}
	for _, g := range gaps {
		// The entry's To is the last missed reading's time, inclusive.
		from, to := g.From.UTC(), g.To.UTC().Add(time.Millisecond)
		rr := RepairRange{GapID: g.ID, Unit: g.Unit, From: from, To: to}
		if err := copyRange(ctx, src, dst, opts, from, to, []string{g.Unit}, &res, &rr); err != nil {
			return res, fmt.Errorf("repair gap-ledger entry %d (%s %s): %w", g.ID, g.Unit, from.Format(time.RFC3339), err)
		}
		if rr.Read < int64(g.Readings) {
			rr.Missing = g.Readings - int(rr.Read)
		} else if opts.Execute {
			if err := ledger.MarkRepaired(ctx, []int64{g.ID}, "migrate repair-legacy ("+opts.Actor+")"); err != nil {
				return res, err
			}
			rr.Closed = true
		}
		res.Ranges = append(res.Ranges, rr)
	}
	res.Executed = opts.Execute
	res.Elapsed = time.Since(started).Round(time.Millisecond).String()
	res.Message = summary(res)
	var open int
	for _, r := range res.Ranges {
		if r.Missing > 0 {
			open++
		}
	}
	if open > 0 {
		res.Message += fmt.Sprintf("; %d entries stay open: InfluxDB lacks some of their readings (see 'missing')", open)
	}
	return res, nil
}

func summary(res RepairResult) string {
	if !res.Executed {
		return fmt.Sprintf("dry run: would copy %d readings from InfluxDB into the legacy store over %d ranges; re-run with --execute", res.Read, len(res.Ranges))
	}
	return fmt.Sprintf("copied %d readings from InfluxDB into the legacy store over %d ranges in %s", res.Written, len(res.Ranges), res.Elapsed)
}

func copyRange(ctx context.Context, src RecordStream, dst RecordWriter, opts RepairOptions, from, to time.Time, units []string, res *RepairResult, rr *RepairRange) error {
	size := opts.Batch
	if size <= 0 {
		size = 1000
	}
	batch := make([]telemetry.Record, 0, size)
	var last *telemetry.Record
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if opts.Execute {
			if err := dst.Write(ctx, batch); err != nil {
				return fmt.Errorf("write %d readings into the legacy store: %w", len(batch), err)
			}
			res.Written += int64(len(batch))
		}
		if opts.Progress != nil && last != nil {
			opts.Progress(RepairProgress{Read: res.Read, Written: res.Written, Through: last.Time(), Unit: last.Unit})
		}
		batch = batch[:0]
		return nil
	}
	err := src.Stream(ctx, from, to, units, func(r *telemetry.Record) error {
		res.Read++
		rr.Read++
		// The stream may reuse r and its slices.
		c := *r
		c.Temps = slices.Clone(r.Temps)
		c.Alarms = slices.Clone(r.Alarms)
		batch = append(batch, c)
		last = &batch[len(batch)-1]
		if len(batch) >= size {
			lc := *last
			last = &lc
			return flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read InfluxDB: %w", err)
	}
	if len(batch) > 0 {
		lc := batch[len(batch)-1]
		last = &lc
	}
	return flush()
}
