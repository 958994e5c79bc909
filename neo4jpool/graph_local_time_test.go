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
}

// TestImportLocalTimeAgainstNeo4j is the real-database half: a time.Now()
// property (time.Local) is stored instead of failing the chunk.
func TestImportLocalTimeAgainstNeo4j(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	m := NewManager(Options{})
	ctx := context.Background()
	defer m.CloseAll(ctx)
	if err := m.Configure(ctx, "dev", Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
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
