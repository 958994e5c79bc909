package neo4jpool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// ErrRetryTimeExceeded is matched by the error of a managed transaction
// that was still failing when Config.MaxTransactionRetryTime ran out: a
// *RetryTimeError, or the driver's own *neo4j.TransactionExecutionLimit
// when the driver itself gave up for that reason.
var ErrRetryTimeExceeded = errors.New("neo4jpool: max transaction retry time exceeded")

// RetryTimeError reports a managed transaction (ExecuteRead, ExecuteWrite)
// that was stopped because Config.MaxTransactionRetryTime ran out while it
// was still failing. It matches ErrRetryTimeExceeded and unwraps to Err,
// the last error of a failed attempt: the real cause. It never matches
// context.Canceled: the cancellation that stopped the driver's retries is
// the guard's own, not the caller's. (When the caller's context ends, the
// error is the caller's, not a RetryTimeError.)
type RetryTimeError struct {
	// Limit is Config.MaxTransactionRetryTime.
	Limit time.Duration
	// Attempts is how many times the work function ran.
	Attempts int
	// Err is the last error of a failed attempt, or nil when the attempt
	// failed outside the work function (at BEGIN or COMMIT) and the driver
	// did not report the error.
	Err error
}

// Error implements error.
func (e *RetryTimeError) Error() string {
	last := "last error not reported by the driver"
	if e.Err != nil {
		last = "last error: " + e.Err.Error()
	}
	return fmt.Sprintf("%s (%s) after %d attempt(s); %s", ErrRetryTimeExceeded, e.Limit, e.Attempts, last)
}

// Is makes errors.Is(err, ErrRetryTimeExceeded) true.
func (e *RetryTimeError) Is(target error) bool { return target == ErrRetryTimeExceeded }

// Unwrap returns the last attempt's error.
func (e *RetryTimeError) Unwrap() error { return e.Err }

// errGuardExpired is the cause the guard cancels its context with; it
// never leaves this package (explain replaces it by a *RetryTimeError).
var errGuardExpired = errors.New("neo4jpool: retry time guard expired")

// retryGuard makes Config.MaxTransactionRetryTime a bound on the retries of
// a call. The driver checks its retry time only before each backoff sleep,
// and its sleeps double (about 2, 4, 8, 16 s), so on its own a failing call
// may take nearly twice the configured time. The guard cancels the call's
// context once the time is up, provided an attempt has already failed (so
// the first wait for a connection follows Config.ConnectionTimeout, not the
// retry time), no attempt's work is running and none has just succeeded
// (so a commit in flight is never interrupted); a later attempt is
// refused. Either way the driver gives up at once, and explain turns the
// driver's bare context error into a *RetryTimeError carrying the last
// real error.
type retryGuard struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	limit  time.Duration
	parent context.Context
	// connFailures reads a counter of failed connection attempts (the
	// environment's ConnectionsFailed), so that an attempt that failed
	// before its work ran (a refused dial) counts as a failure; nil when
	// unknown.
	connFailures func() uint64
	connBase     uint64

	mu        sync.Mutex
	expired   bool
	fired     bool // the guard cancelled ctx or refused an attempt
	failed    bool // an attempt failed (its work returned an error, or the driver retried)
	inWork    bool
	succeeded bool // the last work returned nil: its commit may be in flight
	attempts  int
	lastErr   error // the last error a work function returned
}

// newRetryGuard starts a guard of limit, which must be positive: the
// stored Config's MaxTransactionRetryTime always is (Configure applies
// WithDefaults, which turns zero into the default, and Validate refuses a
// negative value).
// connFailures, when not nil, counts failed connection attempts (see the
// field).
func newRetryGuard(parent context.Context, limit time.Duration, connFailures func() uint64) *retryGuard {
	g := &retryGuard{limit: limit, parent: parent, connFailures: connFailures}
	if connFailures != nil {
		g.connBase = connFailures()
	}
	g.ctx, g.cancel = context.WithCancelCause(parent)
	g.mu.Lock() // expire reads g.timer
	g.timer = time.AfterFunc(limit, g.expire)
	g.mu.Unlock()
	return g
}

// fireLocked cancels the call when the time is up and cancelling cannot
// cut short a first connection wait, running work or a commit. g.mu is held.
func (g *retryGuard) fireLocked() {
	if g.expired && g.failedLocked() && !g.inWork && !g.succeeded {
		g.fired = true
		g.cancel(errGuardExpired)
	}
}

// failedLocked reports whether an attempt has failed. g.mu is held.
func (g *retryGuard) failedLocked() bool {
	return g.failed || (g.connFailures != nil && g.connFailures() > g.connBase)
}

// guardRecheck is how often an expired guard that could not fire yet (no
// attempt has failed) looks again for a failed connection attempt.
const guardRecheck = 50 * time.Millisecond

func (g *retryGuard) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expired = true
	g.fireLocked()
	if !g.fired && !g.failed && g.connFailures != nil && g.ctx.Err() == nil {
		g.timer.Reset(guardRecheck)
	}
}

// enter is called when an attempt's work starts; after the deadline it
// refuses a retry.
func (g *retryGuard) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.attempts > 0 {
		g.failed = true // the driver retries: the previous attempt failed
	}
	if g.expired && g.failedLocked() {
		g.fired = true
		g.cancel(errGuardExpired)
		return errGuardExpired
	}
	g.attempts++
	g.inWork, g.succeeded = true, false
	return nil
}

// leave is called when an attempt's work returns err.
func (g *retryGuard) leave(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inWork, g.succeeded = false, err == nil
	if err != nil {
		g.failed, g.lastErr = true, err
	}
	if err == nil || IsRetryable(err) {
		// After an error the driver does not retry it returns that error
		// at once; cancelling would only hide it.
		g.fireLocked()
	}
}

// lastWorkSucceeded reports whether the last attempt's work returned nil.
func (g *retryGuard) lastWorkSucceeded() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.succeeded
}

func (g *retryGuard) stop() {
	g.mu.Lock()
	g.timer.Stop()
	g.mu.Unlock()
	g.cancel(nil)
}

// explain returns the error to report for the driver's err: a
// *RetryTimeError wrapping the last real error when the guard ended the
// call (and the caller's own context did not), else err.
func (g *retryGuard) explain(err error) error {
	g.mu.Lock()
	fired, attempts, last := g.fired, g.attempts, g.lastErr
	g.mu.Unlock()
	if !fired || g.parent.Err() != nil {
		return err
	}
	// The driver's TransactionExecutionLimit (the guard cancelled its
	// backoff sleep) lists the attempts' errors, BEGIN and COMMIT
	// failures included: prefer its last real one.
	var limit *neo4j.TransactionExecutionLimit
	if errors.As(err, &limit) {
		for i := len(limit.Errors) - 1; i >= 0; i-- {
			e := limit.Errors[i]
			if !errors.Is(e, context.Canceled) && !errors.Is(e, errGuardExpired) {
				last = e
				break
			}
		}
	} else if !errors.Is(err, context.Canceled) && !errors.Is(err, errGuardExpired) {
		last = err // the driver returned a real error of its own
	}
	return &RetryTimeError{Limit: g.limit, Attempts: attempts, Err: last}
}
