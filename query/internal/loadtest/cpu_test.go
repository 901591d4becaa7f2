package loadtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuGroups are the processes whose CPU the ingest rows report, by the
// command name the kernel shows (postgres and RabbitMQ run many).
var cpuGroups = []struct{ name, comm string }{
	{"producer", "producer"}, {"consumer", "consumer"}, {"rabbitmq", "beam.smp"},
	{"postgres", "postgres"}, {"influxd", "influxd"}, {"query+load", "loadtest.test"},
}

// cpuTicks returns each group's CPU time so far (user+system, clock ticks).
// A process that ends between two readings loses its share unless its
// parent reaps it.
func cpuTicks() map[string]int64 {
	out := map[string]int64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		comm := s[open+1 : closing]
		f := strings.Fields(s[closing+1:])
		if len(f) < 15 {
			continue
		}
		// utime, stime, and those of reaped children (PostgreSQL's
		// parallel workers come and go within a query).
		var ticks int64
		for _, i := range []int{11, 12, 13, 14} {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
		for _, g := range cpuGroups {
			if comm == g.comm {
				out[g.name] += ticks
			}
		}
	}
	return out
}

// cpuUse formats the cores each group used between two cpuTicks readings
// d apart (clock ticks are 1/100 s on Linux).
func cpuUse(before, after map[string]int64, d time.Duration) string {
	var parts []string
	var total float64
	for _, g := range cpuGroups {
		cores := float64(after[g.name]-before[g.name]) / 100 / d.Seconds()
		total += cores
		parts = append(parts, fmt.Sprintf("%s %.2f", g.name, cores))
	}
	return fmt.Sprintf("%.2f cores: %s", total, strings.Join(parts, ", "))
}
