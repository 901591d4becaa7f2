package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/cliapp"
	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/influx"
	"github.com/flexipack/cutover/shared/legacy"
	"github.com/flexipack/cutover/shared/telemetry"
	"github.com/flexipack/cutover/shared/testenv"
)

// env is one test's isolated state store, legacy store and InfluxDB database.
type env struct {
	t      *testing.T
	ctx    context.Context
	state  *cutover.Store
	legacy *legacy.Store
	influx *influx.Writer
	db     testenv.InfluxDB
	dsn    string
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv gives the test a fresh PostgreSQL database (state and legacy
// schemas in it, as STATE_DSN = PG_DSN in the demo) and a fresh InfluxDB
// database.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := testenv.Context(t, 5*time.Minute)
	e := &env{t: t, ctx: ctx, dsn: testenv.Postgres(t), db: testenv.Influx(t)}
	var err error
	if e.state, err = cutover.Open(ctx, e.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.state.Close)
	if e.legacy, err = legacy.Open(ctx, e.dsn, discard()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.legacy.Close)
	if err := e.legacy.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if e.influx, err = influx.NewWriter(influx.Config{URL: e.db.URL, Token: e.db.Token, Org: e.db.Org, Bucket: e.db.Bucket}, discard()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.influx.Close)
	return e
}

// conn are the connection flags of this env's stores.
func (e *env) conn() []string {
	return []string{"--state-dsn", e.dsn, "--pg-dsn", e.dsn, "--influx-url", e.db.URL, "--influx-token", e.db.Token,
		"--influx-org", e.db.Org, "--influx-bucket", e.db.Bucket}
}

// connFor returns the connection flags command accepts.
func (e *env) connFor(command string) []string {
	switch command {
	case "history", "rollback":
		return []string{"--state-dsn", e.dsn}
	}
	return e.conn()
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs 'migrate COMMAND ARGS…' in process against this env's stores.
func (e *env) run(command string, args ...string) result {
	e.t.Helper()
	app := New()
	var out, errb bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errb
	argv := append([]string{"migrate", "--log-level", "error", command}, e.connFor(command)...)
	argv = append(argv, args...)
	code := cliapp.ExitStatus(app, app.RunContext(e.ctx, argv))
	return result{out.String(), errb.String(), code}
}

// mustRun runs a command and fails the test unless it exits with code.
func (e *env) mustRun(code int, command string, args ...string) result {
	e.t.Helper()
	r := e.run(command, args...)
	if r.code != code {
		e.t.Fatalf("migrate %s %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", command, strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

func (e *env) phase() cutover.State {
	e.t.Helper()
	st, err := e.state.Current(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// write stores recs in the legacy store, InfluxDB, or both.
func (e *env) write(toLegacy, toInflux bool, recs []telemetry.Record) {
	e.t.Helper()
	if toLegacy {
		if err := e.legacy.Write(e.ctx, recs); err != nil {
			e.t.Fatal(err)
		}
	}
	if toInflux {
		if err := e.influx.Write(e.ctx, recs); err != nil {
			e.t.Fatal(err)
		}
	}
}

// beat writes a fake consumer heartbeat.
func (e *env) beat(id string, phase cutover.Phase, version int64, lag float64) {
	e.t.Helper()
	err := e.state.Beat(e.ctx, cutover.Heartbeat{ConsumerID: id, Host: "test-host", Phase: phase, PhaseVersion: version, LagSeconds: lag, StartedAt: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
}

// reading returns a fully populated record of unit at t; i varies values.
func reading(unit, site string, t time.Time, i int) telemetry.Record {
	r := telemetry.Record{
		Unit: unit, Site: site, Model: "FlexiPack-250", Firmware: "2.4.1", Schema: "2.1",
		Seq: int64(i), HasSeq: true, TimeMs: t.UnixMilli(),
		Has: telemetry.HasSoC | telemetry.HasSoH | telemetry.HasVoltage | telemetry.HasCurrent | telemetry.HasPower,
		SoC: 40 + float64(i%500)/10, SoH: 97.1, Voltage: 812.1, Current: -12.3, Power: -9.99,
		Temps: []telemetry.Temp{{Sensor: "ambient", C: 21.2222}, {Sensor: "cell_max", C: 31.2}},
		Mode:  "discharging",
	}
	if i%4 == 0 {
		r.Alarms = []telemetry.Alarm{{Code: "OVT-1", Severity: "warning", Text: "Cell over-temperature > 30 °C"}}
	}
	return r
}

// readings returns one reading per unit every step over [from, to).
func readings(units []string, from, to time.Time, step time.Duration) []telemetry.Record {
	var out []telemetry.Record
	for ui, u := range units {
		site := []string{"North Yard, Bay 3", "south"}[ui%2]
		i := 0
		for t := from; t.Before(to); t = t.Add(step) {
			out = append(out, reading(u, site, t, i+ui))
			i++
		}
	}
	return out
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, s)
	}
	return v
}

// parallelRuns runs n migrate processes at once, released together.
func (e *env) parallelRuns(n int, command string, args ...string) []result {
	e.t.Helper()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]result, n)
	cmds := make([]*exec.Cmd, n)
	bufs := make([][2]*bytes.Buffer, n)
	for i := range n {
		argv := append([]string{"--log-level", "error", command}, e.connFor(command)...)
		argv = append(argv, append(slices.Clone(args), "--actor", []string{"ann", "bob", "cy", "dee"}[i%4])...)
		cmds[i] = exec.CommandContext(e.ctx, self, argv...)
		cmds[i].Env = append(os.Environ(), "MIGRATE_TEST_AS_CLI=1")
		bufs[i] = [2]*bytes.Buffer{{}, {}}
		cmds[i].Stdout, cmds[i].Stderr = bufs[i][0], bufs[i][1]
	}
	// Start them all, then wait: the processes race for real.
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			e.t.Fatalf("start migrate %d: %v", i, err)
		}
	}
	for i, c := range cmds {
		err := c.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			e.t.Fatal(err)
		}
		out[i] = result{bufs[i][0].String(), bufs[i][1].String(), code}
	}
	return out
}
