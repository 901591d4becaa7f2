package cmd

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// peakRSSMiB returns this process's peak resident set size in MiB (Linux's
// VmHWM), or 0 where it cannot be read. Unlike getrusage's maxrss it does
// not include the parent's memory at the time of the exec.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}
