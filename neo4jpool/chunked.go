package neo4jpool

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// Chunk size bounds of ChunkedWrite, ChunkedWriteSeq and Importer.
const (
	// DefaultChunkSize is the chunk size used when none is given.
	DefaultChunkSize = 1000
	// MaxChunkSize is the largest accepted chunk size: one transaction holds
	// a whole chunk in server memory.
	MaxChunkSize = 100_000
)

// ErrInvalidChunkSize is matched (with errors.Is) by the error of
// ValidateChunkSize.
var ErrInvalidChunkSize = errors.New("neo4jpool: invalid chunk size")

var errNilChunkFunc = errors.New("neo4jpool: chunk work function is nil")

// ValidateChunkSize returns nil when 1 <= n <= MaxChunkSize.
func ValidateChunkSize(n int) error {
	if n < 1 || n > MaxChunkSize {
		return fmt.Errorf("%w: chunk size must be between 1 and %d, got %d", ErrInvalidChunkSize, MaxChunkSize, n)
	}
	return nil
}

// ChunkFunc writes one chunk inside a managed write transaction. The driver
// may call it more than once for the same chunk (after a transient
// failure), so it must be idempotent and must not keep chunk after
// returning (ChunkedWriteSeq reuses the slice).
type ChunkFunc[T any] func(ctx context.Context, tx neo4j.ManagedTransaction, chunk []T) error

// ProgressFunc is called after each committed chunk with the number of
// items committed so far and the total (-1 when unknown).
type ProgressFunc func(done, total int)

// ChunkStats says how much a chunked write committed.
type ChunkStats struct {
	// Items is the number of items committed.
	Items int `json:"items"`
	// Chunks is the number of chunks (transactions) committed.
	Chunks int `json:"chunks"`
}

// ChunkError reports a chunked write that stopped: chunks before Chunk are
// committed, the chunks after it are not, and chunk Chunk is not committed
// unless OutcomeUnknown. Committed is the offset to resume from.
//
// What Committed promises: exactly Committed items (the chunks before
// Chunk) are known to be committed. When OutcomeUnknown is true, the
// connection broke (or the context ended) while chunk Chunk was being
// committed, so the database may also hold that chunk's items: resuming at
// Committed writes the chunk again, which is safe only for idempotent work
// (MERGE, SET; the Importer's is). Work that is not idempotent (CREATE,
// counters) must first check whether chunk Chunk is in the database.
type ChunkError struct {
	// Committed is the number of items known to be committed before the
	// failure: the offset to resume from.
	Committed int
	// OutcomeUnknown is true when chunk Chunk's commit got no answer: it
	// may or may not have been committed (the error then matches
	// ErrCommitOutcomeUnknown).
	OutcomeUnknown bool
	// Chunk is the zero-based index of the chunk that failed or was not
	// started.
	Chunk int
	// Err is the cause: the transaction's error, the item source's error,
	// or context.Cause of the context when it ended between chunks.
	Err error
}

// Error implements error.
func (e *ChunkError) Error() string {
	if e.OutcomeUnknown {
		return fmt.Sprintf("neo4jpool: chunked write stopped at chunk %d after %d item(s) committed; chunk %d may or may not have been committed: %v",
			e.Chunk, e.Committed, e.Chunk, e.Err)
	}
	return fmt.Sprintf("neo4jpool: chunked write stopped at chunk %d after %d item(s) committed: %v",
		e.Chunk, e.Committed, e.Err)
}

// Unwrap returns the cause.
func (e *ChunkError) Unwrap() error { return e.Err }

// ChunkedWrite splits items into chunks of chunkSize and writes each chunk
// with work in its own managed write transaction (m.ExecuteWrite: the
// driver retries transient failures of a chunk; nothing else retries).
// After each commit it calls onProgress (if not nil) with (done, total).
//
// Chunks are written in order, one at a time; ctx is checked between
// chunks. Empty input writes nothing and calls nothing. An invalid chunk
// size fails before anything is written (ErrInvalidChunkSize). When a chunk
// fails, the earlier chunks stay committed and the error is a *ChunkError
// whose Committed field is the offset to resume from (see ChunkError for
// a chunk whose commit outcome is unknown).
func ChunkedWrite[T any](ctx context.Context, m *Manager, env string, items []T, chunkSize int,
	work ChunkFunc[T], onProgress ProgressFunc) (ChunkStats, error) {
	if err := ValidateChunkSize(chunkSize); err != nil {
		return ChunkStats{}, err
	}
	if work == nil {
		return ChunkStats{}, errNilChunkFunc
	}
	total := len(items)
	var stats ChunkStats
	for start := 0; start < total; start += chunkSize {
		end := min(start+chunkSize, total)
		chunk := func() []T { return items[start:end:end] }
		if err := writeChunk(ctx, m, env, chunk, work, stats); err != nil {
			return stats, err
		}
		stats.Items, stats.Chunks = end, stats.Chunks+1
		if onProgress != nil {
			onProgress(stats.Items, total)
		}
	}
	return stats, nil
}

// ChunkedWriteSeq is ChunkedWrite for items read from a sequence, holding
// at most one chunk in memory: suitable for large streams. total is passed
// to onProgress as is (-1 when unknown). When the sequence yields an error,
// the chunk being filled is not written and the result is a *ChunkError
// wrapping it.
func ChunkedWriteSeq[T any](ctx context.Context, m *Manager, env string, items iter.Seq2[T, error], total, chunkSize int,
	work ChunkFunc[T], onProgress ProgressFunc) (ChunkStats, error) {
	if err := ValidateChunkSize(chunkSize); err != nil {
		return ChunkStats{}, err
	}
	if work == nil {
		return ChunkStats{}, errNilChunkFunc
	}
	return chunkedWriteSeq(ctx, m, env, items, total, chunkSize, byteBudget[T]{}, func(chunk []T) []T { return chunk }, work, onProgress)
}

// chunkedWriteSeq is ChunkedWriteSeq with a prepare step: prepare turns
// each chunk into the value work writes, before the chunk's transaction
// begins, so that work done once per chunk (building statement
// parameters) neither repeats when the driver retries the transaction nor
// runs while it is open. prepare must not keep chunk (the slice is
// reused); what it returns may be used by work more than once.
//
// budget, when set, also ends a chunk by size: an item that would take the
// chunk's estimated size past budget.max starts a new chunk, and an item
// larger than budget.max is written alone.
func chunkedWriteSeq[T, P any](ctx context.Context, m *Manager, env string, items iter.Seq2[T, error], total, chunkSize int,
	budget byteBudget[T], prepare func(chunk []T) P, work func(context.Context, neo4j.ManagedTransaction, P) error,
	onProgress ProgressFunc) (ChunkStats, error) {
	if err := ValidateChunkSize(chunkSize); err != nil {
		return ChunkStats{}, err
	}
	var stats ChunkStats
	buf := make([]T, 0, min(chunkSize, 4096))
	bufBytes := 0
	var failure error
	flush := func() bool {
		bufBytes = 0
		if err := writeChunk(ctx, m, env, func() P { return prepare(buf) }, work, stats); err != nil {
			failure = err
			return false
		}
		stats.Items += len(buf)
		stats.Chunks++
		clear(buf) // drop references to written items
		buf = buf[:0]
		if onProgress != nil {
			onProgress(stats.Items, total)
		}
		return true
	}
	for item, err := range items {
		if err != nil {
			failure = &ChunkError{Committed: stats.Items, Chunk: stats.Chunks, Err: err}
			break
		}
		if budget.size != nil {
			n := budget.size(item)
			if len(buf) > 0 && bufBytes+n > budget.max && !flush() {
				break
			}
			bufBytes += n
		}
		buf = append(buf, item)
		if (len(buf) == chunkSize || (budget.size != nil && bufBytes >= budget.max)) && !flush() {
			break
		}
	}
	if failure == nil && len(buf) > 0 {
		flush()
	}
	if failure != nil {
		return stats, failure
	}
	return stats, nil
}

// byteBudget bounds the estimated size of a chunk: size estimates one
// item's bytes; the zero value bounds nothing.
type byteBudget[T any] struct {
	size func(T) int
	max  int
}

// writeChunk writes one chunk in one managed write transaction: unless ctx
// has ended, it calls prepare once, then work (once per attempt of the
// transaction) with what prepare returned.
func writeChunk[P any](ctx context.Context, m *Manager, env string, prepare func() P,
	work func(context.Context, neo4j.ManagedTransaction, P) error, stats ChunkStats) error {
	if err := context.Cause(ctx); err != nil {
		return &ChunkError{Committed: stats.Items, Chunk: stats.Chunks, Err: err}
	}
	prepared := prepare()
	cctx, cancel := m.chunkContext(ctx)
	defer cancel()
	_, err := m.ExecuteWrite(cctx, env, func(tx neo4j.ManagedTransaction) (any, error) {
		return nil, work(cctx, tx, prepared)
	})
	if err != nil {
		return &ChunkError{Committed: stats.Items, Chunk: stats.Chunks, Err: m.chunkTimeoutError(ctx, cctx, err),
			OutcomeUnknown: errors.Is(err, ErrCommitOutcomeUnknown)}
	}
	return nil
}

// DefaultChunkTimeout is Options.ChunkTimeout's default.
const DefaultChunkTimeout = 2 * time.Minute

// ErrChunkTimeout is matched by the error of a chunk that did not commit
// within Options.ChunkTimeout. IsUnavailable reports true for it.
var ErrChunkTimeout = errors.New("neo4jpool: chunk timed out")

// chunkContext bounds one chunk by Options.ChunkTimeout.
func (m *Manager) chunkContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := m.opts.ChunkTimeout
	if d == 0 {
		d = DefaultChunkTimeout
	}
	if d < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("%w after %s", ErrChunkTimeout, d))
}

// chunkTimeoutError says so when the chunk's own deadline (not the
// caller's context) ended it.
func (m *Manager) chunkTimeoutError(ctx, cctx context.Context, err error) error {
	if ctx.Err() == nil && errors.Is(context.Cause(cctx), ErrChunkTimeout) && !errors.Is(err, ErrChunkTimeout) {
		return fmt.Errorf("%w: %w", context.Cause(cctx), err)
	}
	return err
}
