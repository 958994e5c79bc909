package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestQueryFormats checks every --format of query, and --no-headers, on
// one row holding a string "null", a null, an empty string, a number, a
// string that reads as a number, a list and a string with a tab and a
// comma: each format tells the string "null" from a null.
func TestQueryFormats(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 1, nil)
	rw := newCLI(t, ts.vars(ts.rw))
	const query = `RETURN "null" AS s, null AS z, "" AS e, 42 AS n, "7" AS q, [1, "a"] AS l, "a,b` + "\t" + `c" AS t`
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"query", query}, "s       z     e   n   q    l         t\n" + `"null"  null  ""  42  "7"  [1, "a"]  a,b\tc` + "\n1 row\n"},
		{[]string{"query", query, "--no-headers"}, `"null"  null  ""  42  "7"  [1, "a"]  a,b\tc` + "\n"},
		{[]string{"query", query, "-o", "jsonl"}, `{"s":"null","z":null,"e":"","n":42,"q":"7","l":[1,"a"],"t":"a,b\tc"}` + "\n"},
		{[]string{"query", query, "--format", "csv"}, "s,z,e,n,q,l,t\r\n" + `null,,"",42,7,"[1,""a""]","a,b` + "\tc\"\r\n"},
		{[]string{"query", query, "--format=csv", "--no-headers"}, `null,,"",42,7,"[1,""a""]","a,b` + "\tc\"\r\n"},
		{[]string{"-o", "tsv", "query", query}, "s\tz\te\tn\tq\tl\tt\n" + `null	\N		42	7	[1,"a"]	a,b\tc` + "\n"},
	}
	for _, tt := range tests {
		r := rw.run(tt.args...)
		if r.code != exitOK || r.stdout != tt.want || r.stderr != "" {
			t.Errorf("%v:\n got %q\nwant %q\n%s", tt.args[1:], r.stdout, tt.want, r)
		}
	}
	r := rw.run("query", "UNWIND range(1, 3) AS i RETURN i", "-o", "csv")
	if r.code != exitOK || r.stdout != "i\r\n1\r\n2\r\n3\r\n" {
		t.Errorf("csv rows:\n%s", r)
	}
}

// TestQuerySyntaxErrorKeepsCaret: Neo4j's syntax error quotes the line
// and puts a caret under the mistake; atg keeps those lines so that the
// caret still points at it.
func TestQuerySyntaxErrorKeepsCaret(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 1, nil)
	for name, c := range map[string]*cli{"remote": newCLI(t, ts.vars(ts.rw)), "local": newCLI(t, localVars(t))} {
		r := c.run("query", "MATCH (n)\nRETRUN n")
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if r.code != exitFailure || !strings.HasPrefix(lines[0], "atg: QUERY_ERROR (400): Invalid input 'RETRUN'") {
			t.Errorf("%s: want exit 1 and a QUERY_ERROR\n%s", name, r)
			continue
		}
		caret := -1
		for i, l := range lines {
			if strings.TrimSpace(l) == "^" && i > 0 {
				caret = i
			}
		}
		if caret < 0 || strings.Index(lines[caret], "^") != strings.Index(lines[caret-1], "RETRUN") {
			t.Errorf("%s: the caret does not point at RETRUN:\n%s", name, r.stderr)
		}
	}
}

// TestImportSkippedRelationships: a relationship to a node that does not
// exist is skipped; atg says so on stderr, and --strict exits 1.
func TestImportSkippedRelationships(t *testing.T) {
	t.Parallel()
	label, _ := testLabel(t)
	doc := `{"nodes": [{"id": "` + label + `-a", "labels": ["` + label + `"]}],
	         "relationships": [{"type": "LINKS", "from": "` + label + `-a", "to": "` + label + `-missing"}]}`
	c := newCLI(t, localVars(t))
	r := c.runStdin(doc, "import", "-")
	if res := importResult(t, r); r.code != exitOK || res.RelationshipsSkipped != 1 ||
		!strings.Contains(r.stderr, "atg: warning: 1 relationship was skipped because an end node does not exist") {
		t.Errorf("import with a missing end node:\n%s", r)
	}
	r = c.runStdin(doc, "import", "-", "--strict")
	if res := importResult(t, r); r.code != exitFailure || res.RelationshipsSkipped != 1 ||
		!strings.Contains(r.stderr, "atg: import: 1 relationship was skipped because an end node does not exist") ||
		!strings.Contains(r.stderr, "--strict") {
		t.Errorf("import --strict with a missing end node:\n%s", r)
	}
	ok := `{"nodes": [{"id": "` + label + `-b", "labels": ["` + label + `"]}], "relationships": []}`
	if r := c.runStdin(ok, "import", "-", "--strict"); r.code != exitOK || strings.Contains(r.stderr, "skipped") {
		t.Errorf("import --strict without skips:\n%s", r)
	}
}

// rfc3339Zone matches an RFC 3339 time with its zone.
var rfc3339Zone = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)`)

// TestOpsWaitAndWatchNoHistory checks ops wait (exit status by outcome,
// --timeout), ops watch --no-history, and ops list's times and formats.
func TestOpsWaitAndWatchNoHistory(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 1, nil)
	rw := newCLI(t, ts.vars(ts.rw))
	client := ts.client(t, ts.rw)
	ctx := context.Background()
	failed, err := client.Submit(ctx, "fail", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rw.run("ops", "wait", failed.OperationID)
	if r.code != exitFailure || r.stdout != "" || !strings.Contains(r.stderr, "atg: operation "+failed.OperationID+" failed: BROKEN: it broke on purpose") {
		t.Errorf("wait for a failed operation:\n%s", r)
	}
	block, err := client.Submit(ctx, "block", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := block.OperationID
	start := time.Now()
	r = rw.run("ops", "wait", id, "--timeout", "300ms")
	if r.code != exitFailure || !strings.Contains(r.stderr, "atg: timed out after 300ms waiting for operation "+id+", which keeps running") ||
		time.Since(start) > 10*time.Second {
		t.Errorf("wait --timeout:\n%s", r)
	}
	// Wait for the block operation to run (and log "blocking").
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		op, err := client.Get(ctx, id)
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("block operation: %+v %v", op, err)
		}
		if op.Status == "running" && op.LastEventID >= 3 {
			break
		}
	}

	var watchOut, waitOut syncBuffer
	watched, waited := make(chan result, 1), make(chan result, 1)
	go func() { watched <- rw.runIO(ctx, "", &watchOut, "ops", "watch", id, "--no-history") }()
	go func() { waited <- rw.runIO(ctx, "", &waitOut, "ops", "wait", id) }()
	watchOut.waitFor(t, "status running\n")
	time.Sleep(100 * time.Millisecond) // let wait subscribe too (it also works if not)
	ts.release()
	w := <-watched
	if w.code != exitOK || !strings.Contains(w.stdout, `"released": true`) || strings.Contains(w.stderr, "blocking") || strings.Contains(w.stderr, "status queued") {
		t.Errorf("watch --no-history (want no past events):\n%s", w)
	}
	wt := <-waited
	if wt.code != exitOK || !strings.Contains(wt.stdout, `"released": true`) || strings.Contains(wt.stderr, "status ") || strings.Contains(wt.stderr, "log ") {
		t.Errorf("wait:\n%s", wt)
	}
	// Without --no-history, watch replays the past.
	if r := rw.run("ops", "watch", id); r.code != exitOK || !strings.Contains(r.stderr, "log info: blocking") {
		t.Errorf("watch:\n%s", r)
	}
	// Of a finished operation, wait and watch --no-history report at once.
	if r := rw.run("ops", "watch", id, "--no-history"); r.code != exitOK || strings.Contains(r.stderr, "blocking") || !strings.Contains(r.stdout, `"released": true`) {
		t.Errorf("watch --no-history of a finished operation:\n%s", r)
	}
	if r := rw.run("ops", "wait", "op_000000000000000000000000"); r.code != exitNotFound {
		t.Errorf("wait for an unknown operation:\n%s", r)
	}

	// ops list: times with their zone, in every format.
	r = rw.run("ops", "list")
	lines := strings.Split(r.stdout, "\n")
	if r.code != exitOK || len(lines) < 3 || len(rfc3339Zone.FindAllString(lines[1], -1)) != 2 {
		t.Errorf("ops list (want created and finished with their zone):\n%s", r)
	}
	r = rw.run("ops", "list", "--no-headers")
	if strings.Contains(r.stdout, "ID ") || strings.Contains(r.stdout, "operations 1-") || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("ops list --no-headers:\n%s", r)
	}
	r = rw.run("ops", "list", "-o", "csv")
	if rows := strings.Split(strings.TrimSuffix(r.stdout, "\r\n"), "\r\n"); len(rows) != 3 || rows[0] != "id,type,status,progress_percent,created_at,finished_at" ||
		!strings.HasPrefix(rows[1], id+",block,completed,") {
		t.Errorf("ops list csv:\n%s", r)
	}
	r = rw.run("ops", "list", "-o", "tsv", "--no-headers", "--status", "failed")
	if r.stdout != failed.OperationID+"\tfail\tfailed\t\\N\t"+rfc3339Zone.FindString(r.stdout)+"\t"+rfc3339Zone.FindAllString(r.stdout, -1)[1]+"\n" {
		t.Errorf("ops list tsv:\n%q", r.stdout)
	}
	r = rw.run("ops", "list", "-o", "jsonl")
	var op struct {
		ID     string `json:"operation_id"`
		Status string `json:"status"`
	}
	if lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &op) != nil || op.ID != id {
		t.Errorf("ops list jsonl:\n%s", r)
	}
}

// TestProfiles: --profile (or ATG_PROFILE) takes the URL and key from the
// profiles file, a key file or a key command, and beats the environment.
func TestProfiles(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 1, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.key"), []byte(ts.rw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	profiles := `{"profiles": {
		"file": {"url": "` + ts.srv.URL() + `", "key_file": "t.key"},
		"cmd":  {"url": "` + ts.srv.URL() + `", "key_command": "cat '` + filepath.Join(dir, "t.key") + `'"},
		"fails": {"url": "` + ts.srv.URL() + `", "key_command": "exit 3"},
		"both": {"url": "` + ts.srv.URL() + `", "key_file": "t.key", "key_command": "true"}}}`
	path := filepath.Join(dir, "profiles.json")
	if err := os.WriteFile(path, []byte(profiles), 0o600); err != nil {
		t.Fatal(err)
	}
	// The environment points elsewhere: only the profile can succeed.
	vars := map[string]string{"ATG_PROFILES_FILE": path, "ATG_SERVICE_URL": "http://" + closedPort(t), "ATG_API_KEY": "atg_dev_" + strings.Repeat("0", 64)}
	c := newCLI(t, vars)
	for _, args := range [][]string{{"--profile", "file", "status"}, {"status", "--profile=cmd"}} {
		r := c.run(args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "remote mode, "+ts.srv.URL()) || !strings.Contains(r.stdout, "tester") ||
			strings.Contains(r.stdout+r.stderr, ts.rw) {
			t.Errorf("%v:\n%s", args, r)
		}
	}
	withEnv := newCLI(t, map[string]string{"ATG_PROFILES_FILE": path, "ATG_PROFILE": "file"})
	if r := withEnv.run("status"); r.code != exitOK || !strings.Contains(r.stdout, "tester") {
		t.Errorf("ATG_PROFILE:\n%s", r)
	}
	if r := withEnv.run("--local", "--env-file=", "status"); strings.Contains(r.stdout, "remote mode") {
		t.Errorf("--local must beat ATG_PROFILE:\n%s", r)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--profile", "nope", "status"}, `atg: profile "nope" is not in ` + path + " (it has: both, cmd, fails, file)"},
		{[]string{"--profile", "fails", "status"}, `atg: profile "fails": key_command "exit 3" failed: exit status 3`},
		{[]string{"--profile", "both", "status"}, "give exactly one of key_file and key_command"},
		{[]string{"--profile", "file", "--local", "status"}, "--profile and --local exclude each other"},
	} {
		r := c.run(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stdout+r.stderr, ts.rw) {
			t.Errorf("%v: want exit 2 and %q\n%s", tc.args, tc.want, r)
		}
	}
	if r := newCLI(t, map[string]string{"ATG_PROFILES_FILE": filepath.Join(dir, "none.json")}).run("--profile", "x", "status"); r.code != exitUsage ||
		!strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing profiles file:\n%s", r)
	}
}
