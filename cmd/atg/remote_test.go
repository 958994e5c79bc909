package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// decode decodes JSON output with numbers as json.Number.
func decode(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("output is not JSON (%v):\n%s", err, out)
	}
}

// TestRemoteStatus checks status as a table and as JSON.
func TestRemoteStatus(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 2, nil)
	c := newCLI(t, ts.vars(ts.rw))
	r := c.run("status")
	for _, want := range []string{"mode         remote mode, " + ts.srv.URL(), "client       tester (key key_", "scopes read, write)",
		"neo4j        connected (Neo4j 5.", "pool         ", " transaction(s) running on a pool of ", "operations   0 queued, 0 running", "types        block, fail, import, scan (at most 2 running at once)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status table lacks %q:\n%s", want, r)
		}
	}
	if r.code != exitOK || r.stderr != "" {
		t.Errorf("status:\n%s", r)
	}
	for _, args := range [][]string{{"status", "--format", "json"}, {"--format=json", "status"}} {
		r = c.run(args...)
		var st transport.StatusResponse
		decode(t, r.stdout, &st)
		if r.code != exitOK || st.ClientID != "tester" || st.Neo4j.Status != "connected" || !cmp.Equal(st.Scopes, []string{"read", "write"}) || len(st.Pool) == 0 {
			t.Errorf("%v: %+v\n%s", args, st, r)
		}
	}
}

// TestRemoteQuery checks queries: parameters, tables, JSON, stdin,
// truncation, writes and scopes, errors and their exit statuses.
func TestRemoteQuery(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 2, func(c *atg.ServerConfig) { c.QueryMaxRows = 5 })
	rw := newCLI(t, ts.vars(ts.rw))
	label, _ := testLabel(t)

	// Parameters: JSON when they parse as JSON, strings otherwise.
	params := []string{"--param", "n=42", "--param", "s=hello world", "--param", `l=[1,"two",null]`, "--param", `m={"k":{"x":1.5}}`,
		"--param", "b=true", "--param", "z=null", "--param", `q="7"`, "--param", "big=9007199254740993", "--param", "e="}
	query := "RETURN $n AS n, $s AS s, $l AS l, $m AS m, $b AS b, $z AS z, $q AS q, $big AS big, $e AS e"
	r := rw.run(append([]string{"query", query}, params...)...)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != exitOK || len(lines) != 3 || lines[2] != "1 row" {
		t.Fatalf("query table:\n%s", r)
	}
	for _, want := range []string{"42", "hello world", `[1, "two", null]`, `{k: {x: 1.5}}`, "true", "null", "7", "9007199254740993"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if strings.Index(lines[0], "big") != strings.Index(lines[1], "9007199254740993") || strings.Index(lines[0], "m ") != strings.Index(lines[1], "{k:") {
		t.Errorf("columns not aligned:\n%s", r.stdout)
	}
	r = rw.run(append([]string{"query", "--format", "json", query}, params...)...)
	var qr transport.QueryResponse
	decode(t, r.stdout, &qr)
	want := []any{json.Number("42"), "hello world", []any{json.Number("1"), "two", nil}, map[string]any{"k": map[string]any{"x": json.Number("1.5")}},
		true, nil, "7", json.Number("9007199254740993"), ""}
	if r.code != exitOK || len(qr.Rows) != 1 || !cmp.Equal(qr.Rows[0], want) || qr.RowCount != 1 || qr.Truncated {
		t.Errorf("query json: %s", cmp.Diff(want, qr.Rows))
	}

	tests := []struct {
		name   string
		c      *cli
		stdin  string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"stdin", rw, "RETURN 'from stdin' AS src\n", []string{"query", "-"}, exitOK, []string{"src\nfrom stdin\n1 row\n"}, ""},
		{"truncated", rw, "", []string{"query", "UNWIND range(1, 10) AS i RETURN i"}, exitOK, []string{"i\n1\n2\n3\n4\n5\n5 rows (truncated)\n"}, ""},
		{"truncated json", rw, "", []string{"query", "--format", "json", "UNWIND range(1, 10) AS i RETURN i"}, exitOK, []string{`"truncated": true`, `"row_count": 5`}, ""},
		{"no rows", rw, "", []string{"query", "MATCH (n:" + label + ") RETURN n"}, exitOK, []string{"n\n0 rows\n"}, ""},
		{"escapes", rw, "", []string{"query", "RETURN $s AS s", "--param", "s=a\tb\nc"}, exitOK, []string{"s\n" + `a\tb\nc` + "\n1 row\n"}, ""},
		{"long cell", rw, "", []string{"query", "RETURN $s AS s", "--param", "s=" + strings.Repeat("x", 100)}, exitOK, []string{strings.Repeat("x", 79) + "…\n1 row"}, ""},
		{"write refused without scope", newCLI(t, ts.vars(ts.readOnly)), "", []string{"query", "--write", "CREATE (n:" + label + ") RETURN n"}, exitAuth, nil,
			`atg: FORBIDDEN (403): API key lacks the 'write' scope needed for mode "write"`},
		{"write needs --write", rw, "", []string{"query", "CREATE (n:" + label + ")"}, exitFailure, nil, "add --write to run a query that writes"},
		{"syntax error", rw, "", []string{"query", "RETRUN 1"}, exitFailure, nil, "atg: QUERY_ERROR (400): Invalid input 'RETRUN'"},
		{"bad key", newCLI(t, ts.vars("atg_dev_"+strings.Repeat("0", 64))), "", []string{"status"}, exitAuth, nil,
			"atg: AUTHENTICATION_FAILED (401): Invalid or missing API key"},
		{"write", rw, "", []string{"query", "--write", "--timeout", "5s",
			"CREATE (a:" + label + " {id: $id, name: 'A'})-[r:LINKS {w: 1}]->(b:" + label + " {id: 'b'}) RETURN a, r, b", "--param", "id=a"},
			exitOK, []string{"(:" + label + ` {id: "a", name: "A"})  [:LINKS {w: 1}]  (:` + label + ` {id: "b"})`}, ""},
	}
	for _, tt := range tests {
		r := tt.c.runStdin(tt.stdin, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) || (tt.stderr == "" && r.stderr != "") {
			t.Errorf("%s: want exit %d and stderr %q\n%s", tt.name, tt.code, tt.stderr, r)
		}
		for _, w := range tt.stdout {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s: stdout lacks %q\n%s", tt.name, w, r)
			}
		}
	}

	// Paths, in both directions, after the write above (cut at 80
	// characters in a table; whole in JSON).
	r = rw.run("query", "MATCH p = (:"+label+" {id: 'a'})-[:LINKS]->() RETURN p")
	if wantPath := "(:" + label + ` {id: "a", name: "A"})-[:LINKS {w: 1}]->(:`; !strings.Contains(r.stdout, wantPath) || !strings.Contains(r.stdout, "…\n1 row") {
		t.Errorf("path: want %q\n%s", wantPath, r)
	}
	r = rw.run("query", "MATCH p = (:"+label+" {id: 'b'})<-[:LINKS]-() RETURN p")
	if wantPath := "(:" + label + ` {id: "b"})<-[:LINKS {w: 1}]-(:`; !strings.Contains(r.stdout, wantPath) {
		t.Errorf("reverse path: want %q\n%s", wantPath, r)
	}
	r = rw.run("query", "--format", "json", "MATCH p = (:"+label+" {id: 'b'})<-[:LINKS]-() RETURN p")
	if !strings.Contains(r.stdout, `"kind": "path"`) || !strings.Contains(r.stdout, `"name": "A"`) {
		t.Errorf("path json:\n%s", r)
	}

	for _, args := range [][]string{{"ops", "get", "op_000000000000000000000000"}, {"ops", "cancel", "op_000000000000000000000000"}, {"ops", "watch", "op_000000000000000000000000"}} {
		if r := rw.run(args...); r.code != exitNotFound || !strings.Contains(r.stderr, "atg: NOT_FOUND (404): operation not found") {
			t.Errorf("%v:\n%s", args, r)
		}
	}
}

// importResult decodes the result JSON atg import prints.
func importResult(t *testing.T, r result) neo4jpool.ImportResult {
	t.Helper()
	var res neo4jpool.ImportResult
	decode(t, r.stdout, &res)
	return res
}

// TestRemoteImportAndOps imports from a file and stdin, then lists,
// shows, watches and cancels the operations.
func TestRemoteImportAndOps(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 2, nil)
	rw := newCLI(t, ts.vars(ts.rw))
	label, s := testLabel(t)

	// From a file, with plain progress lines on stderr.
	r := rw.run("import", documentFile(t, "tenant.json", label))
	first := opID(t, r.stderr)
	wantLines := []string{
		"operation " + first + " (import) submitted; remote mode, " + ts.srv.URL(),
		"status queued", "status running",
		"progress 22.2% nodes: 4 of 9 written (1 chunk committed)",
		"progress 50.0% nodes: 9 of 9 written (3 chunks committed)",
		"progress 100.0% relationships: 9 of 9 written (6 chunks committed)",
		"operation " + first + " completed",
	}
	for _, w := range wantLines {
		if !strings.Contains(r.stderr, w+"\n") {
			t.Errorf("import stderr lacks %q", w)
		}
	}
	if res := importResult(t, r); r.code != exitOK || res != (neo4jpool.ImportResult{Nodes: 9, Relationships: 9, Chunks: 6, NodesCreated: 9, RelationshipsCreated: 9}) {
		t.Fatalf("import: %+v\n%s", res, r)
	}
	if n, rels := countLabel(t, s, label); n != 9 || rels != 9 {
		t.Errorf("graph has %d nodes and %d relationships, want 9 and 9", n, rels)
	}

	// From stdin with --chunk-size: the same document changes nothing.
	r = rw.runStdin(string(document(t, "tenant.json", label)), "import", "-", "--chunk-size", "100")
	second := opID(t, r.stderr)
	if res := importResult(t, r); r.code != exitOK || res != (neo4jpool.ImportResult{Nodes: 9, Relationships: 9, Chunks: 2}) {
		t.Errorf("import from stdin: %+v\n%s", res, r)
	}

	// The server validates the document at submit.
	r = rw.run("import", documentFile(t, "invalid-label.json", label))
	if r.code != exitUsage || !strings.Contains(r.stderr, "atg: VALIDATION_ERROR (400): invalid params: nodes[0].labels[0]") || opIDPattern.MatchString(r.stderr) {
		t.Errorf("invalid document:\n%s", r)
	}

	// A progress bar on a terminal.
	rw.tty = true
	r = rw.run("import", documentFile(t, "tenant.json", label))
	rw.tty = false
	third := opID(t, r.stderr)
	if r.code != exitOK || !strings.Contains(r.stderr, "100% |") || !strings.Contains(r.stderr, "(18/18)") || strings.Contains(r.stderr, "progress ") {
		t.Errorf("import with a bar:\n%s", r)
	}
	importResult(t, r)

	// ops list: newest first, filters, paging, JSON.
	r = rw.run("ops", "list")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "ID ") || !strings.Contains(r.stdout, "operations 1-3 of 3") ||
		strings.Index(r.stdout, third) > strings.Index(r.stdout, second) || strings.Index(r.stdout, second) > strings.Index(r.stdout, first) {
		t.Errorf("ops list:\n%s", r)
	}
	var list transport.ListResponse
	decode(t, rw.run("ops", "list", "--format", "json", "--type", "import", "--status", "completed").stdout, &list)
	if list.Total != 3 || len(list.Operations) != 3 || list.Operations[0].ID != third {
		t.Errorf("ops list json: %+v", list)
	}
	r = rw.run("ops", "list", "--limit", "1", "--offset", "2")
	if !strings.Contains(r.stdout, first) || !strings.Contains(r.stdout, "operations 3-3 of 3") {
		t.Errorf("ops list page:\n%s", r)
	}
	if r = rw.run("ops", "list", "--status", "failed"); r.code != exitOK || r.stdout != "no operations (0 in all)\n" {
		t.Errorf("ops list --status failed:\n%s", r)
	}
	if r = newCLI(t, ts.vars(ts.readOnly)).run("ops", "list"); r.stdout != "no operations (0 in all)\n" {
		t.Errorf("another client's list:\n%s", r)
	}
	decode(t, newCLI(t, ts.vars(ts.admin)).run("ops", "list", "--format", "json").stdout, &list)
	if list.Total < 3 {
		t.Errorf("admin list: %+v", list)
	}

	// ops get.
	r = rw.run("ops", "get", first)
	for _, w := range []string{"id        " + first, "type      import", "status    completed", "client    tester",
		"progress  100.0% relationships: 9 of 9 written (6 chunks committed)", `result    {"nodes":9,"relationships":9,"chunks":6,`} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("ops get lacks %q\n%s", w, r)
		}
	}
	var op transport.OperationView
	decode(t, rw.run("ops", "get", first, "--format", "json").stdout, &op)
	if op.ID != first || op.Status != operations.Completed || op.Progress == nil || op.Progress.Percent != 100 {
		t.Errorf("ops get json: %+v", op)
	}
	if r = newCLI(t, ts.vars(ts.readOnly)).run("ops", "get", first); r.code != exitNotFound {
		t.Errorf("another client's operation:\n%s", r)
	}

	// ops watch of a finished operation replays it; cancel is refused.
	r = rw.run("ops", "watch", first)
	if res := importResult(t, r); r.code != exitOK || res.Nodes != 9 || !strings.Contains(r.stderr, "progress 100.0%") {
		t.Errorf("ops watch:\n%s", r)
	}
	r = rw.run("ops", "cancel", first)
	if r.code != exitFailure || !strings.Contains(r.stderr, "atg: OPERATION_NOT_CANCELLABLE (409): operation "+first+" cannot be cancelled: it is already completed") {
		t.Errorf("ops cancel of a completed operation:\n%s", r)
	}
}

// interrupt runs atg with args and interrupts it (as Ctrl-C does) once its
// stderr shows after.
func interrupt(t *testing.T, c *cli, after string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen syncBuffer
	done := make(chan result, 1)
	go func() { done <- c.runIO(ctx, "", &seen, args...) }()
	seen.waitFor(t, after)
	cancel()
	return <-done
}

// TestRemoteInterruptAndOutcomes uses one operation slot, held by a
// "block" operation, so that imports stay queued while atg is interrupted.
func TestRemoteInterruptAndOutcomes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 1, nil)
	rw := newCLI(t, ts.vars(ts.rw))
	client := ts.client(t, ts.rw)
	ctx := context.Background()
	label, s := testLabel(t)
	doc := documentFile(t, "tenant.json", label)
	status := func(id string) operations.Status {
		t.Helper()
		op, err := client.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return op.Status
	}

	// A failed operation: watch exits 1 with its error.
	sub, err := client.Submit(ctx, "fail", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rw.run("ops", "watch", sub.OperationID)
	if r.code != exitFailure || !strings.Contains(r.stderr, "atg: operation "+sub.OperationID+" failed: BROKEN: it broke on purpose") {
		t.Errorf("watch of a failed operation:\n%s", r)
	}

	if _, err := client.Submit(ctx, "block", nil); err != nil {
		t.Fatal(err)
	}

	// Ctrl-C detaches: exit 130, the import stays queued.
	r = interrupt(t, rw, "status queued", "import", doc)
	detached := opID(t, r.stderr)
	if r.code != exitInterrupted || r.stdout != "" ||
		!strings.Contains(r.stderr, `atg: interrupted: detached from operation `+detached+`, which keeps running on the server; follow it with "atg ops watch `+detached+`"`) {
		t.Errorf("detach:\n%s", r)
	}
	if st := status(detached); st != operations.Queued {
		t.Errorf("detached import is %s, want queued", st)
	}

	// Ctrl-C during watch stops watching only.
	r = interrupt(t, rw, "status queued", "ops", "watch", detached)
	if r.code != exitInterrupted || !strings.Contains(r.stderr, "atg: interrupted: stopped watching operation "+detached+", which keeps running") {
		t.Errorf("interrupted watch:\n%s", r)
	}

	// --cancel-on-interrupt cancels: exit 6.
	r = interrupt(t, rw, "status queued", "import", "--cancel-on-interrupt", doc)
	cancelled := opID(t, r.stderr)
	if r.code != exitCancelled || !strings.Contains(r.stderr, "atg: interrupted: cancelled operation "+cancelled+" on the server") {
		t.Errorf("cancel on interrupt:\n%s", r)
	}
	if st := status(cancelled); st != operations.Cancelled {
		t.Errorf("import is %s after --cancel-on-interrupt, want cancelled", st)
	}

	// ops cancel, then watch reports the cancellation (exit 6).
	sub, err = client.Submit(ctx, "import", json.RawMessage(document(t, "tenant.json", label)))
	if err != nil {
		t.Fatal(err)
	}
	r = rw.run("ops", "cancel", sub.OperationID)
	if r.code != exitOK || !strings.Contains(r.stdout, "status    cancelled") || !strings.Contains(r.stdout, "error     CANCELLED: cancelled by client") {
		t.Errorf("ops cancel:\n%s", r)
	}
	r = rw.run("ops", "watch", sub.OperationID)
	if r.code != exitCancelled || !strings.Contains(r.stderr, "atg: operation "+sub.OperationID+" was cancelled: CANCELLED: cancelled by client") {
		t.Errorf("watch of a cancelled operation:\n%s", r)
	}

	// Once the slot frees up, the detached import runs; watch follows it.
	ts.release()
	r = rw.run("ops", "watch", detached)
	if res := importResult(t, r); r.code != exitOK || res.Nodes != 9 || !strings.Contains(r.stderr, "status running\n") {
		t.Errorf("watch after release:\n%s", r)
	}
	if n, _ := countLabel(t, s, label); n != 9 {
		t.Errorf("graph has %d nodes, want 9", n)
	}
}

// TestServerDown checks exit 5 when nothing listens at ATG_SERVICE_URL.
func TestServerDown(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"ATG_SERVICE_URL": "http://" + closedPort(t), "ATG_API_KEY": "atg_dev_" + strings.Repeat("1", 64)}
	c := newCLI(t, vars)
	for _, args := range [][]string{{"--remote", "status"}, {"--remote", "ops", "list"}, {"--remote", "import", "testdata/tenant.json"}} {
		t.Run(args[1], func(t *testing.T) {
			t.Parallel()
			r := c.run(args...)
			if r.code != exitUnavailable || !strings.Contains(r.stderr, "atg: cannot reach the server at "+vars["ATG_SERVICE_URL"]+": ") ||
				!strings.Contains(r.stderr, "connection refused") || r.stdout != "" {
				t.Errorf("%v:\n%s", args, r)
			}
		})
	}
}

// TestRemoteAndLocalImportsAgree imports the same document both ways and
// compares the graphs.
func TestRemoteAndLocalImportsAgree(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 2, nil)
	var graphs [2]string
	for i, c := range []*cli{newCLI(t, ts.vars(ts.rw)), newCLI(t, localVars(t))} {
		label, _ := testLabel(t)
		if r := c.run("import", documentFile(t, "tenant.json", label)); r.code != exitOK {
			t.Fatalf("import:\n%s", r)
		}
		r := c.run("query", "--format", "json", "MATCH (a:"+label+")-[r]->(b:"+label+") "+
			"RETURN [l IN labels(a) WHERE l <> $label] AS a, properties(a) AS ap, type(r) AS r, properties(r) AS rp, "+
			"[l IN labels(b) WHERE l <> $label] AS b, properties(b) AS bp ORDER BY ap.id, bp.id", "--param", "label="+label)
		if r.code != exitOK {
			t.Fatalf("query:\n%s", r)
		}
		var qr transport.QueryResponse
		decode(t, r.stdout, &qr)
		b, _ := json.Marshal(qr.Rows)
		graphs[i] = string(bytes.ReplaceAll(b, []byte(label), []byte("L")))
	}
	if graphs[0] != graphs[1] || !strings.Contains(graphs[0], "CONNECTS_TO") {
		t.Errorf("remote and local imports differ:\nremote %s\nlocal  %s", graphs[0], graphs[1])
	}
}
