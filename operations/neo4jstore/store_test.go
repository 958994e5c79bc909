package neo4jstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"go.uber.org/goleak"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/operations/neo4jstore"
	"github.com/atgraph/atg/operations/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// manager is a neo4jpool.Manager on the test database, closed after t.
func manager(t testing.TB) (*neo4jpool.Manager, neo4jtest.Settings) {
	t.Helper()
	s := neo4jtest.Require(t)
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: quiet})
	if err := m.Configure(context.Background(), "test", neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.CloseAll(context.Background()) })
	return m, s
}

// open opens a store in namespace ns, removed with its nodes after t.
func open(t *testing.T, m *neo4jpool.Manager, s neo4jtest.Settings, ns string, interval time.Duration) *neo4jstore.Store {
	t.Helper()
	return openConfig(t, s, neo4jstore.Config{Manager: m, Environment: "test", Namespace: ns, ProgressInterval: interval, Logger: quiet})
}

// openConfig opens a store with cfg, removed with its namespace's nodes
// after t.
func openConfig(t testing.TB, s neo4jtest.Settings, cfg neo4jstore.Config) *neo4jstore.Store {
	t.Helper()
	ns := cfg.Namespace
	st, err := neo4jstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.Close(context.Background())
		d := neo4jtest.Driver(t, s)
		for _, label := range []string{neo4jstore.LabelEvent, neo4jstore.LabelOperation} {
			if _, err := neo4j.ExecuteQuery(context.Background(), d, "MATCH (n:"+label+" {ns: $ns}) DETACH DELETE n", map[string]any{"ns": ns}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Database)); err != nil {
				t.Errorf("cleanup %s: %v", ns, err)
			}
		}
	})
	return st
}

func TestNeo4jStoreConformance(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	storetest.Run(t, func(t *testing.T) operations.Store { return open(t, m, s, neo4jtest.Unique(t), 0) })
}

// sharedLease is the lease of the shared suite: the database's clock
// cannot be moved, so Expire waits it out.
const sharedLease = time.Second

// TestNeo4jStoreSharedConformance runs the SharedStore suite with two
// Shared stores (two replicas) on one namespace.
func TestNeo4jStoreSharedConformance(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	storetest.RunShared(t, func(t *testing.T) storetest.Shared {
		cfg := neo4jstore.Config{Manager: m, Environment: "test", Namespace: neo4jtest.Unique(t), Logger: quiet, Shared: true}
		return storetest.Shared{
			A: openConfig(t, s, cfg), B: openConfig(t, s, cfg), Lease: sharedLease,
			Expire: func() { time.Sleep(sharedLease + 200*time.Millisecond) },
		}
	})
}

// countEvents counts the events of id written to the database.
func countEvents(t *testing.T, s neo4jtest.Settings, ns, id string) int64 {
	t.Helper()
	res, err := neo4j.ExecuteQuery(context.Background(), neo4jtest.Driver(t, s),
		"MATCH (e:"+neo4jstore.LabelEvent+" {ns: $ns, op_id: $id}) RETURN count(e) AS n", map[string]any{"ns": ns, "id": id},
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Database))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := res.Records[0].Get("n")
	return n.(int64)
}

// TestProgressIsCoalescedAndStatusIsNot: 1,000 progress events in a burst
// are written as a handful, while every status and the terminal event are
// written, and reads see everything at once.
func TestProgressIsCoalescedAndStatusIsNot(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	ns := neo4jtest.Unique(t)
	st := open(t, m, s, ns, time.Hour) // progress only when flushed
	ctx := context.Background()
	op := operations.Operation{ID: "op_burst", Type: "import", Status: operations.Queued, ClientID: "c", CreatedAt: time.Now().UTC()}
	if err := st.Create(ctx, op); err != nil {
		t.Fatal(err)
	}
	seq := int64(0)
	appendEv := func(typ operations.EventType) {
		seq++
		if err := st.AppendEvent(ctx, op.ID, operations.Event{Seq: seq, Type: typ, Time: time.Now().UTC(), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, seq))}); err != nil {
			t.Fatal(err)
		}
	}
	appendEv(operations.EventStatus)
	op.Status = operations.Running
	if err := st.Put(ctx, op); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		appendEv(operations.EventProgress)
		op.Progress, op.LastEventID = &operations.Progress{Done: int64(i + 1), Total: 1000}, seq
		if err := st.Put(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	// Reads see the latest progress and every event before any write.
	got, err := st.Get(ctx, op.ID)
	if err != nil || got.Progress == nil || got.Progress.Done != 1000 {
		t.Errorf("Get: %+v %v", got.Progress, err)
	}
	if evs, _ := st.EventsAfter(ctx, op.ID, 0); len(evs) < 2 || evs[len(evs)-1].Seq != seq {
		t.Errorf("EventsAfter: %d events, the last not %d", len(evs), seq)
	}
	appendEv(operations.EventComplete)
	op.Status, op.FinishedAt = operations.Completed, ptr(time.Now().UTC())
	if err := st.Put(ctx, op); err != nil {
		t.Fatal(err)
	}
	// The terminal state is written without waiting for the hour.
	deadline := time.Now().Add(5 * time.Second)
	for countEvents(t, s, ns, op.ID) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := countEvents(t, s, ns, op.ID); n < 3 || n > 10 {
		t.Errorf("%d events written for 1 status + 1,000 progress + 1 complete, want the status, the complete and a few progress", n)
	}
	// A fresh store (another process) reads the finished operation.
	other := open(t, m, s, ns, 0)
	got, err = other.Get(ctx, op.ID)
	if err != nil || got.Status != operations.Completed || got.Progress == nil || got.Progress.Done != 1000 {
		t.Errorf("from another store: %+v %v", got, err)
	}
	evs, err := other.EventsAfter(ctx, op.ID, 0)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Type != operations.EventComplete || evs[0].Type != operations.EventStatus {
		t.Errorf("history from another store: %d events, %v", len(evs), err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestEngineHistorySurvivesARestart: an engine on the store runs an
// operation; a new engine on a new store (a restarted server) still has
// the operation, its result and its whole event history.
func TestEngineHistorySurvivesARestart(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	ns := neo4jtest.Unique(t)
	ctx := context.Background()
	reg := &operations.Registry{}
	if err := reg.Register(operations.Type{Name: "count", Run: func(ctx context.Context, _ json.RawMessage, r operations.Reporter) (any, error) {
		for i := 1; i <= 20; i++ {
			r.Progress(operations.Progress{Done: int64(i), Total: 20, Phase: "counting"})
		}
		r.Log("info", "counted")
		return map[string]int{"counted": 20}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	st1 := open(t, m, s, ns, 0)
	e1, err := operations.New(operations.Config{Registry: reg, Store: st1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	op, _, err := e1.Submit(ctx, operations.SubmitRequest{Type: "count", ClientID: "alice", Params: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	done, err := e1.Wait(ctx, op.ID)
	if err != nil || done.Status != operations.Completed {
		t.Fatalf("Wait: %+v %v", done, err)
	}
	live, _ := st1.EventsAfter(ctx, op.ID, 0)
	if err := e1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	st2 := open(t, m, s, ns, 0)
	e2, err := operations.New(operations.Config{Registry: reg, Store: st2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close(ctx)
	got, err := e2.Get(ctx, op.ID)
	if err != nil || got.Status != operations.Completed || string(got.Result) != `{"counted":20}` || got.ClientID != "alice" {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	evs, err := st2.EventsAfter(ctx, op.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || len(evs) > len(live) || evs[len(evs)-1].Type != operations.EventComplete {
		t.Errorf("history after restart: %d events (%d before), last %+v", len(evs), len(live), evs[len(evs)-1])
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Errorf("events out of order: %d after %d", evs[i].Seq, evs[i-1].Seq)
		}
	}
	if list, total, err := e2.List(ctx, operations.Filter{ClientID: "alice"}); err != nil || total != 1 || list[0].ID != op.ID {
		t.Errorf("List after restart: %d %v", total, err)
	}
}

func TestSecondCloseIsErrClosed(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	st := open(t, m, s, neo4jtest.Unique(t), 0)
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(context.Background()); !errors.Is(err, neo4jstore.ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := st.Create(context.Background(), operations.Operation{ID: "x"}); err != neo4jstore.ErrClosed {
		t.Errorf("Create after Close: %v", err)
	}
}

// TestSharedEventsAreFenced: events a replica appends after losing an
// operation do not land, the first event of an operation another replica
// claimed (or cancelled) at once does, and a Shared store answers from
// memory only for what it holds.
func TestSharedEventsAreFenced(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	ctx := context.Background()
	cfg := neo4jstore.Config{Manager: m, Environment: "test", Namespace: neo4jtest.Unique(t), Logger: quiet, Shared: true, ProgressInterval: time.Hour}
	a, b := openConfig(t, s, cfg), openConfig(t, s, cfg)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	event := func(seq int64, by string) operations.Event {
		return operations.Event{Seq: seq, Type: operations.EventLog, Time: time.Now().UTC(), Data: json.RawMessage(`{"by":"` + by + `"}`)}
	}
	history := func(id string) []string {
		t.Helper()
		must(a.Flush(ctx))
		must(b.Flush(ctx))
		other := openConfig(t, s, cfg) // reads only the database
		evs, err := other.EventsAfter(ctx, id, 0)
		must(err)
		var out []string
		for _, ev := range evs {
			out = append(out, fmt.Sprintf("%d %s", ev.Seq, ev.Data))
		}
		return out
	}

	// A creates two operations; before its first events are written, B
	// claims one and cancels the other.
	for _, id := range []string{"op_claimed", "op_cancelled"} {
		must(a.Create(ctx, operations.Operation{ID: id, Type: "t", Status: operations.Queued, ClientID: "c", CreatedAt: time.Now().UTC(), LastEventID: 1}))
		must(a.AppendEvent(ctx, id, event(1, "creator")))
	}
	if ops, err := b.Claim(ctx, "b", 1, time.Hour); err != nil || len(ops) != 1 || ops[0].ID != "op_claimed" {
		t.Fatalf("claim: %v %v", ops, err)
	}
	if _, err := b.RequestCancel(ctx, "op_cancelled", "no", time.Now()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`1 {"by":"creator"}`}, history("op_claimed")); diff != "" {
		t.Errorf("claimed at once (-want +got):\n%s", diff)
	}
	if got := history("op_cancelled"); len(got) != 2 || got[0] != `1 {"by":"creator"}` {
		t.Errorf("cancelled at once: %v", got)
	}

	// A claims with a short lease; B takes over; A's next events (as far
	// as A knows, its own) do not land, B's do.
	must(a.Create(ctx, operations.Operation{ID: "op_run", Type: "t", Status: operations.Queued, ClientID: "c", CreatedAt: time.Now().UTC()}))
	ops, err := a.Claim(ctx, "a", 1, 300*time.Millisecond)
	if err != nil || len(ops) != 1 {
		t.Fatalf("claim: %v %v", ops, err)
	}
	byA := ops[0]
	must(a.AppendEvent(ctx, byA.ID, event(1, "a")))
	byA.LastEventID = 1
	must(a.Put(ctx, byA))
	must(a.Flush(ctx))
	time.Sleep(500 * time.Millisecond)
	if ops, err := b.TakeOver(ctx, "b", 1, time.Hour); err != nil || len(ops) != 1 {
		t.Fatalf("take over: %v %v", ops, err)
	}
	must(a.AppendEvent(ctx, byA.ID, event(2, "a")))
	byA.LastEventID = 2
	must(a.Put(ctx, byA))
	if diff := cmp.Diff([]string{`1 {"by":"a"}`}, history(byA.ID)); diff != "" {
		t.Errorf("after A's late event (-want +got):\n%s", diff)
	}
	// A's lease ended: it reads B's run, not its own memory.
	if got, err := a.Get(ctx, byA.ID); err != nil || got.Replica != "b" || got.LastEventID != 1 {
		t.Errorf("A reads %+v %v", got, err)
	}
	if evs, err := a.EventsAfter(ctx, byA.ID, 0); err != nil || len(evs) != 1 {
		t.Errorf("A reads events %+v %v", evs, err)
	}
	// B skips numbers (as the engine does when it takes over); A's late
	// events do not land in the gap either.
	byB, err := b.Get(ctx, byA.ID)
	must(err)
	must(b.AppendEvent(ctx, byA.ID, event(5, "b")))
	byB.LastEventID = 5
	must(b.Put(ctx, byB))
	must(b.Flush(ctx))
	must(a.AppendEvent(ctx, byA.ID, event(3, "a")))
	if diff := cmp.Diff([]string{`1 {"by":"a"}`, `5 {"by":"b"}`}, history(byA.ID)); diff != "" {
		t.Errorf("after B's event (-want +got):\n%s", diff)
	}
}

// TestReplicatedEnginesOnSharedStores: two engines, each a replica on its
// own Shared store in one namespace, run every operation submitted to
// either exactly once; each is watched to its end on the other replica.
func TestReplicatedEnginesOnSharedStores(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	ctx := context.Background()
	cfg := neo4jstore.Config{Manager: m, Environment: "test", Namespace: neo4jtest.Unique(t), Logger: quiet, Shared: true}
	var mu sync.Mutex
	runs := map[string][]string{}
	var engines []*operations.Engine
	for _, name := range []string{"a", "b"} {
		reg := &operations.Registry{}
		if err := reg.Register(operations.Type{Name: "count", Run: func(ctx context.Context, params json.RawMessage, r operations.Reporter) (any, error) {
			var p struct{ N int }
			_ = json.Unmarshal(params, &p)
			mu.Lock()
			runs[fmt.Sprint(p.N)] = append(runs[fmt.Sprint(p.N)], name)
			mu.Unlock()
			r.Progress(operations.Progress{Done: 1, Total: 1})
			return name, nil
		}}); err != nil {
			t.Fatal(err)
		}
		e, err := operations.New(operations.Config{Registry: reg, Store: openConfig(t, s, cfg), Logger: quiet,
			Replica: name, MaxConcurrent: 2, PollInterval: 20 * time.Millisecond, Lease: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close(ctx) })
		engines = append(engines, e)
	}
	const n = 30
	var ids []string
	for i := range n {
		op, _, err := engines[i%2].Submit(ctx, operations.SubmitRequest{Type: "count", ClientID: fmt.Sprint("client", i%3), Params: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, op.ID)
	}
	ranOn := map[string]int{}
	for i, id := range ids {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		op, err := engines[(i+1)%2].Wait(wctx, id)
		cancel()
		if err != nil || op.Status != operations.Completed {
			t.Fatalf("%s: %+v %v", id, op, err)
		}
		var by string
		_ = json.Unmarshal(op.Result, &by)
		if name, _, _ := strings.Cut(op.Replica, "#"); by != name {
			t.Errorf("%s ran on %s, stored as %q", id, by, op.Replica)
		}
		ranOn[by]++
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if r := runs[fmt.Sprint(i)]; len(r) != 1 {
			t.Errorf("operation %d ran on %v", i, r)
		}
	}
	t.Logf("operations run per replica: %v", ranOn)
}

// TestCreateWithEventIsOneWrite: an operation created with its first event
// is read back by another replica's store with that event at once (no
// write-behind between them).
func TestCreateWithEventIsOneWrite(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	ctx := context.Background()
	cfg := neo4jstore.Config{Manager: m, Environment: "test", Namespace: neo4jtest.Unique(t), Logger: quiet, Shared: true, ProgressInterval: time.Hour}
	a, b := openConfig(t, s, cfg), openConfig(t, s, cfg)
	now := time.Now().UTC().Truncate(time.Millisecond)
	op := operations.Operation{ID: "op_first", Type: "t", Status: operations.Queued, ClientID: "c", CreatedAt: now, LastEventID: 1}
	ev := operations.Event{Seq: 1, Type: operations.EventStatus, Time: now, Data: json.RawMessage(`{"status":"queued"}`)}
	if err := a.CreateWithEvent(ctx, op, ev); err != nil {
		t.Fatal(err)
	}
	got, err := b.EventsAfter(ctx, op.ID, 0)
	if err != nil || len(got) != 1 || got[0].Seq != 1 || string(got[0].Data) != `{"status":"queued"}` || !got[0].Time.Equal(now) {
		t.Fatalf("the other replica reads %+v %v", got, err)
	}
	if stored, err := b.Get(ctx, op.ID); err != nil || stored.Status != operations.Queued || stored.LastEventID != 1 {
		t.Fatalf("the other replica reads %+v %v", stored, err)
	}
}

// TestCreateAndClaimOnlyWhenNothingIsQueued: a submit on a replica with a
// free slot starts its operation in the creating transaction when nothing
// else waits, and queues it when something does (the fair pick is then
// another operation): that one is claimed first, by any replica.
func TestCreateAndClaimOnlyWhenNothingIsQueued(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	ctx := context.Background()
	cfg := neo4jstore.Config{Manager: m, Environment: "test", Namespace: neo4jtest.Unique(t), Logger: quiet, Shared: true, ProgressInterval: time.Hour}
	a, b := openConfig(t, s, cfg), openConfig(t, s, cfg)
	now := time.Now().UTC().Truncate(time.Millisecond)
	newOp := func(id string) (operations.Operation, operations.Event) {
		return operations.Operation{ID: id, Type: "t", Status: operations.Queued, ClientID: "c", CreatedAt: now, LastEventID: 1, Params: json.RawMessage(`{"n":1}`)},
			operations.Event{Seq: 1, Type: operations.EventStatus, Time: now, Data: json.RawMessage(`{"status":"queued"}`)}
	}
	running := operations.Event{Seq: 2, Type: operations.EventStatus, Time: now, Data: json.RawMessage(`{"status":"running"}`)}
	op, ev := newOp("op_1")
	claimed, ok, err := a.CreateAndClaim(ctx, op, ev, running, "a#1", time.Minute)
	if err != nil || !ok || claimed.Status != operations.Running || claimed.Replica != "a#1" || claimed.Attempt != 1 || claimed.StartedAt == nil ||
		claimed.LastEventID != 2 || string(claimed.Params) != `{"n":1}` {
		t.Fatalf("with nothing queued: %+v %v %v", claimed, ok, err)
	}
	if got, err := b.Get(ctx, op.ID); err != nil || got.Status != operations.Running || got.Replica != "a#1" || got.LastEventID != 2 || string(got.Params) != `{"n":1}` {
		t.Fatalf("the other replica reads %+v %v", got, err)
	}
	// Both events are stored (the other replica reads the database), and
	// the claiming store answers with both from memory.
	for name, st := range map[string]*neo4jstore.Store{"other replica": b, "claiming replica": a} {
		evs, err := st.EventsAfter(ctx, op.ID, 0)
		if err != nil || len(evs) != 2 || evs[0].Seq != 1 || string(evs[0].Data) != `{"status":"queued"}` || evs[1].Seq != 2 || string(evs[1].Data) != `{"status":"running"}` {
			t.Fatalf("%s: events %+v %v", name, evs, err)
		}
	}

	waiting, ev2 := newOp("op_2")
	if err := b.CreateWithEvent(ctx, waiting, ev2); err != nil {
		t.Fatal(err)
	}
	late, ev3 := newOp("op_3")
	late.CreatedAt = now.Add(time.Millisecond)
	if _, ok, err := a.CreateAndClaim(ctx, late, ev3, running, "a#1", time.Minute); err != nil || ok {
		t.Fatalf("with op_2 queued, op_3 was claimed at create (%v, %v)", ok, err)
	}
	if got, err := b.Get(ctx, late.ID); err != nil || got.Status != operations.Queued || got.LastEventID != 1 {
		t.Fatalf("op_3 after create: %+v %v", got, err)
	}
	if evs, err := b.EventsAfter(ctx, late.ID, 0); err != nil || len(evs) != 1 || evs[0].Seq != 1 {
		t.Fatalf("op_3, not claimed, has events %+v %v (want its first only)", evs, err)
	}
	next, err := b.Claim(ctx, "b#1", 1, time.Minute)
	if err != nil || len(next) != 1 || next[0].ID != waiting.ID {
		t.Fatalf("the next claim took %+v (%v), want op_2", next, err)
	}
}

// TestEndedOperationIsServedUntilRetentionRemovesIt: the replica that
// wrote an operation's end answers Get from memory for a while, but not
// after retention removed it: its own retention pass forgets what another
// replica's deleted.
func TestEndedOperationIsServedUntilRetentionRemovesIt(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	ctx := context.Background()
	cfg := neo4jstore.Config{Manager: m, Environment: "test", Namespace: neo4jtest.Unique(t), Logger: quiet, Shared: true, ProgressInterval: time.Hour}
	a, b := openConfig(t, s, cfg), openConfig(t, s, cfg)
	ended := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	op := operations.Operation{ID: "op_ended", Type: "t", Status: operations.Queued, ClientID: "c", CreatedAt: ended, LastEventID: 1, Params: json.RawMessage(`{}`)}
	first := operations.Event{Seq: 1, Type: operations.EventStatus, Time: ended, Data: json.RawMessage(`{"status":"queued"}`)}
	running := operations.Event{Seq: 2, Type: operations.EventStatus, Time: ended, Data: json.RawMessage(`{"status":"running"}`)}
	claimed, ok, err := a.CreateAndClaim(ctx, op, first, running, "a#1", time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	done := claimed
	done.Status, done.FinishedAt, done.Params, done.Result, done.LastEventID = operations.Completed, &ended, nil, json.RawMessage(`{"n":1}`), 3
	if err := a.AppendEvent(ctx, op.ID, operations.Event{Seq: 3, Type: operations.EventComplete, Time: ended, Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, done); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*neo4jstore.Store{"writer": a, "other replica": b} {
		if got, err := st.Get(ctx, op.ID); err != nil || got.Status != operations.Completed || string(got.Result) != `{"n":1}` || got.Params != nil {
			t.Fatalf("%s reads %+v %v", name, got, err)
		}
	}
	if n, err := b.DeleteFinishedBefore(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("the other replica's retention deleted %d (%v), want 1", n, err)
	}
	if _, err := a.DeleteFinishedBefore(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, op.ID); !errors.Is(err, operations.ErrNotFound) {
		t.Fatalf("after retention the writer still reads %+v %v", got, err)
	}
}

// TestClaimWritesTheRunningEvent: ClaimWithEvent stores each claimed
// operation's running event with the claim; the other replica reads it,
// and the claiming store answers with it from memory.
func TestClaimWritesTheRunningEvent(t *testing.T) {
	t.Parallel()
	m, s := manager(t)
	ctx := context.Background()
	cfg := neo4jstore.Config{Manager: m, Environment: "test", Namespace: neo4jtest.Unique(t), Logger: quiet, Shared: true, ProgressInterval: time.Hour}
	a, b := openConfig(t, s, cfg), openConfig(t, s, cfg)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := range 3 {
		id := fmt.Sprintf("op_%d", i)
		op := operations.Operation{ID: id, Type: "t", Status: operations.Queued, ClientID: fmt.Sprint("c", i), CreatedAt: now.Add(time.Duration(i) * time.Millisecond), LastEventID: 1, Params: json.RawMessage(`{}`)}
		if err := b.CreateWithEvent(ctx, op, operations.Event{Seq: 1, Type: operations.EventStatus, Time: now, Data: json.RawMessage(`{"status":"queued"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	asked := map[string]int{}
	claimed, err := a.ClaimWithEvent(ctx, "a#1", 2, time.Minute, func(op operations.Operation) operations.Event {
		asked[op.ID]++
		return operations.Event{Seq: op.LastEventID + 1, Type: operations.EventStatus, Time: now, Data: json.RawMessage(`{"status":"running","id":"` + op.ID + `"}`)}
	})
	if err != nil || len(claimed) != 2 || claimed[0].ID != "op_0" || claimed[1].ID != "op_1" {
		t.Fatalf("claimed %+v %v", claimed, err)
	}
	if asked["op_2"] != 0 || asked["op_0"] == 0 || asked["op_1"] == 0 {
		t.Fatalf("next was asked for %v", asked)
	}
	for _, op := range claimed {
		if op.LastEventID != 2 || op.Status != operations.Running {
			t.Fatalf("claimed %+v", op)
		}
		for name, st := range map[string]*neo4jstore.Store{"other replica": b, "claiming replica": a} {
			got, err := st.Get(ctx, op.ID)
			if err != nil || got.LastEventID != 2 {
				t.Fatalf("%s: %s is %+v %v", name, op.ID, got, err)
			}
			evs, err := st.EventsAfter(ctx, op.ID, 0)
			if err != nil || len(evs) != 2 || evs[1].Seq != 2 || string(evs[1].Data) != `{"status":"running","id":"`+op.ID+`"}` {
				t.Fatalf("%s: events of %s: %+v %v", name, op.ID, evs, err)
			}
			if evs, err := st.EventsAfter(ctx, op.ID, 1); err != nil || len(evs) != 1 || evs[0].Seq != 2 {
				t.Fatalf("%s: events of %s after 1: %+v %v", name, op.ID, evs, err)
			}
		}
	}
	if evs, err := b.EventsAfter(ctx, "op_2", 0); err != nil || len(evs) != 1 {
		t.Fatalf("op_2, still queued, has events %+v %v", evs, err)
	}
}
