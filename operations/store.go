package operations

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
)

// Filter selects operations for List.
type Filter struct {
	// ClientID limits the result to one owner; empty means every owner.
	ClientID string
	// Status limits the result to one status; empty means any.
	Status Status
	// Type limits the result to one type; empty means any.
	Type string
	// Limit caps the page size; <= 0 means DefaultListLimit.
	Limit int
	// Offset skips that many matches (newest first).
	Offset int
}

// DefaultListLimit is the page size when Filter.Limit is not set.
const DefaultListLimit = 50

// Store keeps operations and their event histories. Implementations must be
// safe for concurrent use. The engine serialises all writes to one
// operation, so a Store needs no compare-and-swap.
type Store interface {
	// Create adds a new operation.
	Create(ctx context.Context, op Operation) error
	// Put replaces a stored operation. After Create the engine changes
	// neither its ID, Type, ClientID, CreatedAt, IdempotencyKey nor
	// RequestDigest, and its Params only to clear them when the operation
	// ends: a store may write only what else changed.
	Put(ctx context.Context, op Operation) error
	// Get returns the operation with id or ErrNotFound.
	Get(ctx context.Context, id string) (Operation, error)
	// List returns one page of matching operations, newest first, and the
	// number of matches in all.
	List(ctx context.Context, f Filter) ([]Operation, int, error)
	// FindIdempotent returns the operation clientID submitted with key.
	FindIdempotent(ctx context.Context, clientID, key string) (Operation, bool, error)
	// Unfinished returns every operation not in a terminal state.
	Unfinished(ctx context.Context) ([]Operation, error)
	// AppendEvent adds ev to id's history.
	AppendEvent(ctx context.Context, id string, ev Event) error
	// EventsAfter returns id's retained events with Seq > after, in order.
	EventsAfter(ctx context.Context, id string, after int64) ([]Event, error)
	// DeleteFinishedBefore removes terminal operations (and their history)
	// that finished before t, returning how many it removed.
	DeleteFinishedBefore(ctx context.Context, t time.Time) (int, error)
}

// DefaultHistoryLimit is how many events MemoryStore keeps per operation.
const DefaultHistoryLimit = 1000

// DefaultMaxFinished is how many finished operations MemoryStore keeps at
// most (besides the retention period).
const DefaultMaxFinished = 100_000

// Counter is implemented by stores that count operations by status without
// scanning them; Engine.Counts uses it when available.
type Counter interface {
	Counts(ctx context.Context) (map[Status]int, error)
}

// MemoryStore is an in-memory Store. Its zero value is ready to use.
//
// Each operation keeps at most HistoryLimit events. When the history is
// full, the oldest progress or log event is dropped; only when none is left
// the oldest status event goes. The terminal (complete or error) event is
// always kept, so a late watcher still sees how the operation ended. At most MaxFinished finished operations are
// kept; beyond that the oldest finished one is forgotten.
//
// Counts are kept per status (Counts is O(1)) and operations are indexed
// by client, so listing one client's operations costs in proportion to
// that client's operations, not to everyone's.
//
// MemoryStore is also a SharedStore, for several engines in one process
// (how replicas are tested): see Claim. Its leases follow Now.
type MemoryStore struct {
	// HistoryLimit caps the events kept per operation; <= 0 means
	// DefaultHistoryLimit.
	HistoryLimit int
	// MaxFinished caps the finished operations kept; <= 0 means
	// DefaultMaxFinished.
	MaxFinished int
	// Now is the store's clock for leases and for StartedAt on Claim; nil
	// means time.Now. Tests move it to let leases expire without waiting.
	Now func() time.Time

	mu       sync.RWMutex
	ops      map[string]*memEntry
	order    []string            // IDs in creation order (may hold deleted IDs)
	byClient map[string][]string // IDs per client in creation order (likewise)
	finished []string            // finished IDs in the order they finished
	counts   map[Status]int
	idem     map[idemKey]string
	// active holds the IDs of the queued and of the running operations,
	// and runningBy counts the running ones per client, for Claim and
	// TakeOver.
	active    map[Status]map[string]struct{}
	runningBy map[string]int
}

type memEntry struct {
	op     Operation
	events []Event
	// leaseUntil is when the lease of a claimed operation ends.
	leaseUntil time.Time
	// cancelReason is a cancel requested while it runs (RequestCancel).
	cancelReason string
}

type idemKey struct{ client, key string }

func (s *MemoryStore) init() {
	if s.ops == nil {
		s.ops = map[string]*memEntry{}
		s.idem = map[idemKey]string{}
		s.byClient = map[string][]string{}
		s.counts = map[Status]int{}
		s.active = map[Status]map[string]struct{}{Queued: {}, Running: {}}
		s.runningBy = map[string]int{}
	}
}

// countLocked adds d (1 or -1) to the bookkeeping of op's status.
func (s *MemoryStore) countLocked(op Operation, d int) {
	s.counts[op.Status] += d
	if set, ok := s.active[op.Status]; ok {
		if d > 0 {
			set[op.ID] = struct{}{}
		} else {
			delete(set, op.ID)
		}
	}
	if op.Status == Running {
		if s.runningBy[op.ClientID] += d; s.runningBy[op.ClientID] <= 0 {
			delete(s.runningBy, op.ClientID)
		}
	}
}

// setLocked replaces e's operation with op, keeping the counts.
func (s *MemoryStore) setLocked(e *memEntry, op Operation) {
	s.countLocked(e.op, -1)
	s.countLocked(op, 1)
	finished := op.Status.Terminal() && !e.op.Status.Terminal()
	e.op = op
	if finished {
		s.finishedLocked(op.ID)
	}
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, op Operation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	s.ops[op.ID] = &memEntry{op: op}
	s.order = append(s.order, op.ID)
	s.byClient[op.ClientID] = append(s.byClient[op.ClientID], op.ID)
	s.countLocked(op, 1)
	if op.Status.Terminal() {
		s.finishedLocked(op.ID)
	}
	if op.IdempotencyKey != "" {
		s.idem[idemKey{op.ClientID, op.IdempotencyKey}] = op.ID
	}
	return nil
}

// finishedLocked records that id finished and forgets the oldest finished
// operations beyond MaxFinished.
func (s *MemoryStore) finishedLocked(id string) {
	s.finished = append(s.finished, id)
	limit := s.MaxFinished
	if limit <= 0 {
		limit = DefaultMaxFinished
	}
	for len(s.finished) > limit {
		old := s.finished[0]
		s.finished = s.finished[1:]
		s.deleteLocked(old)
	}
}

// deleteLocked forgets one operation (its IDs in the order slices are
// skipped lazily and compacted now and then).
func (s *MemoryStore) deleteLocked(id string) {
	e, ok := s.ops[id]
	if !ok {
		return
	}
	delete(s.ops, id)
	s.countLocked(e.op, -1)
	if e.op.IdempotencyKey != "" {
		delete(s.idem, idemKey{e.op.ClientID, e.op.IdempotencyKey})
	}
	if len(s.order) > 2*len(s.ops)+1024 {
		s.compactLocked()
	}
}

// compactLocked drops deleted IDs from the order slices.
func (s *MemoryStore) compactLocked() {
	live := func(ids []string) []string {
		out := ids[:0]
		for _, id := range ids {
			if _, ok := s.ops[id]; ok {
				out = append(out, id)
			}
		}
		return out
	}
	s.order = live(s.order)
	for c, ids := range s.byClient {
		if ids = live(ids); len(ids) == 0 {
			delete(s.byClient, c)
		} else {
			s.byClient[c] = ids
		}
	}
	s.finished = live(s.finished)
}

// Counts implements Counter.
func (s *MemoryStore) Counts(context.Context) (map[Status]int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.counts), nil
}

// Put implements Store. It is fenced (see SharedStore): an operation that
// has ended, or whose stored Replica or Attempt differs from op's (another
// replica took it over), is left as it is and Put returns ErrLeaseLost.
// The stored Checkpoint is kept (SaveCheckpoint writes it).
func (s *MemoryStore) Put(_ context.Context, op Operation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ops[op.ID]
	if !ok {
		return ErrNotFound
	}
	if e.op.Status.Terminal() || e.op.Replica != op.Replica || e.op.Attempt != op.Attempt {
		return ErrLeaseLost
	}
	op.Checkpoint = e.op.Checkpoint
	s.setLocked(e, op)
	return nil
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, id string) (Operation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.ops[id]
	if !ok {
		return Operation{}, ErrNotFound
	}
	return e.op, nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, f Filter) ([]Operation, int, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultListLimit
	}
	f.Offset = max(f.Offset, 0)
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.order
	if f.ClientID != "" {
		ids = s.byClient[f.ClientID]
	}
	var page []Operation
	total := 0
	for i := len(ids) - 1; i >= 0; i-- {
		e, ok := s.ops[ids[i]]
		if !ok {
			continue
		}
		op := e.op
		// The owner is checked even when ids is f.ClientID's index: the
		// index may hold an ID since deleted and used again by another
		// client, or an operation Put with another owner.
		if (f.ClientID != "" && op.ClientID != f.ClientID) || (f.Status != "" && op.Status != f.Status) || (f.Type != "" && op.Type != f.Type) {
			continue
		}
		if total >= f.Offset && len(page) < f.Limit {
			page = append(page, op)
		}
		total++
	}
	return page, total, nil
}

// FindIdempotent implements Store.
func (s *MemoryStore) FindIdempotent(_ context.Context, clientID, key string) (Operation, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.idem[idemKey{clientID, key}]
	if !ok {
		return Operation{}, false, nil
	}
	e, ok := s.ops[id]
	if !ok {
		return Operation{}, false, nil
	}
	return e.op, true, nil
}

// Unfinished implements Store.
func (s *MemoryStore) Unfinished(_ context.Context) ([]Operation, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Operation
	for _, id := range s.order {
		if e, ok := s.ops[id]; ok && !e.op.Status.Terminal() {
			out = append(out, e.op)
		}
	}
	return out, nil
}

// AppendEvent implements Store. Events come in Seq order: one whose Seq
// is not above the last stored one (another replica used it), or that
// comes after the end of an operation (Seq above the LastEventID of a
// terminal operation), is dropped with ErrLeaseLost.
func (s *MemoryStore) AppendEvent(_ context.Context, id string, ev Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ops[id]
	if !ok {
		return ErrNotFound
	}
	if (len(e.events) > 0 && ev.Seq <= e.events[len(e.events)-1].Seq) || (e.op.Status.Terminal() && ev.Seq > e.op.LastEventID) {
		return ErrLeaseLost
	}
	s.appendLocked(e, ev)
	return nil
}

// appendLocked adds ev to e's history, within HistoryLimit.
func (s *MemoryStore) appendLocked(e *memEntry, ev Event) {
	limit := s.HistoryLimit
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	if len(e.events) >= limit {
		// Drop the oldest droppable (progress or log) event; if there is
		// none, drop the oldest event that is not terminal.
		drop := slices.IndexFunc(e.events, func(x Event) bool { return x.Type == EventProgress || x.Type == EventLog })
		if drop < 0 {
			drop = slices.IndexFunc(e.events, func(x Event) bool { return !x.Type.Terminal() })
		}
		if drop >= 0 {
			e.events = slices.Delete(e.events, drop, drop+1)
		}
	}
	e.events = append(e.events, ev)
}

// EventsAfter implements Store.
func (s *MemoryStore) EventsAfter(_ context.Context, id string, after int64) ([]Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.ops[id]
	if !ok {
		return nil, ErrNotFound
	}
	// The first event after `after` (after+1 would overflow at MaxInt64).
	i := sort.Search(len(e.events), func(i int) bool { return e.events[i].Seq > after })
	return slices.Clone(e.events[i:]), nil
}

// DeleteFinishedBefore implements Store.
func (s *MemoryStore) DeleteFinishedBefore(_ context.Context, t time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	// finished is in finishing order, so the expired ones are a prefix.
	for len(s.finished) > 0 {
		e, ok := s.ops[s.finished[0]]
		if ok && (e.op.FinishedAt == nil || !e.op.FinishedAt.Before(t)) {
			break
		}
		s.finished = s.finished[1:]
		if ok {
			s.deleteLocked(e.op.ID)
			n++
		}
	}
	return n, nil
}
