// Command benchtable runs the project's headline benchmarks, each next to
// its baseline in the same run, and prints one table: absolute rate, the
// baseline's rate, the ratio, and CPU per message. `make bench` runs it;
// the raw `go test -bench` output of each row is kept under .data/bench/.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the table, filled from one benchmark's metrics.
type row struct {
	name      string
	pkg       string
	bench     string // -bench pattern
	benchtime string
	timeout   string // go test -timeout; 20m when empty
	env       []string
	// lines, when set, is the prefix of the benchmark's own report lines,
	// printed under the table (a benchmark with more figures than one row).
	lines string
	// pick reads the row's figures from the benchmark's metrics.
	pick func(m map[string]float64) (rate, baseRate, ratio, cpuPerMsg float64, unit, cpuUnit, note string)
}

func main() {
	logDir := flag.String("log-dir", ".data/bench", "where the raw go test output of each row is kept")
	only := flag.String("only", "", "run only rows whose name contains this")
	flag.Parse()
	if err := os.MkdirAll(*logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	rows := tableRows()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\trate\tbaseline\tratio\tCPU/msg\t\tnote")
	failed := false
	var extra []string
	for _, r := range rows {
		if *only != "" && !strings.Contains(r.name, *only) {
			continue
		}
		fmt.Fprintf(os.Stderr, "benchtable: running %s (%s %s)…\n", r.name, r.pkg, r.bench)
		m, out, err := run(r, *logDir)
		if err != nil {
			failed = true
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t\tFAILED: %v\n", r.name, err)
			continue
		}
		rate, base, ratio, cpu, unit, cpuUnit, note := r.pick(m)
		cpuCol := "-"
		if cpuUnit != "" && cpu > 0 {
			cpuCol = fmt.Sprintf("%.1f %s", cpu, cpuUnit)
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s %s\t%.2f×\t%s\t\t%s\n", r.name, human(rate), unit, human(base), unit, ratio, cpuCol, note)
		if r.lines != "" {
			for _, l := range strings.Split(out, "\n") {
				if rest, ok := strings.CutPrefix(l, r.lines+" "); ok {
					extra = append(extra, rest)
				}
			}
		}
	}
	tw.Flush()
	if len(extra) > 0 {
		fmt.Println()
		for _, l := range extra {
			fmt.Println(l)
		}
	}
	if failed {
		os.Exit(1)
	}
}

// tableRows are the table's rows, in order.
func tableRows() []row {
	return []row{
		codecRow("codec gen-2, 1 sample", "gen2-1"),
		codecRow("codec gen-2, 100 samples", "gen2-100"),
		codecRow("codec gen-1", "gen1"),
		{name: "producer simulate → RabbitMQ (confirms)", pkg: "./producer/internal/sim", bench: "^BenchmarkPublishConfirms$", benchtime: "3x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["simulate_msgs/s"], m["raw_msgs/s"], m["ratio"], m["cpu-us/msg"], "msg/s", "µs", "baseline: raw amqp091 publish-with-confirms loop"
			}},
		{name: "consumer dual-write (PG + InfluxDB)", pkg: "./consumer/internal/pipeline", bench: "^BenchmarkDualWrite$", benchtime: "40000x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["msgs/s"], m["raw_msgs/s"], m["ratio"], m["cpu-us/msg"], "msg/s", "µs", "baseline: raw amqp091 consume+ack of the same queue"
			}},
		{name: "backfill run (unthrottled)", pkg: "./backfill/internal/cmd", bench: "^BenchmarkReplayVsRawWrite$", benchtime: "2x",
			env: []string{"BACKFILL_BENCH_POINTS=100000"},
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["run-points/s"], m["raw-points/s"], m["run/raw"], m["cpu-us/point"], "point/s", "µs",
					fmt.Sprintf("baseline: raw line-protocol write loop; writing phase alone %.2f× raw", m["writing-phase/raw"])
			}},
		{name: "backfill run --rate 2000 (60 s)", pkg: "./backfill/internal/cmd", bench: "^BenchmarkThrottledRate$", benchtime: "1x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["achieved-points/s"], m["target-points/s"], m["achieved-points/s"] / m["target-points/s"], 0, "point/s", "",
					fmt.Sprintf("baseline: the target; error %+.1f%% over %.0f s", m["error-%"], m["measured-s"])
			}},
		{name: "verify legacy vs InfluxDB (InfluxQL)", pkg: "./shared/verify", bench: "^BenchmarkVerify$", benchtime: "1x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["influxql_readings/s"], m["flux_readings/s"], m["ratio"], m["influxql_influxd_cpu_us/reading"], "reading/s", "µs",
					fmt.Sprintf("baseline: the Flux reader it replaced; fleetbench data set, %.0f readings, 1h windows; CPU: InfluxDB's per reading (Flux %.0f µs)", m["readings"], m["flux_influxd_cpu_us/reading"])
			}},
		{name: "gap counting (InfluxQL GROUP BY time)", pkg: "./shared/verify", bench: "^BenchmarkGapCounts$", benchtime: "3x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["influxql_readings/s"], m["flux_readings/s"], m["ratio"], 0, "reading/s", "",
					"baseline: the Flux window()/count() it replaced; per unit and 1h window"
			}},
		{name: "rollup job (Go, InfluxQL + line protocol)", pkg: "./deploy/influxdb", bench: "^BenchmarkRollup$", benchtime: "1x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["job_readings/s"], m["cq_readings/s"], m["ratio"], 0, "reading/s", "",
					"baseline: the continuous queries' SELECT … INTO over the same day (fleetbench data set)"
			}},
		{name: "alert: 20 rules × 1,000 units", pkg: "./alert/internal/engine", bench: "^BenchmarkEvaluate20Rules1000Units$", benchtime: "100000x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["readings/cpu-s"], m["decode-readings/cpu-s"], m["ratio"], m["cpu-us/reading"], "reading/s/core", "µs",
					"baseline: decoding alone, same messages; target ≥ 50k readings/s/core"
			}},
		{name: "alert state bytes, 100,000 units", pkg: "./alert/internal/engine", bench: "^BenchmarkStateBytes$", benchtime: "1x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["100k-B/unit-rule"], m["1k-B/unit-rule"], m["ratio"], 0, "B/unit×rule", "",
					"baseline: the same at 1,000 units; 20 rules, aggregate windows full"
			}},
		{name: "query API fleet 30d p99, InfluxDB, under ingest (vs idle)", pkg: "./query/internal/loadtest", bench: "^BenchmarkQueryAPI$", benchtime: "1x", timeout: "60m",
			lines: "QUERYBENCH",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				ing, idle := m["influxdb-ingest-fleet-30d-1h-p99-ms"], m["influxdb-idle-fleet-30d-1h-p99-ms"]
				return ing, idle, ing / idle, 0, "ms", "",
					fmt.Sprintf("goals: p99 < 300 ms, ingest ≤ 2× idle; ingest achieved %.0f msg/s; every endpoint below", m["influxdb-ingest-msgs/s"])
			}},
		{name: "backfill peak RSS, 100× snapshot", pkg: "./backfill/internal/cmd", bench: "^BenchmarkPeakRSS$", benchtime: "1x",
			pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
				return m["100x-peak-MiB"], m["small-peak-MiB"], m["ratio"], 0, "MiB", "",
					"baseline: peak RSS of a snapshot 100× smaller"
			}},
	}
}

func codecRow(name, input string) row {
	return row{name: name, pkg: "./shared/telemetry", bench: "^BenchmarkCodec$/^" + input + "$/^ratio$", benchtime: "2s",
		pick: func(m map[string]float64) (float64, float64, float64, float64, string, string, string) {
			fast, base := m["fast-cpu-ns/op"], m["baseline-cpu-ns/op"]
			return 1e9 / fast, 1e9 / base, m["x-vs-encoding/xml"], fast / 1e3, "msg/s/core", "µs",
				"baseline: encoding/xml Unmarshal + encoding/json; XML → JSON + line protocol, thread CPU time"
		}}
}

var benchLine = regexp.MustCompile(`^Benchmark\S+\s+\d+\s+(.*)$`)

// run runs one benchmark and returns its metrics (the last result line
// wins) and its output.
func run(r row, logDir string) (map[string]float64, string, error) {
	args := []string{"test", "-run", "^$", "-bench", r.bench, "-benchtime", r.benchtime, "-timeout", cmp.Or(r.timeout, "20m"), r.pkg}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), r.env...)
	var out bytes.Buffer
	logName := filepath.Join(logDir, strings.NewReplacer(" ", "_", "/", "_", ",", "", "→", "to", "(", "", ")", "", "×", "x").Replace(r.name)+".txt")
	f, err := os.Create(logName)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	fmt.Fprintf(f, "# %s go %s (%s)\n", time.Now().UTC().Format(time.RFC3339), strings.Join(args, " "), strings.Join(r.env, " "))
	cmd.Stdout = io.MultiWriter(&out, f)
	cmd.Stderr = io.MultiWriter(&out, f)
	if err := cmd.Run(); err != nil {
		return nil, "", fmt.Errorf("go test: %v (output in %s)", err, logName)
	}
	m := map[string]float64{}
	text := out.String()
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		sub := benchLine.FindStringSubmatch(sc.Text())
		if sub == nil {
			continue
		}
		fields := strings.Fields(sub[1])
		for i := 0; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				m[fields[i+1]] = v
			}
		}
	}
	if len(m) == 0 {
		return nil, "", fmt.Errorf("no benchmark result (output in %s)", logName)
	}
	return m, text, nil
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}
