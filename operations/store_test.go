package operations

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMemoryStoreCountsIndexAndLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &MemoryStore{MaxFinished: 3}
	base := time.Now().UTC()
	for i := range 6 {
		client := []string{"a", "b"}[i%2]
		if err := s.Create(ctx, Operation{ID: fmt.Sprint("op", i), Type: "t", Status: Queued, ClientID: client, CreatedAt: base}); err != nil {
			t.Fatal(err)
		}
	}
	counts, _ := s.Counts(ctx)
	if diff := cmp.Diff(map[Status]int{Queued: 6}, counts); diff != "" {
		t.Error(diff)
	}
	// Finish op0..op4 one by one: only the 3 most recently finished stay.
	for i := range 5 {
		op, _ := s.Get(ctx, fmt.Sprint("op", i))
		at := base.Add(time.Duration(i) * time.Second)
		op.Status, op.FinishedAt = Completed, &at
		if err := s.Put(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	counts, _ = s.Counts(ctx)
	if diff := cmp.Diff(map[Status]int{Queued: 1, Completed: 3}, counts); diff != "" {
		t.Errorf("counts after finishing 5 with MaxFinished 3:\n%s", diff)
	}
	for i, want := range []bool{false, false, true, true, true, true} {
		if _, err := s.Get(ctx, fmt.Sprint("op", i)); (err == nil) != want {
			t.Errorf("op%d kept=%v, want %v", i, err == nil, want)
		}
	}
	// List by client uses the index and still pages newest first.
	page, total, _ := s.List(ctx, Filter{ClientID: "a"})
	if total != 2 || page[0].ID != "op4" || page[1].ID != "op2" {
		t.Errorf("client a: %d %v", total, page)
	}
	page, total, _ = s.List(ctx, Filter{ClientID: "b", Limit: 1})
	if total != 2 || page[0].ID != "op5" {
		t.Errorf("client b: %d %v", total, page)
	}
	// Retention removes the finished ones older than t, oldest first.
	n, _ := s.DeleteFinishedBefore(ctx, base.Add(3500*time.Millisecond))
	if n != 2 {
		t.Errorf("deleted %d, want 2 (op2, op3)", n)
	}
	counts, _ = s.Counts(ctx)
	if diff := cmp.Diff(map[Status]int{Queued: 1, Completed: 1}, counts); diff != "" {
		t.Errorf("counts after retention:\n%s", diff)
	}
	if _, total, _ := s.List(ctx, Filter{}); total != 2 {
		t.Errorf("total %d after retention", total)
	}
}

// TestMemoryStoreListCostsFollowTheClient: with many operations of other
// clients, listing one client's stays cheap and counting is O(1).
func TestMemoryStoreListCostsFollowTheClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &MemoryStore{}
	for i := range 50_000 {
		_ = s.Create(ctx, Operation{ID: fmt.Sprint("op", i), Status: Completed, ClientID: fmt.Sprint("c", i%1000)})
	}
	start := time.Now()
	for range 1000 {
		if _, total, _ := s.List(ctx, Filter{ClientID: "c7", Limit: 10}); total != 50 {
			t.Fatalf("total %d", total)
		}
		if c, _ := s.Counts(ctx); c[Completed] != 50_000 {
			t.Fatalf("counts %v", c)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1,000 client lists and counts over 50,000 operations took %s", d)
	}
}

// TestMemoryStoreIndexNeverShowsAnotherClients: the per-client index may
// hold a stale ID (deleted entries are dropped lazily), so an ID used again
// by another client, or an operation Put with another owner, must not show
// up in the first client's list.
func TestMemoryStoreIndexNeverShowsAnotherClients(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &MemoryStore{}
	at := time.Now().UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Create(ctx, Operation{ID: "reused", Status: Completed, ClientID: "a", FinishedAt: &at}))
	if n, _ := s.DeleteFinishedBefore(ctx, at.Add(time.Second)); n != 1 {
		t.Fatalf("deleted %d", n)
	}
	must(s.Create(ctx, Operation{ID: "reused", Status: Queued, ClientID: "b"}))
	must(s.Create(ctx, Operation{ID: "moved", Status: Queued, ClientID: "a"}))
	must(s.Put(ctx, Operation{ID: "moved", Status: Queued, ClientID: "b"}))
	if page, total, _ := s.List(ctx, Filter{ClientID: "a"}); total != 0 || len(page) != 0 {
		t.Errorf("client a sees %d operations: %+v", total, page)
	}
}

// TestMemoryStoreEventsAfterTheLargestSeq: after math.MaxInt64 there is
// nothing (Engine.Wait subscribes there), and every other after works too.
func TestMemoryStoreEventsAfterTheLargestSeq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &MemoryStore{}
	if err := s.Create(ctx, Operation{ID: "op", Status: Queued, ClientID: "c"}); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 3; seq++ {
		if err := s.AppendEvent(ctx, "op", Event{Seq: seq, Type: EventStatus}); err != nil {
			t.Fatal(err)
		}
	}
	for after, want := range map[int64]int{math.MinInt64: 3, -1: 3, 0: 3, 1: 2, 2: 1, 3: 0, 4: 0, math.MaxInt64: 0} {
		evs, err := s.EventsAfter(ctx, "op", after)
		if err != nil || len(evs) != want || (want > 0 && evs[0].Seq != int64(4-want)) {
			t.Errorf("EventsAfter(%d): %+v %v, want %d events", after, evs, err, want)
		}
	}
}
