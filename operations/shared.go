package operations

import (
	"context"
	"encoding/json"
	"errors"
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
