package cutoverapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flexipack/cutover/shared/gates"
	"github.com/flexipack/cutover/shared/verify"
)

// errPending means the recent verify is being evaluated in the background
// and no earlier result exists yet.
var errPending = errors.New("the recent verify is being evaluated in the background; the next refresh shows it")

// cachedVerifier runs the recent verify (both stores compared over the
// last hour: seconds of work) at most once per ttl, in the background, and
// answers from the last result meanwhile, so that a console refreshing
// every few seconds never triggers a verify per request.
type cachedVerifier struct {
	run    gates.RecentVerifier
	ttl    time.Duration
	now    func() time.Time
	logger *slog.Logger

	mu      sync.Mutex
	running bool
	have    bool
	at      time.Time
	res     verify.Result
	err     error
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newCachedVerifier(run gates.RecentVerifier, ttl time.Duration, now func() time.Time, logger *slog.Logger) *cachedVerifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &cachedVerifier{run: run, ttl: ttl, now: now, logger: logger, ctx: ctx, cancel: cancel}
}

// verify is a gates.RecentVerifier answering from the cache. The range the
// caller asks for moves with the clock; a cached answer covers the range of
// its own evaluation, which the gate's detail names.
func (c *cachedVerifier) verify(_ context.Context, from, to time.Time, w time.Duration) (verify.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := c.have && c.now().Sub(c.at) < c.ttl
	if !fresh && !c.running && c.ctx.Err() == nil {
		c.running = true
		c.wg.Add(1)
		go c.evaluate(from, to, w)
	}
	if !c.have {
		return verify.Result{}, errPending
	}
	if c.err != nil {
		return verify.Result{}, fmt.Errorf("the recent verify at %s failed: %w", c.at.UTC().Format(time.RFC3339), c.err)
	}
	return c.res, nil
}

func (c *cachedVerifier) evaluate(from, to time.Time, w time.Duration) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Minute)
	defer cancel()
	res, err := c.run(ctx, from, to, w)
	if err != nil {
		c.logger.Warn("recent verify for the console's gate view failed", "err", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running, c.have, c.at, c.res, c.err = false, true, c.now().UTC(), res, err
}

// evaluatedAt returns when the cached result was computed (zero: never).
func (c *cachedVerifier) evaluatedAt() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at, c.running
}

// close stops a running evaluation and waits for it.
func (c *cachedVerifier) close() {
	c.cancel()
	c.wg.Wait()
}

// CompareStores is the recent verify as migrate's gate runs it: both stores
// streamed and compared per unit and window over [from, to).
func CompareStores(legacy, influx verify.Source) gates.RecentVerifier {
	return func(ctx context.Context, from, to time.Time, w time.Duration) (verify.Result, error) {
		return verify.Compare(ctx, legacy, influx, verify.Options{From: from, To: to, Window: w})
	}
}
