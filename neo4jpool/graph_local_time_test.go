package neo4jpool

import (
	"context"
	"testing"
	"time"

	"github.com/atgraph/atg/internal/neo4jtest"
)

func TestLocalTimesAreSentInUTC(t *testing.T) {
	t.Parallel()
	now := time.Now() // in time.Local
	got := normalizeProperties(map[string]any{"at": now, "n": 1})
	at, ok := got["at"].(time.Time)
	if !ok || at.Location() != time.UTC || !at.Equal(now) {
		t.Fatalf("got %#v", got["at"])
	}
	utc := now.UTC()
	if got := normalizeProperties(map[string]any{"at": utc}); got["at"].(time.Time).Location() != time.UTC {
		t.Error("UTC times must pass unchanged")
	}

	// List elements too, whatever the list's type; the input is not modified.
	type times []time.Time
	in := map[string]any{"ts": []time.Time{now, utc}, "any": []any{now}, "named": times{now}}
	got = normalizeProperties(in)
	ts, ok1 := got["ts"].([]time.Time)
	anys, ok2 := got["any"].([]any)
	named, ok3 := got["named"].(times)
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("list types changed: %#v", got)
	}
	for name, list := range map[string][]time.Time{"[]time.Time": ts, "[]any": {anys[0].(time.Time)}, "named": named} {
		for i, e := range list {
			if e.Location() != time.UTC || !e.Equal(now) {
				t.Errorf("%s element %d: %v in %v", name, i, e, e.Location())
			}
		}
	}
	if in["ts"].([]time.Time)[0].Location() != time.Local {
		t.Error("the input was modified")
	}
}

// TestImportLocalTimeAgainstNeo4j is the real-database half: a time.Now()
// property (time.Local) is stored instead of failing the chunk.
func TestImportLocalTimeAgainstNeo4j(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	m := claimsManager(t, s)
	ctx := context.Background()
	now := time.Now()
	im := Importer{Manager: m, Env: "dev"}
	if _, err := im.Import(ctx, Graph{Nodes: []Node{{ID: label + "-n", Labels: []string{label}, Properties: map[string]any{"seen": now}}}}, nil); err != nil {
		t.Fatalf("import with a local time: %v", err)
	}
	recs, err := neo4jtest.Query(ctx, d, s, "MATCH (n:"+label+") RETURN n.seen AS seen", nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %v", recs, err)
	}
	got, _ := recs[0].Get("seen")
	if tt, ok := got.(time.Time); !ok || !tt.Equal(now.Truncate(time.Nanosecond)) {
		t.Errorf("stored %v, want %v", got, now)
	}
}

// TestImportLocalTimeListsAgainstNeo4j: lists of time.Now() values
// ([]time.Time and []any) are stored as the same instants instead of
// failing the chunk.
func TestImportLocalTimeListsAgainstNeo4j(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	m := claimsManager(t, s)
	ctx := context.Background()
	first := time.Now()
	second := first.Add(90 * time.Minute)
	im := Importer{Manager: m, Env: "dev"}
	props := map[string]any{"seen": []time.Time{first, second}, "also": []any{second, first}}
	if err := validatePropertyValue(props["seen"]); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Import(ctx, Graph{Nodes: []Node{{ID: label + "-n", Labels: []string{label}, Properties: props}}}, nil); err != nil {
		t.Fatalf("import with lists of local times: %v", err)
	}
	recs, err := neo4jtest.Query(ctx, d, s, "MATCH (n:"+label+") RETURN n.seen AS seen, n.also AS also", nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %v", recs, err)
	}
	for key, want := range map[string][]time.Time{"seen": {first, second}, "also": {second, first}} {
		v, _ := recs[0].Get(key)
		list, ok := v.([]any)
		if !ok || len(list) != len(want) {
			t.Fatalf("%s: stored %#v", key, v)
		}
		for i, e := range list {
			if tt, ok := e.(time.Time); !ok || !tt.Equal(want[i]) {
				t.Errorf("%s[%d]: stored %v, want %v", key, i, e, want[i])
			}
		}
	}
}
