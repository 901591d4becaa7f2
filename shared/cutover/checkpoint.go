package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoRun means no backfill run has the given id.
var ErrNoRun = errors.New("no such backfill run")

// BackfillRun is a backfill run's identity and parameters.
type BackfillRun struct {
	RunID      string          `json:"run_id"`
	StartedAt  time.Time       `json:"started_at"`
	Params     json.RawMessage `json:"params"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	Summary    json.RawMessage `json:"summary,omitempty"`
}

// StartBackfillRun records a new run with its parameters.
func (s *Store) StartBackfillRun(ctx context.Context, runID string, params any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("backfill run params: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO cutover.backfill_runs (run_id, started_at, params) VALUES ($1, $2, $3)`, runID, s.now().UTC(), p); err != nil {
		return fmt.Errorf("record backfill run %s: %w", runID, err)
	}
	return nil
}

// BackfillRunByID returns a recorded run, or ErrNoRun.
func (s *Store) BackfillRunByID(ctx context.Context, runID string) (BackfillRun, error) {
	var r BackfillRun
	err := s.pool.QueryRow(ctx, `SELECT run_id, started_at, params, finished_at, summary FROM cutover.backfill_runs WHERE run_id = $1`, runID).
		Scan(&r.RunID, &r.StartedAt, &r.Params, &r.FinishedAt, &r.Summary)
	if errors.Is(err, pgx.ErrNoRows) {
		return BackfillRun{}, fmt.Errorf("%w: %s", ErrNoRun, runID)
	}
	if err != nil {
		return BackfillRun{}, fmt.Errorf("read backfill run %s: %w", runID, err)
	}
	return r, nil
}

// LatestUnfinishedBackfillRun returns the newest run without a finish time, or ErrNoRun.
func (s *Store) LatestUnfinishedBackfillRun(ctx context.Context) (BackfillRun, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT run_id FROM cutover.backfill_runs WHERE finished_at IS NULL ORDER BY started_at DESC LIMIT 1`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return BackfillRun{}, fmt.Errorf("%w: no unfinished run to resume", ErrNoRun)
	}
	if err != nil {
		return BackfillRun{}, fmt.Errorf("find unfinished backfill run: %w", err)
	}
	return s.BackfillRunByID(ctx, id)
}

// FinishBackfillRun records a run's end and summary.
func (s *Store) FinishBackfillRun(ctx context.Context, runID string, summary any) error {
	b, err := json.Marshal(summary)
	if err != nil {
		return fmt.Errorf("backfill summary: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE cutover.backfill_runs SET finished_at = $2, summary = $3 WHERE run_id = $1`, runID, s.now().UTC(), b); err != nil {
		return fmt.Errorf("finish backfill run %s: %w", runID, err)
	}
	return nil
}

// WindowDone checkpoints one finished (unit, window) of a run.
func (s *Store) WindowDone(ctx context.Context, runID, unit string, from, to time.Time, points int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO cutover.backfill_windows (run_id, unit, window_start, window_end, points, done_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id, unit, window_start) DO NOTHING`, runID, unit, from.UTC(), to.UTC(), points, s.now().UTC())
	if err != nil {
		return fmt.Errorf("checkpoint %s %s window %s: %w", runID, unit, from.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// WindowKey identifies a (unit, window start) pair in a run's checkpoints.
type WindowKey struct {
	Unit  string
	Start time.Time
}

// DoneWindows returns the checkpointed (unit, window) pairs of a run.
func (s *Store) DoneWindows(ctx context.Context, runID string) (map[WindowKey]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT unit, window_start FROM cutover.backfill_windows WHERE run_id = $1`, runID)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints of %s: %w", runID, err)
	}
	defer rows.Close()
	out := map[WindowKey]bool{}
	for rows.Next() {
		var k WindowKey
		if err := rows.Scan(&k.Unit, &k.Start); err != nil {
			return nil, fmt.Errorf("read checkpoints of %s: %w", runID, err)
		}
		k.Start = k.Start.UTC()
		out[k] = true
	}
	return out, rows.Err()
}

// VerifyRun is a recorded verify result.
type VerifyRun struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor"`
	From       time.Time       `json:"from"`
	To         time.Time       `json:"to"`
	Window     time.Duration   `json:"window"`
	Windows    int64           `json:"windows"`
	Mismatched int64           `json:"mismatched"`
	Rate       float64         `json:"mismatch_rate"`
	OK         bool            `json:"ok"`
	Detail     json.RawMessage `json:"detail,omitempty"`
}

// SaveVerify records a verify result and returns its id.
func (s *Store) SaveVerify(ctx context.Context, v VerifyRun) (int64, error) {
	var id int64
	detail := v.Detail
	if len(detail) == 0 {
		detail = json.RawMessage("null")
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO cutover.verify_runs (at, actor, from_ts, to_ts, window_s, windows, mismatched, rate, ok, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		s.now().UTC(), v.Actor, v.From.UTC(), v.To.UTC(), int64(v.Window/time.Second), v.Windows, v.Mismatched, v.Rate, v.OK, detail).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record verify result: %w", err)
	}
	return id, nil
}

// LastVerify returns the newest verify result, or nil if none was recorded.
func (s *Store) LastVerify(ctx context.Context) (*VerifyRun, error) {
	var v VerifyRun
	var windowS int64
	err := s.pool.QueryRow(ctx, `SELECT id, at, actor, from_ts, to_ts, window_s, windows, mismatched, rate, ok, detail
		FROM cutover.verify_runs ORDER BY id DESC LIMIT 1`).
		Scan(&v.ID, &v.At, &v.Actor, &v.From, &v.To, &windowS, &v.Windows, &v.Mismatched, &v.Rate, &v.OK, &v.Detail)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last verify: %w", err)
	}
	v.Window = time.Duration(windowS) * time.Second
	return &v, nil
}
