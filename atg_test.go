package atg

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// TestTypedImportInBothModes: Client.Import gives the same typed result
// locally and remotely, and reports progress.
func TestTypedImportInBothModes(t *testing.T) {
	t.Parallel()
	local, remote := bothClients(t)
	s := neo4jtest.Require(t)
	for name, c := range map[string]*Client{"local": local, "remote": remote} {
		t.Run(name, func(t *testing.T) {
			label := neo4jtest.Unique(t)
			neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)
			g := ImportParams{
				Nodes:         []Node{{ID: label + "-a", Labels: []string{label}}, {ID: label + "-b", Labels: []string{label}, Properties: map[string]any{"n": 1}}},
				Relationships: []Relationship{{Type: "LINKS", From: label + "-a", To: label + "-b"}},
				ChunkSize:     1,
			}
			var reports []Progress
			res, err := c.Import(context.Background(), g, func(p Progress) { reports = append(reports, p) })
			if err != nil {
				t.Fatal(err)
			}
			if res.Nodes != 2 || res.Relationships != 1 || len(reports) == 0 || reports[len(reports)-1].Done != 3 {
				t.Errorf("result %+v after %d reports (%+v)", res, len(reports), reports)
			}
			g.Nodes[0].Labels = []string{"bad label"}
			if _, err := c.Import(context.Background(), g, nil); err == nil {
				t.Error("an invalid graph was imported")
			}
		})
	}
}

func TestKeyStoresFromTheRootPackage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var stores []KeyStore
	mem := NewMemoryKeyStore()
	file, err := OpenKeyStoreFile(ctx, filepath.Join(t.TempDir(), "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	stores = append(stores, mem, file)
	for _, st := range stores {
		key, rec, err := st.Create(ctx, CreateKeyOptions{ClientID: "alice", Environment: Dev, Scopes: []Scope{ScopeRead}})
		if err != nil || key == "" || rec.ClientID != "alice" {
			t.Fatalf("%T.Create: %v %+v", st, err, rec)
		}
	}
}

// TestLocalClientLogsNothingByDefault: NewClient without a Logger writes
// nothing to slog.Default.
func TestLocalClientLogsNothingByDefault(t *testing.T) {
	s := neo4jtest.Require(t) // not parallel: it replaces slog.Default
	var buf syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)
	c, err := NewClient(ClientOptions{Neo4j: neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), QueryRequest{Query: "RETURN 1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); out != "" {
		t.Errorf("the library logged through slog.Default:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
