package neo4jpool

import (
	"context"
	"fmt"
	"time"

	"github.com/sethvargo/go-retry"
)

// Defaults of [RetryPolicy].
const (
	DefaultRetryMaxAttempts    = 5
	DefaultRetryInitialBackoff = 200 * time.Millisecond
	DefaultRetryMaxBackoff     = 5 * time.Second
	DefaultRetryMaxDuration    = 30 * time.Second
	DefaultRetryJitterPercent  = 20
)

// RetryPolicy bounds [Retry]. The zero value gives the defaults: 5 attempts
// within 30 s, waits of 200 ms doubling to at most 5 s, ±20 % jitter.
type RetryPolicy struct {
	// MaxAttempts is the total number of calls, including the first.
	// Zero means DefaultRetryMaxAttempts; negative means no limit (then
	// MaxDuration or the context must bound the retries).
	MaxAttempts int
	// InitialBackoff is the first wait; each later wait doubles. Zero means
	// DefaultRetryInitialBackoff.
	InitialBackoff time.Duration
	// MaxBackoff caps each wait (not the total). Zero means
	// DefaultRetryMaxBackoff.
	MaxBackoff time.Duration
	// MaxDuration stops retrying once this much time has passed since Retry
	// was called. Zero means DefaultRetryMaxDuration; negative means no limit.
	MaxDuration time.Duration
	// JitterPercent randomises each wait by ±JitterPercent % (at most 100).
	// Zero means DefaultRetryJitterPercent; negative means no jitter.
	JitterPercent int
}

// WithDefaults returns p with zero fields set to their defaults.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultRetryMaxAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultRetryInitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultRetryMaxBackoff
	}
	if p.MaxDuration == 0 {
		p.MaxDuration = DefaultRetryMaxDuration
	}
	if p.JitterPercent == 0 {
		p.JitterPercent = DefaultRetryJitterPercent
	}
	return p
}

// backoff builds a fresh go-retry backoff for one Retry call: go-retry
// backoffs are stateful and WithMaxDuration starts its clock when built.
// Jitter is applied before the cap so no wait exceeds MaxBackoff.
func (p RetryPolicy) backoff() retry.Backoff {
	b := retry.NewExponential(p.InitialBackoff)
	if p.JitterPercent > 0 {
		b = retry.WithJitterPercent(uint64(min(p.JitterPercent, 100)), b)
	}
	b = retry.WithCappedDuration(p.MaxBackoff, b)
	if p.MaxAttempts > 0 {
		b = retry.WithMaxRetries(uint64(p.MaxAttempts-1), b)
	}
	if p.MaxDuration > 0 {
		b = retry.WithMaxDuration(p.MaxDuration, b)
	}
	return b
}

// RetryError is returned by [Retry] when it gave up on a retryable error
// (attempts or duration exhausted) or when its context ended while
// retrying. It wraps the last error and, if the context ended, its cause.
type RetryError struct {
	// Attempts is how many times the function ran.
	Attempts int
	// Err is the last error the function returned.
	Err error
	// Cause is context.Cause of the context when it ended, else nil.
	Cause error
}

// Error implements error.
func (e *RetryError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("neo4jpool: retry stopped after %d attempt(s) (%v): %v", e.Attempts, e.Cause, e.Err)
	}
	return fmt.Sprintf("neo4jpool: gave up after %d attempt(s): %v", e.Attempts, e.Err)
}

// Unwrap returns the last error and the context's cause, if any.
func (e *RetryError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// Retry calls fn until it succeeds, returns an error that is not
// [IsRetryable], or the policy or ctx stop it, waiting with exponential
// backoff, jitter and a cap between calls (go-retry, one fresh backoff per
// call).
//
// Use it only for work the driver does not retry itself: auto-commit
// queries (session.Run, including CALL { ... } IN TRANSACTIONS, which must
// then be idempotent, e.g. MERGE-based), BeginTransaction, or acquiring a
// driver. Never wrap ExecuteRead/ExecuteWrite (or neo4j.ExecuteQuery) in
// it: the driver already retries those for up to MaxTransactionRetryTime,
// and stacking would multiply the attempts. (IsRetryable reports the
// driver's "gave up" error, TransactionExecutionLimit, as not retryable, so
// an accidental wrap does not stack.)
//
// An error that is not retryable (syntax errors, constraint violations,
// authentication failures and other client errors) ends the retries at
// once and is returned unchanged. When Retry gives up on a retryable error
// it returns a *RetryError wrapping the last error (not just the context's
// error, unlike go-retry), even after a single call (MaxAttempts 1, or
// MaxDuration over before a second call). When ctx ends before the first
// call, its error is returned as go-retry reports it.
func Retry(ctx context.Context, policy RetryPolicy, fn func(ctx context.Context) error) error {
	_, err := RetryValue(ctx, policy, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return err
}

// RetryValue is Retry for a function that returns a value.
func RetryValue[T any](ctx context.Context, policy RetryPolicy, fn func(ctx context.Context) (T, error)) (T, error) {
	p := policy.WithDefaults()
	attempts := 0
	var last error
	v, err := retry.DoValue(ctx, p.backoff(), func(ctx context.Context) (T, error) {
		attempts++
		v, err := fn(ctx)
		if err == nil {
			return v, nil
		}
		last = err
		if IsRetryable(err) {
			return v, retry.RetryableError(err)
		}
		return v, err
	})
	if err == nil {
		return v, nil
	}
	var zero T
	switch {
	case last == nil:
		// ctx ended before the first call.
		return zero, err
	case ctx.Err() != nil:
		return zero, &RetryError{Attempts: attempts, Err: last, Cause: context.Cause(ctx)}
	case !IsRetryable(last):
		return zero, last
	default:
		return zero, &RetryError{Attempts: attempts, Err: last}
	}
}
