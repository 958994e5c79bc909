package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/atgraph/atg/operations"
)

// Shared is one shared store under test in RunShared.
type Shared struct {
	// A and B are the store as two replicas hold it: for a store in memory
	// the same value twice, for a database two stores on the same data.
	A, B operations.SharedStore
	// Lease is a lease short enough for Expire.
	Lease time.Duration
	// Expire returns once every lease of length Lease taken so far has
	// ended, and none much longer: it moves the store's clock, or sleeps.
	Expire func()
}

// RunShared runs every SharedStore case as a subtest, each on fresh,
// empty stores from newStore.
func RunShared(t *testing.T, newStore func(t *testing.T) Shared) {
	t.Helper()
	for _, c := range sharedCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t))
		})
	}
}

var sharedCases = []struct {
	name string
	run  func(t *testing.T, f Shared)
}{
	{"ClaimOrderAndFairness", claimOrderAndFairness},
	{"ClaimNeverTwice", claimNeverTwice},
	{"RenewKeepsAndLoses", renewKeepsAndLoses},
	{"TakeOverAfterExpiryOnly", takeOverAfterExpiryOnly},
	{"ReleaseBackToQueued", releaseBackToQueued},
	{"RequestCancel", requestCancel},
	{"SaveCheckpointFenced", saveCheckpointFenced},
	{"PutFenced", putFenced},
}

// replicas names the replicas A and B.
const replicaA, replicaB = "replica-a", "replica-b"

// long is a lease that does not end during a test.
const long = time.Hour

func queued(id, client string, i int) operations.Operation {
	op := full(id, client, i)
	op.LastEventID = 0
	return op
}

func claim(t *testing.T, s operations.SharedStore, replica string, n int, lease time.Duration) []operations.Operation {
	t.Helper()
	ops, err := s.Claim(context.Background(), replica, n, lease)
	must(t, err)
	return ops
}

func takeOver(t *testing.T, s operations.SharedStore, replica string, n int, lease time.Duration) []operations.Operation {
	t.Helper()
	ops, err := s.TakeOver(context.Background(), replica, n, lease)
	must(t, err)
	return ops
}

func get(t *testing.T, s operations.SharedStore, id string) operations.Operation {
	t.Helper()
	flushed(t, s)
	op, err := s.Get(context.Background(), id)
	must(t, err)
	return op
}

// leaseOf is what an operation says about who runs it.
type leaseOf struct {
	Status  operations.Status
	Replica string
	Attempt int
	Started bool
}

func leaseFields(op operations.Operation) leaseOf {
	return leaseOf{op.Status, op.Replica, op.Attempt, op.StartedAt != nil}
}

func claimOrderAndFairness(t *testing.T, f Shared) {
	ctx := context.Background()
	must(t, f.A.Create(ctx, queued("op_c1", "carol", 0)))
	if got := ids(claim(t, f.B, replicaB, 5, long)); !slices.Equal(got, []string{"op_c1"}) {
		t.Fatalf("B claimed %v, want [op_c1]", got)
	}
	// Created out of order: the age is CreatedAt, not the order of Create.
	for _, op := range []operations.Operation{
		queued("op_a2", "alice", 2), queued("op_a1", "alice", 1), queued("op_a3", "alice", 3),
		queued("op_b1", "bob", 4), queued("op_c2", "carol", -1),
	} {
		must(t, f.B.Create(ctx, op))
	}
	// Running: carol 1 (on B). alice and bob tie at 0: a1 is older; then
	// bob has fewest; then all have 1 and carol's c2 is the oldest; then
	// alice (1) before carol (2).
	got := claim(t, f.A, replicaA, 4, long)
	if diff := cmp.Diff([]string{"op_a1", "op_b1", "op_c2", "op_a2"}, ids(got)); diff != "" {
		t.Errorf("A's claim order (-want +got):\n%s", diff)
	}
	for _, op := range got {
		if diff := cmp.Diff(leaseOf{operations.Running, replicaA, 1, true}, leaseFields(op)); diff != "" {
			t.Errorf("claimed %s (-want +got):\n%s", op.ID, diff)
		}
		// The other replica sees the claim.
		if diff := cmp.Diff(leaseOf{operations.Running, replicaA, 1, true}, leaseFields(get(t, f.B, op.ID))); diff != "" {
			t.Errorf("%s read by B (-want +got):\n%s", op.ID, diff)
		}
	}
	if stored := get(t, f.A, "op_a1"); stored.ClientID != "alice" || stored.RequestDigest != "digest-op_a1" || string(stored.Params) != `{"nodes":[{"id":"a"}]}` || !stored.CreatedAt.Equal(at(1)) {
		t.Errorf("a claimed operation lost fields: %+v", stored)
	}
	if got := ids(claim(t, f.B, replicaB, 5, long)); !slices.Equal(got, []string{"op_a3"}) {
		t.Errorf("B's second claim %v, want [op_a3]", got)
	}
	if got := claim(t, f.A, replicaA, 5, long); len(got) != 0 {
		t.Errorf("claimed %v with nothing queued", ids(got))
	}
	if got := claim(t, f.A, replicaA, 0, long); len(got) != 0 {
		t.Errorf("claimed %v with n = 0", ids(got))
	}
}

// claimNeverTwice: two replicas claim 1,000 queued operations at once;
// each is claimed exactly once, by the replica the store names.
func claimNeverTwice(t *testing.T, f Shared) {
	ctx := context.Background()
	const n = 1000
	for i := range n {
		must(t, f.A.Create(ctx, queued(fmt.Sprintf("op_%04d", i), fmt.Sprint("client", i%7), i)))
	}
	flushed(t, f.A)
	claimed := map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, s := range []operations.SharedStore{f.A, f.B} {
		replica := []string{replicaA, replicaB}[i]
		wg.Go(func() {
			for batch := 1; ; batch = batch%13 + 1 {
				ops, err := s.Claim(ctx, replica, batch, long)
				if err != nil {
					errs <- err
					return
				}
				if len(ops) == 0 {
					// Empty may mean the other replica won every pick:
					// stop only when nothing is queued.
					flushed(t, s)
					_, left, err := s.List(ctx, operations.Filter{Status: operations.Queued, Limit: 1})
					if err != nil {
						errs <- err
						return
					}
					if left == 0 {
						return
					}
					continue
				}
				mu.Lock()
				for _, op := range ops {
					claimed[op.ID] = append(claimed[op.ID], replica)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if len(claimed) != n {
		t.Errorf("%d operations claimed, want %d", len(claimed), n)
	}
	twice := 0
	for id, by := range claimed {
		if len(by) != 1 {
			twice++
			if twice <= 5 {
				t.Errorf("%s claimed by %v", id, by)
			}
		}
	}
	byReplica := map[string]int{}
	running, _, err := f.B.List(ctx, operations.Filter{Status: operations.Running, Limit: 2 * n})
	must(t, err)
	for _, op := range running {
		byReplica[op.Replica]++
		if by := claimed[op.ID]; len(by) != 1 || by[0] != op.Replica || op.Attempt != 1 {
			t.Errorf("%s is stored as run by %q (attempt %d), claimed by %v", op.ID, op.Replica, op.Attempt, by)
		}
	}
	if len(running) != n {
		t.Errorf("%d stored running, want %d", len(running), n)
	}
	t.Logf("claimed by replica: %v", byReplica)
}

func renewKeepsAndLoses(t *testing.T, f Shared) {
	ctx := context.Background()
	for i, id := range []string{"op_kept", "op_lost"} {
		must(t, f.A.Create(ctx, queued(id, "alice", i)))
	}
	claim(t, f.A, replicaA, 2, f.Lease)
	renew := func(s operations.SharedStore, replica string, ids []string, lease time.Duration) map[string]operations.LeaseState {
		t.Helper()
		got, err := s.Renew(ctx, replica, ids, lease)
		must(t, err)
		return got
	}
	want := map[string]operations.LeaseState{"op_kept": {Held: true}, "op_missing": {}}
	if diff := cmp.Diff(want, renew(f.A, replicaA, []string{"op_kept", "op_missing"}, long)); diff != "" {
		t.Errorf("A renews (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]operations.LeaseState{"op_kept": {}}, renew(f.B, replicaB, []string{"op_kept"}, long)); diff != "" {
		t.Errorf("B renews A's operation (-want +got):\n%s", diff)
	}
	f.Expire()
	// Only the operation whose lease was not renewed is taken over.
	if got := ids(takeOver(t, f.B, replicaB, 5, long)); !slices.Equal(got, []string{"op_lost"}) {
		t.Errorf("B took over %v, want [op_lost]", got)
	}
	_, err := f.B.RequestCancel(ctx, "op_kept", "stop it", time.Now())
	must(t, err)
	want = map[string]operations.LeaseState{"op_kept": {Held: true, CancelReason: "stop it"}, "op_lost": {}}
	if diff := cmp.Diff(want, renew(f.A, replicaA, []string{"op_kept", "op_lost"}, long)); diff != "" {
		t.Errorf("A renews after B took one over and asked to cancel the other (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]operations.LeaseState{"op_lost": {Held: true}}, renew(f.B, replicaB, []string{"op_lost"}, long)); diff != "" {
		t.Errorf("B renews what it took over (-want +got):\n%s", diff)
	}
	if got := renew(f.A, replicaA, nil, long); len(got) != 0 {
		t.Errorf("Renew of no ids: %v", got)
	}
}

func takeOverAfterExpiryOnly(t *testing.T, f Shared) {
	ctx := context.Background()
	must(t, f.A.Create(ctx, queued("op_t", "alice", 0)))
	must(t, f.A.Create(ctx, queued("op_q", "alice", 1)))
	claim(t, f.A, replicaA, 1, f.Lease)
	must(t, f.A.SaveCheckpoint(ctx, replicaA, "op_t", json.RawMessage(`{"done":5}`)))
	if got := takeOver(t, f.B, replicaB, 5, long); len(got) != 0 {
		t.Errorf("took over %v before the lease ended", ids(got))
	}
	f.Expire()
	if got := takeOver(t, f.A, replicaA, 5, long); len(got) != 0 {
		t.Errorf("A took over its own operations %v: it still runs them", ids(got))
	}
	got := takeOver(t, f.B, replicaB, 5, long)
	if len(got) != 1 {
		t.Fatalf("took over %v, want [op_t] (op_q is queued)", ids(got))
	}
	if diff := cmp.Diff(leaseOf{operations.Running, replicaB, 2, true}, leaseFields(got[0])); diff != "" {
		t.Errorf("taken over (-want +got):\n%s", diff)
	}
	if string(got[0].Checkpoint) != `{"done":5}` {
		t.Errorf("taken over with checkpoint %s, want {\"done\":5}", got[0].Checkpoint)
	}
	stored := get(t, f.A, "op_t")
	if diff := cmp.Diff(leaseOf{operations.Running, replicaB, 2, true}, leaseFields(stored)); diff != "" || string(stored.Checkpoint) != `{"done":5}` {
		t.Errorf("read by A after B took it over: checkpoint %s (-want +got):\n%s", stored.Checkpoint, diff)
	}
	if got := takeOver(t, f.A, replicaA, 5, long); len(got) != 0 {
		t.Errorf("A took back %v while B's lease runs", ids(got))
	}
	if queued := get(t, f.B, "op_q"); queued.Status != operations.Queued || queued.Replica != "" || queued.Attempt != 0 {
		t.Errorf("a queued operation changed: %+v", leaseFields(queued))
	}
}

func releaseBackToQueued(t *testing.T, f Shared) {
	ctx := context.Background()
	must(t, f.A.Create(ctx, queued("op_rel", "alice", 0)))
	claim(t, f.A, replicaA, 1, long)
	must(t, f.A.SaveCheckpoint(ctx, replicaA, "op_rel", json.RawMessage(`{"chunk":3}`)))
	if err := f.B.Release(ctx, replicaB, "op_rel"); !errors.Is(err, operations.ErrLeaseLost) {
		t.Errorf("B releases A's operation: %v, want ErrLeaseLost", err)
	}
	must(t, f.A.Release(ctx, replicaA, "op_rel"))
	if err := f.A.Release(ctx, replicaA, "op_rel"); !errors.Is(err, operations.ErrLeaseLost) {
		t.Errorf("second Release: %v, want ErrLeaseLost", err)
	}
	if err := f.A.Release(ctx, replicaA, "op_missing"); !errors.Is(err, operations.ErrLeaseLost) && !errors.Is(err, operations.ErrNotFound) {
		t.Errorf("Release of a missing operation: %v", err)
	}
	for name, s := range map[string]operations.SharedStore{"A": f.A, "B": f.B} {
		op := get(t, s, "op_rel")
		if diff := cmp.Diff(leaseOf{operations.Queued, "", 1, true}, leaseFields(op)); diff != "" || string(op.Checkpoint) != `{"chunk":3}` {
			t.Errorf("released, read by %s: checkpoint %s (-want +got):\n%s", name, op.Checkpoint, diff)
		}
	}
	if got := takeOver(t, f.B, replicaB, 5, long); len(got) != 0 {
		t.Errorf("took over a released operation: %v", ids(got))
	}
	got := claim(t, f.B, replicaB, 5, long)
	if len(got) != 1 || got[0].ID != "op_rel" {
		t.Fatalf("claimed %v after release, want [op_rel]", ids(got))
	}
	if diff := cmp.Diff(leaseOf{operations.Running, replicaB, 2, true}, leaseFields(got[0])); diff != "" || string(got[0].Checkpoint) != `{"chunk":3}` {
		t.Errorf("claimed again: checkpoint %s (-want +got):\n%s", got[0].Checkpoint, diff)
	}
	// A, which released it, reads B's run.
	if diff := cmp.Diff(leaseOf{operations.Running, replicaB, 2, true}, leaseFields(get(t, f.A, "op_rel"))); diff != "" {
		t.Errorf("read by A after B claimed it (-want +got):\n%s", diff)
	}
}

func requestCancel(t *testing.T, f Shared) {
	ctx := context.Background()
	now := base.Add(time.Hour)
	setup := func(t *testing.T, id string, status operations.Status) {
		t.Helper()
		op := queued(id, "alice", 0)
		op.LastEventID = 1
		must(t, f.A.Create(ctx, op))
		must(t, f.A.AppendEvent(ctx, id, operations.Event{Seq: 1, Type: operations.EventStatus, Time: at(0), Data: json.RawMessage(`{"status":"queued"}`)}))
		flushed(t, f.A)
		if status == operations.Queued {
			return
		}
		// Claim takes the oldest; each subtest's operation is the only one
		// queued when it claims, as subtests run one after the other.
		got := claim(t, f.A, replicaA, 1, long)
		if len(got) != 1 || got[0].ID != id {
			t.Fatalf("claimed %v, want [%s]", ids(got), id)
		}
		if status == operations.Running {
			return
		}
		op = got[0]
		op.Status, op.FinishedAt, op.Result, op.LastEventID = status, ptr(at(5)), json.RawMessage(`{"n":1}`), 2
		must(t, f.A.AppendEvent(ctx, id, operations.Event{Seq: 2, Type: operations.EventComplete, Time: at(5), Data: json.RawMessage(`{}`)}))
		must(t, f.A.Put(ctx, op))
		flushed(t, f.A)
	}
	cancelledData, err := json.Marshal(operations.TerminalData{OperationID: "op_cq", Status: operations.Cancelled,
		Error: &operations.Error{Code: operations.CodeCancelled, Message: "not needed"}, Time: now})
	must(t, err)
	for _, tc := range []struct {
		name, id string
		status   operations.Status // before the cancel
		want     operations.Status // returned and stored
		wantErr  error
		// lastEvent is the stored last event's seq and type.
		lastEvent operations.Event
		reason    string // what the holder's Renew reports
	}{
		{name: "Queued", id: "op_cq", status: operations.Queued, want: operations.Cancelled,
			lastEvent: operations.Event{Seq: 2, Type: operations.EventError, Time: now, Data: cancelledData}},
		{name: "Running", id: "op_cr", status: operations.Running, want: operations.Running,
			lastEvent: operations.Event{Seq: 1, Type: operations.EventStatus, Time: at(0), Data: json.RawMessage(`{"status":"queued"}`)}, reason: "not needed"},
		{name: "Terminal", id: "op_ct", status: operations.Completed, want: operations.Completed,
			lastEvent: operations.Event{Seq: 2, Type: operations.EventComplete, Time: at(5), Data: json.RawMessage(`{}`)}},
		{name: "Missing", id: "op_none", wantErr: operations.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status != "" {
				setup(t, tc.id, tc.status)
			}
			got, err := f.B.RequestCancel(ctx, tc.id, "not needed", now)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("RequestCancel: %v, want %v", err, tc.wantErr)
				}
				return
			}
			must(t, err)
			for name, op := range map[string]operations.Operation{"returned": got, "read by A": get(t, f.A, tc.id), "read by B": get(t, f.B, tc.id)} {
				if op.Status != tc.want {
					t.Errorf("%s: status %s, want %s", name, op.Status, tc.want)
				}
				if tc.status == operations.Queued {
					want := operations.Error{Code: operations.CodeCancelled, Message: "not needed"}
					if op.Error == nil || cmp.Diff(want, *op.Error, cmpopts.IgnoreFields(operations.Error{}, "Err")) != "" || op.FinishedAt == nil || !op.FinishedAt.Equal(now) || op.LastEventID != 2 || op.Replica != "" {
						t.Errorf("%s: error %+v, finished %v, last event %d, replica %q", name, op.Error, op.FinishedAt, op.LastEventID, op.Replica)
					}
				}
			}
			for name, s := range map[string]operations.SharedStore{"A": f.A, "B": f.B} {
				evs, err := s.EventsAfter(ctx, tc.id, 0)
				must(t, err)
				if len(evs) == 0 {
					t.Fatalf("%s: no events", name)
				}
				if diff := cmp.Diff(tc.lastEvent, evs[len(evs)-1], cmpTime, cmp.Transformer("json", func(r json.RawMessage) string { return string(r) })); diff != "" || evs[0].Seq != 1 {
					t.Errorf("%s: first event %d; last event (-want +got):\n%s", name, evs[0].Seq, diff)
				}
			}
			if tc.status == operations.Running {
				st, err := f.A.Renew(ctx, replicaA, []string{tc.id}, long)
				must(t, err)
				if diff := cmp.Diff(operations.LeaseState{Held: true, CancelReason: tc.reason}, st[tc.id]); diff != "" {
					t.Errorf("A's Renew (-want +got):\n%s", diff)
				}
			}
			if got := claim(t, f.A, replicaA, 5, long); len(got) != 0 {
				t.Errorf("claimed %v", ids(got))
			}
		})
	}
}

func saveCheckpointFenced(t *testing.T, f Shared) {
	ctx := context.Background()
	must(t, f.A.Create(ctx, queued("op_cp", "alice", 0)))
	must(t, f.A.Create(ctx, queued("op_cpq", "alice", 1)))
	claim(t, f.A, replicaA, 1, f.Lease)
	for _, tc := range []struct {
		name, replica, id string
		wantErr           error
	}{
		{"Holder", replicaA, "op_cp", nil},
		{"OtherReplica", replicaB, "op_cp", operations.ErrLeaseLost},
		{"Queued", replicaA, "op_cpq", operations.ErrLeaseLost},
		{"Missing", replicaA, "op_none", operations.ErrNotFound},
	} {
		err := f.A.SaveCheckpoint(ctx, tc.replica, tc.id, json.RawMessage(`{"by":"`+tc.replica+`"}`))
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: SaveCheckpoint: %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	f.Expire()
	if got := takeOver(t, f.B, replicaB, 5, long); len(got) != 1 || string(got[0].Checkpoint) != `{"by":"replica-a"}` {
		t.Fatalf("took over %v", got)
	}
	if err := f.A.SaveCheckpoint(ctx, replicaA, "op_cp", json.RawMessage(`{"late":true}`)); !errors.Is(err, operations.ErrLeaseLost) {
		t.Errorf("SaveCheckpoint after the take-over: %v, want ErrLeaseLost", err)
	}
	must(t, f.B.SaveCheckpoint(ctx, replicaB, "op_cp", json.RawMessage(`{"by":"replica-b"}`)))
	for name, s := range map[string]operations.SharedStore{"A": f.A, "B": f.B} {
		if op := get(t, s, "op_cp"); string(op.Checkpoint) != `{"by":"replica-b"}` {
			t.Errorf("read by %s: checkpoint %s", name, op.Checkpoint)
		}
		if op := get(t, s, "op_cpq"); op.Checkpoint != nil {
			t.Errorf("read by %s: queued checkpoint %s", name, op.Checkpoint)
		}
	}
}

// putFenced: after B takes an operation over, A's writes do not land;
// B's do, without losing the lease, the cancel request or the checkpoint;
// and nothing lands after the end.
func putFenced(t *testing.T, f Shared) {
	ctx := context.Background()
	must(t, f.A.Create(ctx, queued("op_p", "alice", 0)))
	got := claim(t, f.A, replicaA, 1, f.Lease)
	if len(got) != 1 {
		t.Fatalf("claimed %v", ids(got))
	}
	byA := got[0]
	byA.Progress, byA.LastEventID = &operations.Progress{Done: 1, Total: 10}, 1
	must(t, f.A.AppendEvent(ctx, byA.ID, operations.Event{Seq: 1, Type: operations.EventStatus, Time: at(1), Data: json.RawMessage(`{"by":"a"}`)}))
	must(t, f.A.Put(ctx, byA))
	must(t, f.A.SaveCheckpoint(ctx, replicaA, byA.ID, json.RawMessage(`{"done":1}`)))
	flushed(t, f.A)
	f.Expire()
	got = takeOver(t, f.B, replicaB, 1, long)
	if len(got) != 1 || got[0].LastEventID != 1 || got[0].Progress == nil || got[0].Progress.Done != 1 {
		t.Fatalf("took over %+v", got)
	}
	byB := got[0]
	_, err := f.B.RequestCancel(ctx, byB.ID, "asked", time.Now())
	must(t, err)

	// A, unaware, reports more and even finishes.
	late := byA
	late.Progress, late.Status, late.FinishedAt, late.Result = &operations.Progress{Done: 9, Total: 10}, operations.Completed, ptr(at(9)), json.RawMessage(`{"by":"a"}`)
	if err := f.A.Put(ctx, late); err != nil && !errors.Is(err, operations.ErrLeaseLost) {
		t.Errorf("A's late Put: %v", err)
	}
	flushed(t, f.A)
	want := leaseOf{operations.Running, replicaB, 2, true}
	for name, s := range map[string]operations.SharedStore{"A": f.A, "B": f.B} {
		op := get(t, s, byB.ID)
		if diff := cmp.Diff(want, leaseFields(op)); diff != "" || op.Progress == nil || op.Progress.Done != 1 || op.Result != nil {
			t.Errorf("read by %s after A's late Put: progress %+v, result %s (-want +got):\n%s", name, op.Progress, op.Result, diff)
		}
	}

	// B's Put lands and keeps the lease, the cancel request and the
	// checkpoint (which Put does not write).
	byB.Progress, byB.LastEventID, byB.Checkpoint = &operations.Progress{Done: 5, Total: 10}, 2, nil
	must(t, f.B.AppendEvent(ctx, byB.ID, operations.Event{Seq: 2, Type: operations.EventLog, Time: at(2), Data: json.RawMessage(`{"by":"b"}`)}))
	must(t, f.B.Put(ctx, byB))
	flushed(t, f.B)
	// A's event of the same number does not replace B's.
	if err := f.A.AppendEvent(ctx, byB.ID, operations.Event{Seq: 2, Type: operations.EventLog, Time: at(3), Data: json.RawMessage(`{"by":"a"}`)}); err != nil && !errors.Is(err, operations.ErrLeaseLost) {
		t.Errorf("A's late event: %v", err)
	}
	flushed(t, f.A)
	if evs, err := f.B.EventsAfter(ctx, byB.ID, 1); err != nil || len(evs) != 1 || string(evs[0].Data) != `{"by":"b"}` {
		t.Errorf("event 2 after A's late one: %+v %v", evs, err)
	}
	if op := get(t, f.A, byB.ID); op.Progress == nil || op.Progress.Done != 5 || string(op.Checkpoint) != `{"done":1}` || op.LastEventID != 2 {
		t.Errorf("after B's Put: progress %+v, checkpoint %s, last event %d", op.Progress, op.Checkpoint, op.LastEventID)
	}
	st, err := f.B.Renew(ctx, replicaB, []string{byB.ID}, long)
	must(t, err)
	if diff := cmp.Diff(operations.LeaseState{Held: true, CancelReason: "asked"}, st[byB.ID]); diff != "" {
		t.Errorf("B's Renew after its Put (-want +got):\n%s", diff)
	}
	if got := takeOver(t, f.A, replicaA, 1, long); len(got) != 0 {
		t.Errorf("A took over %v: B's Put wiped its lease", ids(got))
	}

	// B finishes; a later Put (even B's own) does not reopen it.
	done := byB
	done.Status, done.FinishedAt, done.Error, done.LastEventID = operations.Cancelled, ptr(at(10)), &operations.Error{Code: operations.CodeCancelled, Message: "asked"}, 3
	must(t, f.B.AppendEvent(ctx, done.ID, operations.Event{Seq: 3, Type: operations.EventError, Time: at(10), Data: json.RawMessage(`{"by":"b"}`)}))
	must(t, f.B.Put(ctx, done))
	flushed(t, f.B)
	if err := f.B.Put(ctx, byB); err != nil && !errors.Is(err, operations.ErrLeaseLost) {
		t.Errorf("Put after the end: %v", err)
	}
	flushed(t, f.B)
	for name, s := range map[string]operations.SharedStore{"A": f.A, "B": f.B} {
		op := get(t, s, done.ID)
		if op.Status != operations.Cancelled || op.LastEventID != 3 {
			t.Errorf("read by %s after a Put after the end: %s, last event %d", name, op.Status, op.LastEventID)
		}
		evs, err := s.EventsAfter(ctx, done.ID, 0)
		must(t, err)
		var seqs []int64
		for _, ev := range evs {
			seqs = append(seqs, ev.Seq)
		}
		if !slices.Equal(seqs, []int64{1, 2, 3}) || string(evs[len(evs)-1].Data) != `{"by":"b"}` {
			t.Errorf("read by %s: events %v, the last %s", name, seqs, evs[len(evs)-1].Data)
		}
	}
}
