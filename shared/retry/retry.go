// Package retry is the one retry and back-off helper of the project:
// exponential back-off with jitter, a cap, an optional attempt limit, errors
// marked permanent (never retried), and context cancellation. Every retry
// loop uses it, either through Do or, where the loop has more to do between
// attempts, through a Backoff.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Jitter says how a wait is randomised around the exponential base d.
type Jitter int

const (
	// Equal waits d/2 plus a random part of d/2: never less than half the
	// base, so retries still spread out while the back-off keeps its pace.
	Equal Jitter = iota
	// Full waits a random duration between 0 and d.
	Full
	// None waits exactly d.
	None
)

// Defaults of a Policy's zero fields.
const (
	DefaultInitial    = 100 * time.Millisecond
	DefaultMax        = 5 * time.Second
	DefaultMultiplier = 2.0
)

// Policy describes a back-off. The zero Policy waits 100 ms, doubling up to
// 5 s, with equal jitter, and retries until the context ends.
type Policy struct {
	// Initial is the base of the first wait (default 100 ms).
	Initial time.Duration
	// Max caps the base of every wait (default 5 s).
	Max time.Duration
	// Multiplier grows the base after each wait (default 2).
	Multiplier float64
	// Jitter randomises each wait (default Equal).
	Jitter Jitter
	// MaxAttempts bounds the calls Do makes (0: no bound).
	MaxAttempts int
	// OnRetry, if set, is called by Do after a failed attempt that will be
	// retried, with the attempt's number (from 1), its error and the wait
	// before the next one. It is where callers log.
	OnRetry func(attempt int, err error, wait time.Duration)
	// Sleep waits d or until ctx ends, returning ctx.Err() then. Nil: a
	// timer. Tests inject one to run without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a random duration in [0, n]. Nil: math/rand/v2. Tests
	// inject one for exact waits.
	Rand func(n time.Duration) time.Duration
}

// Backoff yields the waits of a Policy one after another. It is not safe for
// concurrent use.
type Backoff struct {
	p   Policy
	cur time.Duration
}

// NewBackoff returns the waits of p, starting from its Initial.
func NewBackoff(p Policy) *Backoff {
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Multiplier < 1 {
		p.Multiplier = DefaultMultiplier
	}
	if p.Sleep == nil {
		p.Sleep = Sleep
	}
	if p.Rand == nil {
		p.Rand = func(n time.Duration) time.Duration { return rand.N(n + 1) }
	}
	return &Backoff{p: p, cur: p.Initial}
}

// Base returns the un-jittered base of the next wait.
func (b *Backoff) Base() time.Duration { return b.cur }

// Next returns the next wait and grows the base towards Max.
func (b *Backoff) Next() time.Duration {
	d := b.cur
	switch b.p.Jitter {
	case Full:
		d = b.p.Rand(d)
	case None:
	default:
		d = d/2 + b.p.Rand(d/2)
	}
	next := time.Duration(float64(b.cur) * b.p.Multiplier)
	if next > b.p.Max || next < b.cur { // the second test catches overflow
		next = b.p.Max
	}
	b.cur = next
	return d
}

// Reset starts the waits again from Initial, after a success.
func (b *Backoff) Reset() { b.cur = b.p.Initial }

// Wait sleeps the next wait, or until ctx ends (returning ctx.Err()).
func (b *Backoff) Wait(ctx context.Context) error { return b.p.Sleep(ctx, b.Next()) }

// Sleep waits d or until ctx ends, returning ctx.Err() then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// permanent marks an error that Do must not retry.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: Do returns it (unwrapped) at
// once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err: err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// StoppedError is what Do returns when ctx ends while it waits between
// attempts. It unwraps to the context's error and keeps the last attempt's
// error for the message.
type StoppedError struct {
	Err  error // ctx.Err()
	Last error // the last attempt's error
}

func (e *StoppedError) Error() string { return fmt.Sprintf("%v (last error: %v)", e.Err, e.Last) }

// Unwrap returns the context's error, so errors.Is(err, context.Canceled) holds.
func (e *StoppedError) Unwrap() error { return e.Err }

// Stopped returns err as a *StoppedError when ctx has ended and err is not
// one already: for callers of Do whose fn ignores ctx, so that an error
// after cancellation always says so (errors.Is(err, context.Canceled)).
func Stopped(ctx context.Context, err error) error {
	var stopped *StoppedError
	if err == nil || ctx.Err() == nil || errors.As(err, &stopped) {
		return err
	}
	return &StoppedError{Err: ctx.Err(), Last: err}
}

// Do calls fn until it returns nil and returns nil then. It stops early and
// returns:
//   - the error itself (unwrapped) when fn marks it Permanent;
//   - fn's last error when MaxAttempts calls failed, or when ctx ended
//     during a call;
//   - a *StoppedError when ctx ends during a wait.
func Do(ctx context.Context, p Policy, fn func(ctx context.Context) error) error {
	b := NewBackoff(p)
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if IsPermanent(err) {
			if perm, ok := err.(*permanent); ok {
				return perm.err
			}
			return err // wrapped around the mark: its message already says it all
		}
		if ctx.Err() != nil || (p.MaxAttempts > 0 && attempt >= p.MaxAttempts) {
			return err
		}
		wait := b.Next()
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, wait)
		}
		if serr := b.p.Sleep(ctx, wait); serr != nil {
			return &StoppedError{Err: serr, Last: err}
		}
	}
}

// Value is Do for a function that returns a value with its error.
func Value[T any](ctx context.Context, p Policy, fn func(ctx context.Context) (T, error)) (T, error) {
	var v T
	err := Do(ctx, p, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}
