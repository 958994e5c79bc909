package atg

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// bothClients returns a local client and a remote one (against a test
// server) on the same test Neo4j.
func bothClients(t *testing.T) (local, remote *Client) {
	t.Helper()
	s := neo4jtest.Require(t)
	srv, key, _ := testServer(t, nil)
	var err error
	local, err = NewClient(ClientOptions{Neo4j: neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	remote, err = NewClient(ClientOptions{Config: ClientConfig{RemoteMode: true, ServiceURL: srv.URL(), APIKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := local.Close(ctx); err != nil {
			t.Errorf("local Close: %v", err)
		}
		_ = remote.Close(ctx)
	})
	return local, remote
}

// TestLocalAndRemoteGiveTheSameResults runs the same import through both
// modes: same result, same sequence of event types, same graph shape.
func TestLocalAndRemoteGiveTheSameResults(t *testing.T) {
	t.Parallel()
	local, remote := bothClients(t)
	if local.Remote() || !remote.Remote() {
		t.Fatal("modes mixed up")
	}
	ctx := context.Background()
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	type outcome struct {
		result   neo4jpool.ImportResult
		events   []operations.EventType
		progress []float64
		nodes    int64
	}
	run := func(c *Client) outcome {
		label := neo4jtest.Unique(t)
		neo4jtest.CleanupLabel(t, d, s, label)
		g := tenantGraph(label, 2, 5, 20)
		g.ChunkSize = 50
		sub, err := c.Submit(ctx, "import", g)
		if err != nil {
			t.Fatal(err)
		}
		w, err := c.Watch(ctx, sub.OperationID, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var o outcome
		for {
			ev, err := w.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			o.events = append(o.events, ev.Type)
			if ev.Type == operations.EventProgress {
				var p operations.ProgressData
				_ = json.Unmarshal(ev.Data, &p)
				o.progress = append(o.progress, p.Percent)
			}
		}
		op, err := c.Get(ctx, sub.OperationID)
		if err != nil || op.Status != operations.Completed {
			t.Fatalf("Get: %+v %v", op, err)
		}
		if err := json.Unmarshal(op.Result, &o.result); err != nil {
			t.Fatal(err)
		}
		qr, err := c.Query(ctx, transport.QueryRequest{Query: "MATCH (n:" + label + ")-[:CONTAINS]->(m:" + label + ") RETURN count(DISTINCT n) + count(DISTINCT m)"})
		if err != nil {
			t.Fatal(err)
		}
		n, ok := qr.Rows[0][0].(json.Number)
		if !ok {
			t.Fatalf("row value %T, want json.Number in both modes", qr.Rows[0][0])
		}
		o.nodes, _ = n.Int64()
		return o
	}
	lo, ro := run(local), run(remote)
	if diff := cmp.Diff(lo, ro, cmp.AllowUnexported(outcome{})); diff != "" {
		t.Errorf("local and remote differ (-local +remote):\n%s", diff)
	}
	if lo.result.Nodes != 213 || lo.result.Relationships != 212 || lo.nodes != 225 || lo.events[len(lo.events)-1] != operations.EventComplete {
		t.Errorf("outcome %+v", lo)
	}
}

func TestClientErrorsAreTheSameInBothModes(t *testing.T) {
	t.Parallel()
	local, remote := bothClients(t)
	ctx := context.Background()
	var shapes [][]string // health and status field paths, local then remote
	for _, c := range []*Client{local, remote} {
		mode := map[bool]string{true: "remote", false: "local"}[c.Remote()]
		_, err := c.Submit(ctx, "reindex", nil)
		var ae *transport.Error
		if !errors.As(err, &ae) || ae.Code != transport.CodeValidation || ae.Status != 400 || !strings.Contains(ae.Message, "supported: import, scan") {
			t.Errorf("%s unknown type: %v", mode, err)
		}
		_, err = c.Submit(ctx, "import", map[string]any{"nodes": []map[string]any{{"labels": []string{"Resource"}}}})
		if !errors.As(err, &ae) || ae.Code != transport.CodeValidation || ae.Details["field"] != "params.nodes[0].id" {
			t.Errorf("%s missing param: %v %+v", mode, err, ae)
		}
		if _, err := c.Get(ctx, "op_000000000000000000000000"); !errors.Is(err, transport.ErrNotFound) {
			t.Errorf("%s get unknown: %v", mode, err)
		}
		_, err = c.Query(ctx, transport.QueryRequest{Query: "RETRUN 1"})
		if !errors.As(err, &ae) || ae.Code != transport.CodeQuery || ae.Details["neo4j_code"] != "Neo.ClientError.Statement.SyntaxError" {
			t.Errorf("%s syntax error: %v", mode, err)
		}
		h, err := c.Health(ctx)
		if err != nil || h.Status != "healthy" || h.Neo4jStatus != "connected" {
			t.Errorf("%s health: %+v %v", mode, h, err)
		}
		st, err := c.Status(ctx)
		if err != nil || st.Neo4j.Status != "connected" || len(st.Pool) == 0 || !strings.Contains(strings.Join(st.OperationTypes, ","), "import") {
			t.Errorf("%s status: %+v %v", mode, st, err)
		}
		shapes = append(shapes, jsonShape(t, h), jsonShape(t, st))
		// Run reports progress and returns the result; a cancelled one its error.
		label := neo4jtest.Unique(t)
		s := neo4jtest.Require(t)
		neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)
		var seen int
		res, err := c.Run(ctx, "import", tenantGraph(label, 1, 1, 10), func(operations.Progress) { seen++ })
		if err != nil || seen == 0 || !strings.Contains(string(res), `"nodes":13,"relationships":12`) {
			t.Errorf("%s Run: %s %v (%d progress)", mode, res, err, seen)
		}
		list, err := c.List(ctx, transport.ListOptions{Type: "import"})
		if err != nil || list.Total < 1 {
			t.Errorf("%s List: %+v %v", mode, list, err)
		}
	}
	// Health and status have the same fields in both modes.
	for i, what := range []string{"health", "status"} {
		if diff := cmp.Diff(shapes[i], shapes[i+2]); diff != "" {
			t.Errorf("%s fields differ (-local +remote):\n%s", what, diff)
		}
	}
}

// jsonShape lists the field paths of v encoded as JSON (object keys,
// recursively), sorted: two values of the same shape give the same list.
func jsonShape(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				out = append(out, prefix+k)
				walk(prefix+k+".", e)
			}
		}
	}
	walk("", doc)
	slices.Sort(out)
	return out
}

func TestNewClientValidates(t *testing.T) {
	t.Parallel()
	if _, err := NewClient(ClientOptions{Config: ClientConfig{RemoteMode: true, ServiceURL: "invalid-url", APIKey: "k"}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad URL: %v", err)
	}
	if _, err := NewClient(ClientOptions{Config: ClientConfig{RemoteMode: true, ServiceURL: "https://x.example"}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no key: %v", err)
	}
	if _, err := NewClient(ClientOptions{}); err == nil || !strings.Contains(err.Error(), "NEO4J_URI") {
		t.Errorf("local without Neo4j: %v", err)
	}
}
