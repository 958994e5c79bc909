package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// gate is work that blocks until released or cancelled.
type gate struct {
	mu       sync.Mutex
	started  chan string
	release  map[string]chan error
	ctxErrs  chan error
	progress int
}

func newGate() *gate {
	return &gate{started: make(chan string, 100), release: map[string]chan error{}, ctxErrs: make(chan error, 100)}
}

func (g *gate) typ(name string) Type {
	return Type{Name: name, Run: func(ctx context.Context, params json.RawMessage, r Reporter) (any, error) {
		var p struct{ Name string }
		_ = json.Unmarshal(params, &p)
		g.mu.Lock()
		ch, ok := g.release[p.Name]
		if !ok {
			ch = make(chan error, 1)
			g.release[p.Name] = ch
		}
		g.mu.Unlock()
		g.started <- p.Name
		select {
		case err := <-ch:
			// Progress only once released, so that watchers subscribed
			// before the release see it live, not as history.
			for i := 0; i < g.progress; i++ {
				r.Progress(Progress{Done: int64(i + 1), Total: int64(g.progress), Phase: "step"})
			}
			return map[string]string{"name": p.Name}, err
		case <-ctx.Done():
			g.ctxErrs <- context.Cause(ctx)
			return nil, ctx.Err()
		}
	}}
}

func (g *gate) open(name string, err error) {
	g.mu.Lock()
	ch, ok := g.release[name]
	if !ok {
		ch = make(chan error, 1)
		g.release[name] = ch
	}
	g.mu.Unlock()
	ch <- err
}

func newEngine(t *testing.T, cfg Config, types ...Type) *Engine {
	t.Helper()
	if cfg.Registry == nil {
		cfg.Registry = &Registry{}
	}
	for _, ty := range types {
		if err := cfg.Registry.Register(ty); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func submit(t *testing.T, e *Engine, client, typ, name string) Operation {
	t.Helper()
	op, created, err := e.Submit(context.Background(), SubmitRequest{ClientID: client, Type: typ, Params: json.RawMessage(fmt.Sprintf(`{"name":%q}`, name))})
	if err != nil || !created {
		t.Fatalf("Submit: %v (created %v)", err, created)
	}
	return op
}

func waitStatus(t *testing.T, e *Engine, id string, want Status) Operation {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		op, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if op.Status == want {
			return op
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation %s is %s, want %s", id, op.Status, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allEvents(t *testing.T, e *Engine, id string, after int64) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub, err := e.Subscribe(ctx, id, after)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var out []Event
	for {
		ev, err := sub.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, ev)
	}
}

func types(evs []Event) []EventType {
	out := make([]EventType, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func TestSubmitRejectsUnknownTypeAndBadParams(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{}, Type{Name: "import", Run: func(context.Context, json.RawMessage, Reporter) (any, error) { return nil, nil }},
		Type{Name: "scan", Validate: func(p json.RawMessage) error {
			var v struct {
				TenantID string `json:"tenant_id"`
			}
			if err := json.Unmarshal(p, &v); err != nil || v.TenantID == "" {
				return &ValidationError{Field: "tenant_id", Message: "is required"}
			}
			return nil
		}, Run: func(context.Context, json.RawMessage, Reporter) (any, error) { return nil, nil }})
	_, _, err := e.Submit(context.Background(), SubmitRequest{Type: "nope"})
	var ute *UnknownTypeError
	if !errors.As(err, &ute) || !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "import, scan") {
		t.Errorf("unknown type: got %v", err)
	}
	_, _, err = e.Submit(context.Background(), SubmitRequest{Type: "scan", Params: json.RawMessage(`{}`)})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "tenant_id" {
		t.Errorf("missing param: got %v", err)
	}
	for _, bad := range []string{`[1]`, `null`, `"x"`, `{"a":`} {
		_, _, err = e.Submit(context.Background(), SubmitRequest{Type: "import", Params: json.RawMessage(bad)})
		if !errors.As(err, &ve) || ve.Message != "params must be a JSON object" {
			t.Errorf("params %s: got %v", bad, err)
		}
	}
	ops, total, _ := e.List(context.Background(), Filter{})
	if total != 0 || len(ops) != 0 {
		t.Errorf("rejected submits must not create operations, got %d", total)
	}
}

func TestLifecycleEventsAndResult(t *testing.T) {
	t.Parallel()
	g := newGate()
	g.progress = 3
	e := newEngine(t, Config{}, g.typ("work"))
	op := submit(t, e, "alice", "work", "a")
	if op.Status != Queued && op.Status != Running {
		t.Fatalf("new operation is %s", op.Status)
	}
	<-g.started
	g.open("a", nil)
	done, err := e.Wait(context.Background(), op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != Completed || string(done.Result) != `{"name":"a"}` || done.StartedAt == nil || done.FinishedAt == nil || done.Error != nil {
		t.Errorf("finished operation: %+v", done)
	}
	if done.Progress == nil || done.Progress.Percent != 100 || done.Progress.Done != 3 {
		t.Errorf("progress: %+v", done.Progress)
	}
	evs := allEvents(t, e, op.ID, 0)
	want := []EventType{EventStatus, EventStatus, EventProgress, EventProgress, EventProgress, EventComplete}
	if diff := cmp.Diff(want, types(evs)); diff != "" {
		t.Errorf("event types (-want +got):\n%s", diff)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
	}
	var term TerminalData
	if err := json.Unmarshal(evs[len(evs)-1].Data, &term); err != nil || term.Status != Completed || string(term.Result) != `{"name":"a"}` {
		t.Errorf("terminal data %s: %v", evs[len(evs)-1].Data, err)
	}
	// Resume after seq 4: only the rest.
	if got := types(allEvents(t, e, op.ID, 4)); !cmp.Equal(got, want[4:]) {
		t.Errorf("resume after 4: %v", got)
	}
}

// writeCounter is a MemoryStore that counts the writes (Create and Put) of
// each operation.
type writeCounter struct {
	MemoryStore
	mu     sync.Mutex
	writes map[string]int
}

func (s *writeCounter) count(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writes == nil {
		s.writes = map[string]int{}
	}
	s.writes[id]++
}

func (s *writeCounter) Create(ctx context.Context, op Operation) error {
	s.count(op.ID)
	return s.MemoryStore.Create(ctx, op)
}

func (s *writeCounter) Put(ctx context.Context, op Operation) error {
	s.count(op.ID)
	return s.MemoryStore.Put(ctx, op)
}

// TestSubmitWritesOnce: a submit stores the queued operation once, with
// its first event already numbered, and that event in its history.
func TestSubmitWritesOnce(t *testing.T) {
	t.Parallel()
	g := newGate()
	store := &writeCounter{}
	e := newEngine(t, Config{Store: store, MaxConcurrent: 1}, g.typ("work"))
	submit(t, e, "c", "work", "running") // takes the only slot
	<-g.started
	op := submit(t, e, "c", "work", "waiting")
	store.mu.Lock()
	writes := store.writes[op.ID]
	store.mu.Unlock()
	if writes != 1 {
		t.Errorf("%d writes of a submitted operation that stays queued, want 1", writes)
	}
	stored, err := e.Get(context.Background(), op.ID)
	if err != nil || stored.Status != Queued || stored.LastEventID != 1 || op.LastEventID != 1 {
		t.Errorf("stored %+v (%v), returned %+v", stored, err, op)
	}
	evs, err := store.EventsAfter(context.Background(), op.ID, 0)
	if err != nil || len(evs) != 1 || evs[0].Seq != 1 || evs[0].Type != EventStatus || !strings.Contains(string(evs[0].Data), `"status":"queued"`) {
		t.Errorf("history %+v (%v)", evs, err)
	}
}

func TestFailuresArePublicAndSafe(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{ClassifyError: func(err error) *Error {
		if strings.Contains(err.Error(), "db down") {
			return &Error{Code: CodeUnavailable, Message: "database unavailable"}
		}
		return nil
	}},
		Type{Name: "leaky", Run: func(context.Context, json.RawMessage, Reporter) (any, error) {
			return nil, errors.New("dial tcp 10.0.0.7:7687: password=hunter2")
		}},
		Type{Name: "public", Run: func(context.Context, json.RawMessage, Reporter) (any, error) {
			return nil, fmt.Errorf("wrapped: %w", &Error{Code: "CHUNK_FAILED", Message: "chunk 3 failed", Details: map[string]any{"committed": 2000}})
		}},
		Type{Name: "down", Run: func(context.Context, json.RawMessage, Reporter) (any, error) { return nil, errors.New("db down") }},
		Type{Name: "panics", Run: func(context.Context, json.RawMessage, Reporter) (any, error) { panic("boom") }},
		Type{Name: "badresult", Run: func(context.Context, json.RawMessage, Reporter) (any, error) { return func() {}, nil }},
	)
	tests := []struct{ typ, code, msg string }{
		{"leaky", CodeInternal, "operation failed"},
		{"public", "CHUNK_FAILED", "chunk 3 failed"},
		{"down", CodeUnavailable, "database unavailable"},
		{"panics", CodeInternal, "operation failed"},
		{"badresult", CodeInternal, "operation failed"},
	}
	for _, tc := range tests {
		op := submit(t, e, "c", tc.typ, "x")
		got, err := e.Wait(context.Background(), op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != Failed || got.Error == nil || got.Error.Code != tc.code || got.Error.Message != tc.msg {
			t.Errorf("%s: got %s %+v", tc.typ, got.Status, got.Error)
		}
		b, _ := json.Marshal(got)
		if strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "10.0.0.7") {
			t.Errorf("%s: internals leaked: %s", tc.typ, b)
		}
	}
}

func TestConcurrencyLimitAndFIFO(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := newEngine(t, Config{MaxConcurrent: 2}, g.typ("work"))
	var ids []string
	for i := range 5 {
		ids = append(ids, submit(t, e, "c", "work", fmt.Sprint(i)).ID)
	}
	first := []string{<-g.started, <-g.started}
	select {
	case name := <-g.started:
		t.Fatalf("a third operation (%s) started with 2 slots", name)
	case <-time.After(50 * time.Millisecond):
	}
	counts, _ := e.Counts(context.Background())
	if counts[Running] != 2 || counts[Queued] != 3 {
		t.Errorf("counts %v, want 2 running and 3 queued", counts)
	}
	if diff := cmp.Diff([]string{"0", "1"}, slices.Sorted(slices.Values(first))); diff != "" {
		t.Errorf("first started: %v", first)
	}
	// Each release starts the next one in submission order.
	for i := 2; i < 5; i++ {
		g.open(fmt.Sprint(i-2), nil)
		if got := <-g.started; got != fmt.Sprint(i) {
			t.Errorf("started %s, want %d (FIFO)", got, i)
		}
	}
	g.open("3", nil)
	g.open("4", nil)
	for _, id := range ids {
		if op, _ := e.Wait(context.Background(), id); op.Status != Completed {
			t.Errorf("%s ended %s", id, op.Status)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := newEngine(t, Config{MaxConcurrent: 1}, g.typ("work"))
	running := submit(t, e, "c", "work", "r")
	queued := submit(t, e, "c", "work", "q")
	<-g.started

	// A queued operation is cancelled without ever running.
	op, err := e.Cancel(context.Background(), queued.ID, "")
	if err != nil || op.Status != Cancelled || op.Error.Code != CodeCancelled || op.Error.Message != ReasonClientAsked {
		t.Fatalf("cancel queued: %+v, %v", op, err)
	}
	// A running one is cancelled at once; its work sees the context end.
	op, err = e.Cancel(context.Background(), running.ID, "")
	if err != nil || op.Status != Cancelled {
		t.Fatalf("cancel running: %+v, %v", op, err)
	}
	select {
	case cause := <-g.ctxErrs:
		if cause == nil || cause.Error() != ReasonClientAsked {
			t.Errorf("work saw cause %v", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("work was not cancelled")
	}
	// The terminal state never changes, even though the work returned.
	time.Sleep(20 * time.Millisecond)
	if op, _ := e.Get(context.Background(), running.ID); op.Status != Cancelled {
		t.Errorf("status changed to %s after cancel", op.Status)
	}
	select {
	case name := <-g.started:
		t.Errorf("cancelled queued operation %s ran", name)
	default:
	}
	// Cancelling again is a conflict naming the state; unknown is not found.
	_, err = e.Cancel(context.Background(), running.ID, "")
	var nce *NotCancellableError
	if !errors.As(err, &nce) || nce.Status != Cancelled || !errors.Is(err, ErrNotCancellable) {
		t.Errorf("second cancel: %v", err)
	}
	if _, err := e.Cancel(context.Background(), "op_missing", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown cancel: %v", err)
	}
	evs := allEvents(t, e, running.ID, 0)
	if diff := cmp.Diff([]EventType{EventStatus, EventStatus, EventError}, types(evs)); diff != "" {
		t.Errorf("events of a cancelled operation:\n%s", diff)
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := newEngine(t, Config{}, g.typ("work"))
	ctx := context.Background()
	req := SubmitRequest{ClientID: "alice", Type: "work", Params: json.RawMessage(`{"name": "a"}`), IdempotencyKey: "k1"}
	first, created, err := e.Submit(ctx, req)
	if err != nil || !created {
		t.Fatal(err)
	}
	req.Params = json.RawMessage(`{"name":"a"}`) // same JSON, other spacing
	again, created, err := e.Submit(ctx, req)
	if err != nil || created || again.ID != first.ID {
		t.Errorf("replay: %v %v %v", again.ID, created, err)
	}
	req.Params = json.RawMessage(`{"name":"b"}`)
	if _, _, err := e.Submit(ctx, req); !errors.Is(err, ErrIdempotencyConflict) {
		t.Errorf("different params: %v", err)
	}
	req.ClientID, req.Params = "bob", json.RawMessage(`{"name":"a"}`)
	other, created, err := e.Submit(ctx, req)
	if err != nil || !created || other.ID == first.ID {
		t.Errorf("another client's key is independent: %v %v", created, err)
	}
	g.open("a", nil)
	g.open("a", nil)
}

func TestWatchersFanOutAndSlowOneIsCutOff(t *testing.T) {
	t.Parallel()
	g := newGate()
	g.progress = 50
	e := newEngine(t, Config{SubscriberBuffer: 8}, g.typ("work"))
	ctx := context.Background()

	// Subscribe while the work waits for its release: every progress event
	// comes live.
	op := submit(t, e, "c", "work", "w")
	slow, err := e.Subscribe(ctx, op.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := e.Subscribe(ctx, op.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	var fastEvents []Event
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := fast.Next(ctx)
			if err != nil {
				return
			}
			fastEvents = append(fastEvents, ev)
		}
	}()
	<-g.started
	g.open("w", nil) // the operation never waits for the slow watcher
	if got, _ := e.Wait(ctx, op.ID); got.Status != Completed {
		t.Fatalf("operation ended %s", got.Status)
	}
	<-done
	// The fast watcher may have lagged too (buffer 8); what it got is a
	// gap-free prefix. The slow one is cut off.
	var seen []Event
	var lastErr error
	for {
		ev, err := slow.Next(ctx)
		if err != nil {
			lastErr = err
			break
		}
		seen = append(seen, ev)
	}
	if !errors.Is(lastErr, ErrLagged) {
		t.Fatalf("slow watcher: got %v, want ErrLagged", lastErr)
	}
	// Resuming after the last event seen completes the stream without a gap
	// or a duplicate.
	rest := allEvents(t, e, op.ID, seen[len(seen)-1].Seq)
	all := append(seen, rest...)
	for i, ev := range all {
		if ev.Seq != int64(i+1) {
			t.Fatalf("resumed stream: event %d has seq %d", i, ev.Seq)
		}
	}
	if all[len(all)-1].Type != EventComplete || len(all) != 53 {
		t.Errorf("resumed stream has %d events ending %s", len(all), all[len(all)-1].Type)
	}
	for i, ev := range fastEvents {
		if ev.Seq != int64(i+1) {
			t.Fatalf("fast watcher: event %d has seq %d", i, ev.Seq)
		}
	}
}

func TestHistoryIsBoundedAndKeepsTerminalEvent(t *testing.T) {
	t.Parallel()
	g := newGate()
	g.progress = 100
	e := newEngine(t, Config{Store: &MemoryStore{HistoryLimit: 10}}, g.typ("work"))
	op := submit(t, e, "c", "work", "h")
	<-g.started
	g.open("h", nil)
	if _, err := e.Wait(context.Background(), op.ID); err != nil {
		t.Fatal(err)
	}
	evs := allEvents(t, e, op.ID, 0)
	if len(evs) != 10 {
		t.Fatalf("history has %d events, want 10", len(evs))
	}
	got := types(evs)
	if got[0] != EventStatus || got[1] != EventStatus || got[9] != EventComplete {
		t.Errorf("history %v must keep both status events and the terminal one", got)
	}
	if evs[9].Seq != 103 {
		t.Errorf("terminal seq %d, want 103", evs[9].Seq)
	}
}

func TestCloseCancelsEverythingAndRefusesWork(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := newEngine(t, Config{MaxConcurrent: 1}, g.typ("work"))
	running := submit(t, e, "c", "work", "r")
	queued := submit(t, e, "c", "work", "q")
	<-g.started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, id := range []string{running.ID, queued.ID} {
		op, _ := e.Get(ctx, id)
		if op.Status != Cancelled || op.Error == nil || op.Error.Message != ReasonShutdown {
			t.Errorf("%s after Close: %s %+v", id, op.Status, op.Error)
		}
	}
	if err := e.Close(ctx); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if _, _, err := e.Submit(ctx, SubmitRequest{Type: "work"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
}

func TestCloseTimesOutOnStuckWork(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	e := newEngine(t, Config{}, Type{Name: "stuck", Run: func(ctx context.Context, _ json.RawMessage, _ Reporter) (any, error) {
		<-release // ignores ctx on purpose
		return nil, nil
	}})
	op := submit(t, e, "c", "stuck", "s")
	waitStatus(t, e, op.ID, Running)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Close(ctx); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("Close with stuck work: %v", err)
	}
	close(release)
	e.wg.Wait()
}

func TestRecoverMarksUnfinishedAsInterrupted(t *testing.T) {
	t.Parallel()
	store := &MemoryStore{}
	now := time.Now().UTC()
	_ = store.Create(context.Background(), Operation{ID: "op_old", Type: "work", Status: Running, ClientID: "c", CreatedAt: now})
	e := newEngine(t, Config{Store: store})
	op, err := e.Get(context.Background(), "op_old")
	if err != nil || op.Status != Failed || op.Error.Code != CodeInterrupted {
		t.Errorf("recovered: %+v %v", op, err)
	}
}

func TestRetentionDeletesFinishedOperations(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{Retention: time.Second}, Type{Name: "quick", Run: func(context.Context, json.RawMessage, Reporter) (any, error) { return 1, nil }})
	op := submit(t, e, "c", "quick", "x")
	if _, err := e.Wait(context.Background(), op.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := e.Get(context.Background(), op.ID); errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("finished operation outlived its retention")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := e.Subscribe(context.Background(), op.ID, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("events of a deleted operation: %v", err)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := newEngine(t, Config{},
		Type{Name: "a", Run: func(context.Context, json.RawMessage, Reporter) (any, error) { return nil, nil }},
		Type{Name: "b", Run: func(context.Context, json.RawMessage, Reporter) (any, error) { return nil, errors.New("x") }})
	var ids []string
	for i := range 6 {
		typ, client := "a", "alice"
		if i%2 == 1 {
			typ, client = "b", "bob"
		}
		op := submit(t, e, client, typ, fmt.Sprint(i))
		ids = append(ids, op.ID)
		_, _ = e.Wait(context.Background(), op.ID)
	}
	ctx := context.Background()
	page, total, _ := e.List(ctx, Filter{ClientID: "alice"})
	if total != 3 || len(page) != 3 || page[0].ID != ids[4] {
		t.Errorf("alice: total %d, first %v", total, page)
	}
	page, total, _ = e.List(ctx, Filter{Status: Failed})
	if total != 3 || page[0].Type != "b" {
		t.Errorf("failed: %d", total)
	}
	page, total, _ = e.List(ctx, Filter{Limit: 2, Offset: 1})
	if total != 6 || len(page) != 2 || page[0].ID != ids[4] || page[1].ID != ids[3] {
		t.Errorf("page: total %d, %v", total, page)
	}
	page, total, _ = e.List(ctx, Filter{Type: "a", Offset: 10})
	if total != 3 || len(page) != 0 {
		t.Errorf("offset past end: %d %d", total, len(page))
	}
	if _, err := e.Get(ctx, "op_nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get unknown: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	var r Registry
	run := func(context.Context, json.RawMessage, Reporter) (any, error) { return nil, nil }
	if err := r.Register(Type{Name: "scan", Run: run}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Type{{Name: "scan", Run: run}, {Name: "Bad Name", Run: run}, {Name: "", Run: run}, {Name: "norun"}} {
		if err := r.Register(bad); err == nil {
			t.Errorf("Register(%q) accepted", bad.Name)
		}
	}
	if diff := cmp.Diff([]string{"scan"}, r.Names()); diff != "" {
		t.Error(diff)
	}
}

func TestStatusParse(t *testing.T) {
	t.Parallel()
	for _, s := range Statuses() {
		if got, err := ParseStatus(string(s)); err != nil || got != s {
			t.Errorf("ParseStatus(%s) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseStatus("done"); err == nil {
		t.Error("ParseStatus(done) accepted")
	}
	for _, from := range Statuses() {
		for _, to := range Statuses() {
			if from.Terminal() && canMove(from, to) {
				t.Errorf("terminal %s may move to %s", from, to)
			}
		}
	}
}

// TestUnencodableErrorDetailsStillEndTheOperation: an *Error whose Details
// do not encode to JSON (NaN, an infinity, a func, a channel) still ends
// the operation: failed with INTERNAL_ERROR and no details, stored,
// delivered to watchers and Wait, counted, not cancellable.
func TestUnencodableErrorDetailsStillEndTheOperation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value any
	}{
		{"inf", math.Inf(1)},
		{"nan", math.NaN()},
		{"func", func() {}},
		{"chan", make(chan int)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			e := newEngine(t, Config{}, Type{Name: "bad", Run: func(context.Context, json.RawMessage, Reporter) (any, error) {
				<-release
				return nil, &Error{Code: "CHUNK_FAILED", Message: "chunk 1 failed", Details: map[string]any{"x": tc.value}}
			}})
			op := submit(t, e, "c", "bad", "x")
			waitStatus(t, e, op.ID, Running)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sub, err := e.Subscribe(ctx, op.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			close(release)
			got, err := e.Wait(ctx, op.ID)
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if got.Status != Failed || got.Error == nil || got.Error.Code != CodeInternal || got.Error.Details != nil || got.FinishedAt == nil {
				t.Errorf("stored operation: %s %+v", got.Status, got.Error)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("stored operation does not encode: %v", err)
			}
			var last Event
			for {
				ev, err := sub.Next(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("watcher: %v", err)
				}
				last = ev
			}
			var term TerminalData
			if last.Type != EventError || json.Unmarshal(last.Data, &term) != nil || term.Error == nil || term.Error.Code != CodeInternal {
				t.Errorf("watcher's last event %s %s", last.Type, last.Data)
			}
			if _, err := e.Cancel(ctx, op.ID, ""); !errors.Is(err, ErrNotCancellable) {
				t.Errorf("Cancel after the end: %v", err)
			}
			counts, _ := e.Counts(ctx)
			if counts[Running] != 0 || counts[Failed] != 1 {
				t.Errorf("counts %v", counts)
			}
		})
	}
}

// queueLen returns how many entries wait in e's queue.
func queueLen(e *Engine) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.queuedLocked()
}

// TestCancelledQueuedOperationsLeaveTheQueue: 10,000 submit+cancel cycles
// behind one running operation leave no dead entries in the queue.
func TestCancelledQueuedOperationsLeaveTheQueue(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := newEngine(t, Config{MaxConcurrent: 1, MaxActivePerClient: 2, Store: &MemoryStore{MaxFinished: 100}}, g.typ("work"))
	ctx := context.Background()
	running := submit(t, e, "c", "work", "running")
	<-g.started
	for i := range 10_000 {
		op, _, err := e.Submit(ctx, SubmitRequest{ClientID: "c", Type: "work", Params: json.RawMessage(`{"name":"q"}`)})
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		if _, err := e.Cancel(ctx, op.ID, ""); err != nil {
			t.Fatalf("cancel %d: %v", i, err)
		}
	}
	if n := queueLen(e); n != 0 {
		t.Errorf("queue holds %d entries after 10,000 submit+cancel cycles, want 0", n)
	}
	// The queue still works: the next operation runs when the slot frees.
	next := submit(t, e, "c", "work", "next")
	if n := queueLen(e); n != 1 {
		t.Errorf("queue holds %d entries, want 1", n)
	}
	g.open("running", nil)
	if got := <-g.started; got != "next" {
		t.Errorf("started %q, want next", got)
	}
	g.open("next", nil)
	for _, id := range []string{running.ID, next.ID} {
		if op, err := e.Wait(ctx, id); err != nil || op.Status != Completed {
			t.Errorf("%s: %s %v", id, op.Status, err)
		}
	}
}

// TestSubscribeAfterSkipsLiveEvents: a subscription after seq N gets no
// live event numbered N or below, and a subscription after the operation's
// latest event gets nothing but still ends with the operation.
func TestSubscribeAfterSkipsLiveEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		after    int64
		wantSeqs []int64
	}{
		{after: 0, wantSeqs: []int64{1, 2, 3, 4, 5, 6}},
		{after: 4, wantSeqs: []int64{5, 6}},
		{after: 6, wantSeqs: nil},
		{after: 1000, wantSeqs: nil},
		{after: math.MaxInt64, wantSeqs: nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.after), func(t *testing.T) {
			t.Parallel()
			g := newGate()
			g.progress = 3
			e := newEngine(t, Config{}, g.typ("work"))
			op := submit(t, e, "c", "work", "w")
			<-g.started // seqs 1 and 2 are history; 3..6 come live
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sub, err := e.Subscribe(ctx, op.ID, tc.after)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			g.open("w", nil)
			var got []int64
			for {
				ev, err := sub.Next(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				got = append(got, ev.Seq)
			}
			if diff := cmp.Diff(tc.wantSeqs, got); diff != "" {
				t.Errorf("seqs after %d (-want +got):\n%s", tc.after, diff)
			}
			if done, err := e.Wait(ctx, op.ID); err != nil || done.Status != Completed {
				t.Errorf("Wait: %s %v", done.Status, err)
			}
		})
	}
}

// nextStart returns the name of the next operation of g to start, failing
// the test if none starts within 2 seconds.
func nextStart(t *testing.T, g *gate) string {
	t.Helper()
	select {
	case name := <-g.started:
		return name
	case <-time.After(2 * time.Second):
		t.Fatal("no operation started within 2s")
		return ""
	}
}

// TestFairSchedulingAcrossClients: client A fills every slot and queues
// seven more long operations; client B's one operation takes the first
// slot that frees, before A's queue drains, and A's operations still start
// in A's submission order.
func TestFairSchedulingAcrossClients(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := newEngine(t, Config{MaxConcurrent: 3}, g.typ("work"))
	var ids []string
	for i := range 10 {
		ids = append(ids, submit(t, e, "A", "work", fmt.Sprint("a", i)).ID)
	}
	for range 3 {
		<-g.started
	}
	ids = append(ids, submit(t, e, "B", "work", "b").ID)
	select {
	case name := <-g.started:
		t.Fatalf("%s started with every slot taken", name)
	case <-time.After(20 * time.Millisecond):
	}
	var order []string
	g.open("a0", nil)
	order = append(order, nextStart(t, g))
	// One release at a time, so that each start follows one freed slot.
	g.open("b", nil)
	order = append(order, nextStart(t, g))
	for i := 1; i < 10; i++ {
		g.open(fmt.Sprint("a", i), nil)
		if i <= 6 {
			order = append(order, nextStart(t, g))
		}
	}
	want := []string{"b", "a3", "a4", "a5", "a6", "a7", "a8", "a9"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
	for _, id := range ids {
		if op, err := e.Wait(context.Background(), id); err != nil || op.Status != Completed {
			t.Errorf("%s: %s %v", id, op.Status, err)
		}
	}
}

// TestFairSchedulingRoundRobin: with one slot, clients with queued work
// take turns, each client's operations in its own order.
func TestFairSchedulingRoundRobin(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := newEngine(t, Config{MaxConcurrent: 1}, g.typ("work"))
	submit(t, e, "A", "work", "first")
	<-g.started
	for _, name := range []string{"a1", "a2", "a3", "b1", "b2", "c1"} {
		submit(t, e, name[:1], "work", name)
	}
	var order []string
	last := "first"
	for range 6 {
		g.open(last, nil)
		last = nextStart(t, g)
		order = append(order, last)
	}
	g.open(last, nil)
	// A was served last (by "first"), so B and C go before A's next.
	want := []string{"a1", "b1", "c1", "a2", "b2", "a3"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("start order (-want +got):\n%s", diff)
	}
}

// drain reads sub to its end, returning the events and the final error.
func drain(ctx context.Context, sub *Subscription) ([]Event, error) {
	var out []Event
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// TestWatcherBufferGrowsAndLagsBeyondIt: a watcher that reads nothing while
// the operation publishes keeps every event up to SubscriberBuffer behind;
// beyond that it loses its place (ErrLagged) after a gap-free prefix, and
// resuming from the history completes the stream.
func TestWatcherBufferGrowsAndLagsBeyondIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		progress int
		lagged   bool
	}{
		{progress: 90, lagged: false}, // 93 events fit in 100
		{progress: 300, lagged: true}, // 303 do not
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.progress), func(t *testing.T) {
			t.Parallel()
			g := newGate()
			g.progress = tc.progress
			e := newEngine(t, Config{SubscriberBuffer: 100}, g.typ("work"))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			op := submit(t, e, "c", "work", "w")
			sub, err := e.Subscribe(ctx, op.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			<-g.started
			g.open("w", nil)
			if _, err := e.Wait(ctx, op.ID); err != nil {
				t.Fatal(err)
			}
			got, err := drain(ctx, sub)
			if tc.lagged != errors.Is(err, ErrLagged) || (!tc.lagged && !errors.Is(err, io.EOF)) {
				t.Fatalf("watcher ended with %v, want lagged %v", err, tc.lagged)
			}
			if len(got) > 0 {
				rest, err := drain(ctx, must(e.Subscribe(ctx, op.ID, got[len(got)-1].Seq)))
				if !errors.Is(err, io.EOF) {
					t.Fatalf("resumed watcher: %v", err)
				}
				got = append(got, rest...)
			}
			if len(got) != tc.progress+3 || got[len(got)-1].Type != EventComplete {
				t.Fatalf("%d events, want %d ending complete", len(got), tc.progress+3)
			}
			for i, ev := range got {
				if ev.Seq != int64(i+1) {
					t.Fatalf("event %d has seq %d", i, ev.Seq)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestPublishingIgnoresIdleWatchers: 1,000 watchers that never read do not
// hold up an operation publishing 5,000 events; each then loses its place
// and can resume from the history.
func TestPublishingIgnoresIdleWatchers(t *testing.T) {
	t.Parallel()
	g := newGate()
	g.progress = 5000
	e := newEngine(t, Config{}, g.typ("work"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	op := submit(t, e, "c", "work", "w")
	subs := make([]*Subscription, 1000)
	for i := range subs {
		subs[i] = must(e.Subscribe(ctx, op.ID, 0))
		defer subs[i].Close()
	}
	<-g.started
	g.open("w", nil)
	if done, err := e.Wait(ctx, op.ID); err != nil || done.Status != Completed {
		t.Fatalf("Wait: %s %v", done.Status, err)
	}
	for i, sub := range subs {
		if _, err := drain(ctx, sub); !errors.Is(err, ErrLagged) {
			t.Fatalf("watcher %d: %v, want ErrLagged", i, err)
		}
	}
}

// TestSubscriptionCloseEndsABlockedNext: Close from another goroutine ends
// a Next that waits for events with io.EOF.
func TestSubscriptionCloseEndsABlockedNext(t *testing.T) {
	t.Parallel()
	g := newGate()
	e := newEngine(t, Config{}, g.typ("work"))
	op := submit(t, e, "c", "work", "w")
	<-g.started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub := must(e.Subscribe(ctx, op.ID, 2))
	errc := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	sub.Close()
	if err := <-errc; !errors.Is(err, io.EOF) {
		t.Errorf("Next after Close: %v, want io.EOF", err)
	}
	g.open("w", nil)
}
