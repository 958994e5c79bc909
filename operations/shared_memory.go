package operations

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"
)

// now is the store's clock.
func (s *MemoryStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Claim implements SharedStore. Claiming an operation that was released
// earlier counts one more Attempt (its first claim makes it 1), and keeps
// its first StartedAt.
func (s *MemoryStore) Claim(_ context.Context, replica string, n int, lease time.Duration) ([]Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	now := s.now()
	// Each client's queued operations, oldest first.
	queues := map[string][]*memEntry{}
	for id := range s.active[Queued] {
		e := s.ops[id]
		queues[e.op.ClientID] = append(queues[e.op.ClientID], e)
	}
	for _, q := range queues {
		slices.SortFunc(q, func(a, b *memEntry) int { return olderFirst(a.op, b.op) })
	}
	var out []Operation
	for len(out) < n && len(queues) > 0 {
		// The client with the fewest running, ties to the oldest operation.
		var best string
		for c, q := range queues {
			if best == "" {
				best = c
				continue
			}
			if d := cmp.Compare(s.runningBy[c], s.runningBy[best]); d < 0 || (d == 0 && olderFirst(q[0].op, queues[best][0].op) < 0) {
				best = c
			}
		}
		e := queues[best][0]
		if queues[best] = queues[best][1:]; len(queues[best]) == 0 {
			delete(queues, best)
		}
		op := e.op
		op.Status, op.Replica, op.Attempt = Running, replica, op.Attempt+1
		if op.StartedAt == nil {
			at := now.UTC()
			op.StartedAt = &at
		}
		s.setLocked(e, op)
		e.leaseUntil = now.Add(lease)
		out = append(out, op)
	}
	return out, nil
}

// olderFirst orders operations by CreatedAt, then ID.
func olderFirst(a, b Operation) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// TakeOver implements SharedStore: the operations whose lease ended
// longest ago go first.
func (s *MemoryStore) TakeOver(_ context.Context, replica string, n int, lease time.Duration) ([]Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	now := s.now()
	var expired []*memEntry
	for id := range s.active[Running] {
		if e := s.ops[id]; !e.leaseUntil.IsZero() && e.leaseUntil.Before(now) && e.op.Replica != replica {
			expired = append(expired, e)
		}
	}
	slices.SortFunc(expired, func(a, b *memEntry) int {
		if c := a.leaseUntil.Compare(b.leaseUntil); c != 0 {
			return c
		}
		return cmp.Compare(a.op.ID, b.op.ID)
	})
	var out []Operation
	for _, e := range expired[:min(n, len(expired))] {
		e.op.Replica, e.op.Attempt = replica, e.op.Attempt+1
		e.leaseUntil = now.Add(lease)
		out = append(out, e.op)
	}
	return out, nil
}

// held reports whether replica holds e.
func (e *memEntry) held(replica string) bool {
	return e.op.Status == Running && e.op.Replica == replica
}

// Renew implements SharedStore. A lease that ended but that no other
// replica took over is still held, and renewed.
func (s *MemoryStore) Renew(_ context.Context, replica string, ids []string, lease time.Duration) (map[string]LeaseState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make(map[string]LeaseState, len(ids))
	for _, id := range ids {
		e, ok := s.ops[id]
		if !ok || !e.held(replica) {
			out[id] = LeaseState{}
			continue
		}
		e.leaseUntil = now.Add(lease)
		out[id] = LeaseState{Held: true, CancelReason: e.cancelReason}
	}
	return out, nil
}

// Release implements SharedStore. A cancel requested before stays
// requested, for the next replica's Renew.
func (s *MemoryStore) Release(_ context.Context, replica, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ops[id]
	if !ok || !e.held(replica) {
		return ErrLeaseLost
	}
	op := e.op
	op.Status, op.Replica = Queued, ""
	s.setLocked(e, op)
	e.leaseUntil = time.Time{}
	return nil
}

// RequestCancel implements SharedStore. The first reason asked for a
// running operation is the one reported; "" means ReasonClientAsked.
func (s *MemoryStore) RequestCancel(_ context.Context, id, reason string, now time.Time) (Operation, error) {
	if reason == "" {
		reason = ReasonClientAsked
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ops[id]
	if !ok {
		return Operation{}, ErrNotFound
	}
	switch e.op.Status {
	case Running:
		if e.cancelReason == "" {
			e.cancelReason = reason
		}
		return e.op, nil
	case Queued:
	default:
		return e.op, nil
	}
	now = now.UTC()
	op := e.op
	op.Status, op.FinishedAt, op.Params = Cancelled, &now, nil
	op.Error = &Error{Code: CodeCancelled, Message: reason}
	op.LastEventID++
	data, err := json.Marshal(TerminalData{OperationID: op.ID, Status: op.Status, Error: op.Error, Time: now})
	if err != nil {
		return Operation{}, err
	}
	s.appendLocked(e, Event{Seq: op.LastEventID, Type: EventError, Time: now, Data: data})
	s.setLocked(e, op)
	return op, nil
}

// SaveCheckpoint implements SharedStore; ErrNotFound if there is no such
// operation.
func (s *MemoryStore) SaveCheckpoint(_ context.Context, replica, id string, checkpoint json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ops[id]
	if !ok {
		return ErrNotFound
	}
	if !e.held(replica) {
		return ErrLeaseLost
	}
	e.op.Checkpoint = slices.Clone(checkpoint)
	return nil
}

var _ SharedStore = (*MemoryStore)(nil)
