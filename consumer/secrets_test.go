package main

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/consumer/internal/cmd"
	"github.com/flexipack/cutover/shared/redact/secrettest"
)

// No secret planted in a credential variable reaches the output or the log
// of any consumer command, whether its services are unreachable or their URLs do
// not parse.
func TestSecretsStayHidden(t *testing.T) {
	cmds := [][]string{
		{"consumer", "--log-level", "debug", "run", "--http-addr", ""},
		{"consumer", "--log-level", "debug", "dlq", "list"},
		{"consumer", "--log-level", "debug", "dlq", "replay", "--execute"},
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
