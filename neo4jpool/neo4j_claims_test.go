package neo4jpool

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
)

// TestGraphLimitsAtTheirBoundaries: ids of MaxIDLength characters and keys
// of MaxPropertyKeyLength pass (counted in characters, four-byte runes
// included), one more fails; MaxLabelsPerNode labels pass, one more fails.
func TestGraphLimitsAtTheirBoundaries(t *testing.T) {
	t.Parallel()
	wide := "\U0001F600" // four bytes in UTF-8
	labels := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("L%d", i)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		node Node
		ok   bool
	}{
		{"id at the limit", Node{ID: strings.Repeat(wide, MaxIDLength)}, true},
		{"id one over", Node{ID: strings.Repeat("a", MaxIDLength+1)}, false},
		{"key at the limit", Node{ID: "n", Properties: map[string]any{strings.Repeat(wide, MaxPropertyKeyLength): 1}}, true},
		{"key one over", Node{ID: "n", Properties: map[string]any{strings.Repeat("k", MaxPropertyKeyLength+1): 1}}, false},
		{"labels at the limit", Node{ID: "n", Labels: labels(MaxLabelsPerNode)}, true},
		{"labels one over", Node{ID: "n", Labels: labels(MaxLabelsPerNode + 1)}, false},
	} {
		if err := ValidateNode(tc.node); (err == nil) != tc.ok {
			t.Errorf("%s: got %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestNeo4jClaims checks against the real server what the importer and the
// graph validation say about Neo4j: relationship ends are found through the
// unique index on the base label; an id of MaxIDLength four-byte
// characters is stored; the property values validation rejects are the
// ones Neo4j refuses.
func TestNeo4jClaims(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	ctx := context.Background()
	m := NewManager(Options{})
	defer m.CloseAll(ctx)
	if err := m.Configure(ctx, "dev", Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("\U0001F600", MaxIDLength)
	im := Importer{Manager: m, Env: "dev"}
	if _, err := im.Import(ctx, Graph{Nodes: []Node{{ID: long, Labels: []string{label}}, {ID: label + "-b", Labels: []string{label}}},
		Relationships: []Relationship{{Type: "CONTAINS", From: long, To: label + "-b"}}}, nil); err != nil {
		t.Fatalf("import with an id of %d four-byte characters: %v", MaxIDLength, err)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (:"+label+" {id: $id})-[:CONTAINS]->(:"+label+") RETURN count(*)", map[string]any{"id": long}); n != 1 {
		t.Errorf("stored relationship count %d", n)
	}

	// The relationship statement seeks both ends in the unique index.
	rw := &relWriter{base: DefaultBaseLabel, stmts: map[string]string{}}
	plan, err := m.ExecuteRead(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "EXPLAIN "+rw.statement("CONTAINS"), map[string]any{"rows": []any{}})
		if err != nil {
			return nil, err
		}
		sum, err := res.Consume(ctx)
		if err != nil {
			return nil, err
		}
		text, _ := sum.Plan().Arguments()["string-representation"].(string)
		return text, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.(string); strings.Count(got, "NodeUniqueIndexSeek") < 2 {
		t.Errorf("relationship ends are not found by unique index seeks:\n%s", got)
	}

	// What validation rejects, Neo4j refuses.
	for name, value := range map[string]any{
		"null in a list":  []any{"a", nil},
		"mixed list":      []any{"a", int64(1)},
		"list of bytes":   []any{[]byte("a"), []byte("b")},
		"map as property": map[string]any{"k": 1},
	} {
		if validatePropertyValue(value) == nil {
			t.Errorf("%s: validation accepts it", name)
		}
		_, err := m.ExecuteWrite(ctx, "dev", func(tx neo4j.ManagedTransaction) (any, error) {
			res, err := tx.Run(ctx, "CREATE (n:"+label+" {id: $id}) SET n.p = $v", map[string]any{"id": label + name, "v": value})
			if err != nil {
				return nil, err
			}
			return res.Consume(ctx)
		})
		// The refusal must be the server's type check, not some other
		// failure (a driver error, a connection problem) that would pass
		// for one.
		var dbErr *neo4j.Neo4jError
		if !errors.As(err, &dbErr) || dbErr.Code != "Neo.ClientError.Statement.TypeError" {
			t.Errorf("%s: want Neo4j's Neo.ClientError.Statement.TypeError, got %v", name, err)
		}
	}
}

// claimsManager returns a manager with "dev" configured for the test
// database, closed when t ends.
func claimsManager(t *testing.T, s neo4jtest.Settings) *Manager {
	t.Helper()
	m := NewManager(Options{})
	t.Cleanup(func() { _ = m.CloseAll(context.Background()) })
	if err := m.Configure(t.Context(), "dev", Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	return m
}

// nodeProperties returns the properties of the node with label and id.
func nodeProperties(t *testing.T, d neo4j.DriverWithContext, s neo4jtest.Settings, label, id string) map[string]any {
	t.Helper()
	recs, err := neo4jtest.Query(t.Context(), d, s, "MATCH (n:`"+label+"` {id: $id}) RETURN properties(n)", map[string]any{"id": id})
	if err != nil || len(recs) != 1 {
		t.Fatalf("node %s: %d records, %v", id, len(recs), err)
	}
	return recs[0].Values[0].(map[string]any)
}

// Node.Properties: a nil value removes that property (and only that one),
// for nodes and relationships alike.
func TestImportNilPropertyRemovesIt(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	im := Importer{Manager: claimsManager(t, s), Env: "dev"}
	a, b := label+"-a", label+"-b"
	graph := func(nodeProps, relProps map[string]any) Graph {
		return Graph{
			Nodes:         []Node{{ID: a, Labels: []string{label}, Properties: nodeProps}, {ID: b, Labels: []string{label}}},
			Relationships: []Relationship{{Type: "LINKS", From: a, To: b, Properties: relProps}},
		}
	}
	if _, err := im.Import(t.Context(), graph(map[string]any{"keep": "k", "drop": "d"}, map[string]any{"keep": 1, "drop": 2}), nil); err != nil {
		t.Fatal(err)
	}
	if got := nodeProperties(t, d, s, label, a); got["drop"] != "d" || got["keep"] != "k" {
		t.Fatalf("first import stored %v", got)
	}
	if _, err := im.Import(t.Context(), graph(map[string]any{"drop": nil}, map[string]any{"drop": nil}), nil); err != nil {
		t.Fatal(err)
	}
	got := nodeProperties(t, d, s, label, a)
	if _, has := got["drop"]; has || got["keep"] != "k" || got["id"] != a || len(got) != 2 {
		t.Errorf("node properties after a nil value: %v, want only id and keep", got)
	}
	recs, err := neo4jtest.Query(t.Context(), d, s, "MATCH (:`"+label+"` {id: $a})-[r:LINKS]->() RETURN properties(r)", map[string]any{"a": a})
	if err != nil || len(recs) != 1 {
		t.Fatalf("relationship: %d records, %v", len(recs), err)
	}
	if rel := recs[0].Values[0].(map[string]any); len(rel) != 1 || rel["keep"] != int64(1) {
		t.Errorf("relationship properties after a nil value: %v, want only keep", rel)
	}
}

// Property keys are parameter map keys, never Cypher text, so keys with
// spaces, dots, backticks, quotes or non-ASCII letters are stored as given.
func TestImportPropertyKeysWithSpacesAndDots(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	im := Importer{Manager: claimsManager(t, s), Env: "dev"}
	props := map[string]any{"first name": "Ada", "a.b.c": int64(1), "x`y": "tick", `say "hi"`: true, "größe": 2.5, " padded ": "p", "$rows": "dollar"}
	id := label + "-n"
	g := Graph{Nodes: []Node{{ID: id, Labels: []string{label}, Properties: props}, {ID: id + "2", Labels: []string{label}}},
		Relationships: []Relationship{{Type: "LINKS", From: id, To: id + "2", Properties: props}}}
	if err := ValidateGraph(g); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Import(t.Context(), g, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": id}
	maps.Copy(want, props)
	if got := nodeProperties(t, d, s, label, id); !maps.Equal(got, want) {
		t.Errorf("node properties: %v, want %v", got, want)
	}
	recs, err := neo4jtest.Query(t.Context(), d, s, "MATCH (:`"+label+"` {id: $id})-[r:LINKS]->() RETURN properties(r)", map[string]any{"id": id})
	if err != nil || len(recs) != 1 {
		t.Fatalf("relationship: %d records, %v", len(recs), err)
	}
	if got := recs[0].Values[0].(map[string]any); !maps.Equal(got, props) {
		t.Errorf("relationship properties: %v, want %v", got, props)
	}
}

// EnsureConstraints fails, with the server's error, when existing nodes of
// a label share an id, and creates no constraint then.
func TestEnsureConstraintsFailsOnDuplicateIDs(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	name := "atg_id_unique_" + label
	neo4jtest.DropConstraint(t, d, s, name)
	if _, err := neo4jtest.Query(t.Context(), d, s, "CREATE (:`"+label+"` {id: 'same'}), (:`"+label+"` {id: 'same'})", nil); err != nil {
		t.Fatal(err)
	}
	im := Importer{Manager: claimsManager(t, s), Env: "dev"}
	err := im.EnsureConstraints(t.Context(), label)
	var dbErr *neo4j.Neo4jError
	if !errors.As(err, &dbErr) || dbErr.Code != "Neo.DatabaseError.Schema.ConstraintCreationFailed" ||
		!strings.Contains(err.Error(), label) || !strings.Contains(dbErr.Msg, "'same'") {
		t.Fatalf("want the server's Neo.DatabaseError.Schema.ConstraintCreationFailed naming %s and the id, got %v", label, err)
	}
	if n := neo4jtest.Count(t, d, s, "SHOW CONSTRAINTS YIELD name WHERE name = $name RETURN count(*)", map[string]any{"name": name}); n != 0 {
		t.Errorf("constraint %s exists after the failure", name)
	}
}
