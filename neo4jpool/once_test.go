package neo4jpool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

func TestExecuteOnceRunsOnceCommitsAndRollsBack(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, func(c *neo4jpool.Config) { c.MaxTransactionRetryTime = time.Second })
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	ctx := context.Background()
	count := func() int64 {
		t.Helper()
		res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (n:"+label+") RETURN count(n) AS c", nil, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Database))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := res.Records[0].Get("c")
		return c.(int64)
	}
	create := func(tx neo4j.ManagedTransaction) error {
		res, err := tx.Run(ctx, "CREATE (:"+label+")", nil)
		if err != nil {
			return err
		}
		_, err = res.Consume(ctx)
		return err
	}

	// A transient failure is returned, not retried, and rolled back.
	calls := 0
	transient := &neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.DeadlockDetected", Msg: "injected"}
	_, err := m.ExecuteOnce(ctx, "dev", neo4j.AccessModeWrite, 0, func(tx neo4j.ManagedTransaction) (any, error) {
		calls++
		if err := create(tx); err != nil {
			return nil, err
		}
		return nil, transient
	})
	if calls != 1 || !errors.Is(err, transient) || !neo4jpool.IsRetryable(err) {
		t.Errorf("transient failure: %d calls, %v", calls, err)
	}
	if n := count(); n != 0 {
		t.Errorf("%d nodes after a failed ExecuteOnce, want 0", n)
	}
	// Success commits.
	v, err := m.ExecuteOnce(ctx, "dev", neo4j.AccessModeWrite, 10, func(tx neo4j.ManagedTransaction) (any, error) { return "done", create(tx) })
	if err != nil || v != "done" || count() != 1 {
		t.Errorf("ExecuteOnce = %v, %v; %d nodes", v, err, count())
	}
	// Work longer than the retry time is not cut at it.
	start := time.Now()
	_, err = m.ExecuteOnce(ctx, "dev", neo4j.AccessModeRead, 0, func(tx neo4j.ManagedTransaction) (any, error) {
		time.Sleep(1500 * time.Millisecond)
		res, err := tx.Run(ctx, "RETURN 1", nil)
		if err != nil {
			return nil, err
		}
		_, err = res.Consume(ctx)
		return nil, err
	})
	if err != nil || time.Since(start) < 1500*time.Millisecond {
		t.Errorf("long work: %v after %s", err, time.Since(start))
	}
	// The metrics count each call once.
	snap, err := m.Snapshot("dev")
	if err != nil {
		t.Fatal(err)
	}
	if snap.TxCommitted < 2 || snap.TxFailed < 1 {
		t.Errorf("snapshot %+v", snap)
	}
}
