package main

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/alert/internal/cmd"
	"github.com/flexipack/cutover/shared/redact/secrettest"
)

// No secret planted in a credential variable reaches the output or the log
// of alert run, whether its services are unreachable or their URLs do not
// parse.
func TestSecretsStayHidden(t *testing.T) {
	for _, env := range []map[string]string{secrettest.Unreachable, secrettest.Unparseable} {
		secrettest.Plant(t, env)
		secrettest.Run(t, cmd.New, 3*time.Second, "alert", "--log-level", "debug", "run", "--rules", "rules/default.yml", "--http-addr", "")
	}
}

// Every listener defaults to loopback.
func TestListenersDefaultToLoopback(t *testing.T) { secrettest.CheckLoopback(t, cmd.New()) }
