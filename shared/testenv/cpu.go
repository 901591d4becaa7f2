package testenv

import (
	"os"
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
