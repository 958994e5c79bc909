package atg

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// TestFairQueueAcrossKeys: against the real server and Neo4j, with
// ATG_MAX_CONCURRENT_OPS 3 and ATG_MAX_OPS_PER_KEY 10, key A submits ten
// imports and key B then one single-node import. B's import starts before
// A's queue drains: when it starts, some of A's imports are still queued.
// (With the first-in first-out queue B started only after all ten.)
func TestFairQueueAcrossKeys(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)
	ctx := context.Background()
	store := auth.NewMemoryStore()
	keys := map[string]string{}
	for _, client := range []string{"a", "b"} {
		k, _, err := store.Create(ctx, auth.CreateOptions{ClientID: client, Environment: auth.Dev})
		if err != nil {
			t.Fatal(err)
		}
		keys[client] = k
	}
	db := neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}
	srv := startServer(t, db, store, func(srv *Server) {
		srv.Config.MaxConcurrentOps, srv.Config.MaxOpsPerKey = 3, 10
	})
	submit := func(key string, g ImportParams) string {
		t.Helper()
		status, body := call(t, srv, "POST", "/api/v1/operations", key, map[string]any{"type": "import", "params": g})
		if status != 202 {
			t.Fatalf("submit: %d %s", status, body)
		}
		var sub struct {
			ID string `json:"operation_id"`
		}
		if err := json.Unmarshal(body, &sub); err != nil {
			t.Fatal(err)
		}
		return sub.ID
	}
	type view struct {
		Status    string     `json:"status"`
		StartedAt *time.Time `json:"started_at"`
	}
	get := func(key, id string) view {
		t.Helper()
		status, body := call(t, srv, "GET", "/api/v1/operations/"+id, key, nil)
		var v view
		if status != 200 || json.Unmarshal(body, &v) != nil {
			t.Fatalf("get %s: %d %s", id, status, body)
		}
		return v
	}
	// A's imports: 600 nodes in chunks of 5, long enough that the queue
	// is still full when B submits.
	var aIDs []string
	for i := range 10 {
		var g ImportParams
		for j := range 600 {
			g.Nodes = append(g.Nodes, neo4jpool.Node{ID: fmt.Sprintf("/fair/%s/a%d/n%d", label, i, j), Labels: []string{label}})
		}
		g.ChunkSize = 5
		aIDs = append(aIDs, submit(keys["a"], g))
	}
	bID := submit(keys["b"], ImportParams{Nodes: []neo4jpool.Node{{ID: "/fair/" + label + "/b", Labels: []string{label}}}})
	deadline := time.Now().Add(2 * time.Minute)
	var b view
	for {
		if b = get(keys["b"], bID); b.Status == "completed" {
			break
		}
		if b.Status == "failed" || b.Status == "cancelled" || time.Now().After(deadline) {
			t.Fatalf("B's import is %s", b.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	later := 0 // A's imports that started after B's
	for _, id := range aIDs {
		if a := get(keys["a"], id); a.StartedAt == nil || a.StartedAt.After(*b.StartedAt) {
			later++
		}
	}
	if later == 0 {
		t.Errorf("B's import started after all ten of A's")
	}
	t.Logf("%d of A's 10 imports started after B's", later)
	for _, id := range aIDs { // do not leave A's imports running into other tests
		call(t, srv, "DELETE", "/api/v1/operations/"+id, keys["a"], nil)
	}
}
