package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrLeaseLost is returned by SharedStore calls that need a lease the
// replica no longer holds: it expired and another replica took the
// operation over, or the operation ended elsewhere.
var ErrLeaseLost = errors.New("operations: lease lost: another replica owns the operation now")

// SharedStore is a Store that several engines (replicas of one server,
// each in its own process) use at once. Queued operations belong to no
// replica until one claims them; a running operation belongs to the
// replica holding its lease, which alone writes its state and events.
// Any replica reads every operation and its history, and may cancel it.
//
// Lease times are the store's own clock (for a database, the database's),
// so replicas need no synchronised clocks.
type SharedStore interface {
	Store

	// Claim takes up to n queued operations for replica. Each moves to
	// running in the store, with StartedAt set, Replica = replica,
	// Attempt = 1 and a lease ending after lease. No operation is claimed
	// twice, however many replicas claim at once. The choice is fair
	// across every replica: the oldest queued operation of the client with
	// the fewest running operations (counted in the store, on all
	// replicas) goes first, ties going to the oldest operation.
	Claim(ctx context.Context, replica string, n int, lease time.Duration) ([]Operation, error)

	// TakeOver takes up to n running operations whose lease has expired
	// (their replica died) for replica: a new lease, Replica = replica,
	// Attempt + 1. They are returned as stored, with their Checkpoint.
	// Operations replica holds itself are never taken (a replica late to
	// renew still runs them; Renew extends their lease).
	TakeOver(ctx context.Context, replica string, n int, lease time.Duration) ([]Operation, error)

	// Renew extends replica's leases on ids and reports, for each id, what
	// the replica must know: whether it still holds it, and any cancel
	// requested by another replica.
	Renew(ctx context.Context, replica string, ids []string, lease time.Duration) (map[string]LeaseState, error)

	// Release hands an operation replica holds back to the queue (clean
	// shutdown): status queued, no replica, no lease; its Attempt,
	// Checkpoint and history stay. ErrLeaseLost if replica does not hold
	// it.
	Release(ctx context.Context, replica, id string) error

	// RequestCancel cancels operation id on behalf of any replica. A queued
	// one ends at once: it is stored cancelled (FinishedAt = now, Error
	// {CANCELLED, reason}) with its terminal event, and returned as such.
	// A running one gets a cancel request its replica sees on its next
	// Renew, and is returned still running. A terminal one is returned
	// unchanged. ErrNotFound if there is no such operation.
	RequestCancel(ctx context.Context, id, reason string, now time.Time) (Operation, error)

	// SaveCheckpoint durably records a running operation's checkpoint (what
	// a replica taking it over resumes from) before it returns.
	// ErrLeaseLost if replica does not hold the operation.
	SaveCheckpoint(ctx context.Context, replica, id string, checkpoint json.RawMessage) error
}

// LeaseState is what Renew reports about one operation.
type LeaseState struct {
	// Held is true while the replica still holds the operation's lease.
	Held bool
	// CancelReason is set when another replica asked to cancel the
	// operation.
	CancelReason string
}

// Writes by a replica that lost its lease must not overwrite the new
// owner's: in a SharedStore, Put and AppendEvent of an operation with a
// Replica take effect only while that replica holds it and it has not
// ended (a store that writes behind may drop them silently and log).

// TxCheckpointer is implemented by shared stores that can save a
// checkpoint inside the work's own database transaction, so that the
// checkpoint commits exactly when the work it describes does
// (SaveCheckpoint is a transaction of its own, after the work's).
type TxCheckpointer interface {
	// CheckpointStatement returns a Cypher write statement and its
	// parameters that save checkpoint for replica's operation id. Run in a
	// write transaction of the store's database, it returns one record
	// with one boolean: whether replica still holds the operation (false:
	// nothing was saved, and the transaction should roll back).
	CheckpointStatement(replica, id string, checkpoint json.RawMessage) (cypher string, params map[string]any)
}

// CheckpointStatement returns the statement that saves state as the
// running operation's checkpoint inside the caller's own transaction (see
// TxCheckpointer), and true, when the engine running it is a replica whose
// store can do that; else false (use SaveCheckpoint). The statement only
// makes sense in the database the store lives in.
func CheckpointStatement(ctx context.Context, state any) (cypher string, params map[string]any, ok bool, err error) {
	c, _ := ctx.Value(checkpointKey{}).(*checkpointer)
	if c == nil || c.e.shared == nil {
		return "", nil, false, nil
	}
	tc, isTx := c.e.shared.(TxCheckpointer)
	if !isTx {
		return "", nil, false, nil
	}
	raw, err := json.Marshal(state)
	if err != nil {
		return "", nil, false, fmt.Errorf("operations: encode checkpoint: %w", err)
	}
	cypher, params = tc.CheckpointStatement(c.e.cfg.Replica, c.id, raw)
	return cypher, params, true, nil
}

// EventCreator is implemented by stores that can write a new operation
// together with its first event, in one step. Replicas submit through it:
// no replica then sees the operation (to claim it, or to stream its
// events) before its first event is stored, so a watcher never finds a
// later event without the first.
type EventCreator interface {
	CreateWithEvent(ctx context.Context, op Operation, first Event) error
}

// ClaimingCreator is implemented by shared stores that can create an
// operation and claim it for a replica in one step. A replica with a free
// slot submits through it: when nothing else is queued (so that any
// replica's fair pick would be this operation), the operation starts
// without waiting for a claim round. ok is false when it was only created
// (it waits in the queue); the operation and its first event are written
// either way, as with EventCreator. When ok, running (the operation's next
// event: its status event saying it runs) is written with the claim, and
// the claimed operation counts it in LastEventID.
type ClaimingCreator interface {
	EventCreator
	CreateAndClaim(ctx context.Context, op Operation, first, running Event, replica string, lease time.Duration) (claimed Operation, ok bool, err error)
}

// EventClaimer is implemented by shared stores that can write each claimed
// operation's next event (its status event saying it runs) in the claiming
// transaction, so that starting the work needs no write of its own.
// ClaimWithEvent is Claim, calling next once for each operation it claims
// (as claimed, before the event) for that event; the operations returned
// count it in LastEventID. next may be called again for an operation when
// the store retries the transaction.
type EventClaimer interface {
	ClaimWithEvent(ctx context.Context, replica string, n int, lease time.Duration, next func(Operation) Event) ([]Operation, error)
}
