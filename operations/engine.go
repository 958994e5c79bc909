package operations

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxConcurrent    = 3
	DefaultRetention        = 24 * time.Hour
	DefaultSubscriberBuffer = 1024
)

// ErrClosed is returned by an Engine after Close. It matches net.ErrClosed.
var ErrClosed = fmt.Errorf("operations: engine closed: %w", net.ErrClosed)

// Config configures an Engine. Only Registry is required.
type Config struct {
	// Registry holds the types the engine can run (required).
	Registry *Registry
	// Store keeps operations and events; nil means a new MemoryStore.
	Store Store
	// MaxConcurrent is how many operations run at once; the rest wait as
	// queued. A free slot goes to the client with queued work that has the
	// fewest operations running (ties: the one served least recently),
	// and each client's operations start in its submission order, so one
	// client's backlog cannot starve the others. <= 0 means
	// DefaultMaxConcurrent (3).
	MaxConcurrent int
	// Retention is how long finished operations are kept; <= 0 means
	// DefaultRetention (24h).
	Retention time.Duration
	// SubscriberBuffer is how many undelivered events a watcher may fall
	// behind at least before it loses its place (Subscription.Next returns
	// ErrLagged; it can resume from history). Publishing never waits for
	// watchers: they are woken at most every 50 ms, each time with every
	// event since, so an operation must publish more than this many events
	// in 50 ms to outrun a watcher that keeps up. <= 0 means
	// DefaultSubscriberBuffer (1024).
	SubscriberBuffer int
	// MaxActivePerClient caps the queued and running operations of one
	// client; a submit beyond it fails with *TooManyActiveError. <= 0 means
	// no cap.
	MaxActivePerClient int
	// ClassifyError maps an error returned by work that is not an *Error
	// to a public *Error (return nil to fall back to INTERNAL_ERROR).
	ClassifyError func(error) *Error
	// OnFinish, when set, is called (without engine locks held, in its own
	// goroutine-safe way: calls may be concurrent) with every operation that
	// reaches a terminal state, e.g. to write an audit trail.
	OnFinish func(op Operation)
	// Logger receives lifecycle and failure logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// Replica, when set, makes this engine one of several (each in its own
	// server process) sharing Store, which must then implement
	// SharedStore. Submitted operations wait in the store, and each
	// replica claims as many as it has free slots (MaxConcurrent is per
	// replica; the choice is fair between clients across all replicas).
	// Any replica answers for any operation: Get, List, Cancel (which
	// reaches the running replica within about PollInterval) and
	// Subscribe (events of an operation running elsewhere are read from
	// the store). A replica that dies loses its leases after Lease;
	// another then resumes its Resumable operations and fails the others
	// with code INTERRUPTED. Close hands resumable work back to the queue.
	// The engine appends '#' and a random token to the name (Operation.
	// Replica reads "a#3f9c1e"; see Engine.Replica), so that a replica
	// restarted under the same name is a new holder of leases: it takes
	// over what its previous process left running, while no process ever
	// takes over its own running work (a renewal that came late does not
	// start the work twice). Empty means a single engine, which at start
	// marks what an earlier process left unfinished as failed
	// (INTERRUPTED).
	Replica string
	// Lease is how long a replica holds running work without renewing it
	// (it renews every PollInterval); <= 0 means DefaultLease (30 s).
	Lease time.Duration
	// PollInterval is how often a replica looks for queued work, renews
	// its leases, checks for cancel requests and reads the events of work
	// running elsewhere; <= 0 means DefaultPollInterval (250 ms).
	PollInterval time.Duration
}

// SubmitRequest is one request to start an operation.
type SubmitRequest struct {
	// ClientID owns the new operation.
	ClientID string
	// Type is a registered type name.
	Type string
	// Params are the type's JSON parameters; empty means {}.
	Params json.RawMessage
	// IdempotencyKey, when set, makes a repeated submit by the same client
	// with the same type and params return the original operation.
	IdempotencyKey string
}

// Engine runs operations: a queue shared fairly between clients (each
// client's own operations in order), at most MaxConcurrent running, a
// state machine in which a terminal state never changes, cancellation
// through contexts, and event histories that watchers replay and follow.
// Create one with New and stop it with Close.
type Engine struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	now     func() time.Time
	metrics *engineMetrics

	baseCtx    context.Context
	baseCancel context.CancelFunc
	wg         sync.WaitGroup
	janitor    chan struct{}

	// shared is Store as a SharedStore when Config.Replica is set.
	shared      SharedStore
	kick        chan struct{} // wakes runReplica (buffered 1)
	replicaStop chan struct{}
	// slotMu is held while claim or takeOver fills free slots, so that
	// together they never start more than MaxConcurrent.
	slotMu sync.Mutex
	// storeWarn keeps a store that keeps failing (Neo4j down) from
	// logging a warning on every poll.
	storeWarn warnLimiter

	mu     sync.Mutex
	closed bool
	live   map[string]*Operation // queued and running operations
	// queues holds each client's queued operations in submission order;
	// ring lists the clients with queued work, least recently served first.
	queues    map[string][]queued
	ring      []string
	running   map[string]context.CancelCauseFunc
	runningBy map[string]int   // running operations per client
	feeds     map[string]*feed // of live operations
	// started is closed (and replaced) when this replica starts an
	// operation it claimed: watchers tailing the store switch to its feed.
	started chan struct{}
}

// New starts an engine. Operations a previous process left unfinished in
// cfg.Store are marked failed with code INTERRUPTED.
func New(cfg Config) (*Engine, error) {
	if cfg.Registry == nil {
		return nil, errors.New("operations: Config.Registry is required")
	}
	if cfg.Store == nil {
		cfg.Store = &MemoryStore{}
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	var shared SharedStore
	if cfg.Replica != "" {
		var ok bool
		if shared, ok = cfg.Store.(SharedStore); !ok {
			return nil, fmt.Errorf("operations: Config.Replica is set but the store (%T) cannot be shared by replicas", cfg.Store)
		}
		token := make([]byte, 3)
		_, _ = rand.Read(token) // never fails (crypto/rand)
		cfg.Replica += "#" + hex.EncodeToString(token)
	}
	e := &Engine{
		cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now,
		live: map[string]*Operation{}, running: map[string]context.CancelCauseFunc{},
		queues: map[string][]queued{}, runningBy: map[string]int{},
		feeds: map[string]*feed{}, janitor: make(chan struct{}), started: make(chan struct{}),
		metrics: newEngineMetrics(),
		shared:  shared, kick: make(chan struct{}, 1), replicaStop: make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.baseCtx, e.baseCancel = context.WithCancel(context.Background())
	if shared == nil {
		// Alone on its store: what is unfinished there was left by an
		// earlier process. (Replicas take over each other's work through
		// leases instead.)
		if err := e.recover(); err != nil {
			e.baseCancel()
			return nil, err
		}
	} else {
		e.wg.Add(2)
		go e.runReplica()
		go e.runLeases()
	}
	e.wg.Add(1)
	go e.runJanitor()
	return e, nil
}

// recover marks operations left unfinished by an earlier process as failed.
func (e *Engine) recover() error {
	ctx := context.Background()
	ops, err := e.store.Unfinished(ctx)
	if err != nil {
		return fmt.Errorf("operations: list unfinished operations: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range ops {
		op := ops[i]
		e.finishLocked(&op, Failed, nil, &Error{Code: CodeInterrupted,
			Message: fmt.Sprintf("the server stopped while the operation was %s", op.Status)})
	}
	return nil
}

// Registry returns the engine's registry.
func (e *Engine) Registry() *Registry { return e.cfg.Registry }

// MaxConcurrent returns how many operations may run at once.
func (e *Engine) MaxConcurrent() int { return e.cfg.MaxConcurrent }

// Replica returns the name this engine holds leases under: Config.Replica
// followed by '#' and this process's token, as Operation.Replica shows it;
// empty for a single engine.
func (e *Engine) Replica() string { return e.cfg.Replica }

// Submit validates and queues an operation. created is false when an
// Idempotency-Key replay returned an existing operation. Errors:
// *UnknownTypeError, *ValidationError (possibly wrapped),
// ErrIdempotencyConflict, *TooManyActiveError, ErrClosed.
func (e *Engine) Submit(ctx context.Context, req SubmitRequest) (op Operation, created bool, err error) {
	typ, err := e.cfg.Registry.Lookup(req.Type)
	if err != nil {
		return Operation{}, false, err
	}
	params, err := compactObject(req.Params)
	if err != nil {
		return Operation{}, false, err
	}
	if typ.Validate != nil {
		if err := typ.Validate(params); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				err = &ValidationError{Message: err.Error()}
			}
			return Operation{}, false, err
		}
	}
	digest := requestDigest(req.Type, params)

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return Operation{}, false, ErrClosed
	}
	if req.IdempotencyKey != "" {
		prev, ok, err := e.store.FindIdempotent(ctx, req.ClientID, req.IdempotencyKey)
		if err != nil {
			return Operation{}, false, err
		}
		if ok {
			if prev.RequestDigest != digest {
				return Operation{}, false, ErrIdempotencyConflict
			}
			return prev, false, nil
		}
	}
	if max := e.cfg.MaxActivePerClient; max > 0 {
		active, err := e.activeLocked(ctx, req.ClientID)
		if err != nil {
			return Operation{}, false, err
		}
		if active >= max {
			return Operation{}, false, &TooManyActiveError{ClientID: req.ClientID, Limit: max}
		}
	}
	now := e.now().UTC()
	live := &Operation{
		ID: newID(), Type: req.Type, Status: Queued, ClientID: req.ClientID, CreatedAt: now,
		Params: params, IdempotencyKey: req.IdempotencyKey, RequestDigest: digest,
	}
	// The operation is written once, already numbering its first event,
	// which then goes into its history. Nobody watches it yet: Subscribe
	// needs e.mu and the stored operation.
	ev, ok := e.nextEventLocked(live, EventStatus, StatusData{OperationID: live.ID, Status: Queued, Time: now})
	if cc, both := e.store.(ClaimingCreator); both && ok && e.shared != nil && e.slotMu.TryLock() {
		// A free slot here and nothing else queued: run it at once. (Only
		// TryLock: claim takes slotMu before e.mu; while it fills slots,
		// the submit goes through the queue.)
		if e.cfg.MaxConcurrent-len(e.running) > 0 {
			// Its running event goes in with the claim.
			next := *live
			running, _ := e.nextEventLocked(&next, EventStatus, StatusData{OperationID: live.ID, Status: Running, Time: e.now().UTC()})
			claimed, started, err := cc.CreateAndClaim(ctx, *live, ev, running, e.cfg.Replica, e.cfg.Lease)
			if err != nil {
				e.slotMu.Unlock()
				return Operation{}, false, err
			}
			e.metrics.submitted.WithLabelValues(live.Type).Inc()
			if started {
				e.startClaimedLocked(claimed, &running)
			} else {
				e.kickReplica()
			}
			e.slotMu.Unlock()
			return *live, true, nil
		}
		e.slotMu.Unlock()
	}
	if ec, both := e.store.(EventCreator); both && ok && e.shared != nil {
		if err := ec.CreateWithEvent(ctx, *live, ev); err != nil {
			return Operation{}, false, err
		}
		e.metrics.submitted.WithLabelValues(live.Type).Inc()
		e.kickReplica()
		return *live, true, nil
	}
	if err := e.store.Create(ctx, *live); err != nil {
		return Operation{}, false, err
	}
	if e.shared != nil {
		// It waits in the store for a replica (maybe this one) to claim it.
		if ok {
			e.appendEventLocked(live.ID, ev)
		}
		e.metrics.submitted.WithLabelValues(live.Type).Inc()
		e.kickReplica()
		return *live, true, nil
	}
	e.live[live.ID] = live
	e.metrics.submitted.WithLabelValues(live.Type).Inc()
	f := newFeed(e.cfg.SubscriberBuffer)
	e.feeds[live.ID] = f
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f.notify()
	}()
	if ok {
		e.appendEventLocked(live.ID, ev)
		f.add(ev)
	}
	submitted := *live // as accepted: queued (it may start at once below)
	e.enqueueLocked(live.ClientID, queued{id: live.ID, typ: typ})
	e.dispatchLocked()
	return submitted, true, nil
}

// activeLocked counts clientID's queued and running operations: this
// engine's, or with replicas every replica's (from the store).
func (e *Engine) activeLocked(ctx context.Context, clientID string) (int, error) {
	if e.shared == nil {
		active := 0
		for _, op := range e.live {
			if op.ClientID == clientID {
				active++
			}
		}
		return active, nil
	}
	active := 0
	for _, st := range []Status{Queued, Running} {
		_, n, err := e.store.List(ctx, Filter{ClientID: clientID, Status: st, Limit: 1})
		if err != nil {
			return 0, err
		}
		active += n
	}
	return active, nil
}

// queued is an operation waiting for a slot, with the type Submit found
// for it.
type queued struct {
	id  string
	typ Type
}

// Get returns the operation with id, or ErrNotFound.
func (e *Engine) Get(ctx context.Context, id string) (Operation, error) {
	return e.store.Get(ctx, id)
}

// List returns one page of operations matching f, newest first, and the
// total number of matches.
func (e *Engine) List(ctx context.Context, f Filter) ([]Operation, int, error) {
	return e.store.List(ctx, f)
}

// Counts returns how many stored operations are in each status (O(1)
// with a store that implements Counter, such as MemoryStore).
func (e *Engine) Counts(ctx context.Context) (map[Status]int, error) {
	if c, ok := e.store.(Counter); ok {
		return c.Counts(ctx)
	}
	out := make(map[Status]int, 5)
	for _, s := range Statuses() {
		_, n, err := e.store.List(ctx, Filter{Status: s, Limit: 1})
		if err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, nil
}

// Cancel ends a queued or running operation as cancelled with reason and
// cancels its work's context; the work's slot is released when it returns.
// It returns the cancelled operation, ErrNotFound, or a
// *NotCancellableError when the operation had already ended. On a replica,
// an operation running elsewhere ends on its replica's next renewal;
// Cancel waits for that up to 20 poll intervals (5 s by default) and then
// returns it as it stands (still running, the cancel requested).
func (e *Engine) Cancel(ctx context.Context, id, reason string) (Operation, error) {
	if reason == "" {
		reason = ReasonClientAsked
	}
	e.mu.Lock()
	op, ok := e.live[id]
	if !ok && e.shared != nil {
		e.mu.Unlock()
		return e.cancelShared(ctx, id, reason)
	}
	defer e.mu.Unlock()
	if !ok {
		stored, err := e.store.Get(ctx, id)
		if err != nil {
			return Operation{}, err
		}
		return Operation{}, &NotCancellableError{ID: id, Status: stored.Status}
	}
	e.cancelLocked(op, reason)
	return *op, nil
}

func (e *Engine) cancelLocked(op *Operation, reason string) {
	if cancel, running := e.running[op.ID]; running {
		cancel(errors.New(reason))
	} else {
		e.unqueueLocked(op)
	}
	e.finishLocked(op, Cancelled, nil, &Error{Code: CodeCancelled, Message: reason})
}

// enqueueLocked adds q at the end of client's queue.
func (e *Engine) enqueueLocked(client string, q queued) {
	if len(e.queues[client]) == 0 {
		e.ring = append(e.ring, client)
	}
	e.queues[client] = append(e.queues[client], q)
}

// unqueueLocked removes op from its client's queue, if it is there.
func (e *Engine) unqueueLocked(op *Operation) {
	q := e.queues[op.ClientID]
	i := slices.IndexFunc(q, func(x queued) bool { return x.id == op.ID })
	if i < 0 {
		return
	}
	if q = slices.Delete(q, i, i+1); len(q) > 0 {
		e.queues[op.ClientID] = q
		return
	}
	delete(e.queues, op.ClientID)
	e.ring = slices.DeleteFunc(e.ring, func(c string) bool { return c == op.ClientID })
}

// queuedLocked returns how many operations wait for a slot.
func (e *Engine) queuedLocked() int {
	n := 0
	for _, q := range e.queues {
		n += len(q)
	}
	return n
}

// popLocked takes the next operation to start: the oldest of the client
// with queued work that has the fewest operations running, ties going to
// the client served least recently. That client then goes to the back of
// the ring.
func (e *Engine) popLocked() queued {
	best := 0
	for i, c := range e.ring[1:] {
		if e.runningBy[c] < e.runningBy[e.ring[best]] {
			best = i + 1
		}
	}
	client := e.ring[best]
	e.ring = slices.Delete(e.ring, best, best+1)
	q := e.queues[client]
	next := q[0]
	if q = q[1:]; len(q) > 0 {
		e.queues[client] = q
		e.ring = append(e.ring, client)
	} else {
		delete(e.queues, client)
	}
	return next
}

// dispatchLocked starts queued operations while slots are free.
func (e *Engine) dispatchLocked() {
	for len(e.running) < e.cfg.MaxConcurrent && len(e.ring) > 0 && !e.closed {
		next := e.popLocked()
		op, ok := e.live[next.id]
		if !ok || op.Status != Queued {
			continue // cancelled while queued
		}
		now := e.now().UTC()
		op.Status, op.StartedAt = Running, &now
		e.publishLocked(op, EventStatus, StatusData{OperationID: op.ID, Status: Running, Time: now})
		ctx, cancel := context.WithCancelCause(e.baseCtx)
		e.running[op.ID] = cancel
		e.runningBy[op.ClientID]++
		e.wg.Add(1)
		go e.run(ctx, cancel, next.typ, op.ID, op.ClientID, op.Params)
	}
}

// run executes one operation's work and records its outcome.
func (e *Engine) run(ctx context.Context, cancel context.CancelCauseFunc, typ Type, id, client string, params json.RawMessage) {
	defer e.wg.Done()
	defer cancel(nil)
	start := e.now()
	result, err := e.safeRun(ctx, typ, id, params)
	e.metrics.duration.WithLabelValues(typ.Name).Observe(e.now().Sub(start).Seconds())

	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.running, id)
	if e.runningBy[client]--; e.runningBy[client] <= 0 {
		delete(e.runningBy, client)
	}
	defer e.dispatchLocked()
	if e.shared != nil {
		defer e.kickReplica() // a slot is free
	}
	op, ok := e.live[id]
	if ok && errors.Is(context.Cause(ctx), errHandBack) {
		e.releaseLocked(op)
		return
	}
	if !ok {
		// Already terminal (cancelled): the outcome of the work is ignored.
		if err != nil && !errors.Is(err, context.Canceled) {
			e.log.Debug("work of a cancelled operation ended with an error", "operation_id", id, "err", err)
		}
		return
	}
	if err != nil {
		e.finishLocked(op, Failed, nil, e.publicError(id, err))
		return
	}
	raw, merr := json.Marshal(result)
	if merr != nil {
		e.log.Error("operation result cannot be encoded", "operation_id", id, "type", typ.Name, "err", merr)
		e.finishLocked(op, Failed, nil, &Error{Code: CodeInternal, Message: "operation failed"})
		return
	}
	e.finishLocked(op, Completed, raw, nil)
}

func (e *Engine) safeRun(ctx context.Context, typ Type, id string, params json.RawMessage) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("operation panicked", "operation_id", id, "type", typ.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = &Error{Code: CodeInternal, Message: "operation failed"}
		}
	}()
	return typ.Run(ctx, params, &reporter{e: e, id: id})
}

// publicError turns a work error into what the owner may see.
func (e *Engine) publicError(id string, err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return &Error{Code: CodeValidation, Message: ve.Error(), Err: err}
	}
	if e.cfg.ClassifyError != nil {
		if pe := e.cfg.ClassifyError(err); pe != nil {
			return pe
		}
	}
	e.log.Error("operation failed", "operation_id", id, "err", err)
	return &Error{Code: CodeInternal, Message: "operation failed", Err: err}
}

// finishLocked moves op to a terminal state, publishes the terminal event
// and ends every watcher's stream. It does nothing if op already ended.
func (e *Engine) finishLocked(op *Operation, to Status, result json.RawMessage, perr *Error) {
	if !canMove(op.Status, to) {
		return
	}
	perr = e.encodableError(op.ID, perr)
	now := e.now().UTC()
	op.Status, op.FinishedAt, op.Result, op.Error, op.Params = to, &now, result, perr, nil
	delete(e.live, op.ID)
	e.metrics.finished.WithLabelValues(op.Type, string(to)).Inc()
	if e.cfg.OnFinish != nil {
		finished := *op
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.cfg.OnFinish(finished)
		}()
	}
	data := TerminalData{OperationID: op.ID, Status: to, Result: result, Error: perr, Time: now}
	if to == Completed {
		e.publishLocked(op, EventComplete, data)
	} else {
		e.publishLocked(op, EventError, data)
	}
}

// encodableError returns perr if it encodes to JSON, else (logging why) an
// INTERNAL_ERROR with perr's message and no details: the terminal state
// must be stored and delivered even when work put a NaN, an infinity, a
// func or a channel in Details.
func (e *Engine) encodableError(id string, perr *Error) *Error {
	if perr == nil {
		return nil
	}
	if _, err := json.Marshal(perr); err != nil {
		e.log.Error("operation error cannot be encoded; its details are dropped", "operation_id", id, "code", perr.Code, "err", err)
		return &Error{Code: CodeInternal, Message: perr.Message, Err: perr}
	}
	return perr
}

func (e *Engine) putLocked(op *Operation) {
	if err := e.store.Put(context.Background(), *op); err != nil {
		e.log.Error("store operation", "operation_id", op.ID, "err", err)
	}
}

// publishLocked appends an event to op's history, stores op (whose
// LastEventID it advances, with any change the caller made) and hands the
// event to watchers.
func (e *Engine) publishLocked(op *Operation, typ EventType, data any) {
	ev, ok := e.nextEventLocked(op, typ, data)
	if !ok && typ.Terminal() {
		// Every stream must end: fall back to data that always encodes.
		ev, ok = e.nextEventLocked(op, typ, TerminalData{OperationID: op.ID, Status: op.Status,
			Error: &Error{Code: CodeInternal, Message: "operation failed"}, Time: e.now().UTC()})
	}
	if !ok {
		// The event is lost, but not the change to op.
		e.putLocked(op)
		return
	}
	e.appendEventLocked(op.ID, ev)
	e.putLocked(op)
	f := e.feeds[op.ID]
	if f == nil {
		return
	}
	if !ev.Type.Terminal() {
		f.add(ev) // never waits for watchers
		return
	}
	delete(e.feeds, op.ID)
	fl, writesBehind := e.store.(interface{ Flush(context.Context) error })
	if e.shared == nil || !writesBehind {
		f.add(ev)
		return
	}
	// The other replicas answer from the store: the end reaches watchers
	// here once it is stored, so that a client that saw it reads the same
	// operation on any replica. Nothing is added to f after its terminal
	// event, so this add does not race another.
	id := op.ID
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := fl.Flush(ctx); err != nil {
			e.log.Warn("store the end of an operation", "operation_id", id, "err", err)
		}
		f.add(ev)
	}()
}

// nextEventLocked makes op's next event, advancing op.LastEventID; it
// reports false (and logs) if data cannot be encoded.
func (e *Engine) nextEventLocked(op *Operation, typ EventType, data any) (Event, bool) {
	raw, err := json.Marshal(data)
	if err != nil {
		e.log.Error("encode event", "operation_id", op.ID, "err", err)
		return Event{}, false
	}
	op.LastEventID++
	return Event{Seq: op.LastEventID, Type: typ, Time: e.now().UTC(), Data: raw}, true
}

// appendEventLocked adds ev to operation id's stored history.
func (e *Engine) appendEventLocked(id string, ev Event) {
	if err := e.store.AppendEvent(context.Background(), id, ev); err != nil {
		e.log.Error("store event", "operation_id", id, "err", err)
	}
}

// Close stops accepting operations, cancels every queued and running one
// with reason "server shutdown", and waits until their work has returned or
// ctx ends. Later calls return an error matching net.ErrClosed.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.closed = true
	e.queues, e.ring = map[string][]queued{}, nil
	if e.shared != nil {
		e.handBackLocked() // queued work stays in the store for the others
	} else {
		for _, op := range e.live { // every queued and running operation
			e.cancelLocked(op, ReasonShutdown)
		}
	}
	e.mu.Unlock()
	close(e.janitor)
	close(e.replicaStop)

	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.baseCancel()
		return nil
	case <-ctx.Done():
		e.baseCancel()
		return fmt.Errorf("operations: work still running at shutdown: %w", context.Cause(ctx))
	}
}

// runJanitor deletes finished operations older than the retention period.
func (e *Engine) runJanitor() {
	defer e.wg.Done()
	every := min(max(e.cfg.Retention/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.janitor:
			return
		case <-t.C:
			n, err := e.store.DeleteFinishedBefore(context.Background(), e.now().Add(-e.cfg.Retention))
			if err != nil {
				e.log.Error("delete expired operations", "err", err)
			} else if n > 0 {
				e.log.Debug("deleted expired operations", "count", n)
			}
		}
	}
}

// reporter is the Reporter handed to running work.
type reporter struct {
	e  *Engine
	id string
}

func (r *reporter) Progress(p Progress) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	op, ok := r.e.live[r.id]
	if !ok || op.Status != Running {
		return
	}
	p = p.normalize()
	op.Progress = &p
	r.e.publishLocked(op, EventProgress, ProgressData{OperationID: op.ID, Progress: p, Time: r.e.now().UTC()})
}

func (r *reporter) Log(level, message string) {
	switch level {
	case "debug", "info", "warn", "error":
	default:
		level = "info"
	}
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	op, ok := r.e.live[r.id]
	if !ok || op.Status != Running {
		return
	}
	r.e.publishLocked(op, EventLog, LogData{OperationID: op.ID, Level: level, Message: message, Time: r.e.now().UTC()})
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "op_" + hex.EncodeToString(b[:])
}

// compactObject returns params without insignificant whitespace; empty
// means {}. Anything but a JSON object is a *ValidationError.
func compactObject(params json.RawMessage) (json.RawMessage, error) {
	params = bytes.TrimSpace(params)
	if len(params) == 0 {
		return json.RawMessage("{}"), nil
	}
	var buf bytes.Buffer
	if params[0] != '{' || json.Compact(&buf, params) != nil {
		return nil, &ValidationError{Message: "params must be a JSON object"}
	}
	return buf.Bytes(), nil
}

// requestDigest identifies a submit by type and compacted params.
func requestDigest(typ string, params json.RawMessage) string {
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write(params)
	return hex.EncodeToString(h.Sum(nil))
}
