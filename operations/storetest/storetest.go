// Package storetest is the conformance suite every operations.Store passes:
// one table of behaviours, run against each implementation (the memory
// store in package operations, the Neo4j store in operations/neo4jstore).
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) operations.Store { return newMyStore(t) })
//	}
//
// RunShared is the suite of operations.SharedStore, with two replicas on
// one store and a way to let leases end.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/atgraph/atg/operations"
)

// Run runs every case of the suite as a subtest, each on a fresh, empty
// store from newStore.
func Run(t *testing.T, newStore func(t *testing.T) operations.Store) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t))
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, s operations.Store)
}{
	{"RoundTrip", roundTrip},
	{"Missing", missing},
	{"ListFiltersAndPages", listFiltersAndPages},
	{"Idempotency", idempotency},
	{"Unfinished", unfinished},
	{"Events", events},
	{"Retention", retention},
	{"Counts", counts},
	{"ConcurrentWriters", concurrentWriters},
}

// base is a fixed instant with nanoseconds, so that stores must keep them.
var base = time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)

func at(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

func ptr[T any](v T) *T { return &v }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// flushed waits until what s accepted is readable as the suite expects:
// stores that write behind implement Flush(ctx) error.
func flushed(t *testing.T, s operations.Store) {
	t.Helper()
	if f, ok := s.(interface{ Flush(context.Context) error }); ok {
		must(t, f.Flush(context.Background()))
	}
}

var cmpTime = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func full(id, client string, i int) operations.Operation {
	return operations.Operation{
		ID: id, Type: "import", Status: operations.Queued, ClientID: client, CreatedAt: at(i),
		Params: json.RawMessage(`{"nodes":[{"id":"a"}]}`), IdempotencyKey: "", RequestDigest: "digest-" + id,
		LastEventID: 1,
	}
}

func roundTrip(t *testing.T, s operations.Store) {
	ctx := context.Background()
	op := full("op_round", "alice", 0)
	op.IdempotencyKey = "key-1"
	must(t, s.Create(ctx, op))
	got, err := s.Get(ctx, op.ID)
	must(t, err)
	if diff := cmp.Diff(op, got, cmpTime); diff != "" {
		t.Errorf("after Create (-want +got):\n%s", diff)
	}
	op.Status, op.StartedAt = operations.Running, ptr(at(1))
	op.Progress = &operations.Progress{Percent: 42.5, Phase: "nodes", Message: "42 of 100", Done: 42, Total: 100}
	op.LastEventID = 7
	must(t, s.Put(ctx, op))
	op.Status, op.FinishedAt = operations.Failed, ptr(at(2))
	op.Error = &operations.Error{Code: "IMPORT_FAILED", Message: "chunk 3 failed", Details: map[string]any{"offset": json.Number("2000"), "neo4j_code": "Neo.X"}}
	op.Result = json.RawMessage(`{"nodes":2000}`)
	op.Params = nil // as the engine clears them at the end
	must(t, s.Put(ctx, op))
	flushed(t, s)
	got, err = s.Get(ctx, op.ID)
	must(t, err)
	// Details come back as JSON values: compare their encoding.
	wantDetails, _ := json.Marshal(op.Error.Details)
	var gotDetails []byte
	if got.Error != nil {
		gotDetails, _ = json.Marshal(got.Error.Details)
	}
	if string(gotDetails) != string(wantDetails) {
		t.Errorf("error details %s, want %s", gotDetails, wantDetails)
	}
	if diff := cmp.Diff(op, got, cmpTime, cmpopts.IgnoreFields(operations.Error{}, "Details")); diff != "" {
		t.Errorf("after Put (-want +got):\n%s", diff)
	}
}

func missing(t *testing.T, s operations.Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "op_missing"); !errors.Is(err, operations.ErrNotFound) {
		t.Errorf("Get: %v", err)
	}
	if err := s.Put(ctx, full("op_missing", "a", 0)); !errors.Is(err, operations.ErrNotFound) {
		t.Errorf("Put: %v", err)
	}
	if err := s.AppendEvent(ctx, "op_missing", operations.Event{Seq: 1, Type: operations.EventStatus}); !errors.Is(err, operations.ErrNotFound) {
		t.Errorf("AppendEvent: %v", err)
	}
	if _, err := s.EventsAfter(ctx, "op_missing", 0); !errors.Is(err, operations.ErrNotFound) {
		t.Errorf("EventsAfter: %v", err)
	}
	if _, ok, err := s.FindIdempotent(ctx, "a", "nope"); ok || err != nil {
		t.Errorf("FindIdempotent: %v %v", ok, err)
	}
}

func ids(ops []operations.Operation) []string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = op.ID
	}
	return out
}

func listFiltersAndPages(t *testing.T, s operations.Store) {
	ctx := context.Background()
	for i := range 9 {
		op := full(fmt.Sprintf("op_%02d", i), []string{"alice", "bob", "carol"}[i%3], i)
		if i%2 == 1 {
			op.Type = "scan"
		}
		must(t, s.Create(ctx, op))
	}
	op, err := s.Get(ctx, "op_04")
	must(t, err)
	op.Status = operations.Running
	must(t, s.Put(ctx, op))
	flushed(t, s)
	for _, tc := range []struct {
		f     operations.Filter
		want  []string
		total int
	}{
		{operations.Filter{}, []string{"op_08", "op_07", "op_06", "op_05", "op_04", "op_03", "op_02", "op_01", "op_00"}, 9},
		{operations.Filter{Limit: 2}, []string{"op_08", "op_07"}, 9},
		{operations.Filter{Limit: 3, Offset: 7}, []string{"op_01", "op_00"}, 9},
		{operations.Filter{Offset: 20}, nil, 9},
		{operations.Filter{ClientID: "alice"}, []string{"op_06", "op_03", "op_00"}, 3},
		{operations.Filter{ClientID: "bob", Type: "scan"}, []string{"op_07", "op_01"}, 2},
		{operations.Filter{Status: operations.Running}, []string{"op_04"}, 1},
		{operations.Filter{ClientID: "nobody"}, nil, 0},
	} {
		page, total, err := s.List(ctx, tc.f)
		must(t, err)
		if diff := cmp.Diff(tc.want, ids(page), cmpopts.EquateEmpty()); diff != "" || total != tc.total {
			t.Errorf("List(%+v): total %d, want %d; ids (-want +got):\n%s", tc.f, total, tc.total, diff)
		}
	}
}

func idempotency(t *testing.T, s operations.Store) {
	ctx := context.Background()
	a := full("op_a", "alice", 0)
	a.IdempotencyKey = "k"
	b := full("op_b", "bob", 1)
	b.IdempotencyKey = "k"
	must(t, s.Create(ctx, a))
	must(t, s.Create(ctx, b))
	for client, want := range map[string]string{"alice": "op_a", "bob": "op_b"} {
		got, ok, err := s.FindIdempotent(ctx, client, "k")
		if err != nil || !ok || got.ID != want || got.RequestDigest != "digest-"+want {
			t.Errorf("FindIdempotent(%s): %v %v %v", client, got.ID, ok, err)
		}
	}
	if _, ok, _ := s.FindIdempotent(ctx, "carol", "k"); ok {
		t.Error("carol found another client's key")
	}
}

func unfinished(t *testing.T, s operations.Store) {
	ctx := context.Background()
	for i, st := range operations.Statuses() {
		op := full(fmt.Sprint("op_", st), "alice", i)
		op.Status = st
		if st.Terminal() {
			op.FinishedAt = ptr(at(i))
		}
		must(t, s.Create(ctx, op))
	}
	flushed(t, s)
	ops, err := s.Unfinished(ctx)
	must(t, err)
	got := ids(ops)
	slices.Sort(got)
	if diff := cmp.Diff([]string{"op_queued", "op_running"}, got); diff != "" {
		t.Errorf("Unfinished (-want +got):\n%s", diff)
	}
}

func events(t *testing.T, s operations.Store) {
	ctx := context.Background()
	must(t, s.Create(ctx, full("op_ev", "alice", 0)))
	types := []operations.EventType{operations.EventStatus, operations.EventLog, operations.EventStatus, operations.EventLog, operations.EventComplete}
	for i, typ := range types {
		ev := operations.Event{Seq: int64(i + 1), Type: typ, Time: at(i), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i+1))}
		must(t, s.AppendEvent(ctx, "op_ev", ev))
	}
	// Readable at once, before and after a flush.
	for _, flush := range []bool{false, true} {
		if flush {
			flushed(t, s)
		}
		for after, want := range map[int64][]int64{
			math.MinInt64: {1, 2, 3, 4, 5}, 0: {1, 2, 3, 4, 5}, 2: {3, 4, 5}, 4: {5}, 5: nil, math.MaxInt64: nil,
		} {
			evs, err := s.EventsAfter(ctx, "op_ev", after)
			must(t, err)
			var seqs []int64
			for _, ev := range evs {
				seqs = append(seqs, ev.Seq)
			}
			if diff := cmp.Diff(want, seqs); diff != "" {
				t.Errorf("flushed %v, EventsAfter(%d) (-want +got):\n%s", flush, after, diff)
			}
		}
	}
	evs, err := s.EventsAfter(ctx, "op_ev", 4)
	must(t, err)
	if len(evs) != 1 || evs[0].Type != operations.EventComplete || string(evs[0].Data) != `{"n":5}` || !evs[0].Time.Equal(at(4)) {
		t.Errorf("event 5: %+v", evs)
	}
}

func retention(t *testing.T, s operations.Store) {
	ctx := context.Background()
	for i := range 6 {
		op := full(fmt.Sprint("op_r", i), "alice", i)
		if i < 5 {
			op.Status, op.FinishedAt = operations.Completed, ptr(at(i))
		}
		must(t, s.Create(ctx, op))
		must(t, s.AppendEvent(ctx, op.ID, operations.Event{Seq: 1, Type: operations.EventStatus, Time: at(i), Data: json.RawMessage(`{}`)}))
	}
	flushed(t, s)
	n, err := s.DeleteFinishedBefore(ctx, at(3))
	must(t, err)
	if n != 3 {
		t.Errorf("deleted %d, want 3 (finished at 0, 1, 2 s)", n)
	}
	for i, kept := range []bool{false, false, false, true, true, true} {
		_, err := s.Get(ctx, fmt.Sprint("op_r", i))
		if (err == nil) != kept {
			t.Errorf("op_r%d kept=%v, want %v", i, err == nil, kept)
		}
		if _, err := s.EventsAfter(ctx, fmt.Sprint("op_r", i), 0); (err == nil) != kept {
			t.Errorf("op_r%d events kept=%v, want %v", i, err == nil, kept)
		}
	}
	if _, total, _ := s.List(ctx, operations.Filter{}); total != 3 {
		t.Errorf("%d left after retention, want 3", total)
	}
}

func counts(t *testing.T, s operations.Store) {
	c, ok := s.(operations.Counter)
	if !ok {
		t.Skip("the store does not implement operations.Counter")
	}
	ctx := context.Background()
	for i, st := range []operations.Status{operations.Queued, operations.Queued, operations.Running, operations.Completed} {
		op := full(fmt.Sprint("op_c", i), "alice", i)
		op.Status = st
		must(t, s.Create(ctx, op))
	}
	op, err := s.Get(ctx, "op_c2")
	must(t, err)
	op.Status, op.FinishedAt = operations.Cancelled, ptr(at(9))
	must(t, s.Put(ctx, op))
	flushed(t, s)
	got, err := c.Counts(ctx)
	must(t, err)
	want := map[operations.Status]int{operations.Queued: 2, operations.Completed: 1, operations.Cancelled: 1}
	for st, n := range got {
		if n == 0 {
			delete(got, st)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Counts (-want +got):\n%s", diff)
	}
}

func concurrentWriters(t *testing.T, s operations.Store) {
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			op := full(fmt.Sprintf("op_w%02d", i), fmt.Sprint("client", i%4), i)
			if err := s.Create(ctx, op); err != nil {
				errs <- err
				return
			}
			for seq := int64(1); seq <= 5; seq++ {
				if err := s.AppendEvent(ctx, op.ID, operations.Event{Seq: seq, Type: operations.EventLog, Time: at(i), Data: json.RawMessage(`{}`)}); err != nil {
					errs <- err
					return
				}
			}
			op.Status, op.FinishedAt = operations.Completed, ptr(at(i))
			errs <- s.Put(ctx, op)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	flushed(t, s)
	if _, total, _ := s.List(ctx, operations.Filter{Status: operations.Completed}); total != n {
		t.Errorf("%d completed, want %d", total, n)
	}
	for i := range n {
		evs, err := s.EventsAfter(ctx, fmt.Sprintf("op_w%02d", i), 0)
		if err != nil || len(evs) != 5 {
			t.Errorf("op_w%02d: %d events, %v", i, len(evs), err)
		}
	}
}
