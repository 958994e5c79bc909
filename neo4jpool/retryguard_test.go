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
