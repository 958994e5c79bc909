package azuretest

import (
	"encoding/json"
	"io"
	"testing"
)

// BenchmarkTenantRows generates and encodes the Resources rows of a
// 10,000-resource tenant, as the fake does for its pages.
func BenchmarkTenantRows(b *testing.B) {
	tn := NewTenant(1, 10_000, 2)
	enc := json.NewEncoder(io.Discard)
	for b.Loop() {
		tn.Rows(TableResources, nil, 0, 1<<30, func(r map[string]any) bool { _ = enc.Encode(r); return true })
	}
}
