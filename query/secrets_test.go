package main

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/query/internal/cmd"
	"github.com/flexipack/cutover/shared/redact/secrettest"
)

// No secret planted in a credential variable reaches the output or the log
// of query serve, whether its services are unreachable or their URLs do not
// parse.
func TestSecretsStayHidden(t *testing.T) {
	for _, env := range []map[string]string{secrettest.Unreachable, secrettest.Unparseable} {
		secrettest.Plant(t, env)
		secrettest.Run(t, cmd.New, 3*time.Second, "query", "--log-level", "debug", "serve", "--http-addr", "127.0.0.1:0")
	}
}

// Every listener defaults to loopback.
func TestListenersDefaultToLoopback(t *testing.T) { secrettest.CheckLoopback(t, cmd.New()) }
