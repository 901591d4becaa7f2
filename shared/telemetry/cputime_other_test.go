//go:build !linux

package telemetry

import "time"

// threadCPU falls back to wall time where no thread CPU clock is wired up.
func threadCPU() int64 { return time.Now().UnixNano() }

const threadCPUClock = "wall time"
