package main

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/backfill/internal/cmd"
	"github.com/flexipack/cutover/shared/redact/secrettest"
)

// No secret planted in a credential variable reaches the output or the log
// of any backfill command, whether its services are unreachable or their URLs do
// not parse.
func TestSecretsStayHidden(t *testing.T) {
	cmds := [][]string{
		{"backfill", "--log-level", "debug", "gaps", "--from", "2h"},
		{"backfill", "--log-level", "debug", "gaps", "--from", "2h", "--from-ledger"},
		{"backfill", "--log-level", "debug", "run", "--from", "2h", "--execute", "--http-addr", ""},
		{"backfill", "--log-level", "debug", "snapshot", "--from", "2h"},
	}
	for _, env := range []map[string]string{secrettest.Unreachable, secrettest.Unparseable} {
		secrettest.Plant(t, env)
		for _, args := range cmds {
			secrettest.Run(t, cmd.New, 3*time.Second, args...)
		}
	}
}

// Every listener defaults to loopback.
func TestListenersDefaultToLoopback(t *testing.T) { secrettest.CheckLoopback(t, cmd.New()) }
