package main

import (
	"testing"

	"github.com/flexipack/cutover/backfill/internal/cmd"
	"github.com/flexipack/cutover/shared/composecheck"
)

// The backfill service in docker-compose.yml runs a command backfill has and sets
// only environment variables that command reads.
func TestComposeService(t *testing.T) {
	if err := composecheck.Verify("../docker-compose.yml", "backfill", cmd.New()); err != nil {
		t.Fatal(err)
	}
}
