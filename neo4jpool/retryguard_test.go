package neo4jpool

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
)

// TestMaxTransactionRetryTimeBoundsTheCall: with the database unreachable,
// a write gives up about when MaxTransactionRetryTime runs out, not after
// the driver's next doubling backoff sleep (which alone would take it to
// about 6 s for a 3 s setting), and the error still says the database is
// unavailable.
func TestMaxTransactionRetryTimeBoundsTheCall(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	proxy := neo4jtest.NewProxy(t, s.Address())
	m := NewManager(Options{})
	ctx := context.Background()
	defer m.CloseAll(ctx)
	cfg := Config{URI: proxy.URI("bolt"), User: s.User, Password: s.Password, Database: s.Database,
		MaxTransactionRetryTime: 3 * time.Second}.WithDefaults()
	if err := m.Configure(ctx, "dev", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ExecuteRead(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) { return nil, nil }); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	proxy.Stop() // refused from now on
	start := time.Now()
	_, err := m.ExecuteWrite(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
		_, err := tx.Run(ctx, "RETURN 1", nil)
		return nil, err
	})
	took := time.Since(start)
	if err == nil {
		t.Fatal("write against a stopped database succeeded")
	}
	if took < 2500*time.Millisecond || took > 4500*time.Millisecond {
		t.Errorf("gave up after %s; want about the 3 s retry time", took)
	}
	if !IsUnavailable(err) || !errors.Is(err, ErrRetryTimeExceeded) {
		t.Errorf("error %v: unavailable %v, retry time exceeded %v", err, IsUnavailable(err), errors.Is(err, ErrRetryTimeExceeded))
	}
	t.Logf("gave up after %s: %v", took.Round(time.Millisecond), err)
}

// TestChunkTimeoutFailsAStalledChunk: a chunk that does not commit within
// Options.ChunkTimeout fails as unavailable with the committed count,
// instead of stalling the write. The slow work function stands in for a
// database that stopped answering: the driver call observes the same
// deadline either way.
func TestChunkTimeoutFailsAStalledChunk(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	m := NewManager(Options{ChunkTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	defer m.CloseAll(ctx)
	if err := m.Configure(ctx, "dev", Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := ChunkedWrite(ctx, m, "dev", []int{1, 2, 3, 4}, 2, func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []int) error {
		if chunk[0] == 3 {
			select { // the second chunk "hangs"
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
			}
		}
		_, err := tx.Run(ctx, "RETURN 1", nil)
		return err
	}, nil)
	var ce *ChunkError
	if !errors.As(err, &ce) || ce.Committed != 2 || !errors.Is(err, ErrChunkTimeout) || !IsUnavailable(err) {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %s with a 300 ms chunk timeout", took)
	}
}

// TestRetryTimeKeepsTheRealCause: a transaction that hits a real deadlock
// after MaxTransactionRetryTime has run out fails with a *RetryTimeError
// wrapping Neo4j's DeadlockDetected, not with a bare context.Canceled
// (which the importer reported as "cancelled" though nobody cancelled).
func TestRetryTimeKeepsTheRealCause(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	ctx := t.Context()
	if _, err := neo4jtest.Query(ctx, d, s, "CREATE (:`"+label+"` {k: 'x'}), (:`"+label+"` {k: 'y'})", nil); err != nil {
		t.Fatal(err)
	}
	m := NewManager(Options{})
	defer m.CloseAll(context.Background())
	cfg := Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database, MaxTransactionRetryTime: time.Second}
	if err := m.Configure(ctx, "dev", cfg); err != nil {
		t.Fatal(err)
	}
	set := func(k string) string {
		return "MATCH (n:`" + label + "` {k: '" + k + "'}) SET n.v = coalesce(n.v, 0) + 1"
	}

	// Transaction A holds x's lock for the whole test.
	sa := d.NewSession(ctx, neo4j.SessionConfig{DatabaseName: s.Database})
	defer sa.Close(context.Background())
	txA, err := sa.BeginTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(context.Background())
	if _, err := txA.Run(ctx, set("x"), nil); err != nil {
		t.Fatal(err)
	}
	aDone := make(chan error, 1)
	_, err = m.ExecuteWrite(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
		if _, err := tx.Run(ctx, set("y"), nil); err != nil { // B holds y
			return nil, err
		}
		go func() { // A now waits for y
			_, err := txA.Run(ctx, set("y"), nil)
			aDone <- err
		}()
		time.Sleep(1500 * time.Millisecond)  // past the retry time, A waiting
		_, err := tx.Run(ctx, set("x"), nil) // B waits for x: a deadlock
		return nil, err
	})
	if aerr := <-aDone; aerr != nil {
		t.Logf("transaction A: %v", aerr)
	}
	var ne *neo4j.Neo4jError
	switch {
	case err == nil:
		t.Fatal("the deadlocked transaction succeeded")
	case errors.Is(err, context.Canceled):
		t.Fatalf("error matches context.Canceled though nobody cancelled: %v", err)
	case !errors.Is(err, ErrRetryTimeExceeded):
		t.Fatalf("error does not match ErrRetryTimeExceeded: %v", err)
	case !errors.As(err, &ne) || ne.Code != "Neo.TransientError.Transaction.DeadlockDetected":
		t.Fatalf("error does not carry the deadlock: %v", err)
	}
	var rte *RetryTimeError
	if !errors.As(err, &rte) || rte.Attempts != 1 || rte.Limit != time.Second {
		t.Errorf("RetryTimeError %+v", rte)
	}
	t.Logf("error: %v", err)
}

// TestRetryTimeDoesNotCutTheConnectionWait: with a pool of one connection
// held by another call, a call waits for the connection as long as
// Config.ConnectionTimeout (5 s), not only the retry time (1 s), and
// succeeds once the connection is free.
func TestRetryTimeDoesNotCutTheConnectionWait(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	ctx := t.Context()
	m := NewManager(Options{})
	defer m.CloseAll(context.Background())
	cfg := Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database,
		MaxPoolSize: 1, ConnectionTimeout: 5 * time.Second, MaxTransactionRetryTime: time.Second}
	if err := m.Configure(ctx, "dev", cfg); err != nil {
		t.Fatal(err)
	}
	holding := make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		_, err := m.ExecuteRead(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
			close(holding)
			time.Sleep(2500 * time.Millisecond)
			return nil, nil
		})
		holder <- err
	}()
	<-holding
	start := time.Now()
	_, err := m.ExecuteRead(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "RETURN 1", nil)
		if err != nil {
			return nil, err
		}
		return res.Consume(ctx)
	})
	took := time.Since(start)
	if herr := <-holder; herr != nil {
		t.Fatalf("holder: %v", herr)
	}
	if err != nil {
		t.Fatalf("waiting call failed after %s: %v", took, err)
	}
	if took < 2*time.Second {
		t.Errorf("took %s; the connection was busy for 2.5 s", took)
	}
}
