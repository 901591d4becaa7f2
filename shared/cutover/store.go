package cutover

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flexipack/cutover/shared/pgmigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrConflict means the phase changed since the caller read it: someone else
// advanced or rolled back first.
var ErrConflict = errors.New("the cutover state changed since it was read (another change won); re-run to see the new state")

// Store is the cutover state store.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// Open connects to the state store and applies its migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("state store DSN: %w", err)
	}
	if cfg.MaxConns > 4 {
		cfg.MaxConns = 4
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to state store: %w", err)
	}
	s := &Store{pool: pool, now: time.Now}
	if _, err := pgmigrate.Apply(ctx, pool, "cutover", migrations, "migrations"); err != nil {
		pool.Close()
		return nil, fmt.Errorf("state store: %w", err)
	}
	return s, nil
}

// Close releases the connections.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the state store answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// State is the current phase and who set it.
type State struct {
	Phase   Phase     `json:"phase"`
	Version int64     `json:"version"`
	Since   time.Time `json:"since"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason"`
}

// Current returns the current state.
func (s *Store) Current(ctx context.Context) (State, error) {
	var st State
	var phase string
	err := s.pool.QueryRow(ctx, "SELECT phase, version, since, actor, reason FROM cutover.state WHERE id = 1").
		Scan(&phase, &st.Version, &st.Since, &st.Actor, &st.Reason)
	if err != nil {
		return State{}, fmt.Errorf("read cutover phase: %w", err)
	}
	st.Phase = Phase(phase)
	return st, nil
}

// GateResult is one safety gate's outcome, recorded with the change.
type GateResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Change is a phase change to make.
type Change struct {
	Kind          string // "advance" or "rollback"
	From, To      Phase
	ExpectVersion int64 // the version the caller read; ErrConflict if it moved
	Actor         string
	Reason        string
	Forced        bool
	Gates         []GateResult
	Detail        map[string]any // extra facts for the audit log (e.g. a legacy gap window)
}

// Transition changes the phase if the state still has ExpectVersion and
// phase From, and records the change in the audit log, atomically.
func (s *Store) Transition(ctx context.Context, c Change) (State, error) {
	if _, err := ParsePhase(string(c.To)); err != nil {
		return State{}, err
	}
	gates, _ := json.Marshal(c.Gates)
	detail, _ := json.Marshal(c.Detail)
	var st State
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now().UTC()
		tag, err := tx.Exec(ctx, `UPDATE cutover.state SET phase = $1, version = version + 1, since = $2, actor = $3, reason = $4
			WHERE id = 1 AND version = $5 AND phase = $6`, string(c.To), now, c.Actor, c.Reason, c.ExpectVersion, string(c.From))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrConflict
		}
		st = State{Phase: c.To, Version: c.ExpectVersion + 1, Since: now, Actor: c.Actor, Reason: c.Reason}
		_, err = tx.Exec(ctx, `INSERT INTO cutover.audit (at, actor, kind, from_phase, to_phase, version, reason, forced, gates, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			now, c.Actor, c.Kind, string(c.From), string(c.To), st.Version, c.Reason, c.Forced, gates, detail)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return State{}, err
		}
		return State{}, fmt.Errorf("change phase %s → %s: %w", c.From, c.To, err)
	}
	return st, nil
}

// AuditEntry is one recorded phase change.
type AuditEntry struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Kind    string          `json:"kind"`
	From    Phase           `json:"from"`
	To      Phase           `json:"to"`
	Version int64           `json:"version"`
	Reason  string          `json:"reason"`
	Forced  bool            `json:"forced"`
	Gates   []GateResult    `json:"gates,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// History returns the audit log, newest first, at most limit entries (0 = all).
func (s *Store) History(ctx context.Context, limit int) ([]AuditEntry, error) {
	q := `SELECT id, at, actor, kind, from_phase, to_phase, version, reason, forced, gates, detail FROM cutover.audit ORDER BY id DESC`
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := s.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var from, to string
		var gates, detail []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Kind, &from, &to, &e.Version, &e.Reason, &e.Forced, &gates, &detail); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.From, e.To = Phase(from), Phase(to)
		if len(gates) > 0 {
			_ = json.Unmarshal(gates, &e.Gates)
		}
		if len(detail) > 0 && string(detail) != "null" {
			e.Detail = detail
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Heartbeat is a consumer's report of what it applies.
type Heartbeat struct {
	ConsumerID   string    `json:"consumer_id"`
	Host         string    `json:"host"`
	Phase        Phase     `json:"phase"`
	PhaseVersion int64     `json:"phase_version"`
	LagMessages  int64     `json:"lag_messages"`
	LagSeconds   float64   `json:"lag_seconds"`
	StartedAt    time.Time `json:"started_at"`
	BeatAt       time.Time `json:"beat_at"`
}

// Beat records a heartbeat (BeatAt is set to now).
func (s *Store) Beat(ctx context.Context, hb Heartbeat) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO cutover.heartbeats (consumer_id, host, phase, phase_version, lag_messages, lag_seconds, started_at, beat_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (consumer_id) DO UPDATE SET host = EXCLUDED.host, phase = EXCLUDED.phase, phase_version = EXCLUDED.phase_version,
		lag_messages = EXCLUDED.lag_messages, lag_seconds = EXCLUDED.lag_seconds, started_at = EXCLUDED.started_at, beat_at = EXCLUDED.beat_at`,
		hb.ConsumerID, hb.Host, string(hb.Phase), hb.PhaseVersion, hb.LagMessages, hb.LagSeconds, hb.StartedAt, s.now().UTC())
	if err != nil {
		return fmt.Errorf("write heartbeat of %s: %w", hb.ConsumerID, err)
	}
	return nil
}

// Forget removes a consumer's heartbeat (a clean shutdown).
func (s *Store) Forget(ctx context.Context, consumerID string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM cutover.heartbeats WHERE consumer_id = $1", consumerID); err != nil {
		return fmt.Errorf("remove heartbeat of %s: %w", consumerID, err)
	}
	return nil
}

// Heartbeats returns the consumers that beat within the last liveFor.
func (s *Store) Heartbeats(ctx context.Context, liveFor time.Duration) ([]Heartbeat, error) {
	rows, err := s.pool.Query(ctx, `SELECT consumer_id, host, phase, phase_version, lag_messages, lag_seconds, started_at, beat_at
		FROM cutover.heartbeats WHERE beat_at >= $1 ORDER BY consumer_id`, s.now().UTC().Add(-liveFor))
	if err != nil {
		return nil, fmt.Errorf("read heartbeats: %w", err)
	}
	defer rows.Close()
	var out []Heartbeat
	for rows.Next() {
		var h Heartbeat
		var phase string
		if err := rows.Scan(&h.ConsumerID, &h.Host, &phase, &h.PhaseVersion, &h.LagMessages, &h.LagSeconds, &h.StartedAt, &h.BeatAt); err != nil {
			return nil, fmt.Errorf("read heartbeats: %w", err)
		}
		h.Phase = Phase(phase)
		out = append(out, h)
	}
	return out, rows.Err()
}
