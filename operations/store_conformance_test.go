package operations_test

import (
	"testing"

	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/operations/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) operations.Store { return &operations.MemoryStore{} })
}
