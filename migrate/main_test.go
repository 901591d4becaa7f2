package main

import (
	"testing"

	"github.com/flexipack/cutover/migrate/internal/cmd"
	"github.com/flexipack/cutover/shared/composecheck"
)

// The migrate service in docker-compose.yml runs a command migrate has and sets
// only environment variables that command reads.
func TestComposeService(t *testing.T) {
	if err := composecheck.Verify("../docker-compose.yml", "migrate", cmd.New()); err != nil {
		t.Fatal(err)
	}
}
