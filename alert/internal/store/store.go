// Package store keeps the alert service's state in PostgreSQL (schema
// "alert" of the state store, its own migrations): units' frontiers and
// aggregate windows, pending and firing alerts, and an outbox of
// resolutions Alertmanager has not accepted yet. The service writes a
// batch's alert changes (with the units they touched) before it acks the
// batch, and the other changed units at every unit checkpoint and at
// shutdown; see the README's alert section for what a crash loses.
package store

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flexipack/cutover/alert/internal/engine"
	"github.com/flexipack/cutover/shared/pgmigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the alert state in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects and applies the migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("alert state store DSN: %w", err)
	}
	cfg.MaxConns = min(cfg.MaxConns, 4)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the alert state store: %w", err)
	}
	if _, err := pgmigrate.Apply(ctx, pool, "alert", migrations, "migrations"); err != nil {
		pool.Close()
		return nil, fmt.Errorf("alert state store: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close releases the connections.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the store answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Outboxed is a resolution waiting for Alertmanager.
type Outboxed struct {
	ID    int64
	Alert engine.Alert
}

type unitRow struct {
	Unit       string           `json:"unit"`
	Site       string           `json:"site"`
	FrontierMs int64            `json:"frontier_ms"`
	Matches    []string         `json:"matches"`
	LastAlarms map[string]int64 `json:"last_alarms"`
	Windows    []byte           `json:"windows"` // base64 in JSON, decoded by the statement; null: keep the stored windows
}

// Apply writes units and changes in one transaction and returns the
// outbox entries of the resolutions among changes (in order).
func (s *Store) Apply(ctx context.Context, changes []engine.Change, units []engine.UnitRecord) ([]Outboxed, error) {
	if len(changes) == 0 && len(units) == 0 {
		return nil, nil
	}
	var out []Outboxed
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := upsertUnits(ctx, tx, units); err != nil {
			return err
		}
		var err error
		out, err = applyChanges(ctx, tx, changes)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("write alert state: %w", err)
	}
	return out, nil
}

func upsertUnits(ctx context.Context, tx pgx.Tx, units []engine.UnitRecord) error {
	if len(units) == 0 {
		return nil
	}
	rows := make([]unitRow, len(units))
	for i, u := range units {
		rows[i] = unitRow{Unit: u.Unit, Site: u.Site, FrontierMs: u.FrontierMs, Matches: u.Matches, LastAlarms: u.LastAlarms, Windows: u.Windows}
		if rows[i].Matches == nil {
			rows[i].Matches = []string{}
		}
		if rows[i].LastAlarms == nil {
			rows[i].LastAlarms = map[string]int64{}
		}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
INSERT INTO alert.units (unit, site, frontier_ms, matches, last_alarms, windows)
SELECT x.unit, x.site, x.frontier_ms, ARRAY(SELECT jsonb_array_elements_text(x.matches)), x.last_alarms,
    decode(x.windows, 'base64')
FROM jsonb_to_recordset($1::jsonb) AS x(unit text, site text, frontier_ms bigint, matches jsonb, last_alarms jsonb, windows text)
ON CONFLICT (unit) DO UPDATE SET site = EXCLUDED.site, frontier_ms = EXCLUDED.frontier_ms,
    matches = EXCLUDED.matches, last_alarms = EXCLUDED.last_alarms, updated_at = now(),
    windows = coalesce(EXCLUDED.windows, alert.units.windows)`, b)
	if err != nil {
		return fmt.Errorf("upsert %d units: %w", len(units), err)
	}
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func applyChanges(ctx context.Context, tx pgx.Tx, changes []engine.Change) ([]Outboxed, error) {
	var out []Outboxed
	for i := range changes {
		c := &changes[i]
		if c.State != engine.Inactive {
			labels, _ := json.Marshal(c.Labels)
			annots, _ := json.Marshal(c.Annotations)
			if _, err := tx.Exec(ctx, `
INSERT INTO alert.alerts (rule, key, state, severity, active_at, fired_at, last_alarm, value, labels, annotations)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (rule, key) DO UPDATE SET state = EXCLUDED.state, severity = EXCLUDED.severity, active_at = EXCLUDED.active_at,
    fired_at = EXCLUDED.fired_at, last_alarm = EXCLUDED.last_alarm, value = EXCLUDED.value, labels = EXCLUDED.labels,
    annotations = EXCLUDED.annotations, updated_at = now()`,
				c.Rule, c.Key, c.State.String(), c.Severity, c.ActiveAt, nullTime(c.FiredAt), nullTime(c.LastAlarm), c.Value, labels, annots); err != nil {
				return nil, fmt.Errorf("upsert alert %s/%s: %w", c.Rule, c.Key, err)
			}
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM alert.alerts WHERE rule = $1 AND key = $2`, c.Rule, c.Key); err != nil {
			return nil, fmt.Errorf("delete alert %s/%s: %w", c.Rule, c.Key, err)
		}
		if !c.Resolved() {
			continue
		}
		b, err := json.Marshal(c.Alert)
		if err != nil {
			return nil, err
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO alert.outbox (rule, key, alert) VALUES ($1, $2, $3) RETURNING id`, c.Rule, c.Key, b).Scan(&id); err != nil {
			return nil, fmt.Errorf("queue resolution of %s/%s: %w", c.Rule, c.Key, err)
		}
		out = append(out, Outboxed{ID: id, Alert: c.Alert})
	}
	return out, nil
}

// Delivered removes outbox entries Alertmanager accepted.
func (s *Store) Delivered(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM alert.outbox WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("clear %d delivered resolutions: %w", len(ids), err)
	}
	return nil
}

// Snapshot is everything Load returns.
type Snapshot struct {
	Units  []engine.UnitRecord
	Alerts []engine.Alert
	Outbox []Outboxed
}

// Load reads the whole state, for a start.
func (s *Store) Load(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	rows, err := s.pool.Query(ctx, `SELECT unit, site, frontier_ms, matches, last_alarms, windows FROM alert.units`)
	if err != nil {
		return snap, fmt.Errorf("load units: %w", err)
	}
	for rows.Next() {
		var u engine.UnitRecord
		if err := rows.Scan(&u.Unit, &u.Site, &u.FrontierMs, &u.Matches, &u.LastAlarms, &u.Windows); err != nil {
			rows.Close()
			return snap, fmt.Errorf("load units: %w", err)
		}
		snap.Units = append(snap.Units, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return snap, fmt.Errorf("load units: %w", err)
	}
	if snap.Alerts, err = s.loadAlerts(ctx); err != nil {
		return snap, err
	}
	snap.Outbox, err = s.loadOutbox(ctx)
	return snap, err
}

func (s *Store) loadAlerts(ctx context.Context) ([]engine.Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT rule, key, state, severity, active_at, fired_at, last_alarm, value, labels, annotations FROM alert.alerts`)
	if err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}
	defer rows.Close()
	var out []engine.Alert
	for rows.Next() {
		var a engine.Alert
		var state string
		var fired, lastAlarm *time.Time
		if err := rows.Scan(&a.Rule, &a.Key, &state, &a.Severity, &a.ActiveAt, &fired, &lastAlarm, &a.Value, &a.Labels, &a.Annotations); err != nil {
			return nil, fmt.Errorf("load alerts: %w", err)
		}
		a.State = engine.ParseState(state)
		a.ActiveAt = a.ActiveAt.UTC()
		if fired != nil {
			a.FiredAt = fired.UTC()
		}
		if lastAlarm != nil {
			a.LastAlarm = lastAlarm.UTC()
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *Store) loadOutbox(ctx context.Context) ([]Outboxed, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, alert FROM alert.outbox ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load outbox: %w", err)
	}
	defer rows.Close()
	var out []Outboxed
	for rows.Next() {
		var o Outboxed
		var b []byte
		if err := rows.Scan(&o.ID, &b); err != nil {
			return nil, fmt.Errorf("load outbox: %w", err)
		}
		if err := json.Unmarshal(b, &o.Alert); err != nil {
			return nil, fmt.Errorf("load outbox entry %d: %w", o.ID, err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
