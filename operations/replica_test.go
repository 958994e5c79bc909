package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// clock is a MemoryStore clock tests move forward to expire leases.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// mortalStore is a replica's view of the shared store: after kill every
// write fails, as if its process had died (its work may still run, but
// nothing it does reaches the store).
type mortalStore struct {
	*MemoryStore
	dead atomic.Bool
}

var errDead = errors.New("replica is dead")

func (s *mortalStore) kill() { s.dead.Store(true) }

func (s *mortalStore) check() error {
	if s.dead.Load() {
		return errDead
	}
	return nil
}

func (s *mortalStore) Put(ctx context.Context, op Operation) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.MemoryStore.Put(ctx, op)
}

func (s *mortalStore) AppendEvent(ctx context.Context, id string, ev Event) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.MemoryStore.AppendEvent(ctx, id, ev)
}

func (s *mortalStore) Claim(ctx context.Context, replica string, n int, lease time.Duration) ([]Operation, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.MemoryStore.Claim(ctx, replica, n, lease)
}

func (s *mortalStore) TakeOver(ctx context.Context, replica string, n int, lease time.Duration) ([]Operation, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.MemoryStore.TakeOver(ctx, replica, n, lease)
}

func (s *mortalStore) Renew(ctx context.Context, replica string, ids []string, lease time.Duration) (map[string]LeaseState, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.MemoryStore.Renew(ctx, replica, ids, lease)
}

func (s *mortalStore) Release(ctx context.Context, replica, id string) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.MemoryStore.Release(ctx, replica, id)
}

func (s *mortalStore) SaveCheckpoint(ctx context.Context, replica, id string, cp json.RawMessage) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.MemoryStore.SaveCheckpoint(ctx, replica, id, cp)
}

const testLease = time.Minute

// replicas shares one MemoryStore (on a clock tests move) between engines.
type replicas struct {
	t     *testing.T
	store *MemoryStore
	clock *clock
}

func newReplicas(t *testing.T) *replicas {
	c := &clock{}
	return &replicas{t: t, store: &MemoryStore{Now: c.now}, clock: c}
}

// start starts replica name with its own view of the store.
func (rs *replicas) start(name string, maxConcurrent int, types ...Type) (*Engine, *mortalStore) {
	view := &mortalStore{MemoryStore: rs.store}
	e := newEngine(rs.t, Config{Store: view, Replica: name, MaxConcurrent: maxConcurrent,
		PollInterval: 10 * time.Millisecond, Lease: testLease}, types...)
	return e, view
}

// stepper is resumable work of params {"name", "steps"}: each step waits
// for a tick, then saves a checkpoint. Its result says where each run
// started.
type stepper struct {
	mu     sync.Mutex
	ticks  map[string]chan struct{}
	starts map[string][]int
}

func newStepper() *stepper {
	return &stepper{ticks: map[string]chan struct{}{}, starts: map[string][]int{}}
}

func (s *stepper) tick(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ticks[name] == nil {
		s.ticks[name] = make(chan struct{}, 100)
	}
	return s.ticks[name]
}

func (s *stepper) advance(name string, n int) {
	for range n {
		s.tick(name) <- struct{}{}
	}
}

type stepResult struct {
	Steps  int   `json:"steps"`
	Starts []int `json:"starts"`
}

func (s *stepper) typ() Type {
	return Type{Name: "steps", Resumable: true, Run: func(ctx context.Context, params json.RawMessage, r Reporter) (any, error) {
		var p struct {
			Name  string
			Steps int
		}
		_ = json.Unmarshal(params, &p)
		var cp struct{ Done int }
		if raw, ok := ResumeFrom(ctx); ok {
			if err := json.Unmarshal(raw, &cp); err != nil {
				return nil, err
			}
		}
		s.mu.Lock()
		s.starts[p.Name] = append(s.starts[p.Name], cp.Done)
		s.mu.Unlock()
		tick := s.tick(p.Name)
		for cp.Done < p.Steps {
			select {
			case <-tick:
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
			cp.Done++
			if err := SaveCheckpoint(ctx, cp); err != nil {
				return nil, err
			}
			r.Progress(Progress{Done: int64(cp.Done), Total: int64(p.Steps)})
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return stepResult{Steps: cp.Done, Starts: s.starts[p.Name]}, nil
	}}
}

func submitSteps(t *testing.T, e *Engine, name string, steps int) Operation {
	t.Helper()
	op, _, err := e.Submit(context.Background(), SubmitRequest{ClientID: "c", Type: "steps", Params: json.RawMessage(fmt.Sprintf(`{"name":%q,"steps":%d}`, name, steps))})
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReplicasRunEachOperationOnce(t *testing.T) {
	rs := newReplicas(t)
	var mu sync.Mutex
	runs := map[string]int{}
	running, peak := map[string]int{}, map[string]int{}
	countType := func(replica string) Type {
		return Type{Name: "count", Run: func(ctx context.Context, params json.RawMessage, r Reporter) (any, error) {
			var p struct{ Name string }
			_ = json.Unmarshal(params, &p)
			mu.Lock()
			runs[p.Name]++
			running[replica]++
			peak[replica] = max(peak[replica], running[replica])
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			running[replica]--
			mu.Unlock()
			return replica, nil
		}}
	}
	var es []*Engine
	for _, name := range []string{"a", "b", "c"} {
		e, _ := rs.start(name, 2, countType(name))
		es = append(es, e)
	}
	var ids []string
	for i := range 300 {
		op := submit(t, es[i%3], fmt.Sprintf("client-%d", i%5), "count", fmt.Sprintf("op-%d", i))
		ids = append(ids, op.ID)
	}
	ranOn := map[string]int{}
	for i, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		op, err := es[(i+1)%3].Wait(ctx, id) // watched on another replica than the one it was submitted to
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if op.Status != Completed {
			t.Fatalf("%s is %s (%v)", id, op.Status, op.Error)
		}
		var replica string
		_ = json.Unmarshal(op.Result, &replica)
		if !strings.HasPrefix(op.Replica, replica+"#") {
			t.Errorf("%s ran on %s but says replica %q", id, replica, op.Replica)
		}
		ranOn[replica]++
	}
	for i := range 300 {
		if n := runs[fmt.Sprintf("op-%d", i)]; n != 1 {
			t.Errorf("op-%d ran %d times", i, n)
		}
	}
	for r, p := range peak {
		if p > 2 {
			t.Errorf("replica %s ran %d at once, more than its MaxConcurrent 2", r, p)
		}
	}
	t.Logf("operations run per replica: %v", ranOn)
}

func TestReplicaWatchAndCancelAcross(t *testing.T) {
	rs := newReplicas(t)
	g := newGate()
	// b and c are kept busy, so the target can only run on a.
	b, _ := rs.start("b", 1, g.typ("gate"))
	c, _ := rs.start("c", 1, g.typ("gate"))
	for i, e := range []*Engine{b, c} {
		submit(t, e, "other", "gate", fmt.Sprintf("busy-%d", i))
		t.Cleanup(func() { g.open(fmt.Sprintf("busy-%d", i), nil) })
	}
	waitFor(t, "b and c are busy", func() bool { return len(g.started) == 2 })
	<-g.started
	<-g.started
	a, _ := rs.start("a", 1, g.typ("gate"))
	op := submit(t, a, "c1", "gate", "target")
	waitFor(t, "the target runs", func() bool {
		got, err := b.Get(context.Background(), op.ID)
		return err == nil && got.Status == Running
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub, err := b.Subscribe(ctx, op.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first, err := sub.Next(ctx)
	if err != nil || first.Seq != 1 || first.Type != EventStatus {
		t.Fatalf("first event on another replica: %+v, %v", first, err)
	}

	start := time.Now()
	got, err := c.Cancel(ctx, op.ID, "")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != Cancelled || took > time.Second {
		t.Errorf("Cancel on a third replica: %s after %v, want cancelled within 1 s", got.Status, took)
	}
	select {
	case cause := <-g.ctxErrs:
		if cause == nil || cause.Error() != ReasonClientAsked {
			t.Errorf("the work's context ended with %v", cause)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the work on replica a was not cancelled")
	}
	evs, err := drain(ctx, sub)
	if !errors.Is(err, io.EOF) || len(evs) == 0 {
		t.Fatalf("the watcher on b: %d more events, then %v", len(evs), err)
	}
	last := evs[len(evs)-1]
	if last.Type != EventError || !json.Valid(last.Data) {
		t.Fatalf("the watcher on b ends with %+v", last)
	}
	var td TerminalData
	_ = json.Unmarshal(last.Data, &td)
	if td.Status != Cancelled {
		t.Errorf("terminal event says %s", td.Status)
	}
	if _, err := c.Cancel(ctx, op.ID, ""); !errors.Is(err, ErrNotCancellable) {
		t.Errorf("second cancel: %v, want ErrNotCancellable", err)
	}
}

func TestReplicaCancelsQueuedWorkAtOnce(t *testing.T) {
	rs := newReplicas(t)
	g := newGate()
	a, _ := rs.start("a", 1, g.typ("gate"))
	b, _ := rs.start("b", 1, g.typ("gate"))
	for i, e := range []*Engine{a, b} {
		submit(t, e, "x", "gate", fmt.Sprintf("busy-%d", i))
		t.Cleanup(func() { g.open(fmt.Sprintf("busy-%d", i), nil) })
	}
	waitFor(t, "both replicas are busy", func() bool { return len(g.started) == 2 })
	op := submit(t, a, "y", "gate", "queued")
	got, err := b.Cancel(context.Background(), op.ID, "not needed")
	if err != nil || got.Status != Cancelled || got.Error == nil || got.Error.Message != "not needed" {
		t.Fatalf("Cancel of queued work on another replica: %+v, %v", got, err)
	}
	evs := allEvents(t, a, op.ID, 0)
	if diff := cmp.Diff([]EventType{EventStatus, EventError}, types(evs)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	g.open("busy-0", nil)
	g.open("busy-1", nil)
	time.Sleep(50 * time.Millisecond)
	for len(g.started) > 0 {
		if name := <-g.started; name == "queued" {
			t.Error("a cancelled queued operation started")
		}
	}
}

// TestReplicaTakesOverResumableWork: the work of a dead replica resumes
// from its checkpoint on another, or on the same one restarted under its
// old name (a new process is a new lease holder).
func TestReplicaTakesOverResumableWork(t *testing.T) {
	for _, successor := range []string{"b", "a"} {
		t.Run("on "+successor, func(t *testing.T) { testTakeOverResumable(t, successor) })
	}
}

func testTakeOverResumable(t *testing.T, successor string) {
	rs := newReplicas(t)
	st := newStepper()
	a, aStore := rs.start("a", 1, st.typ())
	op := submitSteps(t, a, "job", 10)
	st.advance("job", 3)
	waitFor(t, "3 steps are checkpointed", func() bool {
		got, _ := rs.store.Get(context.Background(), op.ID)
		return string(got.Checkpoint) == `{"Done":3}`
	})
	aStore.kill() // a dies: nothing more of it reaches the store
	// Its work, still running in this test process, fails its next
	// checkpoint and stops.
	st.advance("job", 1)
	waitFor(t, "the dead replica's work stops", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.running) == 0
	})
	b, _ := rs.start(successor, 1, st.typ())
	rs.clock.advance(2 * testLease)
	waitFor(t, "the successor takes the operation over", func() bool {
		got, _ := b.Get(context.Background(), op.ID)
		return got.Replica == b.Replica()
	})
	st.advance("job", 7)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done, err := b.Wait(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	var res stepResult
	_ = json.Unmarshal(done.Result, &res)
	if done.Status != Completed || res.Steps != 10 || !cmp.Equal(res.Starts, []int{0, 3}) || done.Attempt != 2 {
		t.Fatalf("after the takeover: %s, result %+v, attempt %d; want completed, 10 steps, runs from 0 and 3, attempt 2", done.Status, res, done.Attempt)
	}
	// The history: event numbers only grow, across the takeover.
	evs := allEvents(t, b, op.ID, 0)
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatalf("event %d after %d", evs[i].Seq, evs[i-1].Seq)
		}
	}
	if evs[len(evs)-1].Type != EventComplete {
		t.Errorf("last event %s", evs[len(evs)-1].Type)
	}
}

func TestReplicaFailsOtherWorkOfADeadReplica(t *testing.T) {
	rs := newReplicas(t)
	g := newGate()
	a, aStore := rs.start("a", 1, g.typ("gate"))
	op := submit(t, a, "c", "gate", "lost")
	waitFor(t, "it runs", func() bool { return len(g.started) == 1 })
	aStore.kill()
	t.Cleanup(func() { g.open("lost", nil) })
	b, _ := rs.start("b", 1, g.typ("gate"))
	rs.clock.advance(2 * testLease)
	got := waitStatus(t, b, op.ID, Failed)
	if got.Error == nil || got.Error.Code != CodeInterrupted {
		t.Errorf("error %+v, want INTERRUPTED", got.Error)
	}
}

func TestReplicaCloseHandsWorkBack(t *testing.T) {
	rs := newReplicas(t)
	st := newStepper()
	g := newGate()
	a, _ := rs.start("a", 2, st.typ(), g.typ("gate"))
	resumable := submitSteps(t, a, "job", 5)
	other := submit(t, a, "c", "gate", "plain")
	st.advance("job", 2)
	waitFor(t, "both run and 2 steps are checkpointed", func() bool {
		got, _ := rs.store.Get(context.Background(), resumable.ID)
		return string(got.Checkpoint) == `{"Done":2}` && len(g.started) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	back, _ := rs.store.Get(ctx, resumable.ID)
	if back.Status != Queued || back.Replica != "" {
		t.Errorf("after a clean shutdown the resumable operation is %s on %q, want queued on no replica", back.Status, back.Replica)
	}
	if got, _ := rs.store.Get(ctx, other.ID); got.Status != Cancelled || got.Error.Message != ReasonShutdown {
		t.Errorf("the other operation is %s (%+v), want cancelled by the shutdown", got.Status, got.Error)
	}
	b, _ := rs.start("b", 1, st.typ(), g.typ("gate"))
	st.advance("job", 3)
	done, err := b.Wait(ctx, resumable.ID)
	if err != nil {
		t.Fatal(err)
	}
	var res stepResult
	_ = json.Unmarshal(done.Result, &res)
	if done.Status != Completed || res.Steps != 5 || !cmp.Equal(res.Starts, []int{0, 2}) {
		t.Fatalf("on b: %s, %+v; want completed, 5 steps, runs from 0 and 2", done.Status, res)
	}
}

func TestReplicasShareTheQueueFairly(t *testing.T) {
	rs := newReplicas(t)
	g := newGate()
	a, _ := rs.start("a", 1, g.typ("gate"))
	b, _ := rs.start("b", 1, g.typ("gate"))
	for i := range 4 {
		submit(t, []*Engine{a, b}[i%2], "x", "gate", fmt.Sprintf("x%d", i))
	}
	waitFor(t, "two of x's run", func() bool { return len(g.started) == 2 })
	submit(t, b, "y", "gate", "y0")
	first := <-g.started
	<-g.started
	g.open(first, nil)
	if next := nextStart(t, g); next != "y0" {
		t.Errorf("after one of x's ended, %s started; want y0 (y has none running, x has one)", next)
	}
	t.Cleanup(func() {
		for _, n := range []string{"x0", "x1", "x2", "x3", "y0"} {
			if n != first {
				g.open(n, nil)
			}
		}
	})
}
