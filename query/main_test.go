package main

import (
	"testing"

	"github.com/flexipack/cutover/query/internal/cmd"
	"github.com/flexipack/cutover/shared/composecheck"
)

// The query service in docker-compose.yml runs a command query has and sets
// only environment variables that command reads.
func TestComposeService(t *testing.T) {
	if err := composecheck.Verify("../docker-compose.yml", "query", cmd.New()); err != nil {
		t.Fatal(err)
	}
}
