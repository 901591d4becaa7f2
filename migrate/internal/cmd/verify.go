package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/verify"
	"github.com/flexipack/cutover/shared/window"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "compare the legacy store with InfluxDB: counts and value checksums per unit and window, and dashboard queries",
		UsageText: "migrate verify --from TIME --to TIME [--units U1,U2] [--window 1h] [--max-mismatch-rate 0]",
		Description: `verify compares the two stores over [--from, --to) of reading time. For each unit
and each --window (aligned to the epoch, so 1h windows start on the hour) it
compares the number of readings and an order-independent checksum of their
values (a 64-bit hash of each reading's canonical fields, summed), and lists
the windows that differ: missing-in-influx, missing-in-legacy, count-differs
or values-differ. The mismatch rate is mismatching (unit, window) pairs over
all pairs that hold a reading in either store.

It reads --chunk of time at a time from both stores, so memory stays bounded
whatever the range, and prints a progress line per chunk on stderr.

The shadow-read check (on by default; --shadow=false skips it) runs the
dashboards' queries against both stores and compares their answers:
fleet-average state of charge per site per 5 minutes over the 24 hours
before --to, and one unit's raw series (soc_pct, soh_pct, voltage_v,
current_a, power_kw) over the hour before --to (--shadow-unit, default: the
unit with the most readings in that hour).

The result is recorded in the state store: 'migrate status' shows it and the
gate into shadow-read wants a clean verify covering the backfilled range.

--from and --to take RFC 3339 times, durations before now (24h), or now.
Exit status: 0 within --max-mismatch-rate and the dashboards agree, 2
otherwise, 1 on errors.`,
		Flags: cliapp.Merge(cliapp.StateFlags(), cliapp.LegacyFlags(), cliapp.InfluxFlags(), cliapp.UnitFlags("", "only these units; default: every unit"), []cli.Flag{
			&cli.StringFlag{Name: flagFrom, Required: true, Usage: "start of the range (RFC 3339, or a duration before now such as 24h)"},
			&cli.StringFlag{Name: flagTo, Value: "now", Usage: "end of the range, exclusive"},
			&cli.DurationFlag{Name: "window", Value: verify.DefaultWindow, Usage: "width of the compared windows"},
			&cli.DurationFlag{Name: "chunk", Value: verify.DefaultChunk, Usage: "time read from both stores per pass (bounds memory)"},
			&cli.Float64Flag{Name: flagMaxMismatchRate, Value: 0, Usage: "highest mismatch rate that still passes (0..1)"},
			&cli.BoolFlag{Name: "shadow", Value: true, Usage: "also run the shadow-read dashboard queries against both stores"},
			&cli.StringFlag{Name: "shadow-unit", Usage: "the unit whose raw series the shadow-read check compares"},
			&cli.IntFlag{Name: "list", Value: 20, Usage: "mismatching windows listed in the table output (all are in the JSON output, up to 1000)"},
			actorFlag(), cliapp.OutputFlag(),
		}),
		Action: cliapp.Action(verifyConfigFrom, runVerify),
	}
}

// verifyReport is verify's JSON output and the detail recorded with the run.
type verifyReport struct {
	ID      int64                `json:"id,omitempty"`
	OK      bool                 `json:"ok"`
	MaxRate float64              `json:"max_mismatch_rate"`
	Result  verify.Result        `json:"result"`
	Shadow  *verify.ShadowResult `json:"shadow,omitempty"`
	Message string               `json:"message"`
}

// verifyConfig is what verify runs with.
type verifyConfig struct {
	Output     string
	Stores     storeConfig
	From, To   time.Time
	Window     time.Duration
	Chunk      time.Duration
	Units      []string
	MaxRate    float64
	Shadow     bool
	ShadowUnit string
	List       int
	Actor      string
}

func verifyConfigFrom(c *cli.Context) (verifyConfig, error) {
	out, err := cliapp.Output(c)
	if err != nil {
		return verifyConfig{}, err
	}
	from, to, err := window.ParseRange(c.String(flagFrom), c.String(flagTo), time.Now())
	if err != nil {
		return verifyConfig{}, cliapp.Exit(err, cliapp.ExitFailure)
	}
	maxRate := c.Float64(flagMaxMismatchRate)
	if maxRate < 0 || maxRate > 1 {
		return verifyConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--%s %g: want a share between 0 and 1", flagMaxMismatchRate, maxRate)
	}
	w := c.Duration("window")
	if w <= 0 || w%time.Millisecond != 0 {
		return verifyConfig{}, cliapp.Exitf(cliapp.ExitFailure, "--window %s: want a positive whole number of milliseconds", w)
	}
	us, err := units(c)
	if err != nil {
		return verifyConfig{}, err
	}
	return verifyConfig{Output: out, Stores: storeConfigFrom(c), From: from, To: to, Window: w, Chunk: c.Duration("chunk"),
		Units: us, MaxRate: maxRate, Shadow: c.Bool("shadow"), ShadowUnit: c.String("shadow-unit"), List: c.Int("list"),
		Actor: c.String(flagActor)}, nil
}

func runVerify(ctx context.Context, env cliapp.Env, cfg verifyConfig) error {
	s, err := openStores(ctx, cfg.Stores, env.Logger)
	if err != nil {
		return err
	}
	defer s.Close()
	l, err := s.Legacy(ctx)
	if err != nil {
		return err
	}
	f, err := s.Influx()
	if err != nil {
		return err
	}
	from, to, w := cfg.From, cfg.To, cfg.Window
	started := time.Now()
	res, err := verify.Compare(ctx, l, f, verify.Options{From: from, To: to, Window: w, Units: cfg.Units, Chunk: cfg.Chunk,
		Progress: func(p verify.Progress) {
			eta := "-"
			if p.Chunk < p.Chunks {
				eta = (time.Since(started) / time.Duration(p.Chunk) * time.Duration(p.Chunks-p.Chunk)).Round(time.Second).String()
			}
			fmt.Fprintf(env.Err, "verify: %d/%d chunks, through %s: %d legacy / %d InfluxDB readings, %d of %d windows mismatch, ETA %s\n",
				p.Chunk, p.Chunks, ts(p.Through), p.LegacyReadings, p.InfluxReadings, p.Mismatched, p.Windows, eta)
		}})
	if err != nil {
		return err
	}
	rep := verifyReport{Result: res, MaxRate: cfg.MaxRate, OK: res.Rate <= cfg.MaxRate}
	if cfg.Shadow {
		d, err := s.Dashboard()
		if err != nil {
			return err
		}
		unit := cfg.ShadowUnit
		if unit == "" {
			if unit, err = busiestUnit(ctx, l, to.Add(-time.Hour), to, cfg.Units); err != nil {
				return err
			}
		}
		sh, err := verify.Shadow(ctx, l, d, verify.ShadowOptions{At: to, Unit: unit})
		if err != nil {
			return err
		}
		rep.Shadow = &sh
		rep.OK = rep.OK && sh.OK
	}
	rep.Message = verdict(rep)
	detail, _ := json.Marshal(rep)
	rep.ID, err = s.state.SaveVerify(ctx, cutover.VerifyRun{Actor: cfg.Actor, From: from, To: to, Window: w,
		Windows: res.Windows, Mismatched: res.Mismatched, Rate: res.Rate, OK: rep.OK, Detail: detail})
	if err != nil {
		return err
	}
	if cfg.Output == "json" {
		if err := writeJSON(env.Out, rep); err != nil {
			return err
		}
	} else {
		printVerify(env.Out, rep, cfg.List)
	}
	if !rep.OK {
		return cliapp.Exitf(cliapp.ExitGate, "verify: %s", rep.Message)
	}
	return nil
}

// busiestUnit picks the unit with the most legacy readings in [from, to).
func busiestUnit(ctx context.Context, l *legacy.Store, from, to time.Time, only []string) (string, error) {
	counts, err := l.Counts(ctx, from, to, to.Sub(from)+time.Millisecond, only)
	if err != nil {
		return "", err
	}
	per := map[string]int64{}
	for _, c := range counts {
		per[c.Unit] += c.N
	}
	best := ""
	for u, n := range per {
		if best == "" || n > per[best] || (n == per[best] && u < best) {
			best = u
		}
	}
	return best, nil
}

func verdict(rep verifyReport) string {
	r := rep.Result
	var parts []string
	parts = append(parts, fmt.Sprintf("%d of %d (unit, %s) windows mismatch (rate %.4g, at most %.4g allowed)", r.Mismatched, r.Windows, r.Window, r.Rate, rep.MaxRate))
	if rep.Shadow != nil {
		n := 0
		for _, q := range rep.Shadow.Queries {
			if q.Differences > 0 {
				n++
			}
		}
		if n == 0 {
			parts = append(parts, fmt.Sprintf("the %d dashboard queries agree", len(rep.Shadow.Queries)))
		} else {
			parts = append(parts, fmt.Sprintf("%d of %d dashboard queries disagree", n, len(rep.Shadow.Queries)))
		}
	}
	msg := strings.Join(parts, "; ")
	if !rep.OK {
		msg += "; repair the differences (backfill for InfluxDB, migrate repair-legacy for the legacy store) and verify again"
	}
	return msg
}

func printVerify(w io.Writer, rep verifyReport, list int) {
	r := rep.Result
	fmt.Fprintf(w, "verify #%d over [%s, %s) in %s windows", rep.ID, ts(r.From), ts(r.To), r.Window)
	if len(r.Units) > 0 {
		fmt.Fprintf(w, ", units %s", strings.Join(r.Units, ","))
	}
	fmt.Fprintf(w, "\n  readings: legacy %d, InfluxDB %d\n  windows:  %d compared, %d mismatch (rate %.4g)\n", r.LegacyReadings, r.InfluxReadings, r.Windows, r.Mismatched, r.Rate)
	ms := slices.Clone(r.Mismatches)
	if len(ms) > list {
		ms = ms[:list]
	}
	for _, m := range ms {
		fmt.Fprintf(w, "  %-20s %s  %-18s legacy %d, influx %d\n", m.Unit, ts(m.Start), m.Kind, m.Legacy.N, m.Influx.N)
	}
	if int64(len(ms)) < r.Mismatched {
		fmt.Fprintf(w, "  … and %d more (--output json lists up to 1000)\n", r.Mismatched-int64(len(ms)))
	}
	if rep.Shadow != nil {
		fmt.Fprintln(w, "  shadow read:")
		for _, q := range rep.Shadow.Queries {
			mark := "agree"
			if q.Differences > 0 {
				mark = fmt.Sprintf("DIFFER at %d points", q.Differences)
			}
			fmt.Fprintf(w, "    %-24s legacy %d rows, influx %d rows: %s (%s)\n", q.Name, q.LegacyRows, q.InfluxRows, mark, q.Description)
			for i, d := range q.Examples {
				if i == 3 {
					break
				}
				fmt.Fprintf(w, "      %s: legacy %s, influx %s\n", d.Key, fv(d.Legacy), fv(d.Influx))
			}
		}
	}
	fmt.Fprintln(w, rep.Message)
}

func fv(p *float64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}
