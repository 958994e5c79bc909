package neo4jpool

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCollapseNodes: repeated ids merge into their first occurrence
// (labels united, later properties winning, nil kept so that it removes),
// the input is not modified, and a chunk without repeats is returned as is.
func TestCollapseNodes(t *testing.T) {
	t.Parallel()
	labels := make([]string, 1, 4) // spare capacity that a careless append would write into
	labels[0] = "A"
	in := []Node{
		{ID: "x", Labels: labels, Properties: map[string]any{"v": 1, "w": "a"}},
		{ID: "y"},
		{ID: "x", Labels: []string{"B"}, Properties: map[string]any{"v": 2, "w": nil}},
	}
	got := collapseNodes(in)
	want := []Node{
		{ID: "x", Labels: []string{"A", "B"}, Properties: map[string]any{"v": 2, "w": nil}},
		{ID: "y"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if labels[:2][1] != "" || len(in[0].Properties) != 2 || in[0].Properties["v"] != 1 {
		t.Errorf("input modified: %v %v", labels[:2], in[0].Properties)
	}
	unique := []Node{{ID: "a"}, {ID: "b"}}
	if out := collapseNodes(unique); &out[0] != &unique[0] {
		t.Error("a chunk without repeats was copied")
	}
}
