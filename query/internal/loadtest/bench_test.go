package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/deploy/influxdb"
	"github.com/flexipack/cutover/query/internal/api"
	"github.com/flexipack/cutover/query/internal/querytest"
	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/query/internal/route"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/obs"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// fixedPhase is the phase the benchmark sets: which store serves.
type fixedPhase struct {
	mu sync.Mutex
	st cutover.State
}

func (f *fixedPhase) Current(context.Context) (cutover.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, nil
}

func (f *fixedPhase) set(p cutover.Phase) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = cutover.State{Phase: p, Version: f.st.Version + 1}
}

// BenchmarkQueryAPI: 50 concurrent clients on the fleet (30 days, 1-hour
// step), their unit's raw readings of 24 hours, its 30 days at 1-hour step
// and its latest reading, served by PostgreSQL and by InfluxDB, at a
// stated load (QUERY_BENCH_RATE requests/s in all, default 50) idle and
// while the consumer ingests a live stream (QUERY_BENCH_INGEST_RATE,
// default 5,000 messages/s), and idle as fast as answered (capacity), plus
// freshness: broker confirm → visible through /latest. Each paced row also
// times references at the same rate as one kind: requests that do no work
// (the API's /-/healthy, InfluxDB's /ping) and latest's query sent to
// InfluxDB directly; the last rows divide each p99 under ingest by its
// idle p99 (the goal: at most 2×).
//
// The data set is fleetbench's: QUERY_BENCH_UNITS units (default 1,000)
// × 30 days at a 10-minute cadence, 20 sites, in both stores, rolled up as
// the continuous queries would (about 5 minutes on 2 cores).
//
// The ingest's processes run in sessions of their own, as services do,
// and the producer simulator (the fleet's units, which are not on the
// server) at the lowest CPU priority; the rows report each process's CPU.
func BenchmarkQueryAPI(b *testing.B) {
	units, days := envInt("QUERY_BENCH_UNITS", 1000), envInt("QUERY_BENCH_DAYS", 30)
	phaseFor := time.Duration(envInt("QUERY_BENCH_SECONDS", 30)) * time.Second
	clients, rate := envInt("QUERY_BENCH_CLIENTS", 50), envInt("QUERY_BENCH_INGEST_RATE", 5000)
	// The stated load: each of the 50 clients sends a request a second
	// (a dashboard of four panels refreshed every 4 s), 50 requests/s in
	// all; the "capacity" rows drop the pacing (closed loop).
	reqRate := envInt("QUERY_BENCH_RATE", 50)
	// QUERY_BENCH_STORES narrows the rows to some stores ("influxdb").
	stores := strings.Split(cmp.Or(os.Getenv("QUERY_BENCH_STORES"), "postgres,influxdb"), ",")
	ctx := testenv.Context(b, 60*time.Minute)
	now := time.Now().UTC().Truncate(time.Hour)
	fleet := querytest.Fleet{Units: units, Sites: 20, From: now.Add(-time.Duration(days) * 24 * time.Hour), Cadence: 10 * time.Minute, Steps: days * 144}
	dsn := testenv.Postgres(b)
	db := testenv.Influx(b)
	icfg := influx.Config{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket, MaxRetries: 1}
	pool, ic := load(ctx, b, fleet, dsn, icfg)

	phase := &fixedPhase{}
	phase.set(cutover.Legacy)
	router := route.NewRouter(phase, reader.NewPostgres(pool).WithCache(5*time.Minute, nil), reader.NewInflux(ic, 0, nil).WithFleetCache(5*time.Minute), quiet)
	if err := router.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	go router.Watch(ctx, 200*time.Millisecond)
	cfg := api.DefaultConfig()
	cfg.MaxConcurrent = 4 * clients
	// The server `query serve` runs: the API behind obs's /-/healthy,
	// /-/ready and /metrics, with its limits.
	reg := obs.NewRegistry()
	srv := obs.NewServer("127.0.0.1:0", reg, quiet)
	srv.SetLimits(obs.Limits{WriteTimeout: max(cfg.StreamTimeout, cfg.RequestTimeout) + 5*time.Second})
	srv.Handle("/", api.New(cfg, api.Deps{Router: router, Logger: quiet, Context: ctx, Registry: reg}).Handler())
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Run(ctx) }()
	apiURL := "http://" + srv.Addr()

	// Every client looks at the whole fleet and at its own unit.
	unit := func(c int) string { return querytest.UnitName(c % units) }
	reqs := []Request{
		{Name: "fleet 30d 1h", Path: fmt.Sprintf("/v1/fleet?from=%dd&step=1h", days)},
		{Name: "unit 24h raw", PerClient: func(c int) string { return "/v1/units/" + unit(c) + "/readings?from=24h&limit=10000" }},
		{Name: "unit 30d 1h", PerClient: func(c int) string { return fmt.Sprintf("/v1/units/%s/series?from=%dd&step=1h", unit(c), days) }},
		{Name: "latest", PerClient: func(c int) string { return "/v1/units/" + unit(c) + "/latest" }},
	}
	b.ResetTimer()
	var rows, kinds []string
	p99 := map[[3]string]time.Duration{} // store, load, kind
	report := func(store, ingest string, st []Stats) {
		for _, s := range st {
			if !slices.Contains(kinds, s.Name) {
				kinds = append(kinds, s.Name)
			}
			p99[[3]string{store, ingest, s.Name}] = s.P99
			rows = append(rows, fmt.Sprintf("QUERYBENCH %-9s %-15s %-13s p50 %8s ms  p95 %8s ms  p99 %8s ms  %7.1f req/s  %d errors %v",
				store, ingest, s.Name, Ms(s.P50), Ms(s.P95), Ms(s.P99), s.PerSecond, s.Errors, statusList(s.Status)))
			b.ReportMetric(float64(s.P99)/1e6, dashed(store, ingest, s.Name, "p99-ms"))
		}
	}
	run := func(p cutover.Phase, store, load string, rate float64) {
		phase.set(p)
		time.Sleep(500 * time.Millisecond) // the router rereads the phase
		cfg := Config{BaseURL: apiURL, Clients: clients, Duration: phaseFor, Requests: reqs, Rate: rate, WarmUp: true}
		if dir := os.Getenv("QUERY_BENCH_PROFILE"); dir != "" {
			// Each request of the row, to line up with the stores' logs.
			f, err := os.Create(filepath.Join(dir, dashed(store, load)+".tsv"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			cfg.Trace = f
		}
		// References, in the same row, each at the share of the rate one
		// kind gets: requests that do no work (the floor: what the clients,
		// the servers and the network stack cost at that moment), through
		// the query service's server and InfluxDB's, and the store's own
		// figure, the query Latest sends, straight to InfluxDB.
		var refs []Stats
		var wg sync.WaitGroup
		if rate > 0 {
			ref := []Request{{Name: "api no-op", Path: apiURL + "/-/healthy"}}
			if store == "influxdb" {
				ref = append(ref, Request{Name: "store no-op", Path: db.URL + "/ping"}, Request{Name: "store latest", PerClient: func(c int) string {
					return db.URL + "/query?" + url.Values{"db": {db.DB}, "epoch": {"ms"}, "q": {reader.InfluxLatestQuery(unit(c), time.Now())}}.Encode()
				}})
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				refs = Run(ctx, Config{Clients: clients, Duration: phaseFor, Rate: rate * float64(len(ref)) / float64(len(reqs)),
					Header: http.Header{"Authorization": {"Token " + db.Token}}, Requests: ref})
			}()
		}
		st := Run(ctx, cfg)
		wg.Wait()
		report(store, load, append(st, refs...))
	}
	for _, p := range []struct {
		phase cutover.Phase
		store string
	}{{cutover.Legacy, "postgres"}, {cutover.InfluxOnly, "influxdb"}} {
		if !slices.Contains(stores, p.store) {
			continue
		}
		run(p.phase, p.store, "idle", float64(reqRate))
		run(p.phase, p.store, "idle capacity", 0)
	}

	ing := startIngest(ctx, b, dsn, icfg, rate)
	rows = append(rows, fmt.Sprintf("QUERYBENCH ingest alone, CPU: %s", ing.alone))
	// InfluxDB first: PostgreSQL serving 50 clients stalls the consumer's
	// own PostgreSQL writes, and the backlog it leaves would be drained
	// during the next row. Each row starts once the consumer keeps up.
	for _, p := range []struct {
		phase cutover.Phase
		store string
	}{{cutover.InfluxOnly, "influxdb"}, {cutover.Legacy, "postgres"}} {
		if !slices.Contains(stores, p.store) {
			continue
		}
		backlog := ing.waitCaughtUp(ctx, rate, 3*time.Minute)
		before := ing.count(ctx)
		started, cpu := time.Now(), cpuTimes()
		var fresh []time.Duration
		var wg sync.WaitGroup
		stopProfile := func() {}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Second)
			fresh = ing.probe(ctx, apiURL, phaseFor-2*time.Second)
		}()
		if dir := os.Getenv("QUERY_BENCH_PROFILE"); dir != "" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				profileInflux(ctx, db.URL, filepath.Join(dir, p.store+"-influxd.pprof"), phaseFor-5*time.Second)
			}()
			// The query service and the load generator: this process.
			if f, err := os.Create(filepath.Join(dir, p.store+"-query.pprof")); err == nil && pprof.StartCPUProfile(f) == nil {
				stopProfile = func() { pprof.StopCPUProfile(); _ = f.Close() }
			}
		}
		run(p.phase, p.store, "ingest", float64(reqRate))
		stopProfile()
		wg.Wait()
		elapsed := time.Since(started)
		used := cpuUse(cpu, cpuTimes(), elapsed)
		achieved := float64(ing.count(ctx)-before) / elapsed.Seconds()
		slices.Sort(fresh)
		rows = append(rows, fmt.Sprintf("QUERYBENCH %-9s %-15s %-13s p50 %8s ms  p95 %8s ms  p99 %8s ms  %d probes; ingest achieved %.0f msg/s (asked %d; %d queued at the start, %d at the end)",
			p.store, "ingest", "freshness", Ms(Percentile(fresh, 50)), Ms(Percentile(fresh, 95)), Ms(Percentile(fresh, 99)), len(fresh), achieved, rate, backlog, ing.backlog(ctx)))
		rows = append(rows, fmt.Sprintf("QUERYBENCH %-9s %-15s CPU during the row: %s", p.store, "ingest", used))
		b.ReportMetric(float64(Percentile(fresh, 99))/1e6, dashed(p.store, "ingest", "freshness", "p99-ms"))
		b.ReportMetric(achieved, p.store+"-ingest-msgs/s")
	}
	ing.stop()
	b.StopTimer()
	// What the ingest does to each kind's p99 (the goal: at most 2×),
	// beside what it does to the requests that do no work.
	for _, store := range stores {
		for _, k := range kinds {
			idle, ok := p99[[3]string{store, "idle", k}]
			busy, ok2 := p99[[3]string{store, "ingest", k}]
			if !ok || !ok2 || idle <= 0 {
				continue
			}
			r := float64(busy) / float64(idle)
			rows = append(rows, fmt.Sprintf("QUERYBENCH %-9s %-15s %-13s p99 %5.1f×  (%s → %s ms)", store, "ingest/idle", k, r, Ms(idle), Ms(busy)))
			b.ReportMetric(r, dashed(store, k, "p99-ingest/idle"))
		}
	}
	fmt.Printf("QUERYBENCH data set: %d units, %d sites, %d days at 10m: %d readings in each store; %d clients, %d requests/s in all (capacity rows: as fast as answered), %s per row\n",
		units, 20, days, units*days*144, clients, reqRate, phaseFor)
	for _, r := range rows {
		fmt.Println(r)
	}
}

// profileInflux saves influxd's CPU profile over d.
func profileInflux(ctx context.Context, url, file string, d time.Duration) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", url, int(d.Seconds())), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if f, err := os.Create(file); err == nil {
		_, _ = io.Copy(f, resp.Body)
		_ = f.Close()
	}
}

// statusList lists the answers that were not successes, n×status.
func statusList(m map[int]int) string {
	var parts []string
	for code, n := range m {
		if code/100 != 2 {
			parts = append(parts, fmt.Sprintf("%d×%d", n, code))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// dashed joins parts with dashes, and dashes their spaces: a metric's or
// a file's name.
func dashed(parts ...string) string {
	return strings.ReplaceAll(strings.Join(parts, "-"), " ", "-")
}

// load writes the fleet into both stores and rolls InfluxDB's readings up
// as the continuous queries would. Each store gets the order it would have
// been written in live:
//   - PostgreSQL in time order, an hour of the whole fleet per batch. Its
//     BRIN index on the time finds a range only when rows lie in time
//     order, as a live stream leaves them; loaded a unit at a time, every
//     range read the whole table.
//   - InfluxDB a unit at a time.
//
// The two loads are interleaved, four batches at once.
func load(ctx context.Context, b *testing.B, f querytest.Fleet, dsn string, icfg influx.Config) (*pgxpool.Pool, *influx.Client) {
	b.Helper()
	started := time.Now()
	leg, err := legacy.Open(ctx, dsn+"&pool_max_conns=32", quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(leg.Close)
	if err := leg.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	w, err := influx.NewWriter(icfg, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	perHour := int(time.Hour / f.Cadence)
	hours := (f.Steps + perHour - 1) / perHour
	for i := range max(hours, f.Units) {
		if i < hours {
			g.Go(func() error {
				var recs []telemetry.Record
				for k := i * perHour; k < min((i+1)*perHour, f.Steps); k++ {
					for u := range f.Units {
						recs = append(recs, f.Record(u, k))
					}
				}
				return querytest.Load(gctx, leg, recs)
			})
		}
		if i < f.Units {
			g.Go(func() error {
				recs := make([]telemetry.Record, f.Steps)
				for k := range f.Steps {
					recs[k] = f.Record(i, k)
				}
				return querytest.Load(gctx, w, recs)
			})
		}
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	loaded := time.Since(started)
	c, err := influx.NewClient(icfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	cqs, err := influxdb.ContinuousQueries(influxdb.ContinuousQueriesText)
	if err != nil {
		b.Fatal(err)
	}
	// SELECT ... INTO answers only when done: twelve hours per statement,
	// and a client that waits up to 2 minutes for the answer (on slower
	// machines, with InfluxDB still compacting the load, 12 hours of 1,000
	// units outlasted the reader's 10 s).
	rcfg := icfg
	rcfg.Timeout = 2 * time.Minute
	roller, err := influx.NewClient(rcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer roller.Close()
	stmts, err := influxdb.ResampleStatements(cqs, f.From, time.Now(), 12*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	for _, st := range stmts {
		if err := roller.Query(ctx, st, func(*influx.Series) error { return nil }); err != nil {
			b.Fatalf("roll up: %v", err)
		}
	}
	fmt.Printf("QUERYBENCH loaded %d readings into each store in %s, rolled up in %s\n", f.Units*f.Steps, loaded.Round(time.Second), (time.Since(started) - loaded).Round(time.Second))
	return leg.Pool(), c
}
