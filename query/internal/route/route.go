// Package route decides which store answers a read in each cutover phase,
// following the phase in the state store without a restart, and runs the
// shadow reads of shadow-read and influx-primary: the other store answers a
// share of the requests after the response is sent, and the answers are
// compared and recorded.
package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flexipack/cutover/query/internal/reader"
	"github.com/flexipack/cutover/shared/cutover"
)

// PhaseSource reads the current cutover state (cutover.Store does).
type PhaseSource interface {
	Current(ctx context.Context) (cutover.State, error)
}

// ErrNoPhase means the phase has never been read: the service cannot know
// which store serves.
var ErrNoPhase = errors.New("the cutover phase has not been read from the state store yet")

// Decision is where one request goes.
type Decision struct {
	State   cutover.State
	Primary reader.Reader // answers the request
	Shadow  reader.Reader // answers it again after the response, nil if none
}

// Router maps the current phase to the stores.
type Router struct {
	source   PhaseSource
	postgres reader.Reader
	influx   reader.Reader
	logger   *slog.Logger

	mu      sync.RWMutex
	state   cutover.State
	known   bool
	readErr error
	readAt  time.Time
}

// NewRouter returns a router over both stores; postgres or influx may be nil
// when a deployment has only one (a phase that needs the missing one then
// fails with a clear error).
func NewRouter(source PhaseSource, postgres, influx reader.Reader, logger *slog.Logger) *Router {
	return &Router{source: source, postgres: postgres, influx: influx, logger: logger}
}

// For returns the primary and the shadow store of a phase.
func For(p cutover.Phase, postgres, influx reader.Reader) (primary, shadow reader.Reader) {
	switch p {
	case cutover.ShadowRead:
		return postgres, influx
	case cutover.InfluxPrimary:
		return influx, postgres
	case cutover.InfluxOnly:
		return influx, nil
	default: // legacy, dual-write
		return postgres, nil
	}
}

// Refresh rereads the phase once. On failure the last known phase stays in
// force (a state-store outage does not stop reads).
func (r *Router) Refresh(ctx context.Context) error {
	st, err := r.source.Current(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.readErr = err
		return fmt.Errorf("reread cutover phase: %w", err)
	}
	if r.known && st.Version != r.state.Version {
		r.logger.Info("cutover phase changed", "from", r.state.Phase, "to", st.Phase, "version", st.Version)
	}
	r.state, r.known, r.readErr, r.readAt = st, true, nil, time.Now()
	return nil
}

// Watch rereads the phase every interval until ctx ends.
func (r *Router) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.logger.Warn("keeping the last known cutover phase", "err", err)
			}
		}
	}
}

// State returns the phase in force, ErrNoPhase before the first read.
func (r *Router) State() (cutover.State, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.known {
		if r.readErr != nil {
			return cutover.State{}, fmt.Errorf("%w: %w", ErrNoPhase, r.readErr)
		}
		return cutover.State{}, ErrNoPhase
	}
	return r.state, nil
}

// Decide returns where a request goes now.
func (r *Router) Decide() (Decision, error) {
	st, err := r.State()
	if err != nil {
		return Decision{}, err
	}
	primary, shadow := For(st.Phase, r.postgres, r.influx)
	if primary == nil {
		return Decision{}, fmt.Errorf("phase %s reads from a store this service was not configured with: %w", st.Phase, reader.ErrUnavailable)
	}
	return Decision{State: st, Primary: primary, Shadow: shadow}, nil
}

// Ready reports whether the phase is known and its serving store answers.
func (r *Router) Ready(ctx context.Context) error {
	d, err := r.Decide()
	if err != nil {
		return err
	}
	return d.Primary.Ping(ctx)
}
