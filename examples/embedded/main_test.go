package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/internal/neo4jtest"
)

func dbEnv(s neo4jtest.Settings) map[string]string { return s.Env() }

// TestEmbedded runs the example against the test database: the import
// reports progress per chunk, the query returns the 8 resources, the graph
// holds what was imported, and -cleanup deletes it.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"-env-file=", "-id-prefix", label + ":", "-label", label}

	var out, errOut bytes.Buffer
	if err := run(ctx, args, &out, &errOut, dbEnv(s)); err != nil {
		t.Fatalf("run: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"Password:[REDACTED]",
		"neo4j is connected",
		"importing 14 nodes and 13 relationships in chunks of 5",
		" 18.5%  nodes: 5 of 14 written (1 chunk committed)",
		"100.0%  relationships: 13 of 13 written (6 chunks committed)",
		"imported 14 nodes (14 new) and 13 relationships (13 new) in 6 chunks",
		"8 resources in tenant \"" + label + ":tenant\"",
		"Contoso Production   rg-web          kv-web    Microsoft.KeyVault/vaults               westeurope",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, s.Password) || strings.Contains(errOut.String(), s.Password) {
		t.Error("the password was printed")
	}
	if n := strings.Count(got, "% "); n != 6 {
		t.Errorf("%d progress lines, want 6", n)
	}
	for kind, want := range map[string]int64{"Tenant": 1, "Subscription": 2, "ResourceGroup": 3, "Resource": 8} {
		if n := neo4jtest.Count(t, d, s, "MATCH (n:"+kind+":"+label+") RETURN count(n)", nil); n != want {
			t.Errorf("%d %s nodes, want %d", n, kind, want)
		}
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (:"+label+")-[r:CONTAINS]->(:"+label+") RETURN count(r)", nil); n != 13 {
		t.Errorf("%d CONTAINS relationships, want 13", n)
	}

	// Again, with -cleanup: nothing new, then everything deleted.
	out.Reset()
	if err := run(ctx, append(args, "-cleanup"), &out, &errOut, dbEnv(s)); err != nil {
		t.Fatalf("run -cleanup: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "imported 14 nodes (0 new) and 13 relationships (0 new)") || !strings.Contains(out.String(), "deleted 14 nodes") {
		t.Errorf("output:\n%s", out.String())
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:"+label+") RETURN count(n)", nil); n != 0 {
		t.Errorf("%d nodes left after -cleanup", n)
	}
}

// TestConfigErrors: a bad configuration is reported naming the variables,
// before anything connects.
func TestConfigErrors(t *testing.T) {
	err := run(context.Background(), []string{"-env-file="}, io.Discard, io.Discard,
		map[string]string{"NEO4J_URI": "http://localhost:7474", "NEO4J_PASSWORD": "short"})
	if !errors.Is(err, atg.ErrInvalidConfig) || !strings.Contains(err.Error(), "NEO4J_URI") || !strings.Contains(err.Error(), "NEO4J_PASSWORD") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("the password appears in %q", err)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-cleanup", "-id-prefix", ""}} {
		var ue usageError
		if err := run(context.Background(), args, io.Discard, io.Discard, map[string]string{}); !errors.As(err, &ue) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
