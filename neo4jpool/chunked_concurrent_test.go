package neo4jpool_test

import (
	"context"
	"errors"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// countItems CREATEs one node per item and returns how many it created.
func countItems(label string) neo4jpool.ChunkResultFunc[int, int] {
	return func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []int) (int, error) {
		res, err := tx.Run(ctx, "UNWIND $rows AS k CREATE (n:`"+label+"` {k: k}) RETURN count(n)", map[string]any{"rows": chunk})
		if err != nil {
			return 0, err
		}
		rec, err := res.Single(ctx)
		if err != nil {
			return 0, err
		}
		return int(rec.Values[0].(int64)), nil
	}
}

func TestChunkedWriteSeqConcurrent(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)

	t.Run("every item once, results to the caller", func(t *testing.T) {
		for _, workers := range []int{0, 1, 3} {
			label := neo4jtest.Unique(t)
			neo4jtest.CleanupLabel(t, d, s, label)
			created, calls := 0, 0
			stats, err := neo4jpool.ChunkedWriteSeqConcurrent(t.Context(), m, "dev", seqOf(seq(1005)), 100, workers, countItems(label),
				func(n, items int) { created += n; calls++ })
			if err != nil {
				t.Fatal(err)
			}
			if stats.Items != 1005 || stats.Chunks != 11 || created != 1005 || calls != 11 {
				t.Errorf("workers %d: stats %+v, onCommit saw %d created in %d calls; want 1005 items in 11 chunks", workers, stats, created, calls)
			}
			if got := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(DISTINCT n.k)", nil); got != 1005 {
				t.Errorf("workers %d: %d distinct items in the database, want 1005", workers, got)
			}
		}
	})

	t.Run("chunks are in flight together", func(t *testing.T) {
		// Each chunk waits until the other has started: with one worker
		// this would time out.
		var inside atomic.Int32
		both := make(chan struct{})
		work := func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []int) (int, error) {
			if inside.Add(1) == 2 {
				close(both)
			}
			select {
			case <-both:
				return len(chunk), nil
			case <-time.After(10 * time.Second):
				return 0, errors.New("the other chunk never started")
			}
		}
		if _, err := neo4jpool.ChunkedWriteSeqConcurrent(t.Context(), m, "dev", seqOf(seq(20)), 10, 2, work, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a sequence error stops after what is in flight", func(t *testing.T) {
		label := neo4jtest.Unique(t)
		neo4jtest.CleanupLabel(t, d, s, label)
		boom := errors.New("source broke")
		items := func(yield func(int, error) bool) {
			for i := range 250 {
				if !yield(i, nil) {
					return
				}
			}
			yield(0, boom)
		}
		stats, err := neo4jpool.ChunkedWriteSeqConcurrent(t.Context(), m, "dev", items, 100, 2, countItems(label), nil)
		var ce *neo4jpool.ChunkError
		if !errors.As(err, &ce) || !errors.Is(err, boom) {
			t.Fatalf("err = %v, want a *ChunkError wrapping the source's error", err)
		}
		if ce.Committed != 200 || stats.Items != 200 || ce.Chunk != 2 {
			t.Errorf("Committed %d, stats %+v, Chunk %d; want 200 items committed (the partial third chunk is not written), chunk 2", ce.Committed, stats, ce.Chunk)
		}
		if got := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); got != 200 {
			t.Errorf("%d items in the database, want 200", got)
		}
	})

	t.Run("a failed chunk stops the write; the others in flight land", func(t *testing.T) {
		label := neo4jtest.Unique(t)
		neo4jtest.CleanupLabel(t, d, s, label)
		create := countItems(label)
		work := func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []int) (int, error) {
			if chunk[0] == 30 {
				// Not transient: the driver does not retry it.
				res, err := tx.Run(ctx, "RETURN 1/0", nil)
				if err == nil {
					_, err = res.Consume(ctx)
				}
				return 0, err
			}
			return create(ctx, tx, chunk)
		}
		stats, err := neo4jpool.ChunkedWriteSeqConcurrent(t.Context(), m, "dev", seqOf(seq(1000)), 10, 2, work, nil)
		var ce *neo4jpool.ChunkError
		if !errors.As(err, &ce) || ce.Chunk != 3 {
			t.Fatalf("err = %v, want a *ChunkError for chunk 3", err)
		}
		got := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil)
		// Chunks 0-2 commit before it; of the 96 after it only those handed
		// out before its failure landed.
		if int64(ce.Committed) != got || stats.Items != ce.Committed || got < 30 || got > 200 {
			t.Errorf("Committed %d, stats %+v, database %d; want them equal, between 30 and 200", ce.Committed, stats, got)
		}
	})

	t.Run("a cancelled context stops it", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		work := func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []int) (int, error) {
			if chunk[0] == 0 {
				cancel()
			}
			return len(chunk), nil
		}
		_, err := neo4jpool.ChunkedWriteSeqConcurrent(ctx, m, "dev", seqOf(seq(1000)), 10, 2, work, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		if _, err := neo4jpool.ChunkedWriteSeqConcurrent(t.Context(), m, "dev", seqOf(seq(3)), 0, 2, countItems("X"), nil); !errors.Is(err, neo4jpool.ErrInvalidChunkSize) {
			t.Errorf("chunk size 0: %v", err)
		}
		if _, err := neo4jpool.ChunkedWriteSeqConcurrent[int, int](t.Context(), m, "dev", seqOf(seq(3)), 10, 2, nil, nil); err == nil {
			t.Error("nil work: no error")
		}
	})
}

func seqOf(items []int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for _, it := range items {
			if !yield(it, nil) {
				return
			}
		}
	}
}
