package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime returns the user plus system CPU time this process has used so
// far; benchmarks difference it around a phase to report CPU per message.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcessCPU returns the user plus system CPU time of a finished child process.
func ProcessCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// PIDStat is what /proc/<pid>/stat (Linux) says of a process's CPU.
type PIDStat struct {
	Comm     string        // the command name the kernel shows
	CPU      time.Duration // user + system
	Children time.Duration // user + system of its children it has reaped
}

// ReadPIDStat reads /proc/<pid>/stat; ok is false when the process is
// gone or the file is not as expected. Clock ticks are 10 ms on Linux.
func ReadPIDStat(pid int) (st PIDStat, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, false
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return st, false
	}
	f := strings.Fields(s[closing+1:])
	if len(f) < 15 {
		return st, false
	}
	tick := func(i int) time.Duration {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(n) * 10 * time.Millisecond
	}
	return PIDStat{Comm: s[open+1 : closing], CPU: tick(11) + tick(12), Children: tick(13) + tick(14)}, true
}
