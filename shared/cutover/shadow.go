package cutover

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ShadowCount is how many shadow comparisons one endpoint ran in one phase
// version, and how many found the stores disagreeing.
type ShadowCount struct {
	Phase        Phase     `json:"phase"`
	PhaseVersion int64     `json:"phase_version"`
	Endpoint     string    `json:"endpoint"`
	Comparisons  int64     `json:"comparisons"`
	Mismatches   int64     `json:"mismatches"`
	Errors       int64     `json:"errors"` // the shadow store failed to answer; not comparisons
	FirstAt      time.Time `json:"first_at"`
	LastAt       time.Time `json:"last_at"`
}

// ShadowMismatch is one shadow comparison whose answers differed: the
// request, and the first differing record (its JSON path) in both answers.
type ShadowMismatch struct {
	ID           int64     `json:"id"`
	At           time.Time `json:"at"`
	Phase        Phase     `json:"phase"`
	PhaseVersion int64     `json:"phase_version"`
	Endpoint     string    `json:"endpoint"`
	Params       string    `json:"params"` // the request's query string and path parameters
	PrimaryStore string    `json:"primary_store"`
	ShadowStore  string    `json:"shadow_store"`
	Path         string    `json:"path"` // where the answers first differ, e.g. "readings[3].soc_pct"
	PrimaryValue string    `json:"primary_value"`
	ShadowValue  string    `json:"shadow_value"`
}

// RecordShadow adds counts (summed into each (phase version, endpoint)
// row) and mismatches in one transaction. The query service calls it in
// batches, not per request.
func (s *Store) RecordShadow(ctx context.Context, counts []ShadowCount, mismatches []ShadowMismatch) error {
	if len(counts) == 0 && len(mismatches) == 0 {
		return nil
	}
	now := s.now().UTC()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, c := range counts {
			_, err := tx.Exec(ctx, `INSERT INTO cutover.shadow_counts AS c (phase, phase_version, endpoint, comparisons, mismatches, errors, first_at, last_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
				ON CONFLICT (phase_version, endpoint) DO UPDATE SET comparisons = c.comparisons + EXCLUDED.comparisons,
				mismatches = c.mismatches + EXCLUDED.mismatches, errors = c.errors + EXCLUDED.errors, last_at = EXCLUDED.last_at`,
				string(c.Phase), c.PhaseVersion, c.Endpoint, c.Comparisons, c.Mismatches, c.Errors, now)
			if err != nil {
				return err
			}
		}
		for _, m := range mismatches {
			at := m.At
			if at.IsZero() {
				at = now
			}
			_, err := tx.Exec(ctx, `INSERT INTO cutover.shadow_mismatches (at, phase, phase_version, endpoint, params, primary_store, shadow_store, path, primary_value, shadow_value)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				at.UTC(), string(m.Phase), m.PhaseVersion, m.Endpoint, m.Params, m.PrimaryStore, m.ShadowStore, m.Path, m.PrimaryValue, m.ShadowValue)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d shadow counts and %d mismatches: %w", len(counts), len(mismatches), err)
	}
	return nil
}

// ShadowStats sums the shadow comparisons of one phase version (the
// current one, for the gate), or of every version when version is 0.
type ShadowStats struct {
	PhaseVersion int64         `json:"phase_version,omitempty"`
	Comparisons  int64         `json:"comparisons"`
	Mismatches   int64         `json:"mismatches"`
	Errors       int64         `json:"errors"`
	Rate         float64       `json:"mismatch_rate"` // Mismatches / Comparisons, 0 when none
	Endpoints    []ShadowCount `json:"endpoints"`
}

// ShadowStats returns the shadow comparisons recorded in phase version
// version (0: all versions), per endpoint.
func (s *Store) ShadowStats(ctx context.Context, version int64) (ShadowStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT phase, phase_version, endpoint, comparisons, mismatches, errors, first_at, last_at
		FROM cutover.shadow_counts WHERE $1 = 0 OR phase_version = $1 ORDER BY phase_version, endpoint`, version)
	if err != nil {
		return ShadowStats{}, fmt.Errorf("read shadow counts: %w", err)
	}
	defer rows.Close()
	st := ShadowStats{PhaseVersion: version, Endpoints: []ShadowCount{}}
	for rows.Next() {
		var c ShadowCount
		var phase string
		if err := rows.Scan(&phase, &c.PhaseVersion, &c.Endpoint, &c.Comparisons, &c.Mismatches, &c.Errors, &c.FirstAt, &c.LastAt); err != nil {
			return ShadowStats{}, fmt.Errorf("read shadow counts: %w", err)
		}
		c.Phase = Phase(phase)
		st.Comparisons += c.Comparisons
		st.Mismatches += c.Mismatches
		st.Errors += c.Errors
		st.Endpoints = append(st.Endpoints, c)
	}
	if err := rows.Err(); err != nil {
		return ShadowStats{}, fmt.Errorf("read shadow counts: %w", err)
	}
	if st.Comparisons > 0 {
		st.Rate = float64(st.Mismatches) / float64(st.Comparisons)
	}
	return st, nil
}

// ShadowMismatches returns the newest recorded mismatches of phase version
// version (0: any), newest first, at most limit (default 20).
func (s *Store) ShadowMismatches(ctx context.Context, version int64, limit int) ([]ShadowMismatch, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, phase, phase_version, endpoint, params, primary_store, shadow_store, path, primary_value, shadow_value
		FROM cutover.shadow_mismatches WHERE $1 = 0 OR phase_version = $1 ORDER BY id DESC LIMIT $2`, version, limit)
	if err != nil {
		return nil, fmt.Errorf("read shadow mismatches: %w", err)
	}
	defer rows.Close()
	out := []ShadowMismatch{}
	for rows.Next() {
		var m ShadowMismatch
		var phase string
		if err := rows.Scan(&m.ID, &m.At, &phase, &m.PhaseVersion, &m.Endpoint, &m.Params, &m.PrimaryStore, &m.ShadowStore, &m.Path, &m.PrimaryValue, &m.ShadowValue); err != nil {
			return nil, fmt.Errorf("read shadow mismatches: %w", err)
		}
		m.Phase = Phase(phase)
		out = append(out, m)
	}
	return out, rows.Err()
}
