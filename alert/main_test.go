package main

import (
	"testing"

	"github.com/flexipack/cutover/alert/internal/cmd"
	"github.com/flexipack/cutover/shared/composecheck"
)

// The alert service in docker-compose.yml runs a command alert has and sets
// only environment variables that command reads.
func TestComposeService(t *testing.T) {
	if err := composecheck.Verify("../docker-compose.yml", "alert", cmd.New()); err != nil {
		t.Fatal(err)
	}
}
