package neo4jpool_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
)

func unreachableConfig(t *testing.T) neo4jpool.Config {
	return neo4jpool.Config{URI: "bolt://" + closedPort(t), User: "neo4j", Password: testPassword}
}

// CM-2, CM-3: configuring stores the config and connects to nothing.
func TestConfigureIsLazy(t *testing.T) {
	var m neo4jpool.Manager // the zero value is usable
	t.Cleanup(func() { _ = m.CloseAll(context.Background()) })
	if err := m.Configure(t.Context(), "dev", neo4jpool.Config{URI: "bolt://neo4j-dev:7687", User: "neo4j", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	if err := m.Configure(t.Context(), "integration", unreachableConfig(t)); err != nil {
		t.Fatalf("an unreachable database must not fail Configure: %v", err)
	}
	if got := m.Environments(); !slices.Equal(got, []string{"dev", "integration"}) {
		t.Errorf("environments: %v", got)
	}
	cfg, err := m.EnvConfig("dev")
	if err != nil || cfg.URI != "bolt://neo4j-dev:7687" || cfg.Password != "" || cfg.MaxPoolSize != 50 {
		t.Errorf("EnvConfig: %v %v", cfg, err)
	}
}

func TestConfigureRejectsInvalid(t *testing.T) {
	m := newManager(t, neo4jpool.Options{})
	err := m.Configure(t.Context(), "dev", neo4jpool.Config{URI: "http://x", User: "neo4j", Password: testPassword})
	if !errors.Is(err, neo4jpool.ErrInvalidConfig) || !strings.Contains(err.Error(), `"dev"`) {
		t.Errorf("got %v", err)
	}
	if err := m.Configure(t.Context(), "", unreachableConfig(t)); !errors.Is(err, neo4jpool.ErrInvalidConfig) {
		t.Errorf("empty env name: %v", err)
	}
	if len(m.Environments()) != 0 {
		t.Error("an invalid config was stored")
	}
}

// CM-5: an unknown environment is a sentinel error naming it.
func TestUnknownEnvironment(t *testing.T) {
	m := newManager(t, neo4jpool.Options{})
	if err := m.Configure(t.Context(), "dev", unreachableConfig(t)); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Driver":   func() error { _, err := m.Driver(t.Context(), "nonexistent"); return err },
		"Execute":  func() error { _, err := m.ExecuteWrite(t.Context(), "nonexistent", noop); return err },
		"Session":  func() error { _, err := m.NewSession(t.Context(), "nonexistent", neo4j.AccessModeRead); return err },
		"Close":    func() error { return m.Close(t.Context(), "nonexistent") },
		"Snapshot": func() error { _, err := m.Snapshot("nonexistent"); return err },
		"Check":    func() error { return m.Check(t.Context(), "nonexistent").Err },
		"Wait":     func() error { return m.WaitReady(t.Context(), "nonexistent") },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, neo4jpool.ErrUnknownEnvironment) {
			t.Errorf("%s: want ErrUnknownEnvironment, got %v", name, err)
			continue
		}
		if !strings.Contains(err.Error(), `environment "nonexistent" is not configured (configured: dev)`) {
			t.Errorf("%s: message %q", name, err)
		}
	}
}

// CM-6, CM-7 and tsnet-style closing.
func TestCloseSemantics(t *testing.T) {
	ctx := t.Context()
	m := newManager(t, neo4jpool.Options{})
	for _, env := range []string{"dev", "integration"} {
		if err := m.Configure(ctx, env, unreachableConfig(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(ctx, "dev"); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := m.Close(ctx, "dev"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.Driver(ctx, "dev"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Driver after Close: %v", err)
	}
	if h := m.Check(ctx, "dev"); h.Healthy || !errors.Is(h.Err, net.ErrClosed) {
		t.Errorf("Check after Close: %+v", h)
	}
	if got := m.Environments(); !slices.Equal(got, []string{"integration"}) {
		t.Errorf("environments after Close: %v", got)
	}
	// Configuring a closed environment opens it again.
	if err := m.Configure(ctx, "dev", unreachableConfig(t)); err != nil {
		t.Fatal(err)
	}
	if got := m.Environments(); !slices.Equal(got, []string{"dev", "integration"}) {
		t.Errorf("environments after reconfigure: %v", got)
	}

	if err := m.CloseAll(ctx); err != nil {
		t.Fatalf("first CloseAll: %v", err)
	}
	if err := m.CloseAll(ctx); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second CloseAll: %v", err)
	}
	for name, err := range map[string]error{
		"Close":     m.Close(ctx, "integration"),
		"Configure": m.Configure(ctx, "dev", unreachableConfig(t)),
		"Driver":    func() error { _, err := m.Driver(ctx, "dev"); return err }(),
		"Execute":   func() error { _, err := m.ExecuteRead(ctx, "dev", noop); return err }(),
		"Wait":      m.WaitReady(ctx, "dev"),
	} {
		if !errors.Is(err, net.ErrClosed) || !neo4jpool.IsUnavailable(err) {
			t.Errorf("%s after CloseAll: %v", name, err)
		}
	}
	if len(m.Environments()) != 0 {
		t.Error("environments after CloseAll")
	}
	if len(m.Snapshots()) != 2 {
		t.Error("metrics must stay readable after CloseAll")
	}
}

// Connection errors name the environment and the redacted URI, never the
// password, and wrap the driver's error.
func TestConnectErrorIsClearAndRedacted(t *testing.T) {
	addr := closedPort(t)
	m := newManager(t, neo4jpool.Options{})
	cfg := neo4jpool.Config{URI: "bolt://neo4j:UriSecret77@" + addr, User: "neo4j", Password: "Password-Secret-99!"}
	if err := m.Configure(t.Context(), "integration", cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := m.Driver(t.Context(), "integration")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a refused connection took %s", time.Since(start))
	}
	msg := err.Error()
	if strings.Contains(msg, "Password-Secret-99") || strings.Contains(msg, "UriSecret77") {
		t.Fatalf("error leaks a secret: %s", msg)
	}
	for _, want := range []string{`environment "integration"`, addr, "connect", "refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	var envErr *neo4jpool.EnvError
	var connErr *neo4j.ConnectivityError
	if !errors.As(err, &envErr) || envErr.Env != "integration" || !errors.As(err, &connErr) {
		t.Errorf("error does not wrap the driver's ConnectivityError: %#v", err)
	}
	if !neo4jpool.IsUnavailable(err) || !neo4jpool.IsRetryable(err) || neo4jpool.IsAuthError(err) {
		t.Errorf("classification of %v", err)
	}
	s, _ := m.Snapshot("integration")
	if s.ConnectionsFailed == 0 {
		t.Errorf("failed connection not counted: %+v", s)
	}
}

func noop(neo4j.ManagedTransaction) (any, error) { return nil, nil }
