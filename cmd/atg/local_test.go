package main

import (
	"context"
	"strings"
	"testing"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// TestLocal runs status, query and import in local mode.
func TestLocal(t *testing.T) {
	t.Parallel()
	vars := localVars(t)
	c := newCLI(t, vars)
	label, s := testLabel(t)

	r := c.run("status")
	if r.code != exitOK || !strings.Contains(r.stdout, "mode         local mode, "+vars["NEO4J_URI"]+", environment dev") ||
		!strings.Contains(r.stdout, "neo4j        connected") || strings.Contains(r.stdout, "client") || strings.Contains(r.stdout, "operations") {
		t.Errorf("status:\n%s", r)
	}
	var st transport.StatusResponse
	decode(t, c.run("status", "--format", "json").stdout, &st)
	if st.ClientID != "local" || st.Neo4j.Status != "connected" || st.Environment != "dev" {
		t.Errorf("status json: %+v", st)
	}

	if r = c.run("--verbose", "query", "RETURN $x + 1 AS y", "--param", "x=41"); r.code != exitOK || r.stdout != "y\n42\n1 row\n" {
		t.Errorf("query:\n%s", r)
	}

	r = c.run("import", documentFile(t, "tenant.json", label))
	id := opID(t, r.stderr)
	if res := importResult(t, r); r.code != exitOK || res.Nodes != 9 || res.Relationships != 9 ||
		!strings.Contains(r.stderr, "operation "+id+" (import) submitted; local mode, ") || !strings.Contains(r.stderr, "progress 100.0% relationships: 9 of 9 written") {
		t.Errorf("import:\n%s", r)
	}
	if n, rels := countLabel(t, s, label); n != 9 || rels != 9 {
		t.Errorf("graph has %d nodes and %d relationships, want 9 and 9", n, rels)
	}
	r = c.runStdin(string(document(t, "tenant.json", label)), "import", "-")
	if res := importResult(t, r); r.code != exitOK || res.NodesCreated != 0 || res.Nodes != 9 {
		t.Errorf("import from stdin:\n%s", r)
	}
	r = c.run("query", "--format", "json", "MATCH (n:"+label+":Resource) RETURN n.name AS name ORDER BY name")
	if r.code != exitOK || !strings.Contains(r.stdout, `"row_count": 4`) || !strings.Contains(r.stdout, `"orders-db"`) {
		t.Errorf("query json:\n%s", r)
	}
	if r = c.run("ops", "list"); r.code != exitUsage {
		t.Errorf("ops in local mode:\n%s", r)
	}
}

// TestLocalInterruptCancels checks that Ctrl-C cancels a local import,
// which runs in the atg process: it waits queued behind a "block"
// operation that holds local mode's only slot.
func TestLocalInterruptCancels(t *testing.T) {
	t.Parallel()
	c := newCLI(t, localVars(t))
	never := make(chan struct{})
	c.opts = func(o *atg.ClientOptions) {
		o.MaxConcurrentOps = 1
		o.Types = append(o.Types, blockType(never))
	}
	c.onClient = func(ctx context.Context, client *atg.Client) error {
		_, err := client.Submit(ctx, "block", nil)
		return err
	}
	label, s := testLabel(t)
	r := interrupt(t, c, "status queued", "import", "--chunk-size", "2", documentFile(t, "tenant.json", label))
	id := opID(t, r.stderr)
	if r.code != exitCancelled || r.stdout != "" ||
		!strings.Contains(r.stderr, "atg: interrupted: cancelled operation "+id+" (local mode runs it in this process, so Ctrl-C cancels it)") {
		t.Errorf("interrupted local import:\n%s", r)
	}
	if n, _ := countLabel(t, s, label); n != 0 {
		t.Errorf("cancelled while queued, yet %d nodes were written", n)
	}
}

// TestLocalDatabaseDown checks exit 5 when local mode's Neo4j is down.
func TestLocalDatabaseDown(t *testing.T) {
	t.Parallel()
	vars := localVars(t)
	vars["NEO4J_URI"] = "bolt://" + closedPort(t)
	vars["NEO4J_MAX_TRANSACTION_RETRY_TIME"] = "1s"
	c := newCLI(t, vars)
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"query", "RETURN 1"}, "atg: SERVICE_UNAVAILABLE (503): database unavailable; is Neo4j running at " + vars["NEO4J_URI"] + "?"},
		{[]string{"status"}, "atg: database disconnected: "},
		{[]string{"import", "testdata/tenant.json"}, "failed: " + operations.CodeUnavailable + ": database unavailable after 0 chunk(s) were committed"},
	}
	for _, tt := range tests {
		r := c.run(tt.args...)
		if r.code != exitUnavailable || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%v: want exit 5 and %q\n%s", tt.args, tt.stderr, r)
		}
	}
}
