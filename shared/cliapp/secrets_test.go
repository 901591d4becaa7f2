package cliapp_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

// run runs a one-command app declaring the InfluxDB and S3 flags and the
// control token, and returns what the action saw and the exit status.
func run(t *testing.T, args ...string) (map[string]string, int, string) {
	t.Helper()
	seen := map[string]string{}
	cmd := &cli.Command{Name: "x", Flags: cliapp.Merge(cliapp.InfluxFlags(), cliapp.S3Flags(), []cli.Flag{cliapp.ControlTokenFlag()}),
		Action: func(c *cli.Context) error {
			for _, n := range []string{cliapp.FlagInfluxToken, cliapp.FlagInfluxURL, cliapp.FlagAWSSecret, cliapp.FlagControlToken} {
				seen[n] = c.String(n)
			}
			return nil
		}}
	app := cliapp.New("t", "", "", cmd)
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	code := cliapp.ExitStatus(app, app.RunContext(context.Background(), append([]string{"t", "x"}, args...)))
	return seen, code, out.String()
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The service environment (services.sh env) may set the secrets
	// themselves; empty counts as not given.
	for _, v := range []string{"INFLUX_TOKEN", "INFLUX_URL", "AWS_SECRET_ACCESS_KEY", "CONTROL_TOKEN"} {
		t.Setenv(v, "")
	}
	t.Setenv("INFLUX_TOKEN_FILE", write("token", "admin:file-secret\n"))
	t.Setenv("AWS_SECRET_ACCESS_KEY_FILE", write("aws", "  aws-file-secret  \n"))
	seen, code, out := run(t, "--control-token-file", write("ctl", "ctl-secret"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	want := map[string]string{cliapp.FlagInfluxToken: "admin:file-secret", cliapp.FlagAWSSecret: "aws-file-secret", cliapp.FlagControlToken: "ctl-secret"}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("--%s = %q, want %q", k, seen[k], v)
		}
	}

	t.Run("both given", func(t *testing.T) {
		t.Setenv("INFLUX_TOKEN", "admin:env")
		_, code, out := run(t)
		if code != cliapp.ExitFailure || !strings.Contains(out, "--influx-token and --influx-token-file are both set") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, code, out := run(t, "--influx-url-file", filepath.Join(dir, "nope"))
		if code != cliapp.ExitFailure || !strings.Contains(out, "--influx-url-file") || !strings.Contains(out, "nope") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		_, code, out := run(t, "--control-token-file", write("empty", "\n"))
		if code != cliapp.ExitFailure || !strings.Contains(out, "empty") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("not a regular file", func(t *testing.T) {
		_, code, out := run(t, "--control-token-file", dir)
		if code != cliapp.ExitFailure || !strings.Contains(out, "not a regular file") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
}
