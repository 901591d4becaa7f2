package cmd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/cutover"
	"github.com/flexipack/cutover/shared/testenv"
)

// buildBackfill builds the backfill binary into a temporary folder.
func buildBackfill(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "backfill")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/flexipack/cutover/backfill").CombinedOutput()
	if err != nil {
		t.Fatalf("go build backfill: %v\n%s", err, out)
	}
	return bin
}

// TestKillAndResume kills a throttled run with SIGKILL mid-way, then
// resumes it: the resumed run never rewrites a window the first one
// checkpointed, and InfluxDB ends up with every reading.
func TestKillAndResume(t *testing.T) {
	bin := buildBackfill(t)
	e := newEnv(t)
	ctx := testenv.Context(t, 3*time.Minute)
	from, to := t0, t0.Add(4*time.Hour)
	all := readings(units, from, to, 10*time.Second) // 3 x 1440, 60 per 10-minute window
	e.writeSnapshot("20261120T040000Z", from, to, all, 1000)

	common := append([]string{"--log-format", "json", "run"}, e.args()...)
	common = append(common, "--http-addr", "127.0.0.1:0", "--execute")
	first := exec.Command(bin, append(common, "--window", "10m", "--rate", "1000",
		"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339))...)
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	st, err := cutover.Open(ctx, e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var runID string
	var done map[cutover.WindowKey]bool
	testenv.Eventually(t, 60*time.Second, "first run checkpoints 10 windows", func() error {
		run, err := st.LatestUnfinishedBackfillRun(ctx)
		if err != nil {
			return err
		}
		runID = run.RunID
		done, err = st.DoneWindows(ctx, runID)
		if err != nil {
			return err
		}
		if len(done) < 10 {
			return fmt.Errorf("%d windows done", len(done))
		}
		return nil
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = first.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first run was not killed (%v); it may have finished before:\n%s", err, firstOut.String())
	}
	// Checkpoints read after the kill: the complete set the resume must skip.
	done, err = st.DoneWindows(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) >= 72 {
		t.Fatalf("all %d windows were done before the kill; slow the first run down", len(done))
	}
	firstWrites := e.proxy.take()
	// Delete U1 from InfluxDB: its finished windows become gaps again, so
	// only the checkpoints keep the resume from rewriting them.
	resp, err := http.PostForm(e.influx.URL+"/query", url.Values{"db": {e.influx.DB}, "q": {"DELETE FROM bsu WHERE unit = '" + units[0] + "'"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("delete U1 from InfluxDB: %v %v", resp, err)
	}
	resp.Body.Close()
	u1Done := 0
	for k := range done {
		if k.Unit == units[0] {
			u1Done++
		}
	}
	if u1Done == 0 {
		t.Fatalf("no window of %s was done before the kill: %v", units[0], done)
	}

	resume := exec.CommandContext(ctx, bin, append(common, "--resume", "--run-id", runID, "--output", "json")...)
	out, err := resume.CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"windows_done_before_resume": `+fmt.Sprint(len(done))) {
		t.Errorf("resume summary does not report %d windows skipped:\n%s", len(done), out)
	}
	secondWrites := e.proxy.take()
	for k := range secondWrites {
		w := windowOf(k, 10*time.Minute)
		if done[cutover.WindowKey(w)] {
			t.Fatalf("the resumed run rewrote %s of window %s, finished before the kill", fmtKey(k), w.Start.Format(time.RFC3339))
		}
	}
	if len(secondWrites) == 0 {
		t.Fatal("the resumed run wrote nothing")
	}
	run, err := st.BackfillRunByID(ctx, runID)
	if err != nil || run.FinishedAt == nil {
		t.Fatalf("run %s not finished after the resume: %+v, %v", runID, run, err)
	}
	// Everything is back except U1's windows finished before the kill,
	// deleted behind the run's back and, being checkpointed, not redone.
	if got, want := len(e.influxRecords(from, to)), len(all)-60*u1Done; got != want {
		t.Fatalf("InfluxDB holds %d readings, want %d (first run wrote %d, resume %d)", got, want, len(firstWrites), len(secondWrites))
	}
	t.Logf("first run: %d windows checkpointed, %d readings written before SIGKILL; resume: %d readings", len(done), len(firstWrites), len(secondWrites))
}
