package cutover

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flexipack/cutover/shared/redact"
)

// Gap is a gap-ledger entry: readings of one unit that a repairable sink
// failed to store, from the first to the last missed reading's time.
type Gap struct {
	ID         int64      `json:"id"`
	Sink       string     `json:"sink"`
	Unit       string     `json:"unit"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"` // inclusive: the last missed reading's time
	Readings   int        `json:"readings"`
	Reason     string     `json:"reason"`
	ConsumerID string     `json:"consumer_id"`
	CreatedAt  time.Time  `json:"created_at"`
	RepairedAt *time.Time `json:"repaired_at,omitempty"`
	RepairedBy string     `json:"repaired_by,omitempty"`
}

// RecordGaps writes ledger entries durably (one transaction) and returns
// once they are committed; the consumer acks only after that.
func (s *Store) RecordGaps(ctx context.Context, gaps []Gap) error {
	if len(gaps) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows := make([][]any, len(gaps))
		for i, g := range gaps {
			rows[i] = []any{g.Sink, g.Unit, g.From.UTC(), g.To.UTC(), g.Readings, redact.String(g.Reason), g.ConsumerID}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"cutover", "gap_ledger"},
			[]string{"sink", "unit", "from_ts", "to_ts", "readings", "reason", "consumer_id"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return fmt.Errorf("record %d gap-ledger entries: %w", len(gaps), err)
	}
	return nil
}

// GapFilter selects ledger entries.
type GapFilter struct {
	Sink     string // "" = any
	OnlyOpen bool
	Units    []string
	From, To time.Time // entries overlapping [From, To); zero = unbounded
	Limit    int
}

// Gaps returns ledger entries matching f, oldest first.
func (s *Store) Gaps(ctx context.Context, f GapFilter) ([]Gap, error) {
	q := `SELECT id, sink, unit, from_ts, to_ts, readings, reason, consumer_id, created_at, repaired_at, coalesce(repaired_by, '')
		FROM cutover.gap_ledger WHERE ($1 = '' OR sink = $1) AND (NOT $2 OR repaired_at IS NULL)
		AND (cardinality($3::text[]) = 0 OR unit = ANY($3))
		AND ($4::timestamptz IS NULL OR to_ts >= $4) AND ($5::timestamptz IS NULL OR from_ts < $5)
		ORDER BY from_ts, id`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	var from, to *time.Time
	if !f.From.IsZero() {
		from = &f.From
	}
	if !f.To.IsZero() {
		to = &f.To
	}
	units := f.Units
	if units == nil {
		units = []string{}
	}
	rows, err := s.pool.Query(ctx, q, f.Sink, f.OnlyOpen, units, from, to)
	if err != nil {
		return nil, fmt.Errorf("read gap ledger: %w", err)
	}
	defer rows.Close()
	var out []Gap
	for rows.Next() {
		var g Gap
		if err := rows.Scan(&g.ID, &g.Sink, &g.Unit, &g.From, &g.To, &g.Readings, &g.Reason, &g.ConsumerID, &g.CreatedAt, &g.RepairedAt, &g.RepairedBy); err != nil {
			return nil, fmt.Errorf("read gap ledger: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// OpenGapCount returns how many ledger entries for sink ("" = any) are not repaired.
func (s *Store) OpenGapCount(ctx context.Context, sink string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM cutover.gap_ledger WHERE repaired_at IS NULL AND ($1 = '' OR sink = $1)`, sink).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open gaps: %w", err)
	}
	return n, nil
}

// MarkRepaired marks ledger entries repaired by who (e.g. a backfill run id).
func (s *Store) MarkRepaired(ctx context.Context, ids []int64, by string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE cutover.gap_ledger SET repaired_at = $2, repaired_by = $3 WHERE id = ANY($1) AND repaired_at IS NULL`,
		ids, s.now().UTC(), by)
	if err != nil {
		return fmt.Errorf("mark %d gap-ledger entries repaired: %w", len(ids), err)
	}
	return nil
}
