package neo4jpool_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testPassword is a syntactically strong password for configs that never
// reach a server.
const testPassword = "Unused-Test-Password-42!"

// newManager returns a manager that is closed when t ends.
func newManager(t testing.TB, opts neo4jpool.Options) *neo4jpool.Manager {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler) // the driver's warnings are expected in fault tests
	}
	m := neo4jpool.NewManager(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.CloseAll(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("CloseAll: %v", err)
		}
	})
	return m
}

// realConfig returns a Config for the test database (skipping without one).
func realConfig(t testing.TB) (neo4jtest.Settings, neo4jpool.Config) {
	t.Helper()
	s := neo4jtest.Require(t)
	return s, neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}
}

// realManager returns a manager with environment "dev" configured for the
// test database, with cfgMod applied to the config.
func realManager(t testing.TB, opts neo4jpool.Options, cfgMod func(*neo4jpool.Config)) (*neo4jpool.Manager, neo4jtest.Settings) {
	t.Helper()
	s, cfg := realConfig(t)
	if cfgMod != nil {
		cfgMod(&cfg)
	}
	m := newManager(t, opts)
	if err := m.Configure(t.Context(), "dev", cfg); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// closedPort returns 127.0.0.1:<port> with nothing listening.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
