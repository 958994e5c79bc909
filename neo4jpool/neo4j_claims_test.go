package neo4jpool

import (
	"context"
	"fmt"
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
		if err == nil {
			t.Errorf("%s: Neo4j stored it, so validation need not reject it", name)
		}
	}
}
