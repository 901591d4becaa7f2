package cutover

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LatestFinishedBackfillRun returns the newest run with a finish time, or
// ErrNoRun. migrate's gate into shadow-read reads the backfilled range from
// its parameters.
func (s *Store) LatestFinishedBackfillRun(ctx context.Context) (BackfillRun, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT run_id FROM cutover.backfill_runs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return BackfillRun{}, fmt.Errorf("%w: no finished backfill run", ErrNoRun)
	}
	if err != nil {
		return BackfillRun{}, fmt.Errorf("find finished backfill run: %w", err)
	}
	return s.BackfillRunByID(ctx, id)
}
