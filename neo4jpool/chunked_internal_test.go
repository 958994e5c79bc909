package neo4jpool

import (
	"context"
	"slices"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
)

// chunkedWriteSeq (the Importer's path) prepares each chunk once, before
// its transaction begins: when the driver retries a chunk's transaction
// (here after an injected transient error), the work gets the same
// prepared value again and prepare does not run again.
func TestChunkPrepareRunsOnceOutsideTheTransaction(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	m := NewManager(Options{})
	ctx := context.Background()
	defer m.CloseAll(ctx)
	if err := m.Configure(ctx, "dev", Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	em, err := m.envMetricsFor("dev")
	if err != nil {
		t.Fatal(err)
	}
	var prepared [][]int
	prepare := func(chunk []int) []int {
		if n := em.callsInFlight.Load(); n != 0 {
			t.Errorf("prepare ran with %d ExecuteWrite call(s) in flight", n)
		}
		p := slices.Clone(chunk)
		prepared = append(prepared, p)
		return p
	}
	var seen [][]int
	failed := false
	work := func(ctx context.Context, tx neo4j.ManagedTransaction, p []int) error {
		seen = append(seen, p)
		if _, err := tx.Run(ctx, "RETURN 1", nil); err != nil {
			return err
		}
		if !failed {
			failed = true
			return &neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.DeadlockDetected", Msg: "injected"}
		}
		return nil
	}
	stats, err := chunkedWriteSeq(ctx, m, "dev", slicesSeq([]int{1, 2, 3, 4, 5}), 5, 2, byteBudget[int]{}, prepare, work, nil)
	if err != nil || stats != (ChunkStats{Items: 5, Chunks: 3}) {
		t.Fatalf("got %+v, %v", stats, err)
	}
	if len(prepared) != 3 || len(seen) != 4 {
		t.Fatalf("prepare ran %d times, work %d times; want 3 and 4 (one retry)", len(prepared), len(seen))
	}
	if &seen[0][0] != &seen[1][0] || &seen[1][0] != &prepared[0][0] {
		t.Error("the retry did not get the value prepared for its chunk")
	}
	if snap := em.snapshot(); snap.TxRetried != 1 {
		t.Errorf("the driver retried %d call(s), want 1", snap.TxRetried)
	}
}
