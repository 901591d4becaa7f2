package composecheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// testApp mirrors the shape of the project's binaries: global flags, a
// command with flags, and a command with a subcommand.
func testApp() *cli.App {
	return &cli.App{
		Name:  "fake",
		Flags: []cli.Flag{&cli.StringFlag{Name: "log-level", EnvVars: []string{"LOG_LEVEL"}}},
		Commands: []*cli.Command{
			{
				Name: "run",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "amqp-url", EnvVars: []string{"AMQP_URL"}},
					&cli.IntFlag{Name: "units", Aliases: []string{"u"}},
					&cli.BoolFlag{Name: "dry-run"},
				},
			},
			{
				Name: "admin",
				Subcommands: []*cli.Command{
					{Name: "purge", Flags: []cli.Flag{&cli.StringFlag{Name: "token", EnvVars: []string{"PURGE_TOKEN"}}}},
				},
			},
		},
	}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		file, service string
		// wantErr lists substrings the error must contain; empty means no error.
		wantErr []string
	}{
		{file: "good.yml", service: "app"},
		{file: "good.yml", service: "purge"},
		// Without a command, a variable read by any command is accepted.
		{file: "good.yml", service: "nocommand"},
		{file: "good.yml", service: "missing", wantErr: []string{`service "missing": not defined`, "app, nocommand, purge"}},
		{file: "drift-env.yml", service: "app", wantErr: []string{
			`service "app": environment variable AMQP_URI is not read by fake run`, "it reads: AMQP_URL, LOG_LEVEL",
		}},
		{file: "drift-env.yml", service: "purge", wantErr: []string{
			`service "purge": environment variable AMQP_URL is not read by fake admin purge`,
		}},
		{file: "no-image.yml", service: "app", wantErr: []string{`service "orphan": has neither an image nor a build`}},
		{file: "bad-command.yml", service: "typo", wantErr: []string{`service "typo"`, `fake has no command "runn"`}},
		{file: "bad-command.yml", service: "badflag", wantErr: []string{`service "badflag"`, "flag --unit is not defined for fake run"}},
		{file: "bad-command.yml", service: "otherbinary", wantErr: []string{`service "otherbinary"`, `runs "producer", not fake`}},
		{file: "missing-mount.yml", service: "app", wantErr: []string{`service "app": bind mount source`, "does-not-exist.yml"}},
		{file: "invalid.yml", service: "app", wantErr: []string{"invalid.yml"}},
		{file: "no-such-file.yml", service: "app", wantErr: []string{"no-such-file.yml"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yml")+"/"+tt.service, func(t *testing.T) {
			err := Verify(filepath.Join("testdata", tt.file), tt.service, testApp())
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify succeeded; want an error containing %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

// Every problem is reported at once, not only the first.
func TestVerifyListsEveryDriftedVariable(t *testing.T) {
	dir := t.TempDir()
	compose := `services:
  app:
    image: example/app:1
    command: ["fake", "run"]
    environment:
      ONE: "1"
      TWO: "2"
      LOG_LEVEL: info
`
	path := filepath.Join(dir, "compose.yml")
	if err := os.WriteFile(path, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Verify(path, "app", testApp())
	if err == nil {
		t.Fatal("Verify succeeded; want drift errors for ONE and TWO")
	}
	for _, v := range []string{"variable ONE", "variable TWO", "2 problem(s)"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not mention %q:\n%v", v, err)
		}
	}
	if strings.Contains(err.Error(), "variable LOG_LEVEL") {
		t.Errorf("LOG_LEVEL is read by the app but reported:\n%v", err)
	}
}

// The project's own compose file and what it mounts into Grafana and
// Prometheus must load; the binaries' main_test.go check their services.
func TestProjectComposeFile(t *testing.T) {
	p, err := Load("../../docker-compose.yml", true)
	if err != nil {
		t.Fatal(err)
	}
	if probs := checkProject(p); len(probs) > 0 {
		t.Fatalf("docker-compose.yml:\n  %s", strings.Join(probs, "\n  "))
	}
	for _, svc := range []string{"rabbitmq", "kafka", "postgres", "influxdb", "minio", "minio-init", "grafana", "prometheus", "producer", "consumer", "backfill", "migrate"} {
		if _, ok := p.Services[svc]; !ok {
			t.Errorf("docker-compose.yml has no service %q", svc)
		}
	}
	dashboards, err := filepath.Glob("../../deploy/grafana/dashboards/*.json")
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboards in deploy/grafana/dashboards (err %v)", err)
	}
	for _, f := range dashboards {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID   string `json:"uid"`
			Title string `json:"title"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Errorf("%s: %v", f, err)
		} else if d.UID == "" || d.Title == "" {
			t.Errorf("%s: dashboard needs a uid and a title", f)
		}
	}
}
