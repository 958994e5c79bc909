package neo4jpool_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// testGraph builds a tenant-like graph: every node carries label (for
// cleanup) and ids start with label (unique per test).
func testGraph(label string, nodes, rels int) neo4jpool.Graph {
	var g neo4jpool.Graph
	kinds := [][]string{{"Resource", "VirtualMachine"}, {"ResourceGroup"}, {"Resource", "StorageAccount"}, nil}
	for i := range nodes {
		labels := append([]string{label}, kinds[i%len(kinds)]...)
		g.Nodes = append(g.Nodes, neo4jpool.Node{
			ID:     fmt.Sprintf("%s/node/%d", label, i),
			Labels: labels,
			Properties: map[string]any{
				"name": fmt.Sprintf("node-%d", i), "index": i, "tags": []string{"a", "b"}, "ratio": float64(i) / 2,
			},
		})
	}
	types := []string{"CONTAINS", "DEPENDS_ON"}
	for i := range rels {
		g.Relationships = append(g.Relationships, neo4jpool.Relationship{
			Type: types[i%2], From: fmt.Sprintf("%s/node/%d", label, i%nodes), To: fmt.Sprintf("%s/node/%d", label, (i+1+i/nodes)%nodes),
			Properties: map[string]any{"weight": i},
		})
	}
	return g
}

type dumpedNode struct {
	ID     string
	Labels []string
	Props  map[string]any
}

type dumpedRel struct {
	From, Type, To string
	Props          map[string]any
}

// dump reads back everything carrying label.
func dump(t *testing.T, d neo4j.DriverWithContext, s neo4jtest.Settings, label string) ([]dumpedNode, []dumpedRel) {
	t.Helper()
	recs, err := neo4jtest.Query(t.Context(), d, s, "MATCH (n:`"+label+"`) RETURN n.id, labels(n), properties(n) ORDER BY n.id", nil)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []dumpedNode
	for _, r := range recs {
		var labels []string
		for _, l := range r.Values[1].([]any) {
			labels = append(labels, l.(string))
		}
		slices.Sort(labels)
		nodes = append(nodes, dumpedNode{r.Values[0].(string), labels, r.Values[2].(map[string]any)})
	}
	recs, err = neo4jtest.Query(t.Context(), d, s, "MATCH (a:`"+label+"`)-[r]->(b:`"+label+"`) "+
		"RETURN a.id, type(r), b.id, properties(r) ORDER BY a.id, type(r), b.id", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rels []dumpedRel
	for _, r := range recs {
		rels = append(rels, dumpedRel{r.Values[0].(string), r.Values[1].(string), r.Values[2].(string), r.Values[3].(map[string]any)})
	}
	return nodes, rels
}

// Importing twice changes nothing.
func TestImportTwiceIsIdempotent(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	g := testGraph(label, 30, 40)
	g.Relationships = append(g.Relationships, g.Relationships[0]) // a duplicate in the document is one relationship
	im := &neo4jpool.Importer{Manager: m, Env: "dev", ChunkSize: 7}

	var progress []neo4jpool.ImportProgress
	res, err := im.Import(t.Context(), g, func(p neo4jpool.ImportProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	// 30 nodes in chunks of 7: 5 chunks; 41 relationships: 6 chunks.
	want := neo4jpool.ImportResult{Nodes: 30, Relationships: 41, Chunks: 11, NodesCreated: 30, RelationshipsCreated: 40}
	if res != want {
		t.Errorf("first import: %+v, want %+v", res, want)
	}
	// Each event carries the result so far, as after that chunk's commit.
	afterNodes := neo4jpool.ImportResult{Nodes: 30, Chunks: 5, NodesCreated: 30}
	if len(progress) != 11 || progress[4] != (neo4jpool.ImportProgress{Phase: "nodes", Done: 30, Total: 30, Chunks: 5, Result: afterNodes}) ||
		progress[10] != (neo4jpool.ImportProgress{Phase: "relationships", Done: 41, Total: 41, Chunks: 11, Result: want}) {
		t.Errorf("progress: %+v", progress)
	}
	nodes1, rels1 := dump(t, d, s, label)
	if len(nodes1) != 30 || len(rels1) != 40 {
		t.Fatalf("stored %d nodes, %d relationships", len(nodes1), len(rels1))
	}
	if want := []string{"GraphNode", "Resource", label, "VirtualMachine"}; !cmp.Equal(nodes1[0].Labels, sorted(want)) {
		t.Errorf("labels: %v", nodes1[0].Labels)
	}

	res2, err := im.Import(t.Context(), g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.NodesCreated != 0 || res2.RelationshipsCreated != 0 || res2.Nodes != 30 || res2.Relationships != 41 {
		t.Errorf("second import: %+v", res2)
	}
	nodes2, rels2 := dump(t, d, s, label)
	if diff := cmp.Diff(nodes1, nodes2); diff != "" {
		t.Errorf("nodes changed (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(rels1, rels2); diff != "" {
		t.Errorf("relationships changed (-first +second):\n%s", diff)
	}
}

// The label of the issue is rejected with a clear error before anything is
// sent; so are relationship types and a base label like it.
func TestImportRejectsInjection(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	im := &neo4jpool.Importer{Manager: m, Env: "dev"}
	before, _ := m.Snapshot("dev")

	g := testGraph(label, 3, 2)
	g.Nodes[1].Labels = []string{label, injection}
	_, err := im.Import(t.Context(), g, nil)
	if !errors.Is(err, neo4jpool.ErrInvalidIdentifier) || !errors.Is(err, neo4jpool.ErrInvalidGraph) ||
		!strings.Contains(err.Error(), "nodes[1].labels[1]") || !strings.Contains(err.Error(), "DETACH DELETE") {
		t.Errorf("label: %v", err)
	}
	g = testGraph(label, 3, 2)
	g.Relationships[1].Type = "KNOWS]->() DETACH DELETE n //"
	if _, err := im.Import(t.Context(), g, nil); !errors.Is(err, neo4jpool.ErrInvalidIdentifier) ||
		!strings.Contains(err.Error(), "relationships[1].type") {
		t.Errorf("type: %v", err)
	}
	bad := &neo4jpool.Importer{Manager: m, Env: "dev", BaseLabel: injection}
	if _, err := bad.Import(t.Context(), testGraph(label, 1, 0), nil); !errors.Is(err, neo4jpool.ErrInvalidIdentifier) {
		t.Errorf("base label: %v", err)
	}
	if err := im.EnsureConstraints(t.Context(), injection); !errors.Is(err, neo4jpool.ErrInvalidIdentifier) {
		t.Errorf("constraint label: %v", err)
	}
	after, _ := m.Snapshot("dev")
	if after.TxAttempts != before.TxAttempts {
		t.Errorf("%d transactions ran for invalid input", after.TxAttempts-before.TxAttempts)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); n != 0 {
		t.Errorf("%d nodes written", n)
	}
}

// Relationships whose end node is missing are skipped and counted;
// json.Number values keep their integer type.
func TestImportMissingEndpointsAndJSONNumbers(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)

	var g neo4jpool.Graph
	doc := fmt.Sprintf(`{"nodes":[{"id":"%[1]s/a","labels":["%[1]s"],"properties":{"n":7,"xs":[1,2.5],"big":9007199254740993}},
		{"id":"%[1]s/b","labels":["%[1]s"]}],
		"relationships":[{"type":"LINKS","from":"%[1]s/a","to":"%[1]s/b"},{"type":"LINKS","from":"%[1]s/a","to":"%[1]s/missing"}]}`, label)
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		t.Fatal(err)
	}
	im := &neo4jpool.Importer{Manager: m, Env: "dev"}
	res, err := im.Import(t.Context(), g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Relationships != 1 || res.RelationshipsSkipped != 1 || res.Nodes != 2 || res.Chunks != 2 {
		t.Errorf("result: %+v", res)
	}
	nodes, _ := dump(t, d, s, label)
	props := nodes[0].Props
	if props["n"] != int64(7) || props["big"] != int64(9007199254740993) || !cmp.Equal(props["xs"], []any{1.0, 2.5}) {
		t.Errorf("properties: %#v", props)
	}
}

// The streaming import validates as it reads and stops at the first bad
// item with the earlier chunks committed.
func TestImportStream(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	im := &neo4jpool.Importer{Manager: m, Env: "dev", ChunkSize: 100}

	nodes := func(n, badAt int) iter.Seq2[neo4jpool.Node, error] {
		return func(yield func(neo4jpool.Node, error) bool) {
			for i := range n {
				node := neo4jpool.Node{ID: fmt.Sprintf("%s/%d", label, i), Labels: []string{label}}
				if i == badAt {
					node.Labels = []string{injection}
				}
				if !yield(node, nil) {
					return
				}
			}
		}
	}
	rels := func(yield func(neo4jpool.Relationship, error) bool) {
		for i := range 150 {
			r := neo4jpool.Relationship{Type: "NEXT", From: fmt.Sprintf("%s/%d", label, i), To: fmt.Sprintf("%s/%d", label, i+1)}
			if !yield(r, nil) {
				return
			}
		}
	}
	var progress []neo4jpool.ImportProgress
	res, err := im.ImportStream(t.Context(), nodes(250, -1), rels, func(p neo4jpool.ImportProgress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if res != (neo4jpool.ImportResult{Nodes: 250, Relationships: 150, Chunks: 5, NodesCreated: 250, RelationshipsCreated: 150}) {
		t.Errorf("result: %+v", res)
	}
	if len(progress) != 5 || progress[2].Done != 250 || progress[2].Total != -1 || progress[4].Phase != "relationships" {
		t.Errorf("progress: %+v", progress)
	}

	res, err = im.ImportStream(t.Context(), nodes(1000, 420), nil, nil)
	var ie *neo4jpool.ImportError
	var ce *neo4jpool.ChunkError
	if !errors.As(err, &ie) || !errors.As(err, &ce) || !errors.Is(err, neo4jpool.ErrInvalidIdentifier) ||
		ie.Phase != "nodes" || ce.Committed != 400 || res.Nodes != 400 {
		t.Fatalf("got %+v, %v", res, err)
	}
	if !strings.Contains(err.Error(), "node 420") {
		t.Errorf("error does not locate the item: %v", err)
	}
}

func TestEnsureConstraints(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	name := "atg_id_unique_" + label
	neo4jtest.DropConstraint(t, d, s, name)
	im := &neo4jpool.Importer{Manager: m, Env: "dev"}
	for range 2 { // idempotent
		if err := im.EnsureConstraints(t.Context(), label); err != nil {
			t.Fatal(err)
		}
	}
	n := neo4jtest.Count(t, d, s, "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties "+
		"WHERE name = $name AND type = 'UNIQUENESS' AND labelsOrTypes = [$label] AND properties = ['id'] RETURN count(*)",
		map[string]any{"name": name, "label": label})
	if n != 1 {
		t.Errorf("constraint %s not found", name)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestImportLaterRowWinsAtAnyChunkSize: the same id several times with
// different label sets ends with the values of its last row, whatever the
// chunk size (grouping by label set within a chunk once reordered them).
func TestImportLaterRowWinsAtAnyChunkSize(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	for _, size := range []int{1, 2, 3, 1000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			id := fmt.Sprintf("%s/%d", label, size)
			g := neo4jpool.Graph{ChunkSize: size, Nodes: []neo4jpool.Node{
				{ID: id, Labels: []string{label, "L1"}, Properties: map[string]any{"v": 1, "w": "a"}},
				{ID: id, Labels: []string{label, "L2"}, Properties: map[string]any{"v": 2}},
				{ID: id, Labels: []string{label, "L1"}, Properties: map[string]any{"v": 3, "w": nil}},
				{ID: id + "/other", Labels: []string{label}},
			}}
			im := &neo4jpool.Importer{Manager: m, Env: "dev"}
			res, err := im.Import(t.Context(), g, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Nodes != 4 || res.NodesCreated != 2 {
				t.Errorf("result %+v", res)
			}
			recs, err := neo4jtest.Query(t.Context(), d, s, "MATCH (n:`"+label+"` {id: $id}) RETURN properties(n), labels(n)", map[string]any{"id": id})
			if err != nil || len(recs) != 1 {
				t.Fatalf("%d nodes, %v", len(recs), err)
			}
			want := map[string]any{"id": id, "v": int64(3)}
			if diff := cmp.Diff(want, recs[0].Values[0]); diff != "" {
				t.Errorf("properties (-want +got):\n%s", diff)
			}
			var labels []string
			for _, l := range recs[0].Values[1].([]any) {
				labels = append(labels, l.(string))
			}
			if want := sorted([]string{"GraphNode", "L1", "L2", label}); !cmp.Equal(sorted(labels), want) {
				t.Errorf("labels %v, want %v", labels, want)
			}
		})
	}
}

// overlapping returns a graph of nodes from..to-1 of prefix, chained by
// NEXT relationships (the last one points past the range: skipped unless
// another document created that node).
func overlapping(prefix string, from, to int) neo4jpool.Graph {
	var g neo4jpool.Graph
	for i := from; i < to; i++ {
		id := fmt.Sprintf("%s/%d", prefix, i)
		g.Nodes = append(g.Nodes, neo4jpool.Node{ID: id, Properties: map[string]any{"i": i}})
		g.Relationships = append(g.Relationships, neo4jpool.Relationship{Type: "NEXT", From: id, To: fmt.Sprintf("%s/%d", prefix, i+1)})
	}
	return g
}

// importConcurrently runs Import of two overlapping documents in two
// goroutines, three times each, and checks that every id exists once and
// no counter is negative.
func importConcurrently(t *testing.T, im *neo4jpool.Importer, d neo4j.DriverWithContext, s neo4jtest.Settings, base string) {
	t.Helper()
	docs := []neo4jpool.Graph{overlapping(base, 0, 600), overlapping(base, 200, 800)}
	var wg sync.WaitGroup
	results := make(chan neo4jpool.ImportResult, 6)
	errs := make(chan error, 6)
	for _, g := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				res, err := im.Import(t.Context(), g, nil)
				if err != nil {
					errs <- err
					return
				}
				results <- res
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(results)
	for err := range errs {
		t.Fatal(err)
	}
	for res := range results {
		if res.RelationshipsSkipped < 0 || res.Relationships > 600 || res.Relationships+res.RelationshipsSkipped != 600 {
			t.Errorf("counters: %+v", res)
		}
	}
	q := "MATCH (n:`" + base + "`) RETURN count(n) AS nodes, count(DISTINCT n.id) AS ids"
	recs, err := neo4jtest.Query(t.Context(), d, s, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nodes, ids := recs[0].Values[0].(int64), recs[0].Values[1].(int64); nodes != 800 || ids != 800 {
		t.Errorf("%d nodes for %d ids, want 800 of each", nodes, ids)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (:`"+base+"`)-[r:NEXT]->(:`"+base+"`) RETURN count(r)", nil); n != 799 {
		t.Errorf("%d relationships, want 799", n)
	}
}

// TestImportSkipSchemaStaysExactUnderConcurrency: without the id
// constraint (SkipSchema, none created), concurrent imports through one
// Manager create each id once (they once duplicated nodes, and
// RelationshipsSkipped went negative).
func TestImportSkipSchemaStaysExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	base := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, base)
	im := &neo4jpool.Importer{Manager: m, Env: "dev", BaseLabel: base, SkipSchema: true, ChunkSize: 50}
	importConcurrently(t, im, d, s, base)
}

// TestImportUsesAnExistingIndexOnTheKey: a user's RANGE index on
// (:Base {id}) blocks the uniqueness constraint; imports then go on
// without it (and stay exact under concurrency) instead of failing with
// IndexAlreadyExists.
func TestImportUsesAnExistingIndexOnTheKey(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	base := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, base)
	index := "idx_" + base
	if len(index) > 64 {
		index = index[:64]
	}
	if _, err := neo4jtest.Query(t.Context(), d, s, "CREATE INDEX `"+index+"` FOR (n:`"+base+"`) ON (n.id)", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := neo4jtest.Query(context.Background(), d, s, "DROP INDEX `"+index+"` IF EXISTS", nil); err != nil {
			t.Errorf("drop index: %v", err)
		}
	})
	neo4jtest.DropConstraint(t, d, s, "atg_id_unique_"+base) // in case the index did not block it
	im := &neo4jpool.Importer{Manager: m, Env: "dev", BaseLabel: base, ChunkSize: 50}
	importConcurrently(t, im, d, s, base)
}

// TestImportErrorOffset: an import that stops in the relationships phase
// reports the offset to resume from in its list of relationships, counting
// skipped and repeated relationships (Result.Relationships does not).
func TestImportErrorOffset(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	im := &neo4jpool.Importer{Manager: m, Env: "dev", ChunkSize: 10}
	id := func(i int) string { return fmt.Sprintf("%s/%d", label, i) }
	nodes := func(yield func(neo4jpool.Node, error) bool) {
		for i := range 5 {
			if !yield(neo4jpool.Node{ID: id(i), Labels: []string{label}}, nil) {
				return
			}
		}
	}
	rels := func(yield func(neo4jpool.Relationship, error) bool) {
		for i := range 30 {
			r := neo4jpool.Relationship{Type: "NEXT", From: id(i % 5), To: id(i%5 + 1)} // 4→5 is skipped, the rest repeat
			if i == 23 {
				r.Type = injection
			}
			if !yield(r, nil) {
				return
			}
		}
	}
	res, err := im.ImportStream(t.Context(), nodes, rels, nil)
	var ie *neo4jpool.ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v", err)
	}
	if ie.Phase != neo4jpool.PhaseRelationships || ie.Offset != 20 || res.Relationships != 16 || res.RelationshipsSkipped != 4 {
		t.Errorf("phase %s, offset %d, result %+v", ie.Phase, ie.Offset, res)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (:`"+label+"`)-[r:NEXT]->() RETURN count(r)", nil); n != 4 {
		t.Errorf("%d relationships stored, want 4", n)
	}
}

// TestImportChunksBySize: a chunk also ends by estimated size
// (MaxChunkBytes): an item that would take it past the budget starts a new
// chunk, and an item larger than the budget is written alone, so a very
// large value never shares a transaction with many other writes (Neo4j
// then slows down sharply on re-import, see docs/OPERATIONS.md).
func TestImportChunksBySize(t *testing.T) {
	t.Parallel()
	m, s := realManager(t, neo4jpool.Options{}, nil)
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)
	var g neo4jpool.Graph
	add := func(i, size int) {
		g.Nodes = append(g.Nodes, neo4jpool.Node{ID: fmt.Sprintf("%s/%02d", label, i), Labels: []string{label},
			Properties: map[string]any{"s": strings.Repeat("x", size)}})
	}
	for i := range 4 {
		add(i, 250) // about 300 bytes each with id and key
	}
	add(4, 5000) // alone
	for i := 5; i < 8; i++ {
		add(i, 250)
	}
	im := &neo4jpool.Importer{Manager: m, Env: "dev", ChunkSize: 100, MaxChunkBytes: 1000}
	var done []int
	res, err := im.Import(t.Context(), g, func(p neo4jpool.ImportProgress) { done = append(done, p.Done) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, 4, 5, 8}; !slices.Equal(done, want) {
		t.Errorf("chunks ended after %v items, want %v", done, want)
	}
	if res.Nodes != 8 || res.Chunks != 4 {
		t.Errorf("result %+v", res)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); n != 8 {
		t.Errorf("%d nodes stored", n)
	}
}
