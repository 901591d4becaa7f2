package cmd

import (
	"os"
	"testing"

	"github.com/flexipack/cutover/shared/cliapp"
)

// TestMain lets the test binary act as the migrate binary (with
// MIGRATE_TEST_AS_CLI=1), so tests can run several migrate processes at
// once, as several engineers would: urfave/cli keeps global state, so two
// apps in one process are not a faithful (or race-free) model.
func TestMain(m *testing.M) {
	if os.Getenv("MIGRATE_TEST_AS_CLI") == "1" {
		os.Exit(cliapp.Main(New()))
	}
	os.Exit(m.Run())
}
