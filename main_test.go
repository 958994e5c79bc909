package atg

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind (servers
// not shut down, Neo4j drivers or event streams not closed).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
