package cmd

import (
	"bytes"
	"strings"
	"testing"
)

// Every command's --help runs (flag sets build without clashes) and names
// its flags with their environment variables.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"rules", "check", "--help"}, {"rules", "test", "--help"}} {
		app := New()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		if err := app.Run(append([]string{"alert"}, args...)); err != nil {
			t.Fatalf("alert %s: %v", strings.Join(args, " "), err)
		}
		if args[0] == "run" {
			for _, want := range []string{"ALERTMANAGER_URL", "ALERT_RULES", "ALERT_QUEUE", "STATE_DSN", "KAFKA_BROKERS", "ALERT_KAFKA_GROUP", "INFLUX_URL"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("alert run --help does not mention %s", want)
				}
			}
		}
	}
}

// rules check exits 2 on a bad file, naming file and line.
func TestRulesCheckExitStatus(t *testing.T) {
	app := New()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run([]string{"alert", "rules", "check", "../../rules/default.yml", "testdata/bad.yml"})
	type coder interface{ ExitCode() int }
	c, ok := err.(coder)
	if !ok || c.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2", err)
	}
	if !strings.Contains(out.String(), "testdata/bad.yml:4:") || !strings.Contains(out.String(), "default.yml: ok") {
		t.Fatalf("output:\n%s", out.String())
	}
}
