package operations_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/operations/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) operations.Store { return &operations.MemoryStore{} })
}

// TestMemoryStoreSharedConformance runs the SharedStore suite with both
// replicas on one MemoryStore, whose clock the suite moves.
func TestMemoryStoreSharedConformance(t *testing.T) {
	t.Parallel()
	storetest.RunShared(t, func(*testing.T) storetest.Shared {
		var offset atomic.Int64 // how far the store's clock is ahead
		s := &operations.MemoryStore{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }}
		const lease = time.Minute
		return storetest.Shared{A: s, B: s, Lease: lease, Expire: func() { offset.Add(int64(lease + time.Millisecond)) }}
	})
}
