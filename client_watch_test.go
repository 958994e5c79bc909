package atg

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/atgraph/atg/transport"
)

// TestWatchErrorReturnsANilStream: when Watch fails, local and remote
// alike, the stream is a true nil interface, so `if s != nil { s.Close() }`
// is safe.
func TestWatchErrorReturnsANilStream(t *testing.T) {
	t.Parallel()
	local, remote := bothClients(t)
	for name, c := range map[string]*Client{"local": local, "remote": remote} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := c.Watch(ctx, "op_000000000000000000000000", 0)
			if !errors.Is(err, transport.ErrNotFound) {
				t.Errorf("Watch of an unknown operation: %v, want ErrNotFound", err)
			}
			if s != nil {
				t.Errorf("Watch returned a non-nil stream %#v with its error", s)
			}
		})
	}
}
