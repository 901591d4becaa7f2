package main

import (
	"testing"

	"github.com/flexipack/cutover/consumer/internal/cmd"
	"github.com/flexipack/cutover/shared/composecheck"
)

// The consumer service in docker-compose.yml runs a command consumer has and sets
// only environment variables that command reads.
func TestComposeService(t *testing.T) {
	if err := composecheck.Verify("../docker-compose.yml", "consumer", cmd.New()); err != nil {
		t.Fatal(err)
	}
}
