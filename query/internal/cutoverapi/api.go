// Package cutoverapi serves the cutover's state as read-only JSON under
// /v1/cutover/: the phase and who set it, the phase timeline from the audit
// log, the next step's gates with the command to run, the consumers (stale
// and lagging ones flagged), open gap-ledger entries, backfill runs with
// their progress, the latest verify, and the shadow-read comparisons. It
// reads the state store only (and, for the one expensive gate, both data
// stores through a cached verifier); it never changes anything: actions
// stay in the migrate and backfill CLIs, whose commands it shows.
package cutoverapi

import (
	"context"
	"log/slog"
	"time"

	"github.com/flexipack/cutover/shared/control"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/gates"
)

// StateStore is what the API reads of the cutover state store
// (*cutover.Store implements it).
type StateStore interface {
	control.StateReader
	control.History
	gates.Backfills
	BackfillRuns(ctx context.Context, limit int) ([]cutover.BackfillRunStatus, error)
}

var _ StateStore = (*cutover.Store)(nil)

// Config holds the thresholds the API flags consumers and runs with, and
// the gates' settings (the same defaults as migrate's gate flags).
type Config struct {
	// Gates are the gate thresholds; Confirm is ignored (the operator types
	// it with the command).
	Gates gates.Config
	// SeenFor is how long a consumer that stopped beating stays listed,
	// flagged as stale (default 24h).
	SeenFor time.Duration
	// RecentVerifyTTL is how long an evaluation of the verify-recent gate,
	// which compares both stores over the last hour, is reused (default 5m).
	RecentVerifyTTL time.Duration
	// StaleProgress is how old a running backfill's last progress report may
	// be before the run is flagged as not reporting (default 30s).
	StaleProgress time.Duration
}

// DefaultConfig returns the thresholds migrate's gate flags default to, so
// that the console judges the gates as 'migrate plan' does by default.
func DefaultConfig() Config {
	return Config{Gates: gates.Config{MinShadowReads: 1000, Recent: time.Hour, RecentWindow: 5 * time.Minute,
		MaxLag: 30 * time.Second, LiveFor: 15 * time.Second}}
}

func (c Config) withDefaults() Config {
	if c.SeenFor <= 0 {
		c.SeenFor = 24 * time.Hour
	}
	if c.RecentVerifyTTL <= 0 {
		c.RecentVerifyTTL = 5 * time.Minute
	}
	if c.StaleProgress <= 0 {
		c.StaleProgress = 30 * time.Second
	}
	if c.Gates.LiveFor <= 0 {
		c.Gates.LiveFor = 15 * time.Second
	}
	if c.Gates.MaxLag <= 0 {
		c.Gates.MaxLag = 30 * time.Second
	}
	c.Gates.Confirm = ""
	return c
}

// Deps are the API's collaborators.
type Deps struct {
	State StateStore
	// Shadow is nil when shadow comparisons are not recorded (the section
	// then says so).
	Shadow ShadowSource
	// Recent runs the recent verify behind the verify-recent gate; nil
	// reports that gate as not evaluated here.
	Recent gates.RecentVerifier
	Logger *slog.Logger
	Now    func() time.Time
}

// API serves /v1/cutover/.
type API struct {
	cfg    Config
	state  StateStore
	shadow ShadowSource
	recent *cachedVerifier
	logger *slog.Logger
	now    func() time.Time
}

// New returns the API.
func New(cfg Config, deps Deps) *API {
	cfg = cfg.withDefaults()
	a := &API{cfg: cfg, state: deps.State, shadow: deps.Shadow, logger: deps.Logger, now: deps.Now}
	if a.now == nil {
		a.now = time.Now
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	if deps.Recent != nil {
		a.recent = newCachedVerifier(deps.Recent, cfg.RecentVerifyTTL, a.now, a.logger)
	}
	return a
}
