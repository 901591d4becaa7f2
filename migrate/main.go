// Command migrate: see 'migrate --help'.
package main

import (
	"os"
	"runtime/debug"

	"github.com/flexipack/cutover/migrate/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
)

// gcPercent is migrate's garbage-collection target unless GOGC is set.
// Verification allocates for every reading it decodes and keeps only
// per-window sums, so a heap four times its live size is still small, and
// the collector's share of verify's CPU falls by about a fifth (make bench,
// BenchmarkVerify).
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(cliapp.Main(cmd.New()))
}
