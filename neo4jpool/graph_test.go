package neo4jpool_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/atgraph/atg/neo4jpool"
)

// injection is the label of the issue: it must never reach Cypher.
const injection = "Resource`) DETACH DELETE n //"

func TestValidateIdentifier(t *testing.T) {
	for _, ok := range []string{"Resource", "_x", "A1_b2", "Match", strings.Repeat("a", 64)} {
		if err := neo4jpool.ValidateIdentifier("label", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1abc", "a b", "a-b", "a`b", injection, "Ressource\n", "Résumé",
		strings.Repeat("a", 65), "a.b", "a:b", "a)", "n//"} {
		err := neo4jpool.ValidateIdentifier("label", bad)
		if !errors.Is(err, neo4jpool.ErrInvalidIdentifier) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
	err := neo4jpool.ValidateIdentifier("label", injection)
	if !strings.Contains(err.Error(), "label") || !strings.Contains(err.Error(), neo4jpool.IdentifierPattern) {
		t.Errorf("message not clear: %v", err)
	}
}

func TestValidateGraph(t *testing.T) {
	good := neo4jpool.Graph{
		Nodes: []neo4jpool.Node{
			{ID: "a", Labels: []string{"Resource", "VM"}, Properties: map[string]any{
				"name": "vm1", "cores": 4, "ratio": 0.5, "on": true, "tags": []string{"x", "y"},
				"created": time.Now(), "day": dbtype.Date(time.Now()), "bytes": []byte{1, 2},
				"loc": dbtype.Point2D{X: 1, Y: 2, SpatialRefId: 7203}, "empty": []any{}, "gone": nil,
				"json": json.Number("12"), "jsonlist": []any{json.Number("1"), json.Number("2.5")},
				"Cost Center": "42", "properties.sku": "S1",
			}},
			{ID: "b"},
		},
		Relationships: []neo4jpool.Relationship{{Type: "CONTAINS", From: "a", To: "b", Properties: map[string]any{"w": 1}}},
		ChunkSize:     500,
	}
	if err := neo4jpool.ValidateGraph(good); err != nil {
		t.Fatalf("valid graph rejected: %v", err)
	}

	bad := neo4jpool.Graph{
		Nodes: []neo4jpool.Node{
			{ID: "", Labels: []string{injection}},
			{ID: "x", Properties: map[string]any{"id": "other"}},
			{ID: "y", Properties: map[string]any{"m": map[string]any{"a": 1}}},
			{ID: "z", Properties: map[string]any{"l": []any{1, "a"}}},
			{ID: "w", Properties: map[string]any{"n": []any{nil}}},
			{ID: "v", Properties: map[string]any{"": 1, "ok": uint64(1 << 63)}},
			{ID: "u", Properties: map[string]any{"p": new(int), "c": make(chan int)}},
		},
		Relationships: []neo4jpool.Relationship{{Type: "HAS PART", From: "a"}},
		ChunkSize:     -1,
	}
	err := neo4jpool.ValidateGraph(bad)
	var verr *neo4jpool.ValidationError
	if !errors.As(err, &verr) || !errors.Is(err, neo4jpool.ErrInvalidGraph) || !errors.Is(err, neo4jpool.ErrInvalidIdentifier) {
		t.Fatalf("want a ValidationError matching ErrInvalidGraph and ErrInvalidIdentifier, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"chunk_size", "nodes[0].id: id must not be empty", "nodes[0].labels[0]: label",
		`nodes[1].properties["id"]: property key "id" is reserved`, "maps cannot be stored",
		"list mixes", "null", `property key must not be empty`, "does not fit a signed 64-bit",
		"pointer values", "chan int", "relationships[0].type", "relationships[0].to",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if verr.Total != len(verr.Problems) || verr.Total < 13 {
		t.Errorf("problems: total %d, listed %d", verr.Total, len(verr.Problems))
	}
}

func TestValidationErrorListsAtMost20(t *testing.T) {
	var g neo4jpool.Graph
	for range 50 {
		g.Nodes = append(g.Nodes, neo4jpool.Node{ID: ""})
	}
	var verr *neo4jpool.ValidationError
	if err := neo4jpool.ValidateGraph(g); !errors.As(err, &verr) {
		t.Fatal(err)
	}
	if verr.Total != 50 || len(verr.Problems) != 20 || !strings.Contains(verr.Error(), "(and 30 more)") {
		t.Errorf("total %d listed %d: %v", verr.Total, len(verr.Problems), verr)
	}
}

func TestValidateChunkSize(t *testing.T) {
	for _, ok := range []int{1, 1000, neo4jpool.MaxChunkSize} {
		if err := neo4jpool.ValidateChunkSize(ok); err != nil {
			t.Errorf("%d: %v", ok, err)
		}
	}
	for _, bad := range []int{0, -1, neo4jpool.MaxChunkSize + 1} {
		if err := neo4jpool.ValidateChunkSize(bad); !errors.Is(err, neo4jpool.ErrInvalidChunkSize) {
			t.Errorf("%d: %v", bad, err)
		}
	}
}
