package atg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// dyingStore is one replica's view of a shared MemoryStore: after die,
// nothing it writes arrives (its checkpoints report a lost lease, which is
// what a replica that lost its process would find).
type dyingStore struct {
	*operations.MemoryStore
	dead atomic.Bool
}

var errReplicaGone = errors.New("replica gone")

func (s *dyingStore) gone() error {
	if s.dead.Load() {
		return errReplicaGone
	}
	return nil
}

func (s *dyingStore) Put(ctx context.Context, op operations.Operation) error {
	if err := s.gone(); err != nil {
		return err
	}
	return s.MemoryStore.Put(ctx, op)
}

func (s *dyingStore) AppendEvent(ctx context.Context, id string, ev operations.Event) error {
	if err := s.gone(); err != nil {
		return err
	}
	return s.MemoryStore.AppendEvent(ctx, id, ev)
}

func (s *dyingStore) Claim(ctx context.Context, replica string, n int, lease time.Duration) ([]operations.Operation, error) {
	if err := s.gone(); err != nil {
		return nil, err
	}
	return s.MemoryStore.Claim(ctx, replica, n, lease)
}

func (s *dyingStore) TakeOver(ctx context.Context, replica string, n int, lease time.Duration) ([]operations.Operation, error) {
	if err := s.gone(); err != nil {
		return nil, err
	}
	return s.MemoryStore.TakeOver(ctx, replica, n, lease)
}

func (s *dyingStore) Renew(ctx context.Context, replica string, ids []string, lease time.Duration) (map[string]operations.LeaseState, error) {
	if err := s.gone(); err != nil {
		return nil, err
	}
	return s.MemoryStore.Renew(ctx, replica, ids, lease)
}

func (s *dyingStore) Release(ctx context.Context, replica, id string) error {
	if err := s.gone(); err != nil {
		return err
	}
	return s.MemoryStore.Release(ctx, replica, id)
}

func (s *dyingStore) SaveCheckpoint(ctx context.Context, replica, id string, cp json.RawMessage) error {
	if err := s.gone(); err != nil {
		return fmt.Errorf("%w: %w", operations.ErrLeaseLost, err)
	}
	return s.MemoryStore.SaveCheckpoint(ctx, replica, id, cp)
}

// TestImportResumesOnAnotherReplica: replica a dies in the middle of an
// import; replica b takes it over after the lease, continues from a's last
// checkpoint, and reports the counts of one uninterrupted import.
func TestImportResumesOnAnotherReplica(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	ctx := context.Background()
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: quietLog})
	t.Cleanup(func() { _ = m.CloseAll(context.Background()) })
	if err := m.Configure(ctx, "dev", neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	d := neo4jtest.Driver(t, s)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, d, s, label)

	var offset atomic.Int64
	shared := &operations.MemoryStore{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }}
	replica := func(name string) (*operations.Engine, *dyingStore) {
		view := &dyingStore{MemoryStore: shared}
		e, err := newEngine(m, "dev", nil, nil, ScanOptions{}, operations.Config{
			Store: view, Replica: name, PollInterval: 10 * time.Millisecond, Lease: time.Minute, Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close(context.Background()) })
		return e, view
	}

	const nodes, rels, chunk = 3000, 2000, 100
	g := neo4jpool.Graph{ChunkSize: chunk}
	for i := range nodes {
		g.Nodes = append(g.Nodes, neo4jpool.Node{ID: fmt.Sprintf("/%s/n%d", label, i), Labels: []string{label}, Properties: map[string]any{"i": i}})
	}
	for i := range rels {
		g.Relationships = append(g.Relationships, neo4jpool.Relationship{Type: "NEXT", From: g.Nodes[i].ID, To: g.Nodes[i+1].ID})
	}
	params, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	a, aView := replica("a")
	op, _, err := a.Submit(ctx, operations.SubmitRequest{ClientID: "c", Type: ImportTypeName, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	// Let a commit part of the nodes, then let it die.
	for deadline := time.Now().Add(30 * time.Second); ; {
		got, err := shared.Get(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		var cp importCheckpoint
		if len(got.Checkpoint) > 0 {
			must(t, json.Unmarshal(got.Checkpoint, &cp))
		}
		if cp.Phase == neo4jpool.PhaseNodes && cp.Offset >= 1000 {
			break
		}
		if got.Status.Terminal() || time.Now().After(deadline) {
			t.Fatalf("the import did not reach 1,000 nodes on a: %s, checkpoint %s", got.Status, got.Checkpoint)
		}
		time.Sleep(5 * time.Millisecond)
	}
	aView.dead.Store(true)
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = a.Close(closeCtx) // stops its work (its hand-back cannot reach the store)

	b, _ := replica("b")
	offset.Add(int64(2 * time.Minute)) // a's lease runs out
	waitCtx, cancelWait := context.WithTimeout(ctx, 60*time.Second)
	defer cancelWait()
	done, err := b.Wait(waitCtx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != operations.Completed || done.Replica != b.Replica() || done.Attempt != 2 {
		t.Fatalf("after the takeover: %s on %q, attempt %d (%+v)", done.Status, done.Replica, done.Attempt, done.Error)
	}
	var res neo4jpool.ImportResult
	must(t, json.Unmarshal(done.Result, &res))
	if res.Nodes != nodes || res.Relationships != rels || res.Chunks != (nodes+rels)/chunk || res.RelationshipsCreated != rels {
		t.Errorf("result %+v, want %d nodes, %d relationships (all created), %d chunks", res, nodes, rels, (nodes+rels)/chunk)
	}
	// The chunk a committed after its last checkpoint is written again by
	// b, which finds its nodes there already.
	if res.NodesCreated > nodes || res.NodesCreated < nodes-chunk {
		t.Errorf("nodes created %d, want %d less at most one chunk", res.NodesCreated, nodes)
	}
	if got := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); got != nodes {
		t.Errorf("%d nodes in the database, want %d", got, nodes)
	}
	if got := neo4jtest.Count(t, d, s, "MATCH (:`"+label+"`)-[r:NEXT]->() RETURN count(r)", nil); got != rels {
		t.Errorf("%d relationships in the database, want %d", got, rels)
	}
}
