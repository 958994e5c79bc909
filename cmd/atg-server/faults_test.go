package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atgraph/atg/audit"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// longImport is a graph document that is small to send and long to run:
// nodes and relationships in transactions of two items each.
func longImport(label string, resources int) map[string]any {
	var nodes, rels []map[string]any
	rg := label + "-rg"
	nodes = append(nodes, map[string]any{"id": rg, "labels": []string{"ResourceGroup", label}})
	for i := range resources {
		id := fmt.Sprintf("%s-res-%d", label, i)
		nodes = append(nodes, map[string]any{"id": id, "labels": []string{"Resource", label}, "properties": map[string]any{"name": id}})
		rels = append(rels, map[string]any{"type": "CONTAINS", "from": rg, "to": id})
	}
	return map[string]any{"nodes": nodes, "relationships": rels, "chunk_size": 2}
}

// TestBinarySIGTERMCancelsRunningOperations runs the real atg-server with
// the memory operation store (nothing to hand work back to), two imports
// running and one queued, and a client following each one's events, then
// sends SIGTERM: the process exits 0 within
// ATG_SHUTDOWN_TIMEOUT, every event stream ends with an error event
// "cancelled" / "server shutdown", and the audit trail (ATG_AUDIT_LOG)
// records each operation finishing cancelled with error_code CANCELLED.
func TestBinarySIGTERMCancelsRunningOperations(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	vars := serverVars(t)
	key, err := auth.Generate(auth.Dev)
	must(t, err)
	dir := t.TempDir()
	auditLog := filepath.Join(dir, "audit.log")
	const shutdownTimeout = 10 * time.Second
	vars["ATG_API_KEYS"] = key
	vars["ATG_AUDIT_LOG"] = auditLog
	vars["ATG_MAX_CONCURRENT_OPS"] = "2"
	vars["ATG_RATE_LIMIT_RPM"] = "0" // the test polls
	vars["ATG_SHUTDOWN_TIMEOUT"] = shutdownTimeout.String()
	vars["ATG_OPERATION_STORE"] = "memory"

	// The binary is built with -race when this test binary is, so a data
	// race during shutdown fails the test (exit status 66).
	srv := startServerProcess(t, vars, key, "serve", "--env-file", "", "--log-format", "json")
	cmd, exited, stderr, url, hc := srv.cmd, srv.exited, srv.stderr, srv.url, srv.hc
	do := func(method, path string, body any) (int, []byte) { return srv.do(t, method, path, body) }
	getOp := func(id string) operations.Operation {
		t.Helper()
		status, body := do("GET", "/api/v1/operations/"+id, nil)
		if status != 200 {
			t.Fatalf("get %s: %d %s", id, status, body)
		}
		var op operations.Operation
		must(t, json.Unmarshal(body, &op))
		return op
	}

	d := neo4jtest.Driver(t, s)
	var ids, labels []string
	for range 3 {
		label := neo4jtest.Unique(t)
		neo4jtest.CleanupLabel(t, d, s, label)
		labels = append(labels, label)
		status, body := do("POST", "/api/v1/operations", map[string]any{"type": "import", "params": longImport(label, 2000)})
		if status != 202 {
			t.Fatalf("submit: %d %s", status, body)
		}
		var sub transport.Submitted
		must(t, json.Unmarshal(body, &sub))
		ids = append(ids, sub.OperationID)
	}

	// Follow every operation's events, as clients would.
	type streamEnd struct {
		events []transport.SSEEvent
		err    error
	}
	streams := make([]chan streamEnd, len(ids))
	for i, id := range ids {
		req, _ := http.NewRequest("GET", url+"/api/v1/operations/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("events of %s: %v %v", id, resp, err)
		}
		streams[i] = make(chan streamEnd, 1)
		go func(ch chan<- streamEnd) {
			defer resp.Body.Close()
			var end streamEnd
			r := transport.NewSSEReader(resp.Body)
			for {
				ev, err := r.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						end.err = err
					}
					ch <- end
					return
				}
				end.events = append(end.events, ev)
			}
		}(streams[i])
	}

	for _, id := range ids[:2] {
		waitFor(t, "import "+id+" to commit chunks", func() bool {
			op := getOp(id)
			if op.Status.Terminal() {
				t.Fatalf("import %s ended %s before SIGTERM", id, op.Status)
			}
			return op.Status == operations.Running && op.Progress != nil && op.Progress.Done >= 20
		})
	}
	if op := getOp(ids[2]); op.Status != operations.Queued {
		t.Fatalf("third import is %s, want queued (ATG_MAX_CONCURRENT_OPS=2)", op.Status)
	}

	sent := time.Now()
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		took := time.Since(sent)
		t.Logf("FAULT TIMING: SIGTERM with 2 running and 1 queued import -> exit in %s (ATG_SHUTDOWN_TIMEOUT %s)", took.Round(time.Millisecond), shutdownTimeout)
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
		if took >= shutdownTimeout {
			t.Errorf("exit took %s, not within ATG_SHUTDOWN_TIMEOUT %s", took, shutdownTimeout)
		}
	case <-time.After(shutdownTimeout + 10*time.Second):
		t.Fatalf("no exit within %s of SIGTERM; stderr:\n%s", shutdownTimeout+10*time.Second, stderr.String())
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"shutting down"`) || !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, "shutdown incomplete") {
		t.Errorf("server log:\n%s", logs)
	}

	for i, ch := range streams {
		var end streamEnd
		select {
		case end = <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("event stream of %s did not end", ids[i])
		}
		if end.err != nil {
			t.Errorf("event stream of %s broke instead of ending: %v", ids[i], end.err)
		}
		if len(end.events) == 0 {
			t.Errorf("event stream of %s delivered nothing", ids[i])
			continue
		}
		last := end.events[len(end.events)-1]
		var td operations.TerminalData
		if err := json.Unmarshal(last.Data, &td); err != nil || last.Event != string(operations.EventError) || td.OperationID != ids[i] ||
			td.Status != operations.Cancelled || td.Error == nil || td.Error.Code != operations.CodeCancelled || td.Error.Message != operations.ReasonShutdown {
			t.Errorf("event stream of %s ended with %q %s (%v); want error, cancelled, %q", ids[i], last.Event, last.Data, err, operations.ReasonShutdown)
		}
		if last.ID != fmt.Sprint(len(end.events)) {
			t.Errorf("event stream of %s: last id %q after %d events", ids[i], last.ID, len(end.events))
		}
	}

	b, err := os.ReadFile(auditLog)
	must(t, err)
	finished := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		var rec audit.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec.Event != "operation_finish" {
			continue
		}
		id, _ := rec.Details["operation_id"].(string)
		finished[id]++
		if rec.Outcome != string(operations.Cancelled) || rec.Details["error_code"] != operations.CodeCancelled || rec.Time.Before(sent) {
			t.Errorf("audit: %s", line)
		}
	}
	for _, id := range ids {
		if finished[id] != 1 {
			t.Errorf("audit trail has %d operation_finish records for %s:\n%s", finished[id], id, b)
		}
	}
	if strings.Contains(string(b), key) || strings.Contains(logs, key) {
		t.Error("the API key reached the audit trail or the logs")
	}

	// No import got to its end, and the queued one never started.
	for i, label := range labels {
		n := neo4jtest.Count(t, d, s, "MATCH (n:"+label+") RETURN count(n)", nil)
		if n >= 2001 || (i == 2) != (n == 0) {
			t.Errorf("import %d left %d of 2,001 nodes", i, n)
		}
	}
}

// TestBinarySIGTERMHandsWorkBack runs the real atg-server with the default
// operation store (Neo4j), two imports running and one queued, and a
// client following each, then sends SIGTERM: the process exits 0 well
// within ATG_SHUTDOWN_TIMEOUT, every event stream ends at once without a
// terminal event (the client resumes elsewhere), and nothing is cancelled:
// a new process on the same namespace runs all three imports to the end,
// with exact counts, and the streams resumed there with Last-Event-ID end
// with their completion.
func TestBinarySIGTERMHandsWorkBack(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	key, err := auth.Generate(auth.Dev)
	must(t, err)
	const shutdownTimeout = 10 * time.Second
	vars := serverVars(t) // ATG_OPERATION_STORE unset: the default
	vars["ATG_API_KEYS"] = key
	vars["ATG_MAX_CONCURRENT_OPS"] = "2"
	vars["ATG_RATE_LIMIT_RPM"] = "0" // the test polls
	vars["ATG_SHUTDOWN_TIMEOUT"] = shutdownTimeout.String()
	first := startServerProcess(t, vars, key, "serve", "--env-file", "", "--log-format", "json")

	const resources = 1000
	var ids, labels []string
	for range 3 {
		label := neo4jtest.Unique(t)
		neo4jtest.CleanupLabel(t, d, s, label)
		labels = append(labels, label)
		ids = append(ids, submitImport(t, first, longImport(label, resources)))
	}
	streams := make([]<-chan transport.SSEEvent, len(ids))
	for i, id := range ids {
		streams[i] = follow(t, first, id, "")
	}
	for _, id := range ids[:2] {
		waitFor(t, "import "+id+" to commit chunks", func() bool {
			op := getOperation(t, first, id)
			return op.Status == operations.Running && op.Progress != nil && op.Progress.Done >= 20
		})
	}

	sent := time.Now()
	must(t, first.cmd.Process.Signal(syscall.SIGTERM))
	err = <-first.exited
	first.exited <- err // for the cleanup
	took := time.Since(sent)
	t.Logf("FAULT TIMING: SIGTERM with 2 running and 1 queued import on the Neo4j store -> exit in %s", took.Round(time.Millisecond))
	logs := first.stderr.String()
	if err != nil || took >= shutdownTimeout/2 || strings.Contains(logs, "shutdown incomplete") {
		t.Fatalf("exit after SIGTERM: %v after %s; log:\n%s", err, took, logs)
	}
	lastIDs := make([]string, len(ids))
	for i, ch := range streams {
		for ev := range ch { // ends: the process is gone
			if operations.EventType(ev.Event).Terminal() {
				t.Errorf("stream of %s got %s %s at a clean shutdown", ids[i], ev.Event, ev.Data)
			}
			lastIDs[i] = ev.ID
		}
	}

	second := startServerProcess(t, vars, key, "serve", "--env-file", "", "--log-format", "json")
	for i, id := range ids {
		var last transport.SSEEvent
		for ev := range follow(t, second, id, lastIDs[i]) {
			last = ev
		}
		op := getOperation(t, second, id)
		if last.Event != string(operations.EventComplete) || op.Status != operations.Completed {
			t.Fatalf("import %s after the restart: stream ended with %q, operation %s %+v", id, last.Event, op.Status, op.Error)
		}
		var res neo4jpool.ImportResult
		must(t, json.Unmarshal(op.Result, &res))
		if res.Nodes != resources+1 || res.Relationships != resources || res.NodesCreated != resources+1 || res.RelationshipsCreated != resources {
			t.Errorf("import %s: result %+v, want the counts of one uninterrupted import", id, res)
		}
		if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+labels[i]+"`) RETURN count(n)", nil); n != resources+1 {
			t.Errorf("import %s left %d nodes, want %d", id, n, resources+1)
		}
	}
}
