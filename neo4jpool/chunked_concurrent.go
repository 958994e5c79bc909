package neo4jpool

import (
	"context"
	"errors"
	"iter"
	"sync"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// ChunkResultFunc writes one chunk inside a managed write transaction and
// returns what the caller wants to know about it (counts, say). Like a
// ChunkFunc it may run more than once for one chunk (the driver retries
// transient failures); the result of the attempt that committed is the one
// kept. It may keep chunk: every chunk has a slice of its own.
type ChunkResultFunc[T, R any] func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []T) (R, error)

// ChunkedWriteSeqConcurrent is ChunkedWriteSeq with up to workers chunks
// in flight at once, each in its own transaction: on a database with
// several cores, writes that do not touch the same nodes or relationships
// (new nodes with distinct keys, say) commit up to workers times as fast.
// Chunks that do touch the same entities wait for each other's locks, or
// deadlock and are retried by the driver; use workers = 1 for them.
// workers < 1 means 1.
//
// The sequence is read, and onCommit (if not nil) is called with each
// committed chunk's result and size, in the calling goroutine: in commit
// order, which need not be the sequence's order. At most workers+1 chunks
// are held in memory.
//
// When a chunk fails (or the sequence yields an error, or ctx ends), no
// chunk starts once the failure is known (chunks handed to workers before
// it still commit), the chunks in flight finish, and the error is a
// *ChunkError: Chunk is the failed chunk's index and Committed the number
// of items committed in all, which with workers > 1 need not be a prefix of
// the sequence (so it is not an offset to resume from).
func ChunkedWriteSeqConcurrent[T, R any](ctx context.Context, m *Manager, env string, items iter.Seq2[T, error], chunkSize, workers int,
	work ChunkResultFunc[T, R], onCommit func(result R, items int)) (ChunkStats, error) {
	if err := ValidateChunkSize(chunkSize); err != nil {
		return ChunkStats{}, err
	}
	if work == nil {
		return ChunkStats{}, errNilChunkFunc
	}
	workers = max(workers, 1)
	type job struct {
		index int
		items []T
	}
	type outcome struct {
		items  int
		result R
		err    error
	}
	jobs := make(chan job)
	// Buffered for every job in flight, so that no worker waits to report.
	done := make(chan outcome, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var result R
				err := writeChunk(ctx, m, env, func() []T { return j.items },
					func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []T) error {
						r, err := work(ctx, tx, chunk)
						result = r
						return err
					}, ChunkStats{Chunks: j.index})
				done <- outcome{items: len(j.items), result: result, err: err}
			}
		}()
	}

	var stats ChunkStats
	var failure error
	inFlight, next := 0, 0
	land := func(o outcome) {
		inFlight--
		if o.err != nil {
			if failure == nil {
				failure = o.err
			}
			return
		}
		stats.Items += o.items
		stats.Chunks++
		if onCommit != nil {
			onCommit(o.result, o.items)
		}
	}
	// submit hands chunk to a worker, landing finished chunks meanwhile;
	// false once anything failed.
	submit := func(chunk []T) bool {
		for {
			// What finished lands first, so that no chunk starts after a
			// failure already reported.
			for drained := false; !drained && inFlight > 0; {
				select {
				case o := <-done:
					land(o)
				default:
					drained = true
				}
			}
			if failure != nil {
				return false
			}
			select {
			case jobs <- job{index: next, items: chunk}:
				inFlight++
				next++
				return true
			case o := <-done:
				land(o)
			}
		}
	}
	buf := make([]T, 0, chunkSize)
	for item, err := range items {
		if err != nil {
			if failure == nil {
				failure = &ChunkError{Chunk: next, Err: err}
			}
			break
		}
		buf = append(buf, item)
		if len(buf) == chunkSize {
			if !submit(buf) {
				break
			}
			buf = make([]T, 0, chunkSize)
		}
	}
	if failure == nil && len(buf) > 0 {
		submit(buf)
	}
	close(jobs)
	for inFlight > 0 {
		land(<-done)
	}
	wg.Wait()
	if failure != nil {
		var ce *ChunkError
		if errors.As(failure, &ce) {
			ce.Committed = stats.Items
		}
		return stats, failure
	}
	return stats, nil
}
