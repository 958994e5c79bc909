package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/operations/neo4jstore"
	"github.com/atgraph/atg/transport"
)

// replicaSet starts atg-server processes that share one Neo4j operation
// store namespace: replicas of one service.
type replicaSet struct {
	t    *testing.T
	ns   string
	key  string
	base map[string]string
}

func newReplicaSet(t *testing.T) *replicaSet {
	key, err := auth.Generate(auth.Dev)
	must(t, err)
	base := serverVars(t) // its namespace is the replicas'
	ns := base["ATG_OPERATION_NAMESPACE"]
	delete(base, "ATG_SERVER_PORT")
	base["ATG_API_KEYS"] = key
	base["ATG_RATE_LIMIT_RPM"] = "0" // the test polls
	base["ATG_OPERATION_STORE"] = "neo4j"
	base["ATG_OPERATION_LEASE"] = "5s"
	return &replicaSet{t: t, ns: ns, key: key, base: base}
}

// start runs replica id.
func (rs *replicaSet) start(id string, extra ...string) *serverProcess {
	vars := map[string]string{}
	for k, v := range rs.base {
		vars[k] = v
	}
	vars["ATG_SERVER_PORT"] = strconv.Itoa(freePort(rs.t))
	vars["ATG_REPLICA_ID"] = id
	for i := 0; i+1 < len(extra); i += 2 {
		vars[extra[i]] = extra[i+1]
	}
	return startServerProcess(rs.t, vars, rs.key, "serve", "--env-file", "", "--log-format", "json")
}

func getOperation(t *testing.T, p *serverProcess, id string) operations.Operation {
	t.Helper()
	status, body := p.do(t, "GET", "/api/v1/operations/"+id, nil)
	if status != 200 {
		t.Fatalf("GET %s on %s: %d %s", id, p.url, status, body)
	}
	var op operations.Operation
	must(t, json.Unmarshal(body, &op))
	return op
}

func submitImport(t *testing.T, p *serverProcess, doc map[string]any) string {
	t.Helper()
	status, body := p.do(t, "POST", "/api/v1/operations", map[string]any{"type": "import", "params": doc})
	if status != 202 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var sub transport.Submitted
	must(t, json.Unmarshal(body, &sub))
	return sub.OperationID
}

// follow reads operation id's events from p (after lastID) until the
// stream ends, sending them to the returned channel, then closes it.
func follow(t *testing.T, p *serverProcess, id string, lastID string) <-chan transport.SSEEvent {
	t.Helper()
	req, _ := http.NewRequest("GET", p.url+"/api/v1/operations/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+p.key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := p.hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events of %s: %v %v", id, resp, err)
	}
	ch := make(chan transport.SSEEvent, 1024)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		r := transport.NewSSEReader(resp.Body)
		for {
			ev, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Logf("events of %s: %v", id, err)
				}
				return
			}
			ch <- ev
		}
	}()
	return ch
}

// TestReplicasSubmitWatchCancel: three atg-server processes on one
// namespace. An import submitted on a is watched on b and cancelled on c:
// the cancel answers "cancelled", the import's work stops, and b's stream
// ends with the cancel.
func TestReplicasSubmitWatchCancel(t *testing.T) {
	t.Parallel()
	rs := newReplicaSet(t)
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	a, b, c := rs.start("a"), rs.start("b"), rs.start("c")

	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	id := submitImport(t, a, longImport(label, 5000))
	start := time.Now()
	events := follow(t, b, id, "")
	select {
	case ev, ok := <-events:
		if !ok || ev.ID != "1" {
			t.Fatalf("first event on b: %+v (stream open: %v)", ev, ok)
		}
		t.Logf("first event of an operation submitted on a, read on b, after %s", time.Since(start).Round(time.Millisecond))
		// The target (p99 <= 1 s) is proven by BenchmarkCrossReplica in
		// operations/neo4jstore; here, with the rest of the suite and the
		// race detector on two cores, only a stuck tail fails.
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("the first event took %s to reach b", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event on b")
	}
	waitFor(t, "the import to commit chunks", func() bool {
		op := getOperation(t, c, id)
		return op.Status == operations.Running && op.Progress != nil && op.Progress.Done >= 20
	})
	sent := time.Now()
	status, body := c.do(t, "DELETE", "/api/v1/operations/"+id, nil)
	took := time.Since(sent)
	var op operations.Operation
	must(t, json.Unmarshal(body, &op))
	if status != 200 || op.Status != operations.Cancelled {
		t.Fatalf("cancel on c: %d %s", status, body)
	}
	t.Logf("cancel on c of an import running on %s answered cancelled in %s", op.Replica, took.Round(time.Millisecond))
	if took > 3*time.Second { // the 1 s target: BenchmarkCrossReplica
		t.Errorf("the cancel took %s to reach the running replica", took)
	}
	var last transport.SSEEvent
	for ev := range events {
		last = ev
	}
	var td operations.TerminalData
	if err := json.Unmarshal(last.Data, &td); err != nil || last.Event != string(operations.EventError) || td.Status != operations.Cancelled {
		t.Fatalf("b's stream ended with %q %s", last.Event, last.Data)
	}
	// The work stopped: the node count stays put.
	n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil)
	time.Sleep(500 * time.Millisecond)
	if m := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); m != n || n >= 5001 {
		t.Errorf("after the cancel the import went on: %d then %d of 5,001 nodes", n, m)
	}
}

// bigImport is a document of n nodes under one group node, in chunks of
// 500.
func bigImport(label string, n int) map[string]any {
	doc := longImport(label, n)
	doc["chunk_size"] = 500
	return doc
}

// TestReplicaKilledDuringImport: the replica running an import of 50,000
// nodes is killed (SIGKILL); another takes it over when the lease ends and
// finishes it with the counts of an uninterrupted import. Then every
// replica is restarted, and the whole history is still there: the
// operation, its result and its events, which a watcher resumes across
// replicas with Last-Event-ID.
func TestReplicaKilledDuringImport(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("imports 50,000 nodes")
	}
	rs := newReplicaSet(t)
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	// A lease of 10 s: under the race detector with the whole suite on two
	// cores a renewal can come seconds late, and a lapsed lease moves the
	// import between live replicas too (exact all the same, see below).
	const lease = "10s"
	procs := map[string]*serverProcess{"a": rs.start("a", "ATG_OPERATION_LEASE", lease), "b": rs.start("b", "ATG_OPERATION_LEASE", lease)}

	const nodes = 50_000
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	id := submitImport(t, procs["a"], bigImport(label, nodes))
	// Wait for a fifth of the nodes in the database (a count is cheap; a
	// GET of the running operation carries its 50,000-node document). Under
	// the race detector, with the whole suite on two cores, the import may
	// be far slower than alone: wait for progress, not a rate.
	for deadline := time.Now().Add(3 * time.Minute); neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil) < nodes/5; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the import did not get a fifth done: %+v", getOperation(t, procs["b"], id))
		}
	}
	// Who runs it, from the store (cheaper than a GET, for the same reason).
	owner, err := neo4j.ExecuteQuery(context.Background(), d, "MATCH (o:"+neo4jstore.LabelOperation+" {ns: $ns, id: $id}) RETURN o.replica, o.status",
		map[string]any{"ns": rs.ns, "id": id}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Database))
	if err != nil || len(owner.Records) != 1 {
		t.Fatalf("read the operation: %v", err)
	}
	running := operations.Operation{Replica: fmt.Sprint(owner.Records[0].Values[0]), Status: operations.Status(fmt.Sprint(owner.Records[0].Values[1]))}
	if running.Status != operations.Running {
		t.Fatalf("with a fifth of the nodes written: %s", running.Status)
	}
	name, _, _ := strings.Cut(running.Replica, "#") // the replica id, then the process's token
	victim := procs[name]
	if victim == nil {
		t.Fatalf("the import runs on %q", running.Replica)
	}
	must(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	written := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil)
	err = <-victim.exited
	victim.exited <- err
	killed := time.Now()
	survivor := procs["a"]
	if name == "a" {
		survivor = procs["b"]
	}

	var done operations.Operation
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done = getOperation(t, survivor, id)
		if done.Status.Terminal() || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("killed %s with %d of %d nodes written; the survivor finished the import %s later (lease %s), attempt %d",
		running.Replica, written, nodes+1, time.Since(killed).Round(time.Millisecond), lease, done.Attempt)
	// At least one takeover (more only if a live replica's lease lapsed
	// under load); either way the counts below must be exact.
	if done.Status != operations.Completed || done.Replica == running.Replica || done.Attempt < 2 {
		t.Logf("the survivor's log:\n%s", survivor.stderr.String())
		t.Fatalf("after the kill: %s on %q, attempt %d, error %+v", done.Status, done.Replica, done.Attempt, done.Error)
	}
	var res neo4jpool.ImportResult
	must(t, json.Unmarshal(done.Result, &res))
	// Checkpoints commit with their chunks, so even the created counts are
	// those of one uninterrupted import.
	want := neo4jpool.ImportResult{Nodes: nodes + 1, Relationships: nodes, Chunks: res.Chunks, NodesCreated: nodes + 1, RelationshipsCreated: nodes}
	if res != want || res.Chunks < (2*nodes+1)/500 {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if got := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); got != nodes+1 {
		t.Errorf("%d nodes in the database, want %d", got, nodes+1)
	}
	if got := neo4jtest.Count(t, d, s, "MATCH (:`"+label+"`)-[r:CONTAINS]->() RETURN count(r)", nil); got != nodes {
		t.Errorf("%d relationships in the database, want %d", got, nodes)
	}

	// Read part of the history from the survivor, then restart everything.
	var seen []transport.SSEEvent
	for ev := range follow(t, survivor, id, "") {
		seen = append(seen, ev)
		if len(seen) == 3 {
			break
		}
	}
	must(t, survivor.cmd.Process.Signal(syscall.SIGTERM))
	err = <-survivor.exited
	survivor.exited <- err
	if err != nil {
		t.Fatalf("the survivor's exit: %v", err)
	}
	// The same replica ids again: new processes, new lease holders.
	fresh := []*serverProcess{rs.start("a"), rs.start("b")}
	again := getOperation(t, fresh[1], id)
	if again.Status != operations.Completed || string(again.Result) != string(done.Result) {
		t.Errorf("after restarting every replica: %s, result %s; want completed, %s", again.Status, again.Result, done.Result)
	}
	status, body := fresh[0].do(t, "GET", "/api/v1/operations?type=import", nil)
	if status != 200 || !json.Valid(body) {
		t.Fatalf("list after the restart: %d %s", status, body)
	}
	var list transport.ListResponse
	must(t, json.Unmarshal(body, &list))
	found := false
	for _, op := range list.Operations {
		found = found || op.ID == id
	}
	if !found {
		t.Errorf("the list after the restart misses %s: %s", id, body)
	}
	// Resume the history after the third event on another replica: the
	// rest arrives in order, ending with the completion.
	var rest []transport.SSEEvent
	for ev := range follow(t, fresh[0], id, seen[2].ID) {
		rest = append(rest, ev)
	}
	if len(rest) == 0 || rest[len(rest)-1].Event != string(operations.EventComplete) {
		t.Fatalf("the resumed history: %d events, last %+v", len(rest), rest)
	}
	prev, _ := strconv.ParseInt(seen[2].ID, 10, 64)
	for _, ev := range rest {
		n, err := strconv.ParseInt(ev.ID, 10, 64)
		if err != nil || n <= prev {
			t.Fatalf("event %q after %d", ev.ID, prev)
		}
		prev = n
	}
}
