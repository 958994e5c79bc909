package atg

import (
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
