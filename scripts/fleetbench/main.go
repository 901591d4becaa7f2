// Command fleetbench measures whether the fleet dashboards stay fast on a
// month of data for a fleet: it loads synthetic readings of N units over D
// days into a FRESH InfluxDB 1.8 database, rolls them up with the rollup job
// (shared/rollup, as backfill rollup runs it), checks that the dashboard's
// raw and downsampled answers agree, then times the fleet dashboard's own
// InfluxQL panels ("Fleet-average SoC by site" and one unit's SoC and SoH),
// raw target versus 5-minute target, over several ranges, and drops the
// database.
//
//	go run ./scripts/fleetbench                           # 1000 units, 30 days, 5m cadence
//	go run ./scripts/fleetbench -units 50 -days 2 -runs 1 # a quick look
//	go run ./scripts/fleetbench -output json
//
// Run it from the repository root (it reads deploy/grafana/dashboards/fleet.json).
// The cadence sets the load: 5 minutes is 8.64 million readings for 1000
// units over 30 days; the table extrapolates raw query times linearly to the
// real 10 s cadence (raw cost grows with the readings scanned; the rollup's
// does not depend on the cadence at all).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flexipack/cutover/deploy/influxdb"
	"github.com/flexipack/cutover/scripts/fleetbench/fleet"
	sinflux "github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/rollup"
	"github.com/flexipack/cutover/shared/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench: "+err.Error())
		os.Exit(1)
	}
}

type config struct {
	url, db, dashboard, output string
	units, sites, days         int
	cadence, realCadence       time.Duration
	seed                       uint64
	writers, batch             int
	ranges                     []time.Duration
	maxPoints, runs            int
	keep                       bool
	progress                   time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("fleetbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("INFLUX_URL")
	if def == "" {
		def = "http://127.0.0.1:8086"
	}
	fs.StringVar(&c.url, "url", def, "InfluxDB 1.8 URL (default $INFLUX_URL)")
	fs.StringVar(&c.db, "db", "", "database to create and drop (default fleetbench_<unix-nanoseconds>); it must not exist")
	fs.StringVar(&c.dashboard, "dashboard", "deploy/grafana/dashboards/fleet.json", "the fleet dashboard whose queries are timed")
	fs.StringVar(&c.output, "output", "table", "output: table or json")
	fs.IntVar(&c.units, "units", 1000, "units in the fleet")
	fs.IntVar(&c.sites, "sites", 20, "sites the units are spread over")
	fs.IntVar(&c.days, "days", 30, "days of history, ending at the current hour")
	fs.DurationVar(&c.cadence, "cadence", 5*time.Minute, "reporting interval of every unit (the load's size)")
	fs.DurationVar(&c.realCadence, "real-cadence", 10*time.Second, "the production cadence raw query times are extrapolated to")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed of the synthetic fleet")
	fs.IntVar(&c.writers, "writers", 2, "concurrent write requests")
	fs.IntVar(&c.batch, "batch", 5000, "readings per write request")
	rangesFlag := fs.String("ranges", "720h,168h,24h", "dashboard time ranges to time (comma-separated durations)")
	fs.IntVar(&c.maxPoints, "max-points", 300, "points per series a panel draws: Grafana's max data points, 300 on the fleet panels (sets the window)")
	fs.IntVar(&c.runs, "runs", 3, "runs of each query; the median is reported")
	fs.BoolVar(&c.keep, "keep", false, "keep the database afterwards (to look at it)")
	fs.DurationVar(&c.progress, "progress", 10*time.Second, "interval of progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*rangesFlag, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < time.Hour {
			return c, fmt.Errorf("-ranges: %q is not a duration of at least 1h", s)
		}
		if d > time.Duration(c.days)*24*time.Hour {
			return c, fmt.Errorf("-ranges: %s is longer than the %d days loaded", d, c.days)
		}
		c.ranges = append(c.ranges, d)
	}
	switch {
	case c.units < 1 || c.sites < 1 || c.sites > c.units:
		return c, fmt.Errorf("-units %d, -sites %d: want 1 <= sites <= units", c.units, c.sites)
	case c.days < 1:
		return c, fmt.Errorf("-days %d: want at least 1", c.days)
	case c.cadence < time.Second || c.cadence%time.Second != 0:
		return c, fmt.Errorf("-cadence %s: want whole seconds, at least 1s", c.cadence)
	case c.realCadence < time.Second:
		return c, fmt.Errorf("-real-cadence %s: want at least 1s", c.realCadence)
	case c.writers < 1 || c.batch < 1 || c.runs < 1 || c.maxPoints < 10:
		return c, errors.New("-writers, -batch and -runs must be at least 1, -max-points at least 10")
	case c.output != "table" && c.output != "json":
		return c, fmt.Errorf("-output %q: want table or json", c.output)
	}
	return c, nil
}

// report is what a run measured.
type report struct {
	Database          string        `json:"database"`
	Units             int           `json:"units"`
	Sites             int           `json:"sites"`
	Days              int           `json:"days"`
	Cadence           string        `json:"cadence"`
	Readings          int64         `json:"readings"`
	LineProtocolBytes int64         `json:"line_protocol_bytes"`
	WriteSeconds      float64       `json:"write_seconds"`
	Downsample        []cqTiming    `json:"downsample"`
	Check             string        `json:"check"`
	Queries           []queryTiming `json:"queries"`
}

// cqTiming is the time the rollup job took over the last Days days.
type cqTiming struct {
	CQ      string  `json:"cq"`
	Days    int     `json:"days"`
	Seconds float64 `json:"seconds"`
}

// queryTiming is one query over one range, raw and downsampled.
type queryTiming struct {
	Query         string  `json:"query"`
	Range         string  `json:"range"`
	Every         string  `json:"every"`
	RawSeconds    float64 `json:"raw_seconds"`
	RollupSeconds float64 `json:"rollup_seconds"`
	RawRows       int     `json:"raw_rows"`
	RollupRows    int     `json:"rollup_rows"`
	RawPoints     int64   `json:"raw_points_scanned"`
	RollupPoints  int64   `json:"rollup_points_scanned"`
	// RawAtRealCadence extrapolates RawSeconds linearly in the points
	// scanned to the real cadence.
	RawAtRealCadence float64 `json:"raw_seconds_at_real_cadence_estimate"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	fleetRaw, fleetRoll, err := panelQueries(c.dashboard, panelFleetSoC)
	if err != nil {
		return err
	}
	unitRaw, unitRoll, err := panelQueries(c.dashboard, panelUnitSoC)
	if err != nil {
		return err
	}
	cl := &influx{base: strings.TrimRight(c.url, "/"), hc: &http.Client{}}
	if c.db == "" {
		c.db = fmt.Sprintf("fleetbench_%d", time.Now().UnixNano())
	}
	if exists, err := cl.databaseExists(ctx, c.db); err != nil {
		return fmt.Errorf("InfluxDB at %s: %w", c.url, err)
	} else if exists {
		return fmt.Errorf("database %s already exists; fleetbench loads into a fresh database only (drop it, or pick another -db)", c.db)
	}
	if _, err := cl.influxQL(ctx, "", fmt.Sprintf("CREATE DATABASE %q", c.db)); err != nil {
		return err
	}
	logf(stderr, "created database %s on %s", c.db, c.url)
	defer func() {
		if c.keep {
			logf(stderr, "kept database %s (-keep); drop it with: curl -XPOST %s/query --data-urlencode 'q=DROP DATABASE \"%s\"'", c.db, c.url, c.db)
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, derr := cl.influxQL(dctx, "", fmt.Sprintf("DROP DATABASE %q", c.db)); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop database %s: %w", c.db, derr))
			return
		}
		logf(stderr, "dropped database %s", c.db)
	}()

	end := time.Now().UTC().Truncate(time.Hour)
	start := end.Add(-time.Duration(c.days) * 24 * time.Hour)
	f := fleet.New(c.units, c.sites, start, c.days, c.cadence, c.seed)
	rep := report{Database: c.db, Units: c.units, Sites: c.sites, Days: c.days, Cadence: c.cadence.String(), Readings: f.Readings()}

	t0 := time.Now()
	if rep.LineProtocolBytes, err = load(ctx, cl, c, f, stderr); err != nil {
		return err
	}
	rep.WriteSeconds = time.Since(t0).Seconds()
	logf(stderr, "wrote %d readings in %s (%.0f readings/s)", rep.Readings, round(time.Since(t0)), float64(rep.Readings)/rep.WriteSeconds)

	qc, err := rollUp(ctx, c, &rep, start, end, fleetRaw, fleetRoll, stderr)
	if err != nil {
		return err
	}
	defer qc.Close()

	unit := f.Units[len(f.Units)-1].ID // a generation-2 unit
	for _, span := range c.ranges {
		from := end.Add(-span)
		every := grafanaInterval(span, c.maxPoints)
		rollEvery := max(every, influxdb.Interval)
		rawPts := int64(c.units) * int64(span/c.cadence)
		rollPts := int64(c.sites) * int64(span/influxdb.Interval) * 2
		factor := float64(c.cadence) / float64(c.realCadence)

		panel := func(q, res string, vars map[string]string) func() (int, error) {
			stmt := interpolate(q, from, end, every, res, vars)
			return func() (int, error) {
				n := 0
				err := qc.Query(ctx, stmt, func(s *sinflux.Series) error { n += len(s.Values); return nil })
				return n, err
			}
		}
		u := map[string]string{"unit": unit}
		cases := []struct {
			name               string
			raw, rollup        func() (int, error)
			rawPts, rollPts    int64
			rollEveryForReport time.Duration
		}{
			{"fleet SoC (dashboard panel)", panel(fleetRaw, "raw", nil), panel(fleetRoll, "5m", nil), rawPts, rollPts, rollEvery},
			{"one unit SoC+SoH (dashboard panel)", panel(unitRaw, "raw", u), panel(unitRoll, "5m", u), 2 * int64(span/c.cadence), 2 * int64(span/influxdb.Interval), rollEvery},
		}
		for _, k := range cases {
			qt := queryTiming{Query: k.name, Range: fmtDur(span), Every: fmtDur(every), RawPoints: k.rawPts, RollupPoints: k.rollPts}
			if k.rollEveryForReport != every {
				qt.Every += " (5m: " + fmtDur(k.rollEveryForReport) + ")"
			}
			var d time.Duration
			if d, qt.RawRows, err = timeIt(c.runs, k.raw); err != nil {
				return fmt.Errorf("%s raw over %s: %w", k.name, fmtDur(span), err)
			}
			qt.RawSeconds = d.Seconds()
			if d, qt.RollupRows, err = timeIt(c.runs, k.rollup); err != nil {
				return fmt.Errorf("%s downsampled over %s: %w", k.name, fmtDur(span), err)
			}
			qt.RollupSeconds = d.Seconds()
			qt.RawAtRealCadence = qt.RawSeconds * factor
			if qt.RawRows == 0 || qt.RollupRows == 0 {
				return fmt.Errorf("%s over %s returned no rows (raw %d, downsampled %d): the timing would be meaningless", k.name, fmtDur(span), qt.RawRows, qt.RollupRows)
			}
			rep.Queries = append(rep.Queries, qt)
			logf(stderr, "%s over %s: raw %.2fs, downsampled %.2fs", k.name, fmtDur(span), qt.RawSeconds, qt.RollupSeconds)
		}
	}
	return printReport(stdout, c, rep)
}

// rollUp rolls the loaded days up with the rollup job (as backfill rollup
// runs it), records its timing and checks the fleet panel's raw and 5m
// targets agree; it returns the InfluxQL client the timings use.
func rollUp(ctx context.Context, c config, rep *report, start, end time.Time, fleetRaw, fleetRoll string, stderr io.Writer) (*sinflux.Client, error) {
	icfg := sinflux.Config{URL: c.url, Bucket: c.db + "/autogen"}
	qc, err := sinflux.NewClient(icfg)
	if err != nil {
		return nil, err
	}
	w, err := sinflux.NewWriter(icfg, nil)
	if err != nil {
		qc.Close()
		return nil, err
	}
	defer w.Close()
	t1 := time.Now()
	rres, err := rollup.New(qc, w, nil).Range(ctx, start, end)
	if err != nil {
		qc.Close()
		return nil, err
	}
	rep.Downsample = append(rep.Downsample, cqTiming{CQ: "rollup job (bsu_5m, bsu_site_5m)", Days: c.days, Seconds: time.Since(t1).Seconds()})
	logf(stderr, "rolled up %d days (%d points) with the rollup job in %s", c.days, rres.Points, round(time.Since(t1)))
	if rep.Check, err = checkAgreement(ctx, qc, fleetRaw, fleetRoll, end.Add(-24*time.Hour), end); err != nil {
		qc.Close()
		return nil, err
	}
	logf(stderr, "check: %s", rep.Check)
	return qc, nil
}

// load writes the fleet's readings in time order (as live ingest would),
// batch by batch, with c.writers requests in flight, and returns the bytes
// of line protocol written.
func load(ctx context.Context, cl *influx, c config, f *fleet.Fleet, stderr io.Writer) (int64, error) {
	g, gctx := errgroup.WithContext(ctx)
	type batch struct {
		lines    []byte
		readings int64
	}
	batches := make(chan batch, c.writers)
	var done, bytesOut atomic.Int64
	g.Go(func() error {
		defer close(batches)
		var r telemetry.Record
		buf := make([]byte, 0, c.batch*300)
		n := 0
		for k := 0; k < f.Steps(); k++ {
			for i := range f.Units {
				f.Record(&r, &f.Units[i], k)
				buf = telemetry.AppendLineProtocol(buf, &r)
				if n++; n == c.batch {
					select {
					case batches <- batch{buf, int64(n)}:
					case <-gctx.Done():
						return gctx.Err()
					}
					buf, n = make([]byte, 0, c.batch*300), 0
				}
			}
		}
		if n > 0 {
			select {
			case batches <- batch{buf, int64(n)}:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range c.writers {
		g.Go(func() error {
			for b := range batches {
				if err := cl.write(gctx, c.db, b.lines); err != nil {
					return err
				}
				done.Add(b.readings)
				bytesOut.Add(int64(len(b.lines)))
			}
			return nil
		})
	}
	stop := make(chan struct{})
	go func() {
		t0, tick := time.Now(), time.NewTicker(c.progress)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				n, total := done.Load(), f.Readings()
				rate := float64(n) / time.Since(t0).Seconds()
				eta := "?"
				if rate > 0 {
					eta = round(time.Duration(float64(total-n) / rate * float64(time.Second))).String()
				}
				logf(stderr, "writing: %d/%d readings (%.1f%%), %.0f readings/s, ETA %s", n, total, 100*float64(n)/float64(total), rate, eta)
			}
		}
	}()
	err := g.Wait()
	close(stop)
	return bytesOut.Load(), err
}

// checkAgreement runs the fleet SoC panel's raw and 5-minute targets over
// [from, to) with 1-hour windows and fails unless they give the same means:
// the rollup is exact by construction (sums and counts), so any difference
// is a bug in the rollup job or the panel.
func checkAgreement(ctx context.Context, qc *sinflux.Client, rawQ, rollQ string, from, to time.Time) (string, error) {
	answers := map[string]map[string]float64{}
	for _, k := range []struct{ res, q string }{{"raw", rawQ}, {"5m", rollQ}} {
		m := map[string]float64{}
		err := qc.Query(ctx, interpolate(k.q, from, to, time.Hour, k.res, nil), func(s *sinflux.Series) error {
			for _, row := range s.Values {
				if row[1] == nil {
					continue
				}
				v, err := sinflux.Float64(row[1])
				if err != nil {
					return err
				}
				m[fmt.Sprintf("%s %v", s.Tags["site"], row[0])] = v
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("check: fleet SoC %s: %w", k.res, err)
		}
		answers[k.res] = m
	}
	raw, roll := answers["raw"], answers["5m"]
	if len(raw) == 0 || len(raw) != len(roll) {
		return "", fmt.Errorf("check: fleet SoC over [%s, %s): raw has %d (site, hour) values, downsampled %d", from.Format(time.RFC3339), to.Format(time.RFC3339), len(raw), len(roll))
	}
	worst := 0.0
	for k, v := range raw {
		w, ok := roll[k]
		if !ok {
			return "", fmt.Errorf("check: fleet SoC: downsampled answer lacks %s", k)
		}
		worst = math.Max(worst, math.Abs(v-w))
	}
	if worst > 1e-9 {
		return "", fmt.Errorf("check: fleet SoC raw and downsampled differ by up to %g", worst)
	}
	return fmt.Sprintf("fleet SoC raw = downsampled over the last 24h, %d (site, hour) means, max difference %.1g", len(raw), worst), nil
}

// timeIt runs fn runs times and returns the median duration and the rows of
// the last run.
func timeIt(runs int, fn func() (int, error)) (time.Duration, int, error) {
	var ds []time.Duration
	rows := 0
	for range runs {
		t0 := time.Now()
		n, err := fn()
		if err != nil {
			return 0, 0, err
		}
		ds = append(ds, time.Since(t0))
		rows = n
	}
	slices.Sort(ds)
	return ds[len(ds)/2], rows, nil
}

func printReport(w io.Writer, c config, rep report) error {
	if c.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "fleetbench: %d units, %d sites, %d days at %s cadence = %d readings (%.0f MB line protocol) into %s\n",
		rep.Units, rep.Sites, rep.Days, rep.Cadence, rep.Readings, float64(rep.LineProtocolBytes)/1e6, rep.Database)
	fmt.Fprintf(w, "write:      %.1fs (%.0f readings/s, %d writers × %d readings)\n", rep.WriteSeconds, float64(rep.Readings)/rep.WriteSeconds, c.writers, c.batch)
	for _, d := range rep.Downsample {
		fmt.Fprintf(w, "downsample: %s, %d days in %.1fs (%.1fs per day of history)\n", d.CQ, d.Days, d.Seconds, d.Seconds/float64(d.Days))
	}
	fmt.Fprintf(w, "check:      %s\n", rep.Check)
	fmt.Fprintf(w, "median of %d runs; raw at %s = raw × %g (linear in points scanned, an estimate)\n\n", c.runs, fmtDur(c.realCadence), float64(c.cadence)/float64(c.realCadence))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "query\trange\tevery\traw\t5m rollup\tspeed-up\traw points\trollup points\traw at %s (est.)\t\n", fmtDur(c.realCadence))
	for _, q := range rep.Queries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fs\t%.2fs\t%.0f×\t%d\t%d\t%.1fs\t\n", q.Query, q.Range, q.Every, q.RawSeconds, q.RollupSeconds,
			q.RawSeconds/math.Max(q.RollupSeconds, 1e-3), q.RawPoints, q.RollupPoints, q.RawAtRealCadence)
	}
	return tw.Flush()
}

func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%s fleetbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }

// fmtDur prints whole days as "30d", else like time.Duration without zero parts.
func fmtDur(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// durQL formats d as an InfluxQL duration literal.
func durQL(d time.Duration) string { return fmt.Sprintf("%ds", d/time.Second) }
