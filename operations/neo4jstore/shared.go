package neo4jstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// The SharedStore methods. Every one is a single write transaction, and
// each takes the write lock of the operations it changes before it reads
// their state (Neo4j reads committed data, so two transactions may both
// see one operation queued; the second to lock it sees it running). Lease
// times are the database's clock: datetime() plus the lease.

// claimRounds bounds how often one Claim picks again after other replicas
// took some of its picks first.
const claimRounds = 8

// lockAndRead is the start of the queries below: lock operation $id, then
// read it.
const lockAndRead = "MATCH (o:" + LabelOperation + " {ns: $ns, id: $id}) SET o._lock = true REMOVE o._lock WITH o "

// leaseEnd is the end of a lease of $ms milliseconds from now.
const leaseEnd = "datetime() + duration({milliseconds: $ms})"

func (s *Store) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Claim implements operations.SharedStore. Claiming an operation that was
// released counts one more Attempt (its first claim makes it 1) and keeps
// its first StartedAt.
func (s *Store) Claim(ctx context.Context, replica string, n int, lease time.Duration) ([]operations.Operation, error) {
	return s.claim(ctx, replica, n, lease, nil)
}

// ClaimWithEvent implements operations.EventClaimer: each round writes
// the events of what it claimed in its own transaction.
func (s *Store) ClaimWithEvent(ctx context.Context, replica string, n int, lease time.Duration, next func(operations.Operation) operations.Event) ([]operations.Operation, error) {
	return s.claim(ctx, replica, n, lease, next)
}

// claim is Claim, writing next's event for each claimed operation when
// next is set.
func (s *Store) claim(ctx context.Context, replica string, n int, lease time.Duration, next func(operations.Operation) operations.Event) ([]operations.Operation, error) {
	if n <= 0 {
		return nil, nil
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	// Each round is a transaction of its own: it locks its picks in one
	// order (sorted, as renewals and flushes do) and holds no lock from an
	// earlier round, whose picks may sort after them.
	var out []operations.Operation
	for range claimRounds {
		start := time.Now()
		events := map[string]operations.Event{} // written with the claim
		v, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
			clear(events)
			picks, err := s.pick(ctx, tx, n-len(out))
			if err != nil || len(picks) == 0 {
				return []operations.Operation(nil), err
			}
			// Claim what is still queued once locked.
			recs, err := collect(ctx, tx, "UNWIND $ids AS id "+
				"MATCH (o:"+LabelOperation+" {ns: $ns, id: id}) SET o._lock = true REMOVE o._lock "+
				"WITH o WHERE o.status = 'queued' "+
				"SET o.status = 'running', o.replica = $replica, o.attempt = coalesce(o.attempt, 0) + 1, "+
				"o.started_at = coalesce(o.started_at, datetime()), o.lease_until = "+leaseEnd+" "+
				"RETURN properties(o) AS p",
				map[string]any{"ns": s.cfg.Namespace, "ids": slices.Sorted(slices.Values(picks)), "replica": replica, "ms": lease.Milliseconds()})
			if err != nil {
				return nil, err
			}
			got, err := decodeAll(recs)
			if err != nil {
				return nil, err
			}
			// In the order of the picks; none when nothing was queued.
			byID := make(map[string]operations.Operation, len(got))
			for _, op := range got {
				byID[op.ID] = op
			}
			claimed := []operations.Operation{}
			for _, id := range picks {
				if op, ok := byID[id]; ok {
					claimed = append(claimed, op)
				}
			}
			if next == nil || len(claimed) == 0 {
				return claimed, nil
			}
			evs := make([]map[string]any, len(claimed))
			for i := range claimed {
				ev := next(claimed[i])
				events[claimed[i].ID] = ev
				claimed[i].LastEventID = ev.Seq
				evs[i] = eventProps(ev)
				evs[i]["op_id"] = claimed[i].ID
			}
			return claimed, run(ctx, tx, "UNWIND $evs AS e MATCH (o:"+LabelOperation+" {ns: $ns, id: e.op_id}) SET o.last_event_id = e.seq "+
				"MERGE (v:"+LabelEvent+" {ns: $ns, op_id: e.op_id, seq: e.seq}) SET v.type = e.type, v.time = e.time, v.data = e.data",
				map[string]any{"ns": s.cfg.Namespace, "evs": evs})
		})
		if err != nil {
			if len(out) > 0 {
				break // keep what earlier rounds claimed
			}
			return nil, fmt.Errorf("neo4jstore: claim: %w", err)
		}
		claimed, _ := v.([]operations.Operation)
		s.hold(claimed, start.Add(lease))
		s.keepEvents(events)
		out = append(out, claimed...)
		if claimed == nil || len(out) >= n {
			break // nothing queued, or enough
		}
	}
	return out, nil
}

// pick chooses up to n queued operations fairly: the oldest of the client
// with the fewest running operations, ties to the oldest operation; each
// pick counts as running for the next.
func (s *Store) pick(ctx context.Context, tx neo4j.ManagedTransaction, n int) ([]string, error) {
	params := map[string]any{"ns": s.cfg.Namespace, "n": int64(n)}
	recs, err := collect(ctx, tx, "MATCH (o:"+LabelOperation+" {ns: $ns, status: 'running'}) RETURN o.client_id AS c, count(*) AS n", params)
	if err != nil {
		return nil, err
	}
	running := map[string]int64{}
	for _, r := range recs {
		c, _ := r.Values[0].(string)
		running[c], _ = r.Values[1].(int64)
	}
	recs, err = collect(ctx, tx, "MATCH (o:"+LabelOperation+" {ns: $ns, status: 'queued'}) "+
		"WITH o ORDER BY o.created_at, o.id "+
		"WITH o.client_id AS c, collect({id: o.id, created: o.created_at})[..$n] AS q RETURN c, q", params)
	if err != nil {
		return nil, err
	}
	type queued struct {
		id      string
		created time.Time
	}
	older := func(a, b queued) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	}
	queues := map[string][]queued{}
	for _, r := range recs {
		c, _ := r.Values[0].(string)
		list, _ := r.Values[1].([]any)
		for _, x := range list {
			m, _ := x.(map[string]any)
			id, _ := m["id"].(string)
			created, _ := m["created"].(time.Time)
			queues[c] = append(queues[c], queued{id, created})
		}
	}
	var picks []string
	for len(picks) < n && len(queues) > 0 {
		best := ""
		for c, q := range queues {
			if best == "" {
				best = c
				continue
			}
			if d := cmp.Compare(running[c], running[best]); d < 0 || (d == 0 && older(q[0], queues[best][0]) < 0) {
				best = c
			}
		}
		picks = append(picks, queues[best][0].id)
		running[best]++
		if queues[best] = queues[best][1:]; len(queues[best]) == 0 {
			delete(queues, best)
		}
	}
	return picks, nil
}

// TakeOver implements operations.SharedStore: the operations whose lease
// ended longest ago go first.
func (s *Store) TakeOver(ctx context.Context, replica string, n int, lease time.Duration) ([]operations.Operation, error) {
	if n <= 0 {
		return nil, nil
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	start := time.Now()
	v, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		recs, err := collect(ctx, tx, "MATCH (o:"+LabelOperation+" {ns: $ns, status: 'running'}) WHERE o.lease_until < datetime() AND o.replica <> $replica "+
			"WITH o ORDER BY o.lease_until, o.id LIMIT $n "+
			"WITH o ORDER BY o.id SET o._lock = true REMOVE o._lock "+
			"WITH o WHERE o.status = 'running' AND o.lease_until < datetime() AND o.replica <> $replica "+
			"SET o.replica = $replica, o.attempt = coalesce(o.attempt, 0) + 1, o.lease_until = "+leaseEnd+" "+
			"RETURN properties(o) AS p, o.id AS id ORDER BY id",
			map[string]any{"ns": s.cfg.Namespace, "n": int64(n), "replica": replica, "ms": lease.Milliseconds()})
		if err != nil {
			return nil, err
		}
		return decodeAll(recs)
	})
	if err != nil {
		return nil, fmt.Errorf("neo4jstore: take over: %w", err)
	}
	out, _ := v.([]operations.Operation)
	s.hold(out, start.Add(lease))
	return out, nil
}

// hold records that this store's replica runs ops now, with leases ending
// after until (a time of this process's clock).
func (s *Store) hold(ops []operations.Operation, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cfg.Shared {
		until = time.Time{}
	}
	for _, op := range ops {
		s.known[op.ID] = true
		s.last[op.ID] = op
		delete(s.lost, op.ID)
		if l := s.live[op.ID]; l != nil && l.op.LastEventID == op.LastEventID {
			l.op, l.until = op, until // its history is still the one kept
		} else {
			s.live[op.ID] = &liveEntry{op: op, from: op.LastEventID, until: until}
		}
	}
}

// keepEvents makes the live entries of operations just claimed with
// their running event (the last they count) hold it, so that watchers
// here read it from memory.
func (s *Store) keepEvents(evs map[string]operations.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ev := range evs {
		if l := s.live[id]; l != nil && l.op.LastEventID == ev.Seq && len(l.events) == 0 {
			l.events, l.from = []operations.Event{ev}, ev.Seq-1
		}
	}
}

func decodeAll(recs []*neo4j.Record) ([]operations.Operation, error) {
	out := make([]operations.Operation, 0, len(recs))
	for _, r := range recs {
		p, _ := r.Get("p")
		props, _ := p.(map[string]any)
		op, err := decodeOp(props)
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, nil
}

// Renew implements operations.SharedStore, in one statement. A lease that
// ended but that no other replica took over is still held, and renewed.
// The store forgets what it kept of the operations no longer held.
func (s *Store) Renew(ctx context.Context, replica string, ids []string, lease time.Duration) (map[string]operations.LeaseState, error) {
	out := make(map[string]operations.LeaseState, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	start := time.Now()
	v, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		return collect(ctx, tx, "UNWIND $ids AS id "+
			"OPTIONAL MATCH (o:"+LabelOperation+" {ns: $ns, id: id}) WHERE o.replica = $replica "+
			"FOREACH (x IN CASE WHEN o IS NULL THEN [] ELSE [o] END | SET x._lock = true REMOVE x._lock) "+
			"WITH id, o, o IS NOT NULL AND o.replica = $replica AND o.status = 'running' AS held "+
			"FOREACH (x IN CASE WHEN held THEN [o] ELSE [] END | SET x.lease_until = "+leaseEnd+") "+
			"RETURN id, held, CASE WHEN held THEN o.cancel_reason END AS reason",
			map[string]any{"ns": s.cfg.Namespace, "ids": slices.Sorted(slices.Values(ids)), "replica": replica, "ms": lease.Milliseconds()})
	})
	if err != nil {
		return nil, fmt.Errorf("neo4jstore: renew leases: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range v.([]*neo4j.Record) {
		id, _ := r.Values[0].(string)
		held, _ := r.Values[1].(bool)
		reason, _ := r.Values[2].(string)
		out[id] = operations.LeaseState{Held: held, CancelReason: reason}
		if !held {
			s.forgetLocked(id)
		} else if l := s.live[id]; l != nil && s.cfg.Shared {
			l.until = start.Add(lease)
		}
	}
	return out, nil
}

// Release implements operations.SharedStore. It first writes what the
// store accepted (the operation's last state lands while it is held). A
// cancel requested before stays requested, for the next replica's Renew.
func (s *Store) Release(ctx context.Context, replica, id string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := s.Flush(ctx); err != nil {
		return err
	}
	v, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		recs, err := collect(ctx, tx, lockAndRead+
			"WITH o, o.replica = $replica AND o.status = 'running' AS held "+
			"SET o.status = CASE WHEN held THEN 'queued' ELSE o.status END, "+
			"o.replica = CASE WHEN held THEN null ELSE o.replica END, "+
			"o.lease_until = CASE WHEN held THEN null ELSE o.lease_until END "+
			"RETURN held", map[string]any{"ns": s.cfg.Namespace, "id": id, "replica": replica})
		if err != nil || len(recs) == 0 {
			return false, err
		}
		held, _ := recs[0].Values[0].(bool)
		return held, nil
	})
	if err != nil {
		return fmt.Errorf("neo4jstore: release %s: %w", id, err)
	}
	s.mu.Lock()
	s.forgetLocked(id)
	s.mu.Unlock()
	if held, _ := v.(bool); !held {
		return operations.ErrLeaseLost
	}
	return nil
}

// RequestCancel implements operations.SharedStore. The first reason asked
// for a running operation is the one reported; "" means
// operations.ReasonClientAsked.
func (s *Store) RequestCancel(ctx context.Context, id, reason string, now time.Time) (operations.Operation, error) {
	if reason == "" {
		reason = operations.ReasonClientAsked
	}
	if err := s.checkOpen(); err != nil {
		return operations.Operation{}, err
	}
	now = now.UTC()
	var ev *operations.Event
	v, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		ev = nil
		params := map[string]any{"ns": s.cfg.Namespace, "id": id, "reason": reason}
		recs, err := collect(ctx, tx, lockAndRead+"RETURN properties(o) AS p", params)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return nil, operations.ErrNotFound
		}
		ops, err := decodeAll(recs)
		if err != nil {
			return nil, err
		}
		op := ops[0]
		switch op.Status {
		case operations.Running:
			return op, run(ctx, tx, "MATCH (o:"+LabelOperation+" {ns: $ns, id: $id}) SET o.cancel_reason = coalesce(o.cancel_reason, $reason)", params)
		case operations.Queued:
		default:
			return op, nil
		}
		op.Status, op.FinishedAt, op.Params = operations.Cancelled, &now, nil
		op.Error = &operations.Error{Code: operations.CodeCancelled, Message: reason}
		op.LastEventID++
		data, err := json.Marshal(operations.TerminalData{OperationID: op.ID, Status: op.Status, Error: op.Error, Time: now})
		if err != nil {
			return nil, err
		}
		errJSON, err := json.Marshal(op.Error)
		if err != nil {
			return nil, err
		}
		ev = &operations.Event{Seq: op.LastEventID, Type: operations.EventError, Time: now, Data: data}
		params["now"], params["error"], params["seq"], params["data"] = now, string(errJSON), op.LastEventID, string(data)
		return op, run(ctx, tx, "MATCH (o:"+LabelOperation+" {ns: $ns, id: $id}) "+
			"SET o.status = 'cancelled', o.finished_at = $now, o.error = $error, o.params = null, o.last_event_id = $seq "+
			"MERGE (e:"+LabelEvent+" {ns: $ns, op_id: $id, seq: $seq}) SET e.type = 'error', e.time = $now, e.data = $data", params)
	})
	if errors.Is(err, operations.ErrNotFound) {
		return operations.Operation{}, operations.ErrNotFound
	}
	if err != nil {
		return operations.Operation{}, fmt.Errorf("neo4jstore: cancel %s: %w", id, err)
	}
	op := v.(operations.Operation)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known[id] = true
	if ev != nil {
		// Cancelled here while queued: what this store kept of it is
		// stale (its unwritten events land if the operation counts them).
		delete(s.last, id)
		delete(s.live, id)
		if p := s.pending[id]; p != nil {
			p.op = nil
		}
	}
	return op, nil
}

// SaveCheckpoint implements operations.SharedStore; ErrNotFound if there
// is no such operation.
func (s *Store) SaveCheckpoint(ctx context.Context, replica, id string, checkpoint json.RawMessage) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	v, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		stmt, params := s.CheckpointStatement(replica, id, checkpoint)
		recs, err := collect(ctx, tx, stmt, params)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return nil, operations.ErrNotFound
		}
		held, _ := recs[0].Values[0].(bool)
		return held, nil
	})
	if errors.Is(err, operations.ErrNotFound) {
		return operations.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("neo4jstore: save checkpoint of %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, _ := v.(bool); !held {
		s.forgetLocked(id)
		return operations.ErrLeaseLost
	}
	if l := s.live[id]; l != nil {
		l.op.Checkpoint = slices.Clone(checkpoint)
	}
	return nil
}

// CheckpointStatement implements operations.TxCheckpointer: the statement
// saves the checkpoint if replica holds the operation, and returns whether
// it does (no record: no such operation).
func (s *Store) CheckpointStatement(replica, id string, checkpoint json.RawMessage) (string, map[string]any) {
	return lockAndRead +
			"WITH o, o.replica = $replica AND o.status = 'running' AS held " +
			"SET o.checkpoint = CASE WHEN held THEN $checkpoint ELSE o.checkpoint END RETURN held",
		map[string]any{"ns": s.cfg.Namespace, "id": id, "replica": replica, "checkpoint": string(checkpoint)}
}

// Uses reports whether the store lives in environment env of m: whether
// its CheckpointStatement may run in a transaction of that environment.
func (s *Store) Uses(m *neo4jpool.Manager, env string) bool {
	return s.cfg.Manager == m && s.cfg.Environment == env
}

var (
	_ operations.SharedStore     = (*Store)(nil)
	_ operations.TxCheckpointer  = (*Store)(nil)
	_ operations.EventCreator    = (*Store)(nil)
	_ operations.ClaimingCreator = (*Store)(nil)
	_ operations.EventClaimer    = (*Store)(nil)
)
