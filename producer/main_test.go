package main

import (
	"testing"

	"github.com/flexipack/cutover/producer/internal/cmd"
	"github.com/flexipack/cutover/shared/composecheck"
)

// The producer service in docker-compose.yml runs a command producer has and sets
// only environment variables that command reads.
func TestComposeService(t *testing.T) {
	if err := composecheck.Verify("../docker-compose.yml", "producer", cmd.New()); err != nil {
		t.Fatal(err)
	}
}
