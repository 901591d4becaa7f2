package main

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/migrate/internal/cmd"
	"github.com/flexipack/cutover/shared/redact/secrettest"
)

// No secret planted in a credential variable reaches the output or the log
// of any migrate command, whether its services are unreachable or their URLs do
// not parse.
func TestSecretsStayHidden(t *testing.T) {
	cmds := [][]string{
		{"migrate", "--log-level", "debug", "status"},
		{"migrate", "--log-level", "debug", "plan"},
		{"migrate", "--log-level", "debug", "advance", "--execute"},
		{"migrate", "--log-level", "debug", "verify", "--from", "2h"},
		{"migrate", "--log-level", "debug", "history"},
		{"migrate", "--log-level", "debug", "repair-legacy", "--from", "2h", "--execute"},
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
