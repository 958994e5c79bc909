package atg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
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

// TestNeo4jOperationStoreSurvivesARestart: with ATG_OPERATION_STORE=neo4j a
// finished import, its result and its event history are still there after
// the server is replaced by a new one on the same database and namespace.
func TestNeo4jOperationStoreSurvivesARestart(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	ns := neo4jtest.Unique(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	t.Cleanup(func() {
		for _, l := range []string{neo4jstore.LabelEvent, neo4jstore.LabelOperation} {
			_, _ = neo4j.ExecuteQuery(context.Background(), d, "MATCH (n:"+l+" {ns: $ns}) DETACH DELETE n", map[string]any{"ns": ns}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Database))
		}
	})
	ctx := context.Background()
	keys := auth.NewMemoryStore()
	key, _, err := keys.Create(ctx, auth.CreateOptions{ClientID: "tester", Environment: auth.Dev})
	if err != nil {
		t.Fatal(err)
	}
	db := neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}
	durable := func(srv *Server) {
		srv.Config.OperationStore, srv.Config.OperationNamespace = OperationStoreNeo4j, ns
	}

	first := startServer(t, db, keys, durable)
	g := tenantGraph(label, 1, 2, 30)
	g.ChunkSize = 10
	status, body := call(t, first, "POST", "/api/v1/operations", key, map[string]any{"type": "import", "params": g})
	if status != 202 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var sub struct {
		ID string `json:"operation_id"`
	}
	must(t, json.Unmarshal(body, &sub))
	var before operations.Operation
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, body = call(t, first, "GET", "/api/v1/operations/"+sub.ID, key, nil)
		must(t, json.Unmarshal(body, &before))
		if before.Status.Terminal() || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if before.Status != operations.Completed {
		t.Fatalf("import ended %s: %s", before.Status, body)
	}
	shutCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := first.Shutdown(shutCtx); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, db, keys, durable)
	status, body = call(t, second, "GET", "/api/v1/operations/"+sub.ID, key, nil)
	var after operations.Operation
	must(t, json.Unmarshal(body, &after))
	if status != 200 || after.Status != operations.Completed || string(after.Result) != string(before.Result) || after.LastEventID != before.LastEventID {
		t.Fatalf("after the restart: %d %s", status, body)
	}
	// The history replays, in order, up to the terminal event.
	req, _ := http.NewRequest("GET", second.URL()+"/api/v1/operations/"+sub.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := transport.NewSSEReader(resp.Body)
	var types []string
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Event)
	}
	if len(types) < 3 || types[0] != "status" || types[len(types)-1] != "complete" {
		t.Errorf("replayed events %v", types)
	}
	// And the list still has it.
	_, body = call(t, second, "GET", "/api/v1/operations", key, nil)
	var list struct {
		Total int `json:"total"`
	}
	must(t, json.Unmarshal(body, &list))
	if list.Total != 1 {
		t.Errorf("list after restart: %s", body)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDefaultStoreWaitsForNeo4j: a server loaded from the environment keeps
// its operations in Neo4j (the default store), and, like the rest of the
// server, starts and serves while Neo4j is down: /api/v1/status answers
// with the operations unknown, a submit gets 503 with Retry-After (nothing
// is half-created), and once Neo4j answers the store creates its schema
// and the same submit runs to the end.
func TestDefaultStoreWaitsForNeo4j(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	ns := neo4jtest.OperationNamespace(t, d, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	proxy := neo4jtest.NewProxy(t, s.Address())
	proxy.Stop() // Neo4j is down
	vars := s.Env()
	vars["NEO4J_URI"] = proxy.URI("bolt")
	vars["ENVIRONMENT"], vars["ATG_AUDIT_LOG"], vars["ATG_OPERATION_NAMESPACE"] = "dev", "off", ns
	cfg, err := LoadServerConfig(LoadOptions{Environ: vars})
	must(t, err)
	if cfg.OperationStore != OperationStoreNeo4j {
		t.Fatalf("default OperationStore = %q, want %q", cfg.OperationStore, OperationStoreNeo4j)
	}
	ctx := context.Background()
	keys := auth.NewMemoryStore()
	key, _, err := keys.Create(ctx, auth.CreateOptions{ClientID: "tester", Environment: auth.Dev})
	must(t, err)
	srv := startServer(t, cfg.Neo4j, keys, func(srv *Server) { srv.Config = cfg })

	status, body := call(t, srv, "GET", "/api/v1/status", key, nil)
	var st transport.StatusResponse
	must(t, json.Unmarshal(body, &st))
	if status != 200 || st.Operations != nil || st.Neo4j.Status != "disconnected" {
		t.Errorf("status with Neo4j down: %d %s", status, body)
	}
	g := tenantGraph(label, 1, 1, 5)
	submit := func() (*http.Response, []byte) {
		b, _ := json.Marshal(map[string]any{"type": "import", "params": g})
		req, _ := http.NewRequest("POST", srv.URL()+"/api/v1/operations", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "one-import")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, body := submit()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !bytes.Contains(body, []byte(`"SERVICE_UNAVAILABLE"`)) {
		t.Fatalf("submit with Neo4j down: %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	must(t, proxy.Start())
	var sub struct {
		ID string `json:"operation_id"`
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, body = submit()
		if resp.StatusCode == 202 {
			must(t, json.Unmarshal(body, &sub))
			break
		}
		if resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("submit after Neo4j came back: %d %s", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var op operations.Operation
	for deadline := time.Now().Add(30 * time.Second); !op.Status.Terminal(); {
		if time.Now().After(deadline) {
			t.Fatalf("import did not end: %+v", op)
		}
		time.Sleep(50 * time.Millisecond)
		_, body = call(t, srv, "GET", "/api/v1/operations/"+sub.ID, key, nil)
		must(t, json.Unmarshal(body, &op))
	}
	if op.Status != operations.Completed {
		t.Fatalf("import ended %s: %s", op.Status, body)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (o:AtgOperation {ns: $ns}) RETURN count(o)", map[string]any{"ns": ns}); n != 1 {
		t.Errorf("%d stored operations, want 1 (the refused submit stored nothing)", n)
	}
}
