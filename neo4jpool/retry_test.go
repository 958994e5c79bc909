package neo4jpool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// Errors as the driver returns them; constructed here for fault injection.
func transientErr() error {
	return &neo4j.Neo4jError{Code: "Neo.TransientError.General.DatabaseUnavailable", Msg: "Transient error"}
}

func syntaxErr() error {
	return &neo4j.Neo4jError{Code: "Neo.ClientError.Statement.SyntaxError", Msg: "Invalid input"}
}

func constraintErr() error {
	return &neo4j.Neo4jError{Code: "Neo.ClientError.Schema.ConstraintValidationFailed", Msg: "already exists"}
}

func authErr() error {
	return &neo4j.Neo4jError{Code: "Neo.ClientError.Security.Unauthorized", Msg: "The client is unauthorized due to authentication failure."}
}

func fast(attempts int) neo4jpool.RetryPolicy {
	return neo4jpool.RetryPolicy{MaxAttempts: attempts, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

// TX-3: fails twice transiently, then succeeds: three calls.
func TestRetryTransientThenSuccess(t *testing.T) {
	calls := 0
	v, err := neo4jpool.RetryValue(t.Context(), fast(3), func(context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "", transientErr()
		}
		return "success", nil
	})
	if err != nil || v != "success" || calls != 3 {
		t.Fatalf("got %q, %v after %d calls", v, err, calls)
	}
}

// TX-4: always failing with a retryable error: gives up after MaxAttempts
// and wraps the last error.
func TestRetryGivesUp(t *testing.T) {
	calls := 0
	err := neo4jpool.Retry(t.Context(), fast(3), func(context.Context) error {
		calls++
		return fmt.Errorf("attempt %d: %w", calls, transientErr())
	})
	var rerr *neo4jpool.RetryError
	if !errors.As(err, &rerr) || rerr.Attempts != 3 || calls != 3 {
		t.Fatalf("want RetryError after 3 attempts, got %v (%d calls)", err, calls)
	}
	var dbErr *neo4j.Neo4jError
	if !errors.As(err, &dbErr) || !strings.Contains(err.Error(), "attempt 3") || !strings.Contains(strings.ToLower(err.Error()), "transient error") {
		t.Errorf("last error not wrapped: %v", err)
	}
}

// The original retried every exception; we do not retry errors that cannot
// succeed next time.
func TestRetryNeverRetriesPermanentErrors(t *testing.T) {
	limit := &neo4j.TransactionExecutionLimit{Cause: "timeout", Errors: []error{transientErr()}}
	for name, e := range map[string]error{
		"persistent": errors.New("Persistent error"), "syntax": syntaxErr(), "constraint": constraintErr(),
		"auth": authErr(), "driver gave up": limit, "usage": &neo4j.UsageError{Message: "bad"},
	} {
		calls := 0
		err := neo4jpool.Retry(t.Context(), fast(5), func(context.Context) error { calls++; return e })
		if calls != 1 || err != e {
			t.Errorf("%s: %d calls, err %v (want the error unchanged after one call)", name, calls, err)
		}
	}
}

// Giving up on a retryable error after a single call still returns a
// *RetryError: with MaxAttempts 1, and when MaxDuration ends before a
// second call.
func TestRetryGivesUpAfterOneCall(t *testing.T) {
	for name, p := range map[string]neo4jpool.RetryPolicy{
		"one attempt":    {MaxAttempts: 1},
		"short duration": {MaxAttempts: -1, InitialBackoff: time.Second, MaxBackoff: time.Second, MaxDuration: time.Millisecond},
	} {
		calls := 0
		err := neo4jpool.Retry(t.Context(), p, func(context.Context) error {
			calls++
			time.Sleep(5 * time.Millisecond) // MaxDuration is over before the first wait
			return transientErr()
		})
		var rerr *neo4jpool.RetryError
		var dbErr *neo4j.Neo4jError
		if !errors.As(err, &rerr) || rerr.Attempts != 1 || rerr.Cause != nil || calls != 1 || !errors.As(err, &dbErr) {
			t.Errorf("%s: want a RetryError after 1 attempt wrapping the last error, got %#v (%d calls)", name, err, calls)
		}
	}
}

func TestRetryContextCancelledWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	start := time.Now()
	err := neo4jpool.Retry(ctx, neo4jpool.RetryPolicy{InitialBackoff: time.Hour, MaxBackoff: time.Hour}, func(context.Context) error {
		calls++
		time.AfterFunc(20*time.Millisecond, cancel)
		return transientErr()
	})
	if time.Since(start) > 5*time.Second {
		t.Fatal("did not stop on cancel")
	}
	var dbErr *neo4j.Neo4jError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &dbErr) || calls != 1 {
		t.Errorf("want the last error and context.Canceled, got %v (%d calls)", err, calls)
	}
}

func TestRetryContextDoneBeforeFirstCall(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	err := neo4jpool.Retry(ctx, neo4jpool.RetryPolicy{}, func(context.Context) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("got %v after %d calls", err, calls)
	}
}

func TestRetryMaxDurationAndCap(t *testing.T) {
	var times []time.Time
	start := time.Now()
	err := neo4jpool.Retry(t.Context(), neo4jpool.RetryPolicy{
		MaxAttempts: -1, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		MaxDuration: 300 * time.Millisecond, JitterPercent: 50,
	}, func(context.Context) error {
		times = append(times, time.Now())
		return transientErr()
	})
	elapsed := time.Since(start)
	if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("MaxDuration 300ms: stopped after %s", elapsed)
	}
	var rerr *neo4jpool.RetryError
	if !errors.As(err, &rerr) || rerr.Attempts != len(times) || len(times) < 8 {
		t.Fatalf("got %v with %d calls", err, len(times))
	}
	for i := 1; i < len(times); i++ {
		// The cap applies after jitter: no wait beyond 20 ms (plus scheduling slack).
		if gap := times[i].Sub(times[i-1]); gap > 120*time.Millisecond {
			t.Errorf("wait %d was %s, cap is 20ms", i, gap)
		}
	}
}

func TestRetryPolicyDefaults(t *testing.T) {
	p := neo4jpool.RetryPolicy{}.WithDefaults()
	want := neo4jpool.RetryPolicy{MaxAttempts: 5, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second,
		MaxDuration: 30 * time.Second, JitterPercent: 20}
	if p != want {
		t.Errorf("defaults: %+v", p)
	}
}

// TestClassifiers gives each classifier its own, freshly built error
// values: the driver reclassifies some codes the first time one of its
// accessors runs, so a classifier must not depend on another having seen
// the error first.
func TestClassifiers(t *testing.T) {
	type classifierCase struct {
		name                                 string
		err                                  error
		retryable, auth, unavailable, client bool
	}
	fresh := func() []classifierCase {
		conn := &neo4j.ConnectivityError{Inner: io.EOF}
		wrapped := &neo4jpool.EnvError{Env: "dev", URI: "bolt://x", Op: "connect", Err: conn}
		limitConn := &neo4j.TransactionExecutionLimit{Cause: "timeout", Errors: []error{conn}}
		netErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		return []classifierCase{
			{"nil", nil, false, false, false, false},
			{"transient", transientErr(), true, false, true, false},
			{"wrapped transient", fmt.Errorf("x: %w", transientErr()), true, false, true, false},
			{"deadlock", &neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.DeadlockDetected"}, true, false, false, false},
			{"connectivity", conn, true, false, true, false},
			{"wrapped connectivity", wrapped, true, false, true, false},
			{"driver gave up", limitConn, false, false, true, false},
			{"syntax", syntaxErr(), false, false, false, true},
			{"constraint", constraintErr(), false, false, false, true},
			{"auth", authErr(), false, true, false, false},
			{"rate limit", &neo4j.Neo4jError{Code: "Neo.ClientError.Security.AuthenticationRateLimit"}, false, true, false, false},
			{"forbidden", &neo4j.Neo4jError{Code: "Neo.ClientError.Security.Forbidden"}, false, false, false, false},
			{"not a leader", &neo4j.Neo4jError{Code: "Neo.ClientError.Cluster.NotALeader"}, true, false, false, false},
			{"net error", netErr, false, false, true, false},
			{"closed", fmt.Errorf("x: %w", net.ErrClosed), false, false, true, false},
			{"not ready", &neo4jpool.NotReadyError{Env: "dev", Last: conn, Cause: context.DeadlineExceeded}, true, false, true, false},
			{"plain", errors.New("x"), false, false, false, false},
			{"retry time over a connectivity error", &neo4jpool.RetryTimeError{Limit: time.Second, Err: conn}, false, false, true, false},
			{"pool closed", fmt.Errorf("x: %w", &neo4j.UsageError{Message: "Pool closed"}), true, false, true, false},
			{"other usage error", &neo4j.UsageError{Message: "x"}, false, false, false, false},
			{"old terminated code", &neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.Terminated"}, false, false, false, true},
			{"wrapped old terminated code", fmt.Errorf("x: %w", &neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.Terminated"}), false, false, false, true},
			{"old lock client stopped code", &neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.LockClientStopped"}, false, false, false, true},
		}
	}
	for _, c := range fresh() {
		if got := neo4jpool.IsRetryable(c.err); got != c.retryable {
			t.Errorf("%s: IsRetryable = %v", c.name, got)
		}
	}
	for _, c := range fresh() {
		if got := neo4jpool.IsAuthError(c.err); got != c.auth {
			t.Errorf("%s: IsAuthError = %v", c.name, got)
		}
	}
	for _, c := range fresh() {
		if got := neo4jpool.IsUnavailable(c.err); got != c.unavailable {
			t.Errorf("%s: IsUnavailable = %v", c.name, got)
		}
	}
	for _, c := range fresh() {
		if got := neo4jpool.IsClientError(c.err); got != c.client {
			t.Errorf("%s: IsClientError = %v", c.name, got)
		}
	}
}

// TX-3 against the real database: an auto-commit CALL { ... } IN
// TRANSACTIONS (which the driver does not retry) loses its connection
// twice (cut by a proxy) and succeeds on the third attempt; the statement
// is MERGE-based, so the partial first runs leave no duplicates.
func TestRetryAutoCommitOverFlakyConnection(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	proxy := neo4jtest.NewProxy(t, s.Address())
	m, _ := realManager(t, neo4jpool.Options{}, func(c *neo4jpool.Config) { c.URI = proxy.URI("bolt") })
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	if _, err := m.Driver(t.Context(), "dev"); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	err := neo4jpool.Retry(t.Context(), fast(5), func(ctx context.Context) error {
		attempts++
		session, err := m.NewSession(ctx, "dev", neo4j.AccessModeWrite)
		if err != nil {
			return err
		}
		defer session.Close(ctx)
		if attempts <= 2 {
			// Make sure an idle pooled connection exists, then kill it:
			// the query runs on a dead connection.
			if h := m.Check(ctx, "dev"); !h.Healthy {
				return h.Err
			}
			proxy.Cut()
		}
		res, err := session.Run(ctx, "UNWIND range(1, 100) AS i CALL (i) { MERGE (:`"+label+"` {i: i}) } IN TRANSACTIONS OF 10 ROWS", nil)
		if err != nil {
			return err
		}
		_, err = res.Consume(ctx)
		return err
	})
	if err != nil || attempts != 3 {
		t.Fatalf("after %d attempts: %v", attempts, err)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(DISTINCT n.i) * 1000 + count(n)", nil); n != 100100 {
		t.Errorf("distinct*1000+total = %d, want 100 distinct nodes and no duplicates", n)
	}
}
