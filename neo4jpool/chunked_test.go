package neo4jpool_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// createItems returns a ChunkFunc that CREATEs one node per item with the
// label and property k = item.
func createItems(label string) neo4jpool.ChunkFunc[int] {
	return func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []int) error {
		res, err := tx.Run(ctx, "UNWIND $rows AS k CREATE (:`"+label+"` {k: k})", map[string]any{"rows": chunk})
		if err != nil {
			return err
		}
		_, err = res.Consume(ctx)
		return err
	}
}

type progressCall struct{ Done, Total int }

func recorder(calls *[]progressCall) neo4jpool.ProgressFunc {
	return func(done, total int) { *calls = append(*calls, progressCall{done, total}) }
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TX-1, TX-2 and TX-C1 against the real database.
func TestChunkedWrite(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)

	t.Run("TX-1 100 items in chunks of 10", func(t *testing.T) {
		label := neo4jtest.Unique(t)
		neo4jtest.CleanupLabel(t, d, s, label)
		before, _ := m.Snapshot("dev")
		var calls []progressCall
		stats, err := neo4jpool.ChunkedWrite(t.Context(), m, "dev", seq(100), 10, createItems(label), recorder(&calls))
		if err != nil {
			t.Fatal(err)
		}
		after, _ := m.Snapshot("dev")
		if stats != (neo4jpool.ChunkStats{Items: 100, Chunks: 10}) || after.TxCommitted-before.TxCommitted != 10 || len(calls) != 10 {
			t.Errorf("stats %+v, transactions %d, callbacks %d", stats, after.TxCommitted-before.TxCommitted, len(calls))
		}
		if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN sum(n.k)", nil); n != 4950 {
			t.Errorf("sum of written items: %d", n)
		}
	})

	t.Run("TX-2 50 items, progress after each chunk", func(t *testing.T) {
		label := neo4jtest.Unique(t)
		neo4jtest.CleanupLabel(t, d, s, label)
		var calls []progressCall
		if _, err := neo4jpool.ChunkedWrite(t.Context(), m, "dev", seq(50), 10, createItems(label), recorder(&calls)); err != nil {
			t.Fatal(err)
		}
		want := []progressCall{{10, 50}, {20, 50}, {30, 50}, {40, 50}, {50, 50}}
		if diff := cmp.Diff(want, calls); diff != "" {
			t.Errorf("progress (-want +got):\n%s", diff)
		}
		// Uneven last chunk: (min(i+chunk, total), total).
		calls = nil
		if _, err := neo4jpool.ChunkedWrite(t.Context(), m, "dev", seq(25), 10, createItems(label), recorder(&calls)); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]progressCall{{10, 25}, {20, 25}, {25, 25}}, calls); diff != "" {
			t.Errorf("uneven progress (-want +got):\n%s", diff)
		}
	})

	t.Run("empty input", func(t *testing.T) {
		before, _ := m.Snapshot("dev")
		var calls []progressCall
		stats, err := neo4jpool.ChunkedWrite(t.Context(), m, "dev", nil, 10, createItems("Unused"), recorder(&calls))
		after, _ := m.Snapshot("dev")
		if err != nil || stats != (neo4jpool.ChunkStats{}) || len(calls) != 0 || after.TxAttempts != before.TxAttempts {
			t.Errorf("empty input: %+v %v, %d callbacks", stats, err, len(calls))
		}
	})

	t.Run("invalid chunk size", func(t *testing.T) {
		for _, size := range []int{0, -3, neo4jpool.MaxChunkSize + 1} {
			_, err := neo4jpool.ChunkedWrite(t.Context(), m, "dev", seq(5), size, createItems("Unused"), nil)
			if !errors.Is(err, neo4jpool.ErrInvalidChunkSize) {
				t.Errorf("size %d: %v", size, err)
			}
		}
	})
}

// A failing chunk leaves the earlier chunks committed and itself absent, is
// not retried (a constraint violation), and the error gives the resume
// offset.
func TestChunkFailureKeepsEarlierChunks(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	constraint := "c_" + label
	if len(constraint) > 64 {
		constraint = constraint[:64]
	}
	neo4jtest.DropConstraint(t, d, s, constraint)
	if _, err := neo4jtest.Query(t.Context(), d, s,
		"CREATE CONSTRAINT `"+constraint+"` FOR (n:`"+label+"`) REQUIRE n.k IS UNIQUE", nil); err != nil {
		t.Fatal(err)
	}

	items := seq(50)
	items[35] = 5 // duplicates item 5: chunk 3 (items 30..39) violates the constraint
	before, _ := m.Snapshot("dev")
	var calls []progressCall
	stats, err := neo4jpool.ChunkedWrite(t.Context(), m, "dev", items, 10, createItems(label), recorder(&calls))
	var chunkErr *neo4jpool.ChunkError
	if !errors.As(err, &chunkErr) || chunkErr.Committed != 30 || chunkErr.Chunk != 3 {
		t.Fatalf("want ChunkError{Committed: 30, Chunk: 3}, got %v", err)
	}
	var dbErr *neo4j.Neo4jError
	if !errors.As(err, &dbErr) || dbErr.Code != "Neo.ClientError.Schema.ConstraintValidationFailed" || !neo4jpool.IsClientError(err) {
		t.Errorf("cause: %v", err)
	}
	if stats.Items != 30 || len(calls) != 3 {
		t.Errorf("stats %+v, %d callbacks", stats, len(calls))
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) WHERE n.k < 30 RETURN count(n)", nil); n != 30 {
		t.Errorf("chunks 0..2: %d of 30 nodes committed", n)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) WHERE n.k >= 30 RETURN count(n)", nil); n != 0 {
		t.Errorf("the failed chunk left %d nodes", n)
	}
	after, _ := m.Snapshot("dev")
	if after.TxAttempts-before.TxAttempts != 4 || after.TxFailed-before.TxFailed != 1 || after.TxRetried != before.TxRetried {
		t.Errorf("a constraint violation must not be retried: attempts %d", after.TxAttempts-before.TxAttempts)
	}

	// Resume from the offset with the bad item fixed.
	items[35] = 35
	if _, err := neo4jpool.ChunkedWrite(t.Context(), m, "dev", items[chunkErr.Committed:], 10, createItems(label), nil); err != nil {
		t.Fatal(err)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(DISTINCT n.k)", nil); n != 50 {
		t.Errorf("after resume: %d distinct items", n)
	}
}

// Cancellation stops between chunks.
func TestChunkedWriteStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := neo4jpool.ChunkedWrite(ctx, m, "dev", seq(100), 10, createItems(label), func(done, total int) {
		if done == 20 {
			cancel()
		}
	})
	var chunkErr *neo4jpool.ChunkError
	if !errors.As(err, &chunkErr) || chunkErr.Committed != 20 || chunkErr.Chunk != 2 || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); n != 20 {
		t.Errorf("%d nodes written, want 20", n)
	}
}

// The streaming variant holds one chunk and stops at a source error.
func TestChunkedWriteSeq(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)

	source := func(n, failAt int) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := range n {
				if i == failAt {
					yield(0, fmt.Errorf("decode item %d: broken input", i))
					return
				}
				if !yield(i, nil) {
					return
				}
			}
		}
	}
	var calls []progressCall
	stats, err := neo4jpool.ChunkedWriteSeq(t.Context(), m, "dev", source(25, -1), -1, 10, createItems(label), recorder(&calls))
	if err != nil || stats != (neo4jpool.ChunkStats{Items: 25, Chunks: 3}) {
		t.Fatalf("stats %+v: %v", stats, err)
	}
	if diff := cmp.Diff([]progressCall{{10, -1}, {20, -1}, {25, -1}}, calls); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}

	label2 := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label2)
	_, err = neo4jpool.ChunkedWriteSeq(t.Context(), m, "dev", source(100, 25), 100, 10, createItems(label2), nil)
	var chunkErr *neo4jpool.ChunkError
	if !errors.As(err, &chunkErr) || chunkErr.Committed != 20 || chunkErr.Chunk != 2 {
		t.Fatalf("got %v", err)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label2+"`) RETURN count(n)", nil); n != 20 {
		t.Errorf("%d nodes written before the source error, want 20", n)
	}
	// Items 20..24 were read but never written.
	ks := neo4jtest.Count(t, d, s, "MATCH (n:`"+label2+"`) RETURN max(n.k)", nil)
	if ks != 19 || !slices.Contains([]string{chunkErr.Err.Error()}, "decode item 25: broken input") {
		t.Errorf("max written %d, cause %v", ks, chunkErr.Err)
	}
}

// TestChunkedWriteCommitOutcomeUnknown: when the connection breaks during
// the third chunk's COMMIT (after the server committed it), the error says
// that chunk's outcome is unknown, Committed counts the two chunks known to
// be committed, and the database holds three.
func TestChunkedWriteCommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	s, cfg := realConfig(t)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	proxy := newCommitCutter(t, s.Address(), 3)
	cfg.URI = proxy.uri()
	m := newManager(t, neo4jpool.Options{})
	if err := m.Configure(t.Context(), "dev", cfg); err != nil {
		t.Fatal(err)
	}
	items := make([]int, 50)
	for i := range items {
		items[i] = i
	}
	_, err := neo4jpool.ChunkedWrite(t.Context(), m, "dev", items, 10, func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []int) error {
		res, err := tx.Run(ctx, "UNWIND $items AS i CREATE (:`"+label+"` {i: i})", map[string]any{"items": chunk})
		if err != nil {
			return err
		}
		_, err = res.Consume(ctx)
		return err
	}, nil)
	var ce *neo4jpool.ChunkError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	if ce.Committed != 20 || ce.Chunk != 2 || !ce.OutcomeUnknown || !errors.Is(err, neo4jpool.ErrCommitOutcomeUnknown) {
		t.Errorf("ChunkError{Committed: %d, Chunk: %d, OutcomeUnknown: %v}: %v", ce.Committed, ce.Chunk, ce.OutcomeUnknown, err)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); n != 30 {
		t.Errorf("database holds %d items, want 30 (the third chunk committed)", n)
	}
	t.Logf("error: %v", err)
}
