package neo4jpool_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// HC-1, HC-3: a healthy database reports version, edition and database.
func TestCheckHealthy(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	h := m.Check(t.Context(), "dev")
	if !h.Healthy || h.Err != nil {
		t.Fatalf("unhealthy: %v", h.Err)
	}
	wantDB := s.Database
	if wantDB == "" {
		wantDB = "neo4j"
	}
	if h.Latency <= 0 || !strings.HasPrefix(h.ServerVersion, "5.") || h.Edition == "" || h.Database != wantDB ||
		h.Address == "" || h.CheckedAt.IsZero() || h.Environment != "dev" {
		t.Errorf("health: %+v", h)
	}
	last, ok := m.LastHealth("dev")
	if !ok || !last.Healthy {
		t.Errorf("last health: %+v %v", last, ok)
	}
	b, err := json.Marshal(h)
	if err != nil || !strings.Contains(string(b), `"healthy":true`) || !strings.Contains(string(b), `"latency_ms":`) {
		t.Errorf("JSON: %s %v", b, err)
	}
	t.Logf("Neo4j %s %s, database %s at %s, %s", h.ServerVersion, h.Edition, h.Database, h.Address, h.Latency)
}

// HC-2, HC-4: an unreachable database fails fast and the cause is kept.
func TestCheckUnreachableFailsFastWithCause(t *testing.T) {
	t.Parallel()
	m := newManager(t, neo4jpool.Options{})
	if err := m.Configure(t.Context(), "dev", unreachableConfig(t)); err != nil {
		t.Fatal(err)
	}
	h := m.Check(t.Context(), "dev")
	if h.Healthy || h.Err == nil {
		t.Fatalf("healthy against a closed port: %+v", h)
	}
	if h.Latency > 2*time.Second || !strings.Contains(h.Err.Error(), "connection refused") {
		t.Errorf("want a fast failure naming the cause, got %v after %s", h.Err, h.Latency)
	}
	var connErr *neo4j.ConnectivityError
	if !errors.As(h.Err, &connErr) || !neo4jpool.IsUnavailable(h.Err) {
		t.Errorf("cause not wrapped: %#v", h.Err)
	}
	b, _ := json.Marshal(h)
	if !strings.Contains(string(b), `"healthy":false`) || !strings.Contains(string(b), "connection refused") {
		t.Errorf("JSON: %s", b)
	}
}

// A saturated pool cannot hold a health check for the acquisition timeout.
func TestCheckOnSaturatedPoolTimesOut(t *testing.T) {
	t.Parallel()
	m, _ := realManager(t, neo4jpool.Options{HealthTimeout: 500 * time.Millisecond}, func(c *neo4jpool.Config) {
		c.MaxPoolSize = 1
		c.ConnectionTimeout = 30 * time.Second
	})
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := m.ExecuteWrite(context.Background(), "dev", func(tx neo4j.ManagedTransaction) (any, error) {
			close(held)
			<-release
			return nil, nil
		})
		done <- err
	}()
	<-held
	start := time.Now()
	h := m.Check(t.Context(), "dev")
	elapsed := time.Since(start)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h.Healthy || elapsed > 3*time.Second || elapsed < 400*time.Millisecond {
		t.Fatalf("check on a full pool: healthy=%v after %s: %v", h.Healthy, elapsed, h.Err)
	}
	if !strings.Contains(h.Err.Error(), "timed out after 500ms") {
		t.Errorf("cause: %v", h.Err)
	}
	// The check's own 500 ms deadline, not the 30 s acquisition timeout,
	// ended the wait, and the driver still logged "Borrow time-out": the
	// AcquireTimeouts counter includes borrows whose caller's context ended.
	if snap, _ := m.Snapshot("dev"); snap.BorrowQueued == 0 || snap.AcquireTimeouts == 0 {
		t.Errorf("the wait and the time-out were not counted: %+v", snap)
	}
}

// HC-5: the database is down, then comes back: WaitReady succeeds after
// several attempts. A proxy stands for the server being stopped and
// started again.
func TestWaitReadySucceedsWhenDatabaseComesBack(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	proxy := neo4jtest.NewProxy(t, s.Address())
	m, _ := realManager(t, neo4jpool.Options{ReadyInitialBackoff: 20 * time.Millisecond, ReadyMaxBackoff: 100 * time.Millisecond},
		func(c *neo4jpool.Config) { c.URI = proxy.URI("bolt") })

	// Down: connections refused. Health fails fast, with the cause.
	proxy.Stop()
	h := m.Check(t.Context(), "dev")
	if h.Healthy || !strings.Contains(h.Err.Error(), "refused") || h.Latency > 2*time.Second {
		t.Fatalf("down: %+v", h)
	}
	// Still down, but accepting and dropping connections; then up.
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	proxy.SetMode(neo4jtest.Reject)
	go func() {
		for proxy.Accepted() < 3 {
			time.Sleep(5 * time.Millisecond)
		}
		proxy.SetMode(neo4jtest.Forward)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx, "dev"); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if proxy.Accepted() < 4 {
		t.Errorf("WaitReady succeeded after only %d connection attempts", proxy.Accepted())
	}
	if h := m.Check(t.Context(), "dev"); !h.Healthy {
		t.Errorf("after WaitReady: %v", h.Err)
	}
}

// HC-6: always down: WaitReady gives up when its context ends, returning
// the last cause and the context error.
func TestWaitReadyGivesUpWithLastCause(t *testing.T) {
	t.Parallel()
	m := newManager(t, neo4jpool.Options{ReadyInitialBackoff: 50 * time.Millisecond, ReadyMaxBackoff: 200 * time.Millisecond})
	if err := m.Configure(t.Context(), "dev", unreachableConfig(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	err := m.WaitReady(ctx, "dev")
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("returned after %s", elapsed)
	}
	var nr *neo4jpool.NotReadyError
	var connErr *neo4j.ConnectivityError
	if !errors.As(err, &nr) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &connErr) {
		t.Fatalf("want NotReadyError with cause and deadline, got %v", err)
	}
	if nr.Attempts < 3 || !strings.Contains(err.Error(), "refused") {
		t.Errorf("attempts %d: %v", nr.Attempts, err)
	}
}

func TestCheckAll(t *testing.T) {
	t.Parallel()
	m, _ := realManager(t, neo4jpool.Options{}, nil)
	if err := m.Configure(t.Context(), "broken", unreachableConfig(t)); err != nil {
		t.Fatal(err)
	}
	hs := m.CheckAll(t.Context())
	if len(hs) != 2 || hs[0].Environment != "broken" || hs[1].Environment != "dev" {
		t.Fatalf("results: %+v", hs)
	}
	if hs[0].Healthy || hs[0].Err == nil || !hs[1].Healthy {
		t.Errorf("broken healthy=%v (%v), dev healthy=%v (%v)", hs[0].Healthy, hs[0].Err, hs[1].Healthy, hs[1].Err)
	}
}

// A configuration that Configure accepts but the driver refuses when
// creating the driver cannot start working: WaitReady returns the refusal
// (the driver's *neo4j.UsageError) after one attempt instead of retrying
// until its context ends.
func TestWaitReadyStopsWhenTheDriverRefusesTheConfig(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		uri   string
		setup func(string, *config.Config)
	}{
		"illegal routing context key": {uri: "neo4j://" + closedPort(t) + "?address=x"},
		"negative liveness timeout": {uri: "bolt://" + closedPort(t), setup: func(_ string, c *config.Config) {
			c.ConnectionLivenessCheckTimeout = -time.Second
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := newManager(t, neo4jpool.Options{ReadyInitialBackoff: 10 * time.Millisecond, ReadyMaxBackoff: 50 * time.Millisecond,
				DriverConfig: tc.setup})
			if err := m.Configure(t.Context(), "dev", neo4jpool.Config{URI: tc.uri, User: "neo4j", Password: testPassword}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := m.WaitReady(ctx, "dev")
			var usage *neo4j.UsageError
			var nr *neo4jpool.NotReadyError
			var envErr *neo4jpool.EnvError
			if errors.As(err, &nr) || !errors.As(err, &usage) || !errors.As(err, &envErr) || envErr.Op != "create driver" {
				t.Fatalf("want the driver's refusal at once, got %v", err)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("WaitReady took %s for a configuration that cannot work", took)
			}
		})
	}
}
