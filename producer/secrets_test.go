package main

import (
	"testing"
	"time"

	"github.com/flexipack/cutover/producer/internal/cmd"
	"github.com/flexipack/cutover/shared/redact/secrettest"
)

// No secret planted in a credential variable reaches the output or the log
// of any producer command, whether its services are unreachable or their URLs do
// not parse.
func TestSecretsStayHidden(t *testing.T) {
	cmds := [][]string{
		{"producer", "--log-level", "debug", "simulate", "--count", "1", "--connect-timeout", "1s"},
		{"producer", "--log-level", "debug", "serve", "--connect-timeout", "1s", "--listen", "127.0.0.1:0"},
		{"producer", "--log-level", "debug", "poll", "--connect-timeout", "1s", "--endpoint", "http://u:" + secrettest.Secret + "@127.0.0.1:1/x"},
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
