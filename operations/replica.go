package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the replica settings in Config.
const (
	DefaultLease        = 30 * time.Second
	DefaultPollInterval = 250 * time.Millisecond
	// takeOverSeqGap is how far the event numbers of an operation jump
	// when a replica takes it over: events the dead replica published but
	// never stored are unknown, and the next ones must sort after them
	// for watchers that saw them.
	takeOverSeqGap = 100_000
)

// errHandBack is the cause given to resumable work stopped by a clean
// shutdown: it is handed back to the queue, not ended.
var errHandBack = errors.New("operations: handed back to the queue at shutdown")

// errLeaseLost is the cause given to work whose lease another replica took.
var errLeaseLost = fmt.Errorf("operations: %w", ErrLeaseLost)

// runReplica claims queued work every PollInterval and whenever a submit
// or a finished operation kicks it.
func (e *Engine) runReplica() { e.poll(e.kick, e.claim) }

// runLeases renews this replica's leases, acts on cancel requests and
// takes over work of dead replicas, every PollInterval. It runs beside
// runReplica so that a slow renewal (a lock wait, a retried transaction)
// never holds up claims, nor a slow claim the renewals.
func (e *Engine) runLeases() {
	e.poll(nil, func(ctx context.Context) {
		e.renew(ctx)
		e.takeOver(ctx)
	})
}

// poll runs work every PollInterval and whenever kick (nil: never) fires,
// until Close.
func (e *Engine) poll(kick <-chan struct{}, work func(context.Context)) {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-e.replicaStop:
			return
		case <-kick:
		case <-t.C:
		}
		work(e.baseCtx)
	}
}

// kickReplica wakes runReplica without waiting.
func (e *Engine) kickReplica() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// freeSlots returns how many more operations may run here now.
func (e *Engine) freeSlots() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0
	}
	return e.cfg.MaxConcurrent - len(e.running)
}

func (e *Engine) claim(ctx context.Context) {
	e.slotMu.Lock()
	defer e.slotMu.Unlock()
	n := e.freeSlots()
	if n <= 0 {
		return
	}
	var ops []Operation
	var err error
	running := map[string]Event{} // written with the claim
	if ec, ok := e.shared.(EventClaimer); ok {
		ops, err = ec.ClaimWithEvent(ctx, e.cfg.Replica, n, e.cfg.Lease, func(op Operation) Event {
			ev, _ := e.nextEventLocked(&op, EventStatus, StatusData{OperationID: op.ID, Status: Running, Time: e.now().UTC()})
			running[op.ID] = ev
			return ev
		})
	} else {
		ops, err = e.shared.Claim(ctx, e.cfg.Replica, n, e.cfg.Lease)
	}
	if err != nil {
		if ctx.Err() == nil {
			e.storeWarn.warn(e.log, "claim queued operations", e.cfg.Replica, err)
		}
		return
	}
	for _, op := range ops {
		if ev, ok := running[op.ID]; ok {
			e.startClaimed(op, &ev)
		} else {
			e.startClaimed(op, nil)
		}
	}
}

func (e *Engine) takeOver(ctx context.Context) {
	e.slotMu.Lock()
	defer e.slotMu.Unlock()
	n := e.freeSlots()
	if n <= 0 {
		return
	}
	ops, err := e.shared.TakeOver(ctx, e.cfg.Replica, n, e.cfg.Lease)
	if err != nil {
		if ctx.Err() == nil {
			e.storeWarn.warn(e.log, "take over operations", e.cfg.Replica, err)
		}
		return
	}
	for _, op := range ops {
		op.LastEventID += takeOverSeqGap
		typ, err := e.cfg.Registry.Lookup(op.Type)
		if err == nil && typ.Resumable {
			e.log.Info("taking over an operation whose replica stopped", "operation_id", op.ID, "type", op.Type, "attempt", op.Attempt)
			e.startClaimed(op, nil)
			continue
		}
		e.mu.Lock()
		e.finishLocked(&op, Failed, nil, &Error{Code: CodeInterrupted,
			Message: "the server replica running the operation stopped, and operations of type " + op.Type + " cannot resume"})
		e.mu.Unlock()
	}
}

// startClaimed runs op, which this replica now holds; its work resumes
// from op.Checkpoint when there is one (see ResumeFrom). running, when
// set, is op's running event, stored with the claim: it only goes to
// watchers.
func (e *Engine) startClaimed(op Operation, running *Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.startClaimedLocked(op, running)
}

// startClaimedLocked is startClaimed with e.mu held.
func (e *Engine) startClaimedLocked(op Operation, running *Event) {
	typ, err := e.cfg.Registry.Lookup(op.Type)
	live := &op
	if err != nil {
		e.finishLocked(live, Failed, nil, &Error{Code: CodeInternal,
			Message: fmt.Sprintf("operation type %q is not registered on replica %s", op.Type, e.cfg.Replica)})
		return
	}
	if e.closed {
		// Claimed while shutting down: straight back to the queue.
		if err := e.shared.Release(context.Background(), e.cfg.Replica, op.ID); err != nil {
			e.log.Warn("hand back an operation", "operation_id", op.ID, "err", err)
		}
		return
	}
	e.live[op.ID] = live
	f := newFeed(e.cfg.SubscriberBuffer)
	e.feeds[op.ID] = f
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f.notify()
	}()
	if live.StartedAt == nil {
		now := e.now().UTC()
		live.StartedAt = &now
	}
	if running != nil {
		f.add(*running)
	} else {
		e.publishLocked(live, EventStatus, StatusData{OperationID: op.ID, Status: Running, Time: e.now().UTC()})
	}
	close(e.started) // watchers tailing the store may follow the feed now
	e.started = make(chan struct{})
	ctx, cancel := context.WithCancelCause(e.baseCtx)
	ctx = context.WithValue(ctx, checkpointKey{}, &checkpointer{e: e, id: op.ID, last: op.Checkpoint})
	e.running[op.ID] = cancel
	e.runningBy[op.ClientID]++
	e.wg.Add(1)
	go e.run(ctx, cancel, typ, op.ID, op.ClientID, op.Params)
}

// renew extends this replica's leases, stops work whose lease is lost and
// cancels work another replica asked to cancel.
func (e *Engine) renew(ctx context.Context) {
	e.mu.Lock()
	ids := make([]string, 0, len(e.running))
	for id := range e.running {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	states, err := e.shared.Renew(ctx, e.cfg.Replica, ids, e.cfg.Lease)
	if err != nil {
		if ctx.Err() == nil {
			e.storeWarn.warn(e.log, "renew leases", e.cfg.Replica, err)
		}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, st := range states {
		op, live := e.live[id]
		if !live {
			continue
		}
		switch {
		case !st.Held:
			e.log.Warn("lost the lease of a running operation; another replica owns it now", "operation_id", id)
			e.dropLocked(op, errLeaseLost)
		case st.CancelReason != "":
			e.cancelLocked(op, st.CancelReason)
		}
	}
}

// dropLocked stops op's work without ending the operation (another replica
// owns it now, or it goes back to the queue): watchers here lose their
// stream and resume from the store.
func (e *Engine) dropLocked(op *Operation, cause error) {
	if cancel, ok := e.running[op.ID]; ok {
		cancel(cause)
	}
	delete(e.live, op.ID)
	if f := e.feeds[op.ID]; f != nil {
		f.move()
		delete(e.feeds, op.ID)
	}
}

// cancelShared cancels an operation this replica does not run.
func (e *Engine) cancelShared(ctx context.Context, id, reason string) (Operation, error) {
	stored, err := e.store.Get(ctx, id)
	if err != nil {
		return Operation{}, err
	}
	if stored.Status.Terminal() {
		return Operation{}, &NotCancellableError{ID: id, Status: stored.Status}
	}
	op, err := e.shared.RequestCancel(ctx, id, reason, e.now().UTC())
	if err != nil {
		return Operation{}, err
	}
	// A running operation ends on its replica's next renewal; wait for it
	// (about one poll interval; up to 20 on a loaded machine) so that the
	// answer says how it ended.
	deadline := time.Now().Add(20 * e.cfg.PollInterval)
	for !op.Status.Terminal() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return op, nil
		case <-time.After(e.cfg.PollInterval / 5):
		}
		if op, err = e.store.Get(ctx, id); err != nil {
			return Operation{}, err
		}
	}
	return op, nil
}

// handBackLocked stops resumable running work at shutdown so that it goes
// back to the queue (run releases it when the work has returned); other
// running work is cancelled.
func (e *Engine) handBackLocked() {
	for id, op := range e.live {
		typ, err := e.cfg.Registry.Lookup(op.Type)
		if err == nil && typ.Resumable {
			if cancel, ok := e.running[id]; ok {
				cancel(errHandBack)
			}
			continue
		}
		e.cancelLocked(op, ReasonShutdown)
	}
}

// releaseLocked hands op back to the queue after its work stopped.
func (e *Engine) releaseLocked(op *Operation) {
	delete(e.live, op.ID)
	if f := e.feeds[op.ID]; f != nil {
		f.move()
		delete(e.feeds, op.ID)
	}
	if fl, ok := e.store.(interface{ Flush(context.Context) error }); ok {
		if err := fl.Flush(context.Background()); err != nil {
			e.log.Warn("write an operation before handing it back", "operation_id", op.ID, "err", err)
		}
	}
	if err := e.shared.Release(context.Background(), e.cfg.Replica, op.ID); err != nil {
		e.log.Warn("hand back an operation", "operation_id", op.ID, "err", err)
		return
	}
	e.log.Info("handed a running operation back to the queue", "operation_id", op.ID, "type", op.Type)
}

// checkpointKey is the context key of a running operation's checkpointer.
type checkpointKey struct{}

type checkpointer struct {
	e    *Engine
	id   string
	last json.RawMessage
}

// SaveCheckpoint records state (encoded as JSON) as how far a resumable
// operation got: a replica that takes the operation over after this one
// died starts its work with it (see ResumeFrom). It is written before
// SaveCheckpoint returns. Work should save a checkpoint right after each
// step it committed. Outside a replicated engine (Config.Replica empty) it
// does nothing and returns nil. It fails with ErrLeaseLost once another
// replica owns the operation.
func SaveCheckpoint(ctx context.Context, state any) error {
	c, _ := ctx.Value(checkpointKey{}).(*checkpointer)
	if c == nil || c.e.shared == nil {
		return nil
	}
	raw, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("operations: encode checkpoint: %w", err)
	}
	return c.e.shared.SaveCheckpoint(ctx, c.e.cfg.Replica, c.id, raw)
}

// ResumeFrom returns the checkpoint a resumable operation's work should
// continue from: the last one saved, when this run took the operation over
// (or resumed it after it was handed back at a shutdown), else false.
func ResumeFrom(ctx context.Context) (json.RawMessage, bool) {
	c, _ := ctx.Value(checkpointKey{}).(*checkpointer)
	if c == nil || len(c.last) == 0 {
		return nil, false
	}
	return c.last, true
}

// warnLimiterEvery is how often a store error that repeats is logged.
const warnLimiterEvery = 30 * time.Second

// warnLimiter logs one warning of a kind at most every warnLimiterEvery,
// saying how many it held back. Its zero value is ready to use.
type warnLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func (w *warnLimiter) warn(log *slog.Logger, what, replica string, err error) {
	w.mu.Lock()
	if w.last == nil {
		w.last, w.held = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(w.last[what]) < warnLimiterEvery {
		w.held[what]++
		w.mu.Unlock()
		return
	}
	held := w.held[what]
	w.last[what], w.held[what] = now, 0
	w.mu.Unlock()
	log.Warn(what, "replica", replica, "err", err, "repeats_not_logged", held)
}
