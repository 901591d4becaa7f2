package main

import (
	"testing"

	"github.com/flexipack/cutover/backfill/internal/cmd"
	"github.com/flexipack/cutover/shared/composecheck"
)

// The backfill and rollup services in docker-compose.yml run commands
// backfill has and set only environment variables those commands read.
func TestComposeService(t *testing.T) {
	for _, svc := range []string{"backfill", "rollup"} {
		if err := composecheck.Verify("../docker-compose.yml", svc, cmd.New()); err != nil {
			t.Fatal(err)
		}
	}
}
