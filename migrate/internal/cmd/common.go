package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/control"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/gates"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/verify"
	"github.com/flexipack/cutover/shared/window"
)

// Flag names shared by several subcommands.
const (
	flagActor           = "actor"
	flagReason          = "reason"
	flagExecute         = "execute"
	flagForce           = "force"
	flagConfirm         = "confirm"
	flagTo              = "to"
	flagFrom            = "from"
	flagMaxMismatchRate = "max-mismatch-rate"
	flagRecent          = "recent"
	flagRecentWindow    = "recent-window"
	flagMaxLag          = "max-lag"
	flagLiveFor         = "live-for"
	flagConsumerTimeout = "consumer-timeout"
	flagBackfilledRange = "backfilled-range"
	flagMinShadowReads  = "min-shadow-reads"
)

func actorFlag() cli.Flag {
	return &cli.StringFlag{Name: flagActor, EnvVars: []string{"MIGRATE_ACTOR"}, Value: defaultActor(),
		Usage: "who makes the change, as recorded in the audit log (default: the OS user)"}
}

func reasonFlag() cli.Flag {
	return &cli.StringFlag{Name: flagReason, EnvVars: []string{"MIGRATE_REASON"}, Usage: "why, as recorded in the audit log (e.g. a ticket)"}
}

func executeFlag(what string) cli.Flag {
	return &cli.BoolFlag{Name: flagExecute, Usage: "really " + what + " (without it, a dry run that changes nothing)"}
}

func liveForFlag() cli.Flag {
	return &cli.DurationFlag{Name: flagLiveFor, EnvVars: []string{"MIGRATE_LIVE_FOR"}, Value: 15 * time.Second, Usage: "a consumer counts as live if it sent a heartbeat within this long", Category: "Gates"}
}

func consumerTimeoutFlag() cli.Flag {
	return &cli.DurationFlag{Name: flagConsumerTimeout, EnvVars: []string{"MIGRATE_CONSUMER_TIMEOUT"}, Value: 60 * time.Second,
		Usage: "how long to wait for every live consumer to apply the new phase (0: do not wait)"}
}

// gateFlags are the gates' thresholds, shared by status, plan and advance.
func gateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Float64Flag{Name: flagMaxMismatchRate, EnvVars: []string{"MIGRATE_MAX_MISMATCH_RATE"}, Value: 0, Category: "Gates",
			Usage: "highest share of mismatching (unit, window) pairs the recent verify may find, and of the query service's shadow reads that may disagree (0..1)"},
		&cli.Int64Flag{Name: flagMinShadowReads, EnvVars: []string{"MIGRATE_MIN_SHADOW_READS"}, Value: 1000, Category: "Gates",
			Usage: "shadow comparisons the query service must have recorded in the current shadow-read phase before influx-primary (0: not required)"},
		&cli.DurationFlag{Name: flagRecent, EnvVars: []string{"MIGRATE_RECENT"}, Value: time.Hour, Category: "Gates",
			Usage: "how far back the recent verify (gate into influx-primary and influx-only) compares the stores"},
		&cli.DurationFlag{Name: flagRecentWindow, EnvVars: []string{"MIGRATE_RECENT_WINDOW"}, Value: 5 * time.Minute, Category: "Gates",
			Usage: "window width of the recent verify"},
		&cli.DurationFlag{Name: flagMaxLag, EnvVars: []string{"MIGRATE_MAX_LAG"}, Value: 30 * time.Second, Category: "Gates",
			Usage: "highest lag a live consumer may have; the recent verify also stops this long before now (readings in flight)"},
		liveForFlag(),
		&cli.StringFlag{Name: flagBackfilledRange, Aliases: []string{"range"}, EnvVars: []string{"MIGRATE_BACKFILLED_RANGE"}, Category: "Gates",
			Usage: "FROM,TO (RFC 3339): the range the gate into shadow-read wants a clean verify over (default: the from/to of the latest finished backfill run)"},
	}
}

func defaultActor() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// storeConfig says where the stores are.
type storeConfig struct {
	StateDSN  string
	LegacyDSN string
	Influx    influx.Config
}

// storeConfigFrom reads the store flags; a command without the legacy or
// InfluxDB flags gets their zero values and never opens those stores.
func storeConfigFrom(c *cli.Context) storeConfig {
	return storeConfig{StateDSN: c.String(cliapp.FlagStateDSN), LegacyDSN: c.String(cliapp.FlagPGDSN), Influx: cliapp.InfluxConfig(c)}
}

// stores opens the state store at once and the data stores on first use.
type stores struct {
	cfg    storeConfig
	logger *slog.Logger
	state  *cutover.Store
	legacy *legacy.Store
	influx *influx.Reader
	dash   *influx.Dashboard
}

func openStores(ctx context.Context, cfg storeConfig, logger *slog.Logger) (*stores, error) {
	st, err := cutover.Open(ctx, cfg.StateDSN)
	if err != nil {
		return nil, err
	}
	return &stores{cfg: cfg, logger: logger, state: st}, nil
}

func (s *stores) Close() {
	s.state.Close()
	if s.legacy != nil {
		s.legacy.Close()
	}
	if s.influx != nil {
		s.influx.Close()
	}
	if s.dash != nil {
		s.dash.Close()
	}
}

func (s *stores) Legacy(ctx context.Context) (*legacy.Store, error) {
	if s.legacy == nil {
		l, err := legacy.Open(ctx, s.cfg.LegacyDSN, s.logger)
		if err != nil {
			return nil, err
		}
		s.legacy = l
	}
	return s.legacy, nil
}

func (s *stores) Influx() (*influx.Reader, error) {
	if s.influx == nil {
		r, err := influx.NewReader(s.cfg.Influx, s.logger)
		if err != nil {
			return nil, err
		}
		s.influx = r
	}
	return s.influx, nil
}

func (s *stores) Dashboard() (*influx.Dashboard, error) {
	if s.dash == nil {
		d, err := influx.NewDashboard(s.cfg.Influx)
		if err != nil {
			return nil, err
		}
		s.dash = d
	}
	return s.dash, nil
}

// gatedConfig is what the commands that evaluate gates (status, plan,
// advance) share: the output format, the stores, the gates' thresholds.
type gatedConfig struct {
	Output string
	Stores storeConfig
	Gates  gates.Config
}

func gatedConfigFrom(c *cli.Context) (gatedConfig, error) {
	out, err := cliapp.Output(c)
	if err != nil {
		return gatedConfig{}, err
	}
	g, err := gatesConfigFrom(c)
	if err != nil {
		return gatedConfig{}, err
	}
	return gatedConfig{Output: out, Stores: storeConfigFrom(c), Gates: g}, nil
}

// gatesConfigFrom reads and checks the gate flags (and --confirm).
func gatesConfigFrom(c *cli.Context) (gates.Config, error) {
	cfg := gates.Config{
		MaxMismatchRate: c.Float64(flagMaxMismatchRate),
		MinShadowReads:  c.Int64(flagMinShadowReads),
		Recent:          c.Duration(flagRecent),
		RecentWindow:    c.Duration(flagRecentWindow),
		MaxLag:          c.Duration(flagMaxLag),
		LiveFor:         c.Duration(flagLiveFor),
		Confirm:         c.String(flagConfirm),
	}
	if cfg.MinShadowReads < 0 {
		return cfg, cliapp.Exitf(cliapp.ExitFailure, "--%s %d: want 0 or more", flagMinShadowReads, cfg.MinShadowReads)
	}
	if cfg.MaxMismatchRate < 0 || cfg.MaxMismatchRate > 1 {
		return cfg, cliapp.Exitf(cliapp.ExitFailure, "--%s %g: want a share between 0 and 1", flagMaxMismatchRate, cfg.MaxMismatchRate)
	}
	if r := c.String(flagBackfilledRange); r != "" {
		sp, err := parseSpan(r)
		if err != nil {
			return cfg, cliapp.Exitf(cliapp.ExitFailure, "--%s: %w", flagBackfilledRange, err)
		}
		cfg.BackfilledRange = &sp
	}
	return cfg, nil
}

// checker builds the gate checker over the stores.
func (s *stores) checker(cfg gates.Config) *gates.Checker {
	return &gates.Checker{
		Ledger: s.state, Verifies: s.state, Consumers: s.state, Backfills: s.state, Shadows: s.state, Config: cfg,
		Recent: func(ctx context.Context, from, to time.Time, w time.Duration) (verify.Result, error) {
			l, err := s.Legacy(ctx)
			if err != nil {
				return verify.Result{}, err
			}
			f, err := s.Influx()
			if err != nil {
				return verify.Result{}, err
			}
			return verify.Compare(ctx, l, f, verify.Options{From: from, To: to, Window: w})
		},
	}
}

// parseSpan parses "FROM,TO" (RFC 3339 or durations before now).
func parseSpan(s string) (window.Span, error) {
	from, to, ok := strings.Cut(s, ",")
	if !ok {
		return window.Span{}, fmt.Errorf("%q: want FROM,TO", s)
	}
	f, t, err := window.ParseRange(strings.TrimSpace(from), strings.TrimSpace(to), time.Now())
	if err != nil {
		return window.Span{}, err
	}
	return window.Span{From: f, To: t}, nil
}

// units reads --units, --unit and --units-file (cliapp.UnitFlags); a bad
// units file is a usage error.
func units(c *cli.Context) ([]string, error) {
	us, err := cliapp.Units(c)
	if err != nil {
		return nil, cliapp.Exit(err, cliapp.ExitFailure)
	}
	return us, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exitFor turns a control error into the exit status it stands for:
// refusals (gates, a concurrent change, consumers not following) are 2.
func exitFor(err error) error {
	if err == nil {
		return nil
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return err
	}
	if errors.Is(err, control.ErrGateRefused) || errors.Is(err, control.ErrConflict) || errors.Is(err, control.ErrNotFollowed) {
		return cliapp.Exit(err, cliapp.ExitGate)
	}
	return cliapp.Exit(err, cliapp.ExitFailure)
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func gateLines(w io.Writer, rs []cutover.GateResult) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "  (no gates)")
	}
	for _, r := range rs {
		mark := "PASS"
		if !r.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %-24s %s\n", mark, r.Name, r.Detail)
	}
}
