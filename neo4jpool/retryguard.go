package neo4jpool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrRetryTimeExceeded is matched by the error of a managed transaction
// that was still failing when Config.MaxTransactionRetryTime ran out.
var ErrRetryTimeExceeded = errors.New("neo4jpool: max transaction retry time exceeded")

// retryGuard makes Config.MaxTransactionRetryTime a bound on the whole call.
// The driver checks its retry time only before each backoff sleep, and its
// sleeps double (about 2, 4, 8, 16 s), so on its own a failing call may take
// nearly twice the configured time. The guard cancels the call's context
// once the time is up while no attempt's work is running and none has just
// succeeded (so a commit in flight is never interrupted); a later attempt
// is refused. Either way the driver gives up at once.
type retryGuard struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	limit  time.Duration

	mu        sync.Mutex
	expired   bool
	inWork    bool
	succeeded bool // the last work returned nil: its commit may be in flight
}

// newRetryGuard starts a guard of limit, which must be positive: the
// stored Config's MaxTransactionRetryTime always is (Configure applies
// WithDefaults, which turns zero into the default, and Validate refuses a
// negative value).
func newRetryGuard(parent context.Context, limit time.Duration) *retryGuard {
	g := &retryGuard{limit: limit}
	g.ctx, g.cancel = context.WithCancelCause(parent)
	g.timer = time.AfterFunc(limit, g.expire)
	return g
}

func (g *retryGuard) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expired = true
	if !g.inWork && !g.succeeded {
		g.cancel(ErrRetryTimeExceeded)
	}
}

// enter is called when an attempt's work starts; after the deadline it
// refuses the attempt.
func (g *retryGuard) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.expired {
		g.cancel(ErrRetryTimeExceeded)
		return ErrRetryTimeExceeded
	}
	g.inWork, g.succeeded = true, false
	return nil
}

// leave is called when an attempt's work returns err.
func (g *retryGuard) leave(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inWork, g.succeeded = false, err == nil
	if g.expired && err != nil {
		g.cancel(ErrRetryTimeExceeded)
	}
}

func (g *retryGuard) stop() {
	g.timer.Stop()
	g.cancel(nil)
}

// explain adds ErrRetryTimeExceeded to err when the guard ended the call
// (and the caller's own context did not).
func (g *retryGuard) explain(err error) error {
	if errors.Is(context.Cause(g.ctx), ErrRetryTimeExceeded) && !errors.Is(err, ErrRetryTimeExceeded) {
		return fmt.Errorf("%w (%s): %w", ErrRetryTimeExceeded, g.limit, err)
	}
	return err
}
