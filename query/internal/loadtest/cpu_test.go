package loadtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flexipack/cutover/shared/testenv"
)

// cpuGroups are the processes whose CPU the ingest rows report, by the
// command name the kernel shows (postgres and RabbitMQ run many); an empty
// name is this process (the query service and the load generator),
// whatever its binary is called.
var cpuGroups = []struct{ name, comm string }{
	{"producer", "producer"}, {"consumer", "consumer"}, {"rabbitmq", "beam.smp"},
	{"postgres", "postgres"}, {"influxd", "influxd"}, {"query+load", ""},
}

// cpuTimes returns each group's CPU time so far (user+system, and that of
// reaped children: PostgreSQL's parallel workers come and go within a
// query). A process that ends between two readings loses its share unless
// its parent reaps it.
func cpuTimes() map[string]time.Duration {
	out := map[string]time.Duration{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, ok := testenv.ReadPIDStat(pid)
		if !ok {
			continue
		}
		comm := st.Comm
		if pid == os.Getpid() {
			comm = ""
		}
		for _, g := range cpuGroups {
			if comm == g.comm {
				out[g.name] += st.CPU + st.Children
			}
		}
	}
	return out
}

// cpuUse formats the cores each group used between two cpuTimes readings
// d apart.
func cpuUse(before, after map[string]time.Duration, d time.Duration) string {
	var parts []string
	var total float64
	for _, g := range cpuGroups {
		cores := (after[g.name] - before[g.name]).Seconds() / d.Seconds()
		total += cores
		parts = append(parts, fmt.Sprintf("%s %.2f", g.name, cores))
	}
	return fmt.Sprintf("%.2f cores: %s", total, strings.Join(parts, ", "))
}
