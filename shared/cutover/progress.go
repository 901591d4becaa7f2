package cutover

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// BackfillProgress is a running backfill's progress as it last reported it.
type BackfillProgress struct {
	PointsTotal    int64   `json:"points_total"`
	PointsDone     int64   `json:"points_written"`
	WindowsTotal   int64   `json:"windows_total"`
	WindowsDone    int64   `json:"windows_done"`
	Rate           float64 `json:"points_per_second"`
	ETASeconds     float64 `json:"eta_seconds"`
	ThrottleState  string  `json:"throttle_state"` // running, throttled or paused
	ThrottleReason string  `json:"throttle_reason,omitempty"`
	// RateLimit is the write rate limit in force (0 = unlimited).
	RateLimit float64 `json:"rate_limit_points_per_second"`
}

// SaveBackfillProgress records a run's latest progress (overwriting the
// previous report).
func (s *Store) SaveBackfillProgress(ctx context.Context, runID string, p BackfillProgress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("backfill progress: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE cutover.backfill_runs SET progress = $2, progress_at = $3 WHERE run_id = $1`, runID, b, s.now().UTC()); err != nil {
		return fmt.Errorf("record progress of backfill run %s: %w", runID, err)
	}
	return nil
}

// BackfillRunStatus is a run with its checkpoints and last progress report.
type BackfillRunStatus struct {
	BackfillRun
	// WindowsCheckpointed and PointsCheckpointed sum the run's finished
	// (unit, window) checkpoints: durable progress, whatever the reports say.
	WindowsCheckpointed int64             `json:"windows_checkpointed"`
	PointsCheckpointed  int64             `json:"points_checkpointed"`
	Progress            *BackfillProgress `json:"progress,omitempty"`
	ProgressAt          *time.Time        `json:"progress_at,omitempty"`
}

// BackfillRuns returns the newest runs, newest first, at most limit (1..100).
func (s *Store) BackfillRuns(ctx context.Context, limit int) ([]BackfillRunStatus, error) {
	limit = min(max(limit, 1), 100)
	rows, err := s.pool.Query(ctx, `SELECT r.run_id, r.started_at, r.params, r.finished_at, r.summary, r.progress, r.progress_at,
		coalesce((SELECT count(*) FROM cutover.backfill_windows w WHERE w.run_id = r.run_id), 0),
		coalesce((SELECT sum(points) FROM cutover.backfill_windows w WHERE w.run_id = r.run_id), 0)::bigint
		FROM cutover.backfill_runs r ORDER BY r.started_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read backfill runs: %w", err)
	}
	defer rows.Close()
	out := []BackfillRunStatus{}
	for rows.Next() {
		var r BackfillRunStatus
		var progress []byte
		if err := rows.Scan(&r.RunID, &r.StartedAt, &r.Params, &r.FinishedAt, &r.Summary, &progress, &r.ProgressAt,
			&r.WindowsCheckpointed, &r.PointsCheckpointed); err != nil {
			return nil, fmt.Errorf("read backfill runs: %w", err)
		}
		if len(progress) > 0 {
			var p BackfillProgress
			if err := json.Unmarshal(progress, &p); err != nil {
				return nil, fmt.Errorf("backfill run %s: stored progress: %w", r.RunID, err)
			}
			r.Progress = &p
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
