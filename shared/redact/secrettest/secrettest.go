// Package secrettest plants a secret in every credential variable a binary
// reads, runs the binary's commands through their failure paths and fails
// the test if the secret shows up in anything the command printed or
// logged. Each binary's secrets_test.go lists its commands.
package secrettest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

// Secret is the planted value; it contains characters that URL parsers
// and DSN parsers treat specially, so half-redacted forms show up too.
const Secret = "Pl4nted-s3cret"

// Unreachable points every service at a closed loopback port (nothing
// listens on port 1), with the secret as every password, token and key.
var Unreachable = map[string]string{
	"AMQP_URL":              "amqp://guest:" + Secret + "@127.0.0.1:1/",
	"AMQP_MANAGEMENT_URL":   "http://guest:" + Secret + "@127.0.0.1:1",
	"PG_DSN":                "postgres://postgres:" + Secret + "@127.0.0.1:1/postgres?sslmode=disable",
	"STATE_DSN":             "postgres://postgres:" + Secret + "@127.0.0.1:1/postgres?sslmode=disable",
	"INFLUX_URL":            "http://admin:" + Secret + "@127.0.0.1:1",
	"INFLUX_TOKEN":          "admin:" + Secret,
	"S3_ENDPOINT":           "http://127.0.0.1:1",
	"S3_BUCKET":             "planted",
	"AWS_ACCESS_KEY_ID":     "AKIA" + Secret,
	"AWS_SECRET_ACCESS_KEY": Secret,
	"KAFKA_BROKERS":         "127.0.0.1:1",
	"CONTROL_TOKEN":         Secret,
	"KAFKA_SASL_PASSWORD":   Secret,
	"ALERTMANAGER_URL":      "http://am:" + Secret + "@127.0.0.1:1",
}

// Unparseable holds credential URLs that do not parse; their parse errors
// must not quote them.
var Unparseable = map[string]string{
	"AMQP_URL":            "amqp://guest:" + Secret + "#x@127.0.0.1:5672/",
	"AMQP_MANAGEMENT_URL": "http://guest:" + Secret + "#x@127.0.0.1:15672",
	"PG_DSN":              "postgres://postgres:" + Secret + "#x@127.0.0.1:5432/postgres",
	"STATE_DSN":           "postgres://postgres:" + Secret + "#x@127.0.0.1:5432/postgres",
	"INFLUX_URL":          "http://admin:" + Secret + "#x@127.0.0.1:8086",
}

// Plant sets vars in the environment for the rest of the test.
func Plant(t *testing.T, vars map[string]string) {
	t.Helper()
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// Run runs app with args (args[0] is the program name) for at most d and
// fails t if the secret (or its second half, a sign of a password cut by a
// parser) appears in what it wrote to stdout or stderr. It returns what it wrote.
func Run(t *testing.T, newApp func() *cli.App, d time.Duration, args ...string) string {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := app.RunContext(ctx, args)
	cliapp.ExitStatus(app, err) // prints err as cliapp.Main does
	text := out.String()
	Check(t, strings.Join(args, " "), text)
	return text
}

// Check fails t if text holds the secret or a recognisable piece of it.
func Check(t *testing.T, where, text string) {
	t.Helper()
	for _, piece := range []string{Secret, Secret[:8], Secret[6:]} {
		if strings.Contains(text, piece) {
			t.Errorf("%s: the planted secret (%q) appears in the output:\n%s", where, piece, text)
			return
		}
	}
}

// CheckLoopback fails t unless every listen-address flag of app's commands
// (--http-addr, --listen) defaults to a 127.0.0.1 address or to nothing.
func CheckLoopback(t *testing.T, app *cli.App) {
	t.Helper()
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			walk(path+" "+c.Name, c.Subcommands)
			for _, f := range c.Flags {
				name := f.Names()[0]
				if name != cliapp.FlagHTTPAddr && name != "listen" {
					continue
				}
				def := f.(interface{ GetValue() string }).GetValue()
				if def != "" && !strings.HasPrefix(def, "127.0.0.1:") {
					t.Errorf("%s%s --%s defaults to %q, want 127.0.0.1:PORT", app.Name, path+" "+c.Name, name, def)
				}
			}
		}
	}
	walk("", app.Commands)
}
