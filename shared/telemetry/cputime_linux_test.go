package telemetry

import "golang.org/x/sys/unix"

// threadCPU returns the CPU time the calling OS thread has used, so that a
// benchmark locked to its thread is not skewed by other processes.
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

const threadCPUClock = "thread CPU time"
