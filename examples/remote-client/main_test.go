package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/transport"
)

// testServer starts an atg-server on a random port against the test
// database and returns its URL and a read+write key.
func testServer(t *testing.T) (url, key string) {
	t.Helper()
	s := neo4jtest.Require(t)
	ctx := context.Background()
	store := auth.NewMemoryStore()
	key, _, err := store.Create(ctx, auth.CreateOptions{ClientID: "example-test", Environment: auth.Dev})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The configuration a server would load, with the test database.
	vars := s.Env()
	maps.Copy(vars, map[string]string{"ENVIRONMENT": "dev", "ATG_MAX_CONCURRENT_OPS": "2", "ATG_AUDIT_LOG": "off",
		"ATG_OPERATION_NAMESPACE": neo4jtest.OperationNamespace(t, neo4jtest.Driver(t, s), s)})
	cfg, err := atg.LoadServerConfig(atg.LoadOptions{Environ: vars})
	if err != nil {
		t.Fatal(err)
	}
	srv := &atg.Server{Config: cfg, Logger: slog.New(slog.DiscardHandler), KeyStore: store, Listener: ln}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv.URL(), key
}

// TestImportToTheEnd watches a small import to completion.
func TestImportToTheEnd(t *testing.T) {
	t.Parallel()
	url, key := testServer(t)
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var out bytes.Buffer
	args := []string{"-env-file=", "-id-prefix", label + ":", "-label", label, "-subscriptions", "2", "-groups", "3", "-resources", "10", "-chunk-size", "20"}
	env := map[string]string{"ATG_SERVICE_URL": url, "ATG_API_KEY": key}
	if err := run(ctx, args, &out, io.Discard, env); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	// 1 + 2 + 6 + 60 = 69 nodes, 68 relationships: 4 + 4 chunks.
	for _, want := range []string{
		"APIKey:atg_dev_***",
		"server " + url + ": healthy (atg " + atg.Version + ", environment dev, neo4j connected)",
		"authenticated as example-test (scopes read,write); operation types: import",
		"69 nodes and 68 relationships in chunks of 20 (",
		"status: queued\nstatus: running\n",
		"[####..........................]  14.6%  nodes: 20 of 69 written (1 chunk committed)",
		"[##############################] 100.0%  relationships: 68 of 68 written (8 chunks committed)\ncomplete: the operation is completed\n",
		": completed after ",
		"result: 69 nodes (69 new) and 68 relationships (68 new) in 8 chunks",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, key) {
		t.Error("the API key was printed")
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:"+label+") RETURN count(n)", nil); n != 69 {
		t.Errorf("%d nodes, want 69", n)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (:"+label+")-[r:CONTAINS]->() RETURN count(r)", nil); n != 68 {
		t.Errorf("%d relationships, want 68", n)
	}

	// -cleanup deletes what was written.
	out.Reset()
	if err := run(ctx, append(args, "-cleanup"), &out, io.Discard, env); err != nil {
		t.Fatalf("run -cleanup: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "result: 69 nodes (0 new)") || !strings.Contains(out.String(), "deleted 69 nodes") {
		t.Errorf("output:\n%s", out.String())
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:"+label+") RETURN count(n)", nil); n != 0 {
		t.Errorf("%d nodes left", n)
	}
}

// TestCancelAfter cancels a long import after 3 progress events: the
// operation ends cancelled, its work stops (part of the graph only), and
// the run counts as a success.
func TestCancelAfter(t *testing.T) {
	t.Parallel()
	url, key := testServer(t)
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var out bytes.Buffer
	// 1 + 2 + 20 + 4000 = 4023 nodes in chunks of 10: hundreds of chunks.
	args := []string{"-env-file=", "-id-prefix", label + ":", "-label", label, "-subscriptions", "2", "-groups", "10", "-resources", "200",
		"-chunk-size", "10", "-cancel-after", "3"}
	if err := run(ctx, args, &out, io.Discard, map[string]string{"ATG_SERVICE_URL": url, "ATG_API_KEY": key}); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"submitted op_",
		"  0.4%  nodes: 30 of 4023 written (3 chunks committed)\ncancel: requested after 3 progress events; the operation is now cancelled\n",
		"error: the operation is cancelled\n",
		"error: CANCELLED: cancelled by client",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if !strings.Contains(got, ": cancelled after ") {
		t.Errorf("no final cancelled state:\n%s", got)
	}
	// The work stopped through its context: wait for the last chunk in
	// flight to settle, then the graph must be partial and stay so.
	time.Sleep(500 * time.Millisecond)
	n := neo4jtest.Count(t, d, s, "MATCH (n:"+label+") RETURN count(n)", nil)
	if n < 30 || n >= 4023 {
		t.Fatalf("%d nodes written, want a partial import", n)
	}
	time.Sleep(300 * time.Millisecond)
	if again := neo4jtest.Count(t, d, s, "MATCH (n:"+label+") RETURN count(n)", nil); again != n {
		t.Errorf("the import went on after the cancellation: %d then %d nodes", n, again)
	}
}

// TestConfigurationErrors: missing settings are named.
func TestConfigurationErrors(t *testing.T) {
	err := run(context.Background(), []string{"-env-file="}, io.Discard, io.Discard, map[string]string{})
	if !errors.Is(err, atg.ErrInvalidConfig) || !strings.Contains(err.Error(), "ATG_SERVICE_URL") || !strings.Contains(err.Error(), "ATG_API_KEY") {
		t.Errorf("no settings: %v", err)
	}
	err = run(context.Background(), []string{"-env-file="}, io.Discard, io.Discard, map[string]string{"ATG_SERVICE_URL": "localhost:8000", "ATG_API_KEY": "k"})
	if !errors.Is(err, atg.ErrInvalidConfig) || !strings.Contains(err.Error(), "ATG_SERVICE_URL") {
		t.Errorf("bad URL: %v", err)
	}
}

// TestWrongKey: a wrong key is refused with AUTHENTICATION_FAILED before
// anything is submitted.
func TestWrongKey(t *testing.T) {
	t.Parallel()
	url, _ := testServer(t)
	wrong, _ := auth.Generate(auth.Dev)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-env-file="}, &out, io.Discard, map[string]string{"ATG_SERVICE_URL": url, "ATG_API_KEY": wrong})
	if !errors.Is(err, transport.ErrAuthenticationFailed) {
		t.Errorf("wrong key: %v", err)
	}
	if strings.Contains(out.String(), "submitted") || strings.Contains(out.String(), wrong) {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-groups", "0"}, {"-cancel-after", "-1"}, {"-cleanup", "-id-prefix", ""}} {
		var ue usageError
		if err := run(context.Background(), args, io.Discard, io.Discard, map[string]string{}); !errors.As(err, &ue) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
