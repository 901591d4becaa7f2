package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flexipack/cutover/shared/retry"
)

// recorder is an injected Sleep that records the waits instead of sleeping.
type recorder struct{ waits []time.Duration }

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return ctx.Err()
}

func TestBackoffGrowsToMax(t *testing.T) {
	tests := []struct {
		name   string
		policy retry.Policy
		want   []time.Duration
	}{
		{"defaults without jitter", retry.Policy{Jitter: retry.None},
			[]time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}},
		{"custom initial, max and multiplier", retry.Policy{Initial: 200 * time.Millisecond, Max: time.Second, Multiplier: 3, Jitter: retry.None},
			[]time.Duration{200, 600, 1000, 1000}},
		{"equal jitter with the smallest draw is half the base", retry.Policy{Jitter: retry.Equal, Rand: func(time.Duration) time.Duration { return 0 }},
			[]time.Duration{50, 100, 200, 400}},
		{"equal jitter with the largest draw is the base", retry.Policy{Jitter: retry.Equal, Rand: func(n time.Duration) time.Duration { return n }},
			[]time.Duration{100, 200, 400, 800}},
		{"full jitter with the smallest draw is zero", retry.Policy{Jitter: retry.Full, Rand: func(time.Duration) time.Duration { return 0 }},
			[]time.Duration{0, 0, 0}},
		{"max below initial is raised to initial", retry.Policy{Initial: time.Second, Max: time.Millisecond, Jitter: retry.None},
			[]time.Duration{1000, 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := retry.NewBackoff(tt.policy)
			for i, w := range tt.want {
				if got := b.Next(); got != w*time.Millisecond {
					t.Fatalf("wait %d = %v, want %v", i+1, got, w*time.Millisecond)
				}
			}
		})
	}
}

func TestBackoffJitterStaysInBounds(t *testing.T) {
	for _, j := range []struct {
		name   string
		jitter retry.Jitter
		lowest func(base time.Duration) time.Duration
	}{
		{"equal", retry.Equal, func(b time.Duration) time.Duration { return b / 2 }},
		{"full", retry.Full, func(time.Duration) time.Duration { return 0 }},
	} {
		t.Run(j.name, func(t *testing.T) {
			b := retry.NewBackoff(retry.Policy{Jitter: j.jitter})
			distinct := map[time.Duration]bool{}
			for range 200 {
				base := b.Base()
				d := b.Next()
				if d < j.lowest(base) || d > base {
					t.Fatalf("wait %v outside [%v, %v]", d, j.lowest(base), base)
				}
				distinct[d] = true
			}
			if len(distinct) < 10 {
				t.Fatalf("only %d distinct waits in 200: not jittered", len(distinct))
			}
		})
	}
}

func TestBackoffReset(t *testing.T) {
	b := retry.NewBackoff(retry.Policy{Jitter: retry.None})
	b.Next()
	b.Next()
	b.Reset()
	if got := b.Next(); got != retry.DefaultInitial {
		t.Fatalf("after Reset: %v, want %v", got, retry.DefaultInitial)
	}
}

func TestDo(t *testing.T) {
	errBoom := errors.New("boom")
	errFatal := errors.New("fatal")
	tests := []struct {
		name      string
		attempts  int   // MaxAttempts
		failures  int   // calls that fail before one succeeds (-1: all fail)
		fail      error // what a failing call returns
		wantCalls int
		wantWaits int
		wantErr   error
	}{
		{"first call succeeds", 0, 0, errBoom, 1, 0, nil},
		{"succeeds after three failures", 0, 3, errBoom, 4, 3, nil},
		{"gives up after max attempts with the last error", 3, -1, errBoom, 3, 2, errBoom},
		{"permanent error is not retried and returned unwrapped", 0, -1, retry.Permanent(errFatal), 1, 0, errFatal},
		{"wrapped permanent error is returned as is", 0, -1, fmt.Errorf("open: %w", retry.Permanent(errFatal)), 1, 0, errFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			calls, notified := 0, 0
			p := retry.Policy{MaxAttempts: tt.attempts, Sleep: rec.sleep,
				OnRetry: func(attempt int, err error, wait time.Duration) {
					notified++
					if attempt != notified || err != tt.fail {
						t.Errorf("OnRetry(%d, %v) on retry %d", attempt, err, notified)
					}
				}}
			err := retry.Do(context.Background(), p, func(context.Context) error {
				calls++
				if tt.failures < 0 || calls <= tt.failures {
					return tt.fail
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if retry.IsPermanent(err) && tt.name != "wrapped permanent error is returned as is" {
				t.Fatalf("Do returned the permanent mark: %v", err)
			}
			if calls != tt.wantCalls || len(rec.waits) != tt.wantWaits || notified != tt.wantWaits {
				t.Fatalf("calls %d, waits %d, notified %d; want %d, %d, %d", calls, len(rec.waits), notified, tt.wantCalls, tt.wantWaits, tt.wantWaits)
			}
		})
	}
}

func TestDoStopsWhenContextEndsDuringWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	errBoom := errors.New("broker down")
	calls := 0
	err := retry.Do(ctx, retry.Policy{Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return retry.Sleep(ctx, d)
	}}, func(context.Context) error {
		calls++
		return errBoom
	})
	var stopped *retry.StoppedError
	if !errors.As(err, &stopped) || !errors.Is(err, context.Canceled) || stopped.Last != errBoom {
		t.Fatalf("err = %#v, want a StoppedError wrapping context.Canceled with the last error", err)
	}
	if want := "context canceled (last error: broker down)"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	if calls != 1 {
		t.Fatalf("calls = %d, want 1", calls)
	}
}

func TestDoReturnsCallErrorWhenContextEndedDuringCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	err := retry.Do(ctx, retry.Policy{Sleep: rec.sleep}, func(ctx context.Context) error {
		cancel()
		return fmt.Errorf("write: %w", ctx.Err())
	})
	if err == nil || err.Error() != "write: context canceled" || len(rec.waits) != 0 {
		t.Fatalf("err = %v, waits %v; want the call's error and no wait", err, rec.waits)
	}
}

func TestSleepWaitsOrStops(t *testing.T) {
	if err := retry.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := retry.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on an ended context: %v", err)
	}
}

func TestValue(t *testing.T) {
	calls := 0
	v, err := retry.Value(context.Background(), retry.Policy{Sleep: (&recorder{}).sleep}, func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return -1, errors.New("not yet")
		}
		return 42, nil
	})
	if err != nil || v != 42 {
		t.Fatalf("Value = %d, %v; want 42, nil", v, err)
	}
	v, err = retry.Value(context.Background(), retry.Policy{MaxAttempts: 1}, func(context.Context) (int, error) { return 7, errors.New("no") })
	if err == nil || v != 0 {
		t.Fatalf("Value on failure = %d, %v; want the zero value and the error", v, err)
	}
}

func ExampleDo() {
	calls := 0
	err := retry.Do(context.Background(), retry.Policy{Initial: time.Millisecond, MaxAttempts: 5,
		OnRetry: func(attempt int, err error, _ time.Duration) { fmt.Printf("attempt %d failed: %v\n", attempt, err) },
	}, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("connection refused")
		}
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// attempt 1 failed: connection refused
	// attempt 2 failed: connection refused
	// err: <nil>
}

func TestStopped(t *testing.T) {
	errDial := errors.New("dial: refused")
	if got := retry.Stopped(context.Background(), errDial); got != errDial {
		t.Fatalf("live context: %v, want the error as is", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := retry.Stopped(ctx, errDial)
	var stopped *retry.StoppedError
	if !errors.As(got, &stopped) || stopped.Last != errDial || !errors.Is(got, context.Canceled) {
		t.Fatalf("ended context: %#v, want a StoppedError around %v", got, errDial)
	}
	if again := retry.Stopped(ctx, got); again != got {
		t.Fatalf("a StoppedError is wrapped again: %v", again)
	}
	if retry.Stopped(ctx, nil) != nil {
		t.Fatal("Stopped(nil) is not nil")
	}
}
