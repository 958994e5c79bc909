package neo4jpool_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// countingOptions counts the drivers the manager creates.
func countingOptions(created *atomic.Int64) neo4jpool.Options {
	return neo4jpool.Options{DriverConfig: func(string, *config.Config) { created.Add(1) }}
}

// CM-3, CM-4 and the race of issue 35: 50 goroutines asking for the driver
// at once get one driver, created and verified once.
func TestDriverCreatedOnceUnderRace(t *testing.T) {
	t.Parallel()
	var created atomic.Int64
	m, _ := realManager(t, countingOptions(&created), nil)
	if created.Load() != 0 {
		t.Fatal("Configure created a driver")
	}
	const n = 50
	drivers := make([]neo4j.DriverWithContext, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			drivers[i], errs[i] = m.Driver(t.Context(), "dev")
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if drivers[i] != drivers[0] {
			t.Fatalf("goroutine %d got another driver", i)
		}
	}
	if created.Load() != 1 || neo4jpool.Verifications(m) != 1 {
		t.Errorf("created %d drivers, verified %d times; want 1 and 1", created.Load(), neo4jpool.Verifications(m))
	}
	// CM-C4: a health check on an existing driver does not verify again.
	if h := m.Check(t.Context(), "dev"); !h.Healthy {
		t.Fatal(h.Err)
	}
	if neo4jpool.Verifications(m) != 1 {
		t.Errorf("Check verified again: %d", neo4jpool.Verifications(m))
	}
}

// bolt:// (direct) and neo4j:// (routing) URIs both work.
func TestBoltAndNeo4jSchemes(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"bolt", "neo4j"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			s := neo4jtest.Require(t)
			m, _ := realManager(t, neo4jpool.Options{}, func(c *neo4jpool.Config) {
				c.URI = scheme + "://" + s.Address()
			})
			got, err := m.ExecuteRead(t.Context(), "dev", func(tx neo4j.ManagedTransaction) (any, error) {
				res, err := tx.Run(t.Context(), "RETURN 40 + 2 AS x", nil)
				if err != nil {
					return nil, err
				}
				rec, err := res.Single(t.Context())
				if err != nil {
					return nil, err
				}
				return rec.Values[0], nil
			})
			if err != nil || got != int64(42) {
				t.Fatalf("%s: got %v, %v", scheme, got, err)
			}
			if h := m.Check(t.Context(), "dev"); !h.Healthy {
				t.Fatalf("%s: %v", scheme, h.Err)
			}
		})
	}
}

// A driver that fails verification is closed, not cached; the next call
// tries again.
func TestFailedVerificationIsNotCached(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	proxy := neo4jtest.NewProxy(t, s.Address())
	proxy.SetMode(neo4jtest.Reject)
	var created atomic.Int64
	m, _ := realManager(t, countingOptions(&created), func(c *neo4jpool.Config) { c.URI = proxy.URI("bolt") })

	if _, err := m.Driver(t.Context(), "dev"); err == nil {
		t.Fatal("verification passed through a rejecting proxy")
	} else if !neo4jpool.IsUnavailable(err) {
		t.Errorf("not classified unavailable: %v", err)
	}
	if created.Load() != 1 || neo4jpool.DriversClosed(m) != 1 {
		t.Fatalf("created %d, closed %d; want the failed driver closed", created.Load(), neo4jpool.DriversClosed(m))
	}
	proxy.SetMode(neo4jtest.Forward)
	if _, err := m.Driver(t.Context(), "dev"); err != nil {
		t.Fatalf("second try: %v", err)
	}
	if created.Load() != 2 || neo4jpool.Verifications(m) != 2 {
		t.Errorf("created %d, verified %d; want 2 and 2", created.Load(), neo4jpool.Verifications(m))
	}
}

// CM-C1: reconfiguring closes the old driver; CM-6/7: Close and CloseAll
// close each driver once.
func TestReconfigureAndCloseCloseDrivers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, cfg := realConfig(t)
	m := newManager(t, neo4jpool.Options{})
	for _, env := range []string{"dev", "integration"} {
		if err := m.Configure(ctx, env, cfg); err != nil {
			t.Fatal(err)
		}
	}
	d1, err := m.Driver(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := cfg
	cfg2.MaxPoolSize = 7
	if err := m.Configure(ctx, "dev", cfg2); err != nil {
		t.Fatal(err)
	}
	if neo4jpool.DriversClosed(m) != 1 {
		t.Fatalf("reconfigure closed %d drivers", neo4jpool.DriversClosed(m))
	}
	if err := d1.VerifyConnectivity(ctx); err == nil {
		t.Error("the old driver still works after reconfiguration")
	}
	d2, err := m.Driver(ctx, "dev")
	if err != nil || d2 == d1 {
		t.Fatalf("new driver: %v (same: %v)", err, d2 == d1)
	}
	if snap, _ := m.Snapshot("dev"); snap.PoolMax != 7 {
		t.Errorf("pool max after reconfigure: %d", snap.PoolMax)
	}
	d3, err := m.Driver(ctx, "integration")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CloseAll(ctx); err != nil {
		t.Fatal(err)
	}
	if neo4jpool.DriversClosed(m) != 3 {
		t.Errorf("CloseAll: %d drivers closed in total, want 3", neo4jpool.DriversClosed(m))
	}
	for _, d := range []neo4j.DriverWithContext{d2, d3} {
		if err := d.VerifyConnectivity(ctx); err == nil {
			t.Error("a driver still works after CloseAll")
		}
	}
	_ = s
}

// A wrong password is a clear authentication error, never retried. A
// fresh, non-existent user is used so that Neo4j's lock-out after failed
// logins (per user name) never hits the "neo4j" user other tests share.
func TestWrongPasswordIsClearAndNotRetried(t *testing.T) {
	t.Parallel()
	const password = "Wrong-Password-1234!"
	m, _ := realManager(t, neo4jpool.Options{ReadyInitialBackoff: 10 * time.Millisecond}, func(c *neo4jpool.Config) {
		c.User = "atg_nobody_" + neo4jtest.Unique(t)
		c.Password = password
	})
	attempts := 0
	err := neo4jpool.Retry(t.Context(), fast(5), func(ctx context.Context) error {
		attempts++
		_, err := m.Driver(ctx, "dev")
		return err
	})
	if attempts != 1 {
		t.Errorf("an authentication failure was tried %d times", attempts)
	}
	if !neo4jpool.IsAuthError(err) || neo4jpool.IsRetryable(err) {
		t.Fatalf("want an auth error, got %v", err)
	}
	var dbErr *neo4j.Neo4jError
	if !errors.As(err, &dbErr) || dbErr.Code != "Neo.ClientError.Security.Unauthorized" {
		t.Errorf("cause: %#v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, password) || !strings.Contains(msg, `environment "dev"`) || !strings.Contains(msg, "unauthorized") {
		t.Errorf("message: %s", msg)
	}

	start := time.Now()
	werr := m.WaitReady(t.Context(), "dev")
	if !neo4jpool.IsAuthError(werr) || time.Since(start) > 3*time.Second {
		t.Errorf("WaitReady must stop at once on bad credentials: %v after %s", werr, time.Since(start))
	}
	if h := m.Check(t.Context(), "dev"); h.Healthy || !neo4jpool.IsAuthError(h.Err) {
		t.Errorf("Check: %+v", h)
	}
}

// The server enforces read transactions.
func TestReadTransactionRefusesWrite(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	_, err := m.ExecuteRead(t.Context(), "dev", func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(t.Context(), "CREATE (n:`"+label+"`) RETURN n", nil)
		if err != nil {
			return nil, err
		}
		return res.Consume(t.Context())
	})
	var dbErr *neo4j.Neo4jError
	if !errors.As(err, &dbErr) || !neo4jpool.IsClientError(err) {
		t.Fatalf("want the server's refusal, got %v", err)
	}
	t.Logf("server said: %s", dbErr.Code)
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); n != 0 {
		t.Errorf("a read transaction wrote %d nodes", n)
	}
	snap, _ := m.Snapshot("dev")
	if snap.TxFailed != 1 || snap.TxCommitted != 0 {
		t.Errorf("metrics: %+v", snap)
	}
}

// The driver's own retry of a managed transaction is counted: the
// connection is cut (through a proxy) inside the first attempt, the driver
// retries at once on a new connection.
func TestDriverRetryIsCounted(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	proxy := neo4jtest.NewProxy(t, s.Address())
	m, _ := realManager(t, neo4jpool.Options{}, func(c *neo4jpool.Config) { c.URI = proxy.URI("bolt") })
	calls := 0
	got, err := m.ExecuteWrite(t.Context(), "dev", func(tx neo4j.ManagedTransaction) (any, error) {
		calls++
		if calls == 1 {
			proxy.Cut()
		}
		res, err := tx.Run(t.Context(), "RETURN 1 AS x", nil)
		if err != nil {
			return nil, err
		}
		rec, err := res.Single(t.Context())
		if err != nil {
			return nil, err
		}
		return rec.Values[0], nil
	})
	if err != nil || got != int64(1) {
		t.Fatalf("got %v, %v", got, err)
	}
	snap, _ := m.Snapshot("dev")
	if calls < 2 || snap.TxRetried != 1 || snap.TxAttempts != uint64(calls) || snap.TxCommitted != 1 || snap.TxFailed != 0 {
		t.Errorf("calls %d, metrics %+v", calls, snap)
	}
}

// TestReconfigureHandsQueuedCallsToTheNewDriver: a call waiting for a
// connection when its environment is reconfigured is run on the new
// driver instead of failing with the old driver's "Pool closed".
func TestReconfigureHandsQueuedCallsToTheNewDriver(t *testing.T) {
	t.Parallel()
	_, cfg := realConfig(t)
	cfg.MaxPoolSize = 1
	m := newManager(t, neo4jpool.Options{})
	ctx := t.Context()
	if err := m.Configure(ctx, "dev", cfg); err != nil {
		t.Fatal(err)
	}
	holding := make(chan struct{})
	release := make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		_, err := m.ExecuteRead(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
			close(holding)
			<-release
			return nil, nil
		})
		holder <- err
	}()
	<-holding
	queued := make(chan error, 1)
	go func() {
		_, err := m.ExecuteWrite(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
			res, err := tx.Run(ctx, "RETURN 1", nil)
			if err != nil {
				return nil, err
			}
			return res.Consume(ctx)
		})
		queued <- err
	}()
	deadline := time.Now().Add(5 * time.Second) // until the second call waits
	for snap, _ := m.Snapshot("dev"); snap.CallsInFlight < 2 && time.Now().Before(deadline); snap, _ = m.Snapshot("dev") {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // now in the pool's queue
	reconfigured := make(chan error, 1)
	go func() { reconfigured <- m.Configure(ctx, "dev", cfg) }()
	err := <-queued
	close(release)
	if rerr := <-reconfigured; rerr != nil {
		t.Errorf("reconfigure: %v", rerr)
	}
	if herr := <-holder; herr != nil {
		t.Logf("the call holding the old driver's connection: %v", herr)
	}
	if err != nil {
		t.Fatalf("queued call failed: %v (retryable %v, unavailable %v)", err, neo4jpool.IsRetryable(err), neo4jpool.IsUnavailable(err))
	}
}

// TestManagerLogsNothingByDefault: a Manager given no logger writes
// nothing to slog.Default (it once logged "neo4jpool: connected" there).
// Not parallel: it replaces slog.Default.
func TestManagerLogsNothingByDefault(t *testing.T) {
	_, cfg := realConfig(t)
	var buf strings.Builder
	var mu sync.Mutex
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	m := neo4jpool.NewManager(neo4jpool.Options{})
	defer m.CloseAll(context.Background())
	if err := m.Configure(t.Context(), "dev", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Driver(t.Context(), "dev"); err != nil {
		t.Fatal(err)
	}
	if err := m.Configure(t.Context(), "dev", cfg); err != nil { // reconfigure: logged too, once
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if buf.Len() > 0 {
		t.Errorf("logged through slog.Default:\n%s", buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
