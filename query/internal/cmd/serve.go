package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/query/internal/api"
	"github.com/flexipack/cutover/query/internal/console"
	"github.com/flexipack/cutover/query/internal/cutoverapi"
	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/query/internal/route"
	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/redact"
)

// Flag names of query serve.
const (
	flagTokensFile        = "tokens-file"
	flagPhasePoll         = "phase-poll"
	flagShadowRate        = "shadow-rate"
	flagShadowConcurrency = "shadow-concurrency"
	flagShadowTimeout     = "shadow-timeout"
	flagShadowSettle      = "shadow-settle"
	flagRequestTimeout    = "request-timeout"
	flagStreamTimeout     = "stream-timeout"
	flagMaxPoints         = "max-points"
	flagMaxPage           = "max-page"
	flagMaxRange          = "max-range"
	flagMaxConcurrent     = "max-concurrent-queries"
	flagPGMaxConns        = "pg-max-conns"
	flagRollupLag         = "rollup-lag"
	flagFleetCacheTTL     = "fleet-cache-ttl"
	flagFleetLag          = "fleet-lag"
)

// serveConfig is everything query serve reads from its flags.
type serveConfig struct {
	HTTPAddr   string
	PGDSN      string
	StateDSN   string
	PGMaxConns int
	Influx     influx.Config
	RollupLag  time.Duration
	CacheTTL   time.Duration
	TokensFile string
	PhasePoll  time.Duration
	Shadow     route.ShadowConfig
	API        api.Config
}

func serveFlags() []cli.Flag {
	d := api.DefaultConfig()
	own := []cli.Flag{
		cliapp.HTTPAddrFlag("127.0.0.1:9400"),
		&cli.StringFlag{Name: flagTokensFile, EnvVars: []string{"QUERY_TOKENS_FILE"}, Category: "Security",
			Usage: "file of read-only bearer tokens, one a line (# comments); reread on SIGHUP. Without it the API is open, which is allowed only on a loopback --http-addr"},
		&cli.DurationFlag{Name: flagPhasePoll, EnvVars: []string{"QUERY_PHASE_POLL"}, Value: 2 * time.Second,
			Usage: "how often the cutover phase is reread from the state store"},
		&cli.Float64Flag{Name: flagShadowRate, EnvVars: []string{"QUERY_SHADOW_RATE"}, Value: 0.1, Category: "Shadow reads",
			Usage: "share of requests (0..1) the other store also answers in shadow-read and influx-primary, after the response is sent"},
		&cli.IntFlag{Name: flagShadowConcurrency, EnvVars: []string{"QUERY_SHADOW_CONCURRENCY"}, Value: 4, Category: "Shadow reads",
			Usage: "most shadow reads running at once; a request sampled past it is not shadowed"},
		&cli.DurationFlag{Name: flagShadowTimeout, EnvVars: []string{"QUERY_SHADOW_TIMEOUT"}, Value: 10 * time.Second, Category: "Shadow reads",
			Usage: "time-out of one shadow read"},
		&cli.DurationFlag{Name: flagShadowSettle, EnvVars: []string{"QUERY_SHADOW_SETTLE"}, Value: d.ShadowSettle, Category: "Shadow reads",
			Usage: "a mismatch on a request reaching the present (latest, ranges ending within a minute of now) is judged again after this long, both stores asked anew"},
		&cli.DurationFlag{Name: flagRequestTimeout, EnvVars: []string{"QUERY_REQUEST_TIMEOUT"}, Value: d.RequestTimeout, Category: "Limits",
			Usage: "longest a request's store queries may take; past it, 503"},
		&cli.DurationFlag{Name: flagStreamTimeout, EnvVars: []string{"QUERY_STREAM_TIMEOUT"}, Value: d.StreamTimeout, Category: "Limits",
			Usage: "longest an NDJSON stream of readings may take"},
		&cli.IntFlag{Name: flagMaxPoints, EnvVars: []string{"QUERY_MAX_POINTS"}, Value: d.MaxPoints, Category: "Limits",
			Usage: "most points per series in a series or fleet answer; past it, 422"},
		&cli.IntFlag{Name: flagMaxPage, EnvVars: []string{"QUERY_MAX_PAGE"}, Value: d.MaxPage, Category: "Limits",
			Usage: "largest limit of a page of readings or alarms"},
		&cli.DurationFlag{Name: flagMaxRange, EnvVars: []string{"QUERY_MAX_RANGE"}, Value: d.MaxRange, Category: "Limits",
			Usage: "longest from..to range of any request; past it, 422"},
		&cli.IntFlag{Name: flagMaxConcurrent, EnvVars: []string{"QUERY_MAX_CONCURRENT_QUERIES"}, Value: d.MaxConcurrent, Category: "Limits",
			Usage: "most queries running at once on each store; past it, 503 with Retry-After"},
		&cli.DurationFlag{Name: flagRollupLag, EnvVars: []string{"QUERY_ROLLUP_LAG"}, Value: reader.DefaultRollupLag, Category: "InfluxDB",
			Usage: "a 5-minute window's rollups (bsu_5m, bsu_site_5m) are used once it ended this long ago; newer windows are computed from raw readings"},
		&cli.DurationFlag{Name: flagFleetCacheTTL, EnvVars: []string{"QUERY_FLEET_CACHE_TTL"}, Value: 5 * time.Minute, Category: "Limits",
			Usage: "keep the closed steps of the fleet and of units' series (ended over 70 minutes ago, which the rollups no longer change) this long, then refresh them in the background, for each store; InfluxDB's are dropped at once when a backfill run finishes; a late reading in a closed step shows after twice this at most (0: no cache)"},
		&cli.DurationFlag{Name: flagFleetLag, EnvVars: []string{"QUERY_FLEET_LAG"}, Value: d.FleetLag, Category: "Limits",
			Usage: "the fleet endpoint ends this long before now (on a 5-minute boundary): served from closed, rolled-up windows as the dashboard draws them, never by scanning the newest raw readings (0: up to now)"},
		&cli.IntFlag{Name: flagPGMaxConns, EnvVars: []string{"QUERY_PG_MAX_CONNS"}, Value: 16, Category: "Legacy store",
			Usage: "PostgreSQL connections of the legacy store's pool (unless the DSN sets pool_max_conns)"},
	}
	return cliapp.Merge(own, cliapp.LegacyFlags(), cliapp.StateFlags(), cliapp.InfluxFlags())
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the read API",
		Description: `serve answers on --http-addr (127.0.0.1:9400 by default):

  GET /v1/units?site=&model=
  GET /v1/units/{unit}/latest
  GET /v1/units/{unit}/readings?from=&to=&limit=&cursor=    (Accept: application/x-ndjson streams)
  GET /v1/units/{unit}/series?from=&to=&step=&fields=&agg=mean|min|max|last
  GET /v1/fleet?from=&to=&step=&site=
  GET /v1/alarms?from=&to=&unit=&site=&severity=&limit=&cursor=
  GET /v1/openapi.json, /metrics, /-/healthy, /-/ready

Every answer carries X-Served-By (postgres or influxdb) and X-Cutover-Phase. Times are RFC 3339
or a duration before now (24h). Errors are application/problem+json: 400 names the bad
parameter, 404 an unknown unit, 422 a range or point count over a limit, 503 (Retry-After) while
the serving store is down, busy (--max-concurrent-queries) or slower than --request-timeout.

In shadow-read (PostgreSQL serves) and influx-primary (InfluxDB serves) a share of the requests
(--shadow-rate, at most --shadow-concurrency at once) is answered again by the other store after
the response is sent, and the two answers compared with migrate verify's normalisation. Counts
per endpoint are in /metrics and the state store, with each mismatch (request, first differing
record, both values); 'migrate status' shows them and the gate into influx-primary requires them.

Bearer tokens (read-only) come from --tokens-file, reread on SIGHUP. Without a tokens file the
API is open, and serve refuses to start unless --http-addr is a loopback address.
/-/ready is true while the phase is known and the serving store answers.`,
		Flags:  serveFlags(),
		Action: runServe,
	}
}

func parseServe(c *cli.Context) (serveConfig, error) {
	cfg := serveConfig{
		HTTPAddr: c.String(cliapp.FlagHTTPAddr), PGDSN: c.String(cliapp.FlagPGDSN), StateDSN: c.String(cliapp.FlagStateDSN),
		PGMaxConns: c.Int(flagPGMaxConns), TokensFile: c.String(flagTokensFile), PhasePoll: c.Duration(flagPhasePoll),
		Shadow: route.ShadowConfig{Rate: c.Float64(flagShadowRate), Concurrency: c.Int(flagShadowConcurrency), Timeout: c.Duration(flagShadowTimeout)},
		API:    api.DefaultConfig(), Influx: cliapp.InfluxConfig(c), RollupLag: c.Duration(flagRollupLag),
		CacheTTL: c.Duration(flagFleetCacheTTL),
	}
	if !c.IsSet(cliapp.FlagInfluxMaxRetries) {
		cfg.Influx.MaxRetries = 1 // a reader waits; answer 503 soon rather than retry for long
	}
	cfg.API.RequestTimeout, cfg.API.StreamTimeout = c.Duration(flagRequestTimeout), c.Duration(flagStreamTimeout)
	cfg.API.MaxPoints, cfg.API.MaxPage, cfg.API.MaxRange = c.Int(flagMaxPoints), c.Int(flagMaxPage), c.Duration(flagMaxRange)
	cfg.API.MaxConcurrent, cfg.API.ShadowSettle = c.Int(flagMaxConcurrent), c.Duration(flagShadowSettle)
	cfg.API.FleetLag = c.Duration(flagFleetLag)
	return cfg, cfg.validate()
}

func (cfg serveConfig) validate() error {
	switch {
	case cfg.Shadow.Rate < 0 || cfg.Shadow.Rate > 1:
		return fmt.Errorf("--%s %g: want a share between 0 and 1", flagShadowRate, cfg.Shadow.Rate)
	case cfg.Shadow.Concurrency < 1:
		return fmt.Errorf("--%s %d: want at least 1", flagShadowConcurrency, cfg.Shadow.Concurrency)
	case cfg.PhasePoll <= 0:
		return fmt.Errorf("--%s %s: want a positive duration", flagPhasePoll, cfg.PhasePoll)
	case cfg.API.RequestTimeout <= 0 || cfg.API.StreamTimeout <= 0:
		return fmt.Errorf("--%s and --%s must be positive", flagRequestTimeout, flagStreamTimeout)
	case cfg.API.MaxPoints < 1 || cfg.API.MaxPage < 1 || cfg.API.MaxConcurrent < 1 || cfg.PGMaxConns < 1:
		return fmt.Errorf("--%s, --%s, --%s and --%s must be at least 1", flagMaxPoints, flagMaxPage, flagMaxConcurrent, flagPGMaxConns)
	case cfg.API.MaxRange <= 0:
		return fmt.Errorf("--%s %s: want a positive duration", flagMaxRange, cfg.API.MaxRange)
	case cfg.RollupLag < 0 || cfg.CacheTTL < 0 || cfg.API.FleetLag < 0:
		return fmt.Errorf("--%s, --%s and --%s: want 0 or more", flagRollupLag, flagFleetCacheTTL, flagFleetLag)
	case cfg.HTTPAddr == "":
		return fmt.Errorf("--%s: serve needs an address", cliapp.FlagHTTPAddr)
	}
	if cfg.TokensFile == "" && !isLoopback(cfg.HTTPAddr) {
		return fmt.Errorf("--%s %s is not a loopback address: give --%s (the API is open only on loopback)", cliapp.FlagHTTPAddr, cfg.HTTPAddr, flagTokensFile)
	}
	return nil
}

// isLoopback reports whether addr (host:port) binds only a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// withMaxConns sets pool_max_conns on a DSN that does not set it.
func withMaxConns(dsn string, n int) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn
	}
	q := u.Query()
	if q.Get("pool_max_conns") == "" {
		q.Set("pool_max_conns", fmt.Sprint(n))
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func runServe(c *cli.Context) error {
	cfg, err := parseServe(c)
	if err != nil {
		return cliapp.Exit(err, cliapp.ExitFailure)
	}
	logger := cliapp.Logger(c)
	if err := serve(c.Context, cfg, logger); err != nil {
		return cliapp.Exit(redact.Error(err), cliapp.ExitFailure)
	}
	return nil
}

// serve wires the stores, the router, the shadow reads and the API, and
// serves until ctx ends.
func serve(ctx context.Context, cfg serveConfig, logger *slog.Logger) error {
	var auth *api.Auth
	if cfg.TokensFile != "" {
		a, err := api.NewAuth(cfg.TokensFile)
		if err != nil {
			return err
		}
		auth = a
	}
	reg := obs.NewRegistry()
	srv := obs.NewServer(cfg.HTTPAddr, reg, logger)
	// A response may stream readings for up to --stream-timeout.
	srv.SetLimits(obs.Limits{WriteTimeout: max(cfg.API.StreamTimeout, cfg.API.RequestTimeout) + 5*time.Second})
	if err := srv.Listen(); err != nil {
		return err
	}
	state, err := cutover.Open(ctx, cfg.StateDSN)
	if err != nil {
		return err
	}
	defer state.Close()
	// The legacy store connects on first use: while it is down, reads it
	// serves answer 503 and /-/ready says so; the service still starts.
	pgcfg, err := pgxpool.ParseConfig(withMaxConns(cfg.PGDSN, cfg.PGMaxConns))
	if err != nil {
		return fmt.Errorf("--%s: %w", cliapp.FlagPGDSN, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pgcfg)
	if err != nil {
		return fmt.Errorf("legacy store: %w", err)
	}
	defer pool.Close()
	ic, err := influx.NewClient(cfg.Influx)
	if err != nil {
		return err
	}
	defer ic.Close()
	ir := reader.NewInflux(ic, cfg.RollupLag, nil).WithFleetCache(cfg.CacheTTL)
	router := route.NewRouter(state, reader.NewPostgres(pool).WithCache(cfg.CacheTTL, nil), ir, logger)
	if err := router.Refresh(ctx); err != nil {
		logger.Warn("cutover phase not read yet; answering 503 until it is", "err", err)
	}
	shadow := route.NewShadower(cfg.Shadow, state, reg, logger)
	a := api.New(cfg.API, api.Deps{Router: router, Shadow: shadow, Auth: auth, Registry: reg, Logger: logger, Context: ctx})
	// The console's verify-recent gate streams both stores (cached, in the background).
	vr, err := influx.NewReader(cfg.Influx, logger)
	if err != nil {
		return err
	}
	defer vr.Close()
	cut := cutoverapi.New(cutoverapi.DefaultConfig(), cutoverapi.Deps{State: state, Shadow: state, Recent: cutoverapi.CompareStores(legacy.FromPool(pool, logger), vr), Logger: logger})
	defer cut.Close()
	console.Mount(a, cut)
	srv.Handle("/", a.Handler())
	srv.AddReadiness(obs.ReadinessCheck{Name: "serving store", Check: router.Ready})

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { router.Watch(gctx, cfg.PhasePoll); return nil })
	g.Go(func() error { shadow.Run(gctx); return nil })
	g.Go(func() error { invalidateOnBackfill(gctx, state, ir, cfg.PhasePoll, logger); return nil })
	if auth != nil {
		g.Go(func() error { reloadOnHUP(gctx, auth, logger); return nil })
	}
	logger.Info("query serving", "addr", srv.Addr(), "auth", auth != nil, "shadow_rate", cfg.Shadow.Rate)
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// invalidateOnBackfill drops the fleet cache whenever a backfill run
// finishes: it repaired readings of closed steps (and the rollups of the
// range are resampled after it).
func invalidateOnBackfill(ctx context.Context, state *cutover.Store, ir *reader.Influx, every time.Duration, logger *slog.Logger) {
	last := ""
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		run, err := state.LatestFinishedBackfillRun(ctx)
		if err == nil && run.FinishedAt != nil {
			if mark := run.RunID + run.FinishedAt.String(); mark != last {
				if last != "" {
					logger.Info("backfill run finished: fleet cache dropped", "run", run.RunID)
				}
				ir.InvalidateCache()
				last = mark
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reloadOnHUP rereads the tokens file on SIGHUP.
func reloadOnHUP(ctx context.Context, auth *api.Auth, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := auth.Reload(); err != nil {
				logger.Error("tokens file not reloaded; the previous tokens stay in force", "err", err)
			} else {
				logger.Info("tokens file reloaded", "tokens", auth.Count())
			}
		}
	}
}
