package neo4jstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// Defaults for Config fields left zero.
const (
	DefaultNamespace        = "atg"
	DefaultProgressInterval = 500 * time.Millisecond
	// retentionBatch is how many operations one retention transaction
	// deletes (with their events).
	retentionBatch = 200
	// urgentDelay is how long the writer waits after an urgent change
	// before it writes, so that changes made together share a transaction.
	urgentDelay = 2 * time.Millisecond
	// maxLiveEvents bounds the history the store keeps in memory for one
	// running operation; beyond it reads go to the database.
	maxLiveEvents = 10_000
)

// Labels of the store's nodes.
const (
	LabelOperation = "AtgOperation"
	LabelEvent     = "AtgOperationEvent"
)

// ErrClosed is returned by writes after Close, and by a second Close; it
// matches net.ErrClosed.
var ErrClosed = fmt.Errorf("neo4jstore: store closed: %w", net.ErrClosed)

// Config configures a Store. Manager and Environment are required.
type Config struct {
	// Manager reaches the database; the store uses Environment's
	// database.
	Manager *neo4jpool.Manager
	// Environment is the neo4jpool environment to use.
	Environment string
	// Namespace separates this store's operations from other stores' in
	// the same database; "" means DefaultNamespace ("atg").
	Namespace string
	// ProgressInterval is how often progress-only changes are written; 0
	// means DefaultProgressInterval (500 ms). Status changes and
	// status/complete/error events are written at once.
	ProgressInterval time.Duration
	// Logger receives write failures (they are retried) and writes dropped
	// by fencing; nil means none.
	Logger *slog.Logger
	// Shared is for several replicas (each with its own Store) on one
	// namespace, using the store as an operations.SharedStore. Then the
	// store answers from memory only for the operations its replica claimed
	// or took over, until it releases them, loses their lease or they end;
	// every other read goes to the database, as another replica may have
	// changed the operation. The writer also locks the operations it writes,
	// so that its fencing (see operations.SharedStore) is exact. False (one
	// server) keeps every operation the store created in memory.
	Shared bool
	// Lazy lets Open succeed when the database does not answer: the
	// constraints and indexes are then created before the first call that
	// reaches it, and calls fail with the database's error until one does.
	// False (the default) makes Open fail instead. A server that serves
	// while Neo4j is down (and says so on /readyz) sets it.
	Lazy bool
}

// Store is an operations.Store in Neo4j; create it with Open. It also
// implements operations.Counter.
type Store struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]*pending             // not yet written, by operation ID
	known   map[string]bool                 // operations known to exist
	last    map[string]operations.Operation // last accepted state of unfinished operations
	lost    map[string]writer               // the run of operations this store ran and no longer does
	// live holds the operations this store created, with their whole
	// history, until they are finished and written: their reads need no
	// round trip.
	live map[string]*liveEntry
	// ended holds, for endedFor, the last state of the operations the
	// store wrote to their end: a terminal state never changes, and the
	// client that saw the end often reads the operation next.
	ended  map[string]endedEntry
	closed bool

	schemaMu    sync.Mutex  // one schema attempt at a time
	schemaReady atomic.Bool // the constraints and indexes exist
	schemaErr   error       // the last attempt's failure (schemaMu)
	schemaAt    time.Time   // when it failed

	writeMu sync.Mutex // one flush at a time, in order
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// liveEntry is an operation created (or, when shared, claimed) by this
// store and its events after from.
type liveEntry struct {
	op     operations.Operation
	events []operations.Event
	from   int64 // events holds every event with Seq > from
	// until is, when shared, when the lease ends at the latest (measured
	// from before it was asked for); zero for one server.
	until time.Time
}

// endedEntry is an ended operation and until when the store answers
// from it.
type endedEntry struct {
	op    operations.Operation
	until time.Time
}

// endedFor is how long the store answers Get for an operation it wrote to
// its end from memory.
const endedFor = 10 * time.Second

// cachedLocked returns id's live entry while the store may answer from it:
// for one server always; when shared, while its lease lasts (after that
// another replica may have taken the operation over). s.mu is held.
func (s *Store) cachedLocked(id string) *liveEntry {
	if l := s.live[id]; l != nil && (l.until.IsZero() || time.Now().Before(l.until)) {
		return l
	}
	return nil
}

// pending is what the store accepted for one operation and has not written.
type pending struct {
	op      *operations.Operation // the latest state, nil when written
	events  []operations.Event
	writers []writer // who appended each of events
}

// writer is who writes an operation: the fencing token of its run.
type writer struct {
	replica string
	attempt int
}

func writerOf(op operations.Operation) writer { return writer{op.Replica, op.Attempt} }

// Open checks cfg, creates the store's constraints and indexes (if they do
// not exist) and starts its writer. When the database does not answer,
// Open fails, unless cfg.Lazy is set (see Config.Lazy).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	switch {
	case cfg.Manager == nil:
		return nil, errors.New("neo4jstore: Config.Manager is required")
	case cfg.Environment == "":
		return nil, errors.New("neo4jstore: Config.Environment is required")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	s := &Store{
		cfg: cfg, log: cfg.Logger, pending: map[string]*pending{}, known: map[string]bool{}, last: map[string]operations.Operation{},
		lost: map[string]writer{},
		live: map[string]*liveEntry{}, ended: map[string]endedEntry{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := s.ready(ctx); err != nil {
		if !cfg.Lazy {
			return nil, err
		}
		s.log.Warn("neo4jstore: the schema will be created when the database answers", "err", err)
	}
	go s.writer()
	return s, nil
}

var schema = []string{
	"CREATE CONSTRAINT atg_operation_key IF NOT EXISTS FOR (o:" + LabelOperation + ") REQUIRE (o.ns, o.id) IS UNIQUE",
	"CREATE CONSTRAINT atg_operation_event_key IF NOT EXISTS FOR (e:" + LabelEvent + ") REQUIRE (e.ns, e.op_id, e.seq) IS UNIQUE",
	"CREATE INDEX atg_operation_created IF NOT EXISTS FOR (o:" + LabelOperation + ") ON (o.ns, o.created_at)",
	"CREATE INDEX atg_operation_client IF NOT EXISTS FOR (o:" + LabelOperation + ") ON (o.ns, o.client_id)",
	"CREATE INDEX atg_operation_status IF NOT EXISTS FOR (o:" + LabelOperation + ") ON (o.ns, o.status)",
	"CREATE INDEX atg_operation_finished IF NOT EXISTS FOR (o:" + LabelOperation + ") ON (o.ns, o.finished_at)",
}

// ready creates the schema unless that was done: every transaction of the
// store goes through it (see write and readTx).
func (s *Store) ready(ctx context.Context) error {
	if s.schemaReady.Load() {
		return nil
	}
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	if s.schemaReady.Load() {
		return nil
	}
	// While the database is down, calls fail with the last attempt's error
	// for schemaRetry instead of each waiting for an attempt of its own.
	if s.schemaErr != nil && time.Since(s.schemaAt) < schemaRetry {
		return s.schemaErr
	}
	if err := s.ensureSchema(ctx); err != nil {
		if ctx.Err() == nil {
			s.schemaErr, s.schemaAt = err, time.Now()
		}
		return err
	}
	s.schemaErr = nil
	s.schemaReady.Store(true)
	return nil
}

// schemaRetry is how long a failed schema attempt answers for the calls
// that follow it.
const schemaRetry = time.Second

// write runs fn in a write transaction of the store's database, once the
// schema exists.
func (s *Store) write(ctx context.Context, fn neo4j.ManagedTransactionWork) (any, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	return s.cfg.Manager.ExecuteWrite(ctx, s.cfg.Environment, fn)
}

// readTx runs fn in a read transaction of the store's database, once the
// schema exists.
func (s *Store) readTx(ctx context.Context, fn neo4j.ManagedTransactionWork) (any, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	return s.cfg.Manager.ExecuteRead(ctx, s.cfg.Environment, fn)
}

func (s *Store) ensureSchema(ctx context.Context) error {
	for _, q := range schema {
		_, err := s.cfg.Manager.ExecuteWrite(ctx, s.cfg.Environment, func(tx neo4j.ManagedTransaction) (any, error) {
			res, err := tx.Run(ctx, q, nil)
			if err != nil {
				return nil, err
			}
			_, err = res.Consume(ctx)
			return nil, err
		})
		var ne *neo4j.Neo4jError
		if errors.As(err, &ne) && strings.Contains(ne.Code, "AlreadyExists") {
			err = nil // another process created it at the same moment
		}
		if err != nil {
			return fmt.Errorf("neo4jstore: create schema: %w", err)
		}
	}
	return nil
}

// Close writes what is pending and stops the writer. A second Close
// returns ErrClosed.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return s.Flush(ctx)
}

// Flush writes everything the store has accepted so far.
func (s *Store) Flush(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.flushLocked(ctx)
}

// writer writes urgent changes as they come and everything else every
// ProgressInterval.
func (s *Store) writer() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			// Gather what other operations change in the next moment
			// into the same transaction.
			time.Sleep(urgentDelay)
		case <-t.C:
		}
		if err := s.Flush(context.Background()); err != nil {
			s.log.Warn("neo4jstore: write failed; retrying", "err", err)
		}
	}
}

// accept records a change for id; urgent ones wake the writer at once.
func (s *Store) accept(id string, op *operations.Operation, ev *operations.Event, urgent bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	p := s.pending[id]
	if p == nil {
		p = &pending{}
		s.pending[id] = p
	}
	if op != nil {
		cp := *op
		p.op = &cp
	}
	if ev != nil {
		// The event is written as its run's: the latest state this store
		// accepted for the operation says which run that is.
		var w writer
		if p.op != nil {
			w = writerOf(*p.op)
		} else if last, ok := s.last[id]; ok {
			w = writerOf(last)
		} else {
			w = s.lost[id]
		}
		p.events = append(p.events, *ev)
		p.writers = append(p.writers, w)
	}
	if l := s.live[id]; l != nil {
		if op != nil {
			cp := *op
			cp.Checkpoint = l.op.Checkpoint // SaveCheckpoint's, not Put's
			l.op = cp
		}
		if ev != nil {
			l.events = append(l.events, *ev)
		}
		if len(l.events) > maxLiveEvents {
			delete(s.live, id) // a long history: read it from the database
		}
	}
	s.mu.Unlock()
	if urgent {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// flushLocked writes what is pending in one transaction; s.writeMu is held.
func (s *Store) flushLocked(ctx context.Context) error {
	type taken struct {
		op     *operations.Operation
		events int
	}
	s.mu.Lock()
	took := make(map[string]taken, len(s.pending))
	var ops, evs []map[string]any
	var opIDs []string
	for id, p := range s.pending {
		took[id] = taken{op: p.op, events: len(p.events)}
		if p.op != nil {
			ops = append(ops, withNS(stateProps(*p.op), s.cfg.Namespace))
			opIDs = append(opIDs, id)
		}
		// Progress events are coalesced: the last of the batch is kept.
		lastProgress := -1
		for i, ev := range p.events {
			if ev.Type == operations.EventProgress {
				lastProgress = i
			}
		}
		for i, ev := range p.events {
			if ev.Type == operations.EventProgress && i != lastProgress {
				continue
			}
			w := p.writers[i]
			evs = append(evs, map[string]any{"op_id": id, "seq": ev.Seq, "type": string(ev.Type), "time": ev.Time, "data": string(ev.Data),
				"replica": w.replica, "attempt": int64(w.attempt)})
		}
	}
	s.mu.Unlock()
	if len(took) == 0 {
		return nil
	}
	var written []string // the operations whose state was written
	nEvents := int64(0)  // the events written
	params := map[string]any{"ns": s.cfg.Namespace, "ops": ops, "evs": evs, "ended": ended, "ids": []string{}}
	if s.cfg.Shared {
		// Lock what is written (in one order, against deadlocks) so that
		// the fencing reads the latest owner.
		params["ids"] = slices.Sorted(maps.Keys(took))
	}
	_, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		rec, err := single(ctx, tx, writeFlush, params)
		if err != nil {
			return nil, err
		}
		nEvents, _ = rec.Values[0].(int64)
		ids, _ := rec.Values[1].([]any)
		written = written[:0]
		for _, v := range ids {
			id, _ := v.(string)
			written = append(written, id)
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("neo4jstore: write %d operations, %d events: %w", len(ops), len(evs), err)
	}
	var dropped []string
	if len(written) < len(opIDs) {
		dropped = slices.DeleteFunc(opIDs, func(id string) bool { return slices.Contains(written, id) })
		s.log.Warn("neo4jstore: dropped writes of operations another replica owns now, or that ended", "operation_ids", dropped)
	}
	if nEvents < int64(len(evs)) {
		s.log.Debug("neo4jstore: dropped events of operations another replica owns now, or that ended", "written", nEvents, "events", len(evs))
	}
	s.mu.Lock()
	for id, e := range s.ended {
		if time.Now().After(e.until) {
			delete(s.ended, id)
		}
	}
	for _, id := range dropped {
		s.forgetLocked(id)
	}
	for id, tk := range took {
		p := s.pending[id]
		if p == nil {
			continue
		}
		if p.op == tk.op {
			p.op = nil
		}
		p.events = p.events[tk.events:]
		p.writers = p.writers[tk.events:]
		if p.op == nil && len(p.events) == 0 {
			delete(s.pending, id)
			if l := s.live[id]; l != nil && l.op.Status.Terminal() {
				// Written to the end: the database serves its history now.
				delete(s.live, id)
				s.ended[id] = endedEntry{op: l.op, until: time.Now().Add(endedFor)}
			}
		}
	}
	s.mu.Unlock()
	return nil
}

// ended lists the terminal statuses, for queries.
var ended = []string{string(operations.Completed), string(operations.Failed), string(operations.Cancelled)}

// writeFlush is one flush, in one statement (one round trip): it locks
// the operations $ids, writes $evs, then $ops, and returns how many events
// landed and the IDs of the states that did.
//
// Locking first makes the fencing below read the latest owner. Events go
// before states: the terminal event precedes the terminal state that
// would fence it out.
//
// An event lands when its writer still runs the operation (same replica
// and attempt, not ended), or when it is no run's (no replica: the
// creator's) and the stored operation already counts it (seq <=
// last_event_id: the first event of an operation another replica claimed
// or cancelled at once), and then never over an existing one. A lost
// run's events never land, not even in the numbers a replica taking over
// skips.
//
// A state lands only while its run owns the operation (same replica and
// attempt) and it has not ended. It merges the properties, so that the
// lease, the cancel request and the checkpoint stay.
const writeFlush = "CALL { UNWIND $ids AS id MATCH (o:" + LabelOperation + " {ns: $ns, id: id}) SET o._lock = true REMOVE o._lock RETURN count(*) AS locked } " +
	"CALL { UNWIND $evs AS e " +
	"MATCH (o:" + LabelOperation + " {ns: $ns, id: e.op_id}) " +
	"WITH e, coalesce(o.replica, '') = e.replica AND coalesce(o.attempt, 0) = e.attempt AND NOT o.status IN $ended AS owner, e.replica = '' AND e.seq <= o.last_event_id AS counted " +
	"WHERE owner OR counted " +
	"MERGE (v:" + LabelEvent + " {ns: $ns, op_id: e.op_id, seq: e.seq}) " +
	"ON CREATE SET v.type = e.type, v.time = e.time, v.data = e.data " +
	"ON MATCH SET v.type = CASE WHEN owner THEN e.type ELSE v.type END, v.time = CASE WHEN owner THEN e.time ELSE v.time END, v.data = CASE WHEN owner THEN e.data ELSE v.data END " +
	"RETURN count(*) AS events } " +
	"CALL { UNWIND $ops AS p " +
	"MATCH (o:" + LabelOperation + " {ns: $ns, id: p.id}) " +
	"WHERE coalesce(o.replica, '') = coalesce(p.replica, '') AND coalesce(o.attempt, 0) = p.attempt AND NOT o.status IN $ended " +
	"SET o += p RETURN collect(p.id) AS states } " +
	"RETURN events, states"

// forgetLocked drops what the store keeps in memory of an operation it no
// longer runs, remembering which run it was (its later events are that
// run's); s.mu is held.
func (s *Store) forgetLocked(id string) {
	if last, ok := s.last[id]; ok && last.Replica != "" {
		s.lost[id] = writerOf(last)
	}
	delete(s.live, id)
	delete(s.last, id)
	delete(s.pending, id)
}

func collect(ctx context.Context, tx neo4j.ManagedTransaction, q string, params map[string]any) ([]*neo4j.Record, error) {
	res, err := tx.Run(ctx, q, params)
	if err != nil {
		return nil, err
	}
	return res.Collect(ctx)
}

func single(ctx context.Context, tx neo4j.ManagedTransaction, q string, params map[string]any) (*neo4j.Record, error) {
	res, err := tx.Run(ctx, q, params)
	if err != nil {
		return nil, err
	}
	return res.Single(ctx)
}

func run(ctx context.Context, tx neo4j.ManagedTransaction, q string, params map[string]any) error {
	res, err := tx.Run(ctx, q, params)
	if err != nil {
		return err
	}
	_, err = res.Consume(ctx)
	return err
}

// opProps encodes op as node properties (JSON for the nested values).
// Every property Put owns is in the map, nil when unset, so that merging
// it (SET o += p) removes what op no longer has. The checkpoint is not:
// SaveCheckpoint writes it, and Create.
func opProps(op operations.Operation) map[string]any {
	p := map[string]any{
		"ns": nil, "id": op.ID, "type": op.Type, "status": string(op.Status), "client_id": op.ClientID,
		"created_at": op.CreatedAt.UTC(), "last_event_id": op.LastEventID,
		"params": string(op.Params), "request_digest": op.RequestDigest,
		"idem_key": nil, "progress": nil, "result": nil, "error": nil, "started_at": nil, "finished_at": nil,
		"replica": nil, "attempt": int64(op.Attempt),
	}
	if op.Replica != "" {
		p["replica"] = op.Replica
	}
	if op.IdempotencyKey != "" {
		p["idem_key"] = op.IdempotencyKey
	}
	if op.Progress != nil {
		b, _ := json.Marshal(op.Progress)
		p["progress"] = string(b)
	}
	if len(op.Result) > 0 {
		p["result"] = string(op.Result)
	}
	if op.Error != nil {
		b, err := json.Marshal(op.Error)
		if err != nil { // the engine only stores errors that encode; be safe anyway
			b, _ = json.Marshal(operations.Error{Code: op.Error.Code, Message: op.Error.Message})
		}
		p["error"] = string(b)
	}
	if op.StartedAt != nil {
		p["started_at"] = op.StartedAt.UTC()
	}
	if op.FinishedAt != nil {
		p["finished_at"] = op.FinishedAt.UTC()
	}
	return p
}

// stateProps is opProps without what Create wrote once and never changes
// (the type, client, creation time, idempotency key and request digest):
// the properties a later write merges. The parameters go only when they
// are cleared (as the engine does when an operation ends): a large
// import's parameters are megabytes, which every flush of its state would
// otherwise send again.
func stateProps(op operations.Operation) map[string]any {
	p := opProps(op)
	for _, k := range []string{"type", "client_id", "created_at", "idem_key", "request_digest", "params"} {
		delete(p, k)
	}
	if len(op.Params) == 0 {
		p["params"] = nil
	}
	return p
}

// decodeOp reads an operation node's properties.
func decodeOp(props map[string]any) (operations.Operation, error) {
	str := func(k string) string { v, _ := props[k].(string); return v }
	tm := func(k string) *time.Time {
		if v, ok := props[k].(time.Time); ok {
			u := v.UTC()
			return &u
		}
		return nil
	}
	op := operations.Operation{
		ID: str("id"), Type: str("type"), Status: operations.Status(str("status")), ClientID: str("client_id"),
		IdempotencyKey: str("idem_key"), RequestDigest: str("request_digest"),
	}
	if p := str("params"); p != "" {
		op.Params = json.RawMessage(p)
	}
	if c := tm("created_at"); c != nil {
		op.CreatedAt = *c
	}
	op.StartedAt, op.FinishedAt = tm("started_at"), tm("finished_at")
	op.LastEventID, _ = props["last_event_id"].(int64)
	op.Replica = str("replica")
	attempt, _ := props["attempt"].(int64)
	op.Attempt = int(attempt)
	if c := str("checkpoint"); c != "" {
		op.Checkpoint = json.RawMessage(c)
	}
	if r := str("result"); r != "" {
		op.Result = json.RawMessage(r)
	}
	if p := str("progress"); p != "" {
		op.Progress = &operations.Progress{}
		if err := json.Unmarshal([]byte(p), op.Progress); err != nil {
			return op, fmt.Errorf("neo4jstore: operation %s: progress: %w", op.ID, err)
		}
	}
	if e := str("error"); e != "" {
		op.Error = &operations.Error{}
		if err := json.Unmarshal([]byte(e), op.Error); err != nil {
			return op, fmt.Errorf("neo4jstore: operation %s: error: %w", op.ID, err)
		}
	}
	return op, nil
}

// Create implements operations.Store: the operation is written before
// Create returns.
func (s *Store) Create(ctx context.Context, op operations.Operation) error {
	return s.create(ctx, op, nil)
}

// CreateWithEvent implements operations.EventCreator: op and its first
// event are written in one transaction.
func (s *Store) CreateWithEvent(ctx context.Context, op operations.Operation, first operations.Event) error {
	return s.create(ctx, op, &first)
}

// CreateAndClaim implements operations.ClaimingCreator, in one statement
// (one round trip): it writes op (queued) and its first event, and, when
// no other operation of the namespace is queued (so a fair pick would
// choose op), claims it for replica as Claim would and writes running.
func (s *Store) CreateAndClaim(ctx context.Context, op operations.Operation, first, running operations.Event, replica string, lease time.Duration) (operations.Operation, bool, error) {
	if err := s.checkOpen(); err != nil {
		return operations.Operation{}, false, err
	}
	start := time.Now()
	params := map[string]any{
		"ns": s.cfg.Namespace, "p": withNS(opProps(op), s.cfg.Namespace), "replica": replica, "ms": lease.Milliseconds(),
		"first": eventProps(first), "running": eventProps(running),
	}
	var claimed []operations.Operation
	_, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		recs, err := collect(ctx, tx, createAndClaim, params)
		if err != nil {
			return nil, err
		}
		claimed, err = decodeAll(recs)
		return nil, err
	})
	if err != nil {
		return operations.Operation{}, false, fmt.Errorf("neo4jstore: create operation %s: %w", op.ID, err)
	}
	s.mu.Lock()
	s.known[op.ID] = true
	s.last[op.ID] = op
	s.mu.Unlock()
	if len(claimed) == 0 {
		return operations.Operation{}, false, nil
	}
	claimed[0].Params = op.Params
	s.hold(claimed, start.Add(lease))
	s.mu.Lock()
	if l := s.live[op.ID]; l != nil {
		l.events, l.from = []operations.Event{first, running}, first.Seq-1
	}
	s.mu.Unlock()
	return claimed[0], true, nil
}

// createAndClaim is CreateAndClaim's statement. The claim sets what Claim
// does and counts $running; the parameters are op's, not sent back.
const createAndClaim = "MERGE (o:" + LabelOperation + " {ns: $ns, id: $p.id}) SET o = $p " +
	"MERGE (f:" + LabelEvent + " {ns: $ns, op_id: $p.id, seq: $first.seq}) SET f += $first " +
	"WITH o OPTIONAL MATCH (q:" + LabelOperation + " {ns: $ns, status: 'queued'}) WHERE q.id <> o.id " +
	"WITH o, count(q) AS others WHERE others = 0 " +
	"SET o.status = 'running', o.replica = $replica, o.attempt = 1, o.started_at = datetime(), o.lease_until = " + leaseEnd + ", o.last_event_id = $running.seq " +
	"MERGE (r:" + LabelEvent + " {ns: $ns, op_id: o.id, seq: $running.seq}) SET r += $running " +
	"RETURN o {.*, params: null} AS p"

// eventProps encodes ev as the properties of its node (without ns and
// op_id).
func eventProps(ev operations.Event) map[string]any {
	return map[string]any{"seq": ev.Seq, "type": string(ev.Type), "time": ev.Time, "data": string(ev.Data)}
}

// create writes op, and ev (its first event) if set, in one statement.
func (s *Store) create(ctx context.Context, op operations.Operation, ev *operations.Event) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	props := opProps(op)
	if len(op.Checkpoint) > 0 {
		props["checkpoint"] = string(op.Checkpoint)
	}
	events := []map[string]any{}
	if ev != nil {
		events = append(events, eventProps(*ev))
	}
	_, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		return nil, run(ctx, tx, "MERGE (o:"+LabelOperation+" {ns: $ns, id: $p.id}) SET o = $p "+
			"FOREACH (e IN $events | MERGE (v:"+LabelEvent+" {ns: $ns, op_id: $p.id, seq: e.seq}) SET v += e)",
			map[string]any{"ns": s.cfg.Namespace, "p": withNS(props, s.cfg.Namespace), "events": events})
	})
	if err != nil {
		return fmt.Errorf("neo4jstore: create operation %s: %w", op.ID, err)
	}
	s.mu.Lock()
	s.known[op.ID] = true
	if !op.Status.Terminal() {
		s.last[op.ID] = op
		if !s.cfg.Shared {
			s.live[op.ID] = &liveEntry{op: op}
		}
	}
	s.mu.Unlock()
	return nil
}

func withNS(p map[string]any, ns string) map[string]any {
	p["ns"] = ns
	return p
}

// exists reports whether operation id exists (asking the database once per
// id the store has not seen).
func (s *Store) exists(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	ok := s.known[id]
	s.mu.Unlock()
	if ok {
		return true, nil
	}
	if _, err := s.read(ctx, id); err != nil {
		if errors.Is(err, operations.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// Put implements operations.Store. A change of status, result or error is
// written at once; a change of progress only within ProgressInterval.
func (s *Store) Put(ctx context.Context, op operations.Operation) error {
	ok, err := s.exists(ctx, op.ID)
	if err != nil {
		return err
	}
	if !ok {
		return operations.ErrNotFound
	}
	// Urgent unless only progress (and the event counter) moved since the
	// last accepted state.
	s.mu.Lock()
	prev, had := s.last[op.ID]
	if op.Status.Terminal() {
		delete(s.last, op.ID)
	} else {
		s.last[op.ID] = op
	}
	s.mu.Unlock()
	return s.accept(op.ID, &op, nil, !had || !onlyProgressMoved(prev, op))
}

// onlyProgressMoved reports whether b differs from a in nothing but its
// progress and event counter (a progress report, which may be coalesced).
func onlyProgressMoved(a, b operations.Operation) bool {
	sameTime := func(x, y *time.Time) bool { return x == y || (x != nil && y != nil && x.Equal(*y)) }
	return a.Status == b.Status && a.Error == b.Error && bytes.Equal(a.Result, b.Result) &&
		sameTime(a.StartedAt, b.StartedAt) && sameTime(a.FinishedAt, b.FinishedAt) &&
		a.ClientID == b.ClientID && a.Type == b.Type && a.Replica == b.Replica && a.Attempt == b.Attempt
}

// AppendEvent implements operations.Store. Status, complete and error
// events are written at once; progress events are coalesced.
func (s *Store) AppendEvent(ctx context.Context, id string, ev operations.Event) error {
	ok, err := s.exists(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return operations.ErrNotFound
	}
	return s.accept(id, nil, &ev, ev.Type != operations.EventProgress && ev.Type != operations.EventLog)
}

// read returns operation id as stored in the database.
func (s *Store) read(ctx context.Context, id string) (operations.Operation, error) {
	v, err := s.readTx(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "MATCH (o:"+LabelOperation+" {ns: $ns, id: $id}) RETURN properties(o) AS p", map[string]any{"ns": s.cfg.Namespace, "id": id})
		if err != nil {
			return nil, err
		}
		recs, err := res.Collect(ctx)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return nil, nil
		}
		p, _ := recs[0].Get("p")
		return p, nil
	})
	if err != nil {
		return operations.Operation{}, fmt.Errorf("neo4jstore: read operation %s: %w", id, err)
	}
	props, _ := v.(map[string]any)
	if props == nil {
		return operations.Operation{}, operations.ErrNotFound
	}
	op, err := decodeOp(props)
	if err == nil {
		s.mu.Lock()
		s.known[id] = true
		s.mu.Unlock()
	}
	return op, err
}

// overlay returns the accepted but unwritten state of id, if any.
func (s *Store) overlay(id string) (operations.Operation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pending[id]; p != nil && p.op != nil {
		return *p.op, true
	}
	return operations.Operation{}, false
}

// Get implements operations.Store.
func (s *Store) Get(ctx context.Context, id string) (operations.Operation, error) {
	s.mu.Lock()
	if l := s.cachedLocked(id); l != nil {
		op := l.op
		s.mu.Unlock()
		return op, nil
	}
	if e, ok := s.ended[id]; ok && time.Now().Before(e.until) {
		s.mu.Unlock()
		return e.op, nil
	}
	s.mu.Unlock()
	// When shared, the unwritten state of an operation the store does not
	// hold (any longer) may be another run's past.
	if op, ok := s.overlay(id); ok && !s.cfg.Shared {
		return op, nil
	}
	return s.read(ctx, id)
}

// query runs a read returning operation nodes as "p".
func (s *Store) query(ctx context.Context, q string, params map[string]any) ([]operations.Operation, error) {
	params["ns"] = s.cfg.Namespace
	// Unwritten states are taken before the read (see EventsAfter).
	s.mu.Lock()
	unwritten := make(map[string]operations.Operation, len(s.pending))
	for id, p := range s.pending {
		if p.op != nil && (!s.cfg.Shared || s.cachedLocked(id) != nil) {
			unwritten[id] = *p.op
		}
	}
	s.mu.Unlock()
	v, err := s.readTx(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, q, params)
		if err != nil {
			return nil, err
		}
		return res.Collect(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("neo4jstore: %w", err)
	}
	recs := v.([]*neo4j.Record)
	out := make([]operations.Operation, 0, len(recs))
	for _, r := range recs {
		p, _ := r.Get("p")
		props, _ := p.(map[string]any)
		op, err := decodeOp(props)
		if err != nil {
			return nil, err
		}
		if o, ok := unwritten[op.ID]; ok {
			op = o
		}
		out = append(out, op)
	}
	return out, nil
}

const filterClause = " WHERE ($client = '' OR o.client_id = $client) AND ($status = '' OR o.status = $status) AND ($type = '' OR o.type = $type)"

// List implements operations.Store: newest first.
func (s *Store) List(ctx context.Context, f operations.Filter) ([]operations.Operation, int, error) {
	if f.Limit <= 0 {
		f.Limit = operations.DefaultListLimit
	}
	f.Offset = max(f.Offset, 0)
	params := map[string]any{"client": f.ClientID, "status": string(f.Status), "type": f.Type, "skip": int64(f.Offset), "limit": int64(f.Limit)}
	match := "MATCH (o:" + LabelOperation + " {ns: $ns})" + filterClause
	page, err := s.query(ctx, match+" RETURN properties(o) AS p ORDER BY o.created_at DESC, o.id DESC SKIP $skip LIMIT $limit", params)
	if err != nil {
		return nil, 0, err
	}
	v, err := s.readTx(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, match+" RETURN count(o) AS n", params)
		if err != nil {
			return nil, err
		}
		rec, err := res.Single(ctx)
		if err != nil {
			return nil, err
		}
		n, _ := rec.Get("n")
		return n, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("neo4jstore: count operations: %w", err)
	}
	total, _ := v.(int64)
	return page, int(total), nil
}

// FindIdempotent implements operations.Store.
func (s *Store) FindIdempotent(ctx context.Context, clientID, key string) (operations.Operation, bool, error) {
	ops, err := s.query(ctx, "MATCH (o:"+LabelOperation+" {ns: $ns, client_id: $client, idem_key: $key}) RETURN properties(o) AS p LIMIT 1",
		map[string]any{"client": clientID, "key": key})
	if err != nil || len(ops) == 0 {
		return operations.Operation{}, false, err
	}
	return ops[0], true, nil
}

// Unfinished implements operations.Store.
func (s *Store) Unfinished(ctx context.Context) ([]operations.Operation, error) {
	ops, err := s.query(ctx, "MATCH (o:"+LabelOperation+" {ns: $ns}) WHERE o.status IN ['queued', 'running'] RETURN properties(o) AS p ORDER BY o.created_at, o.id", map[string]any{})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, op := range ops {
		s.known[op.ID] = true
	}
	s.mu.Unlock()
	return ops, nil
}

// EventsAfter implements operations.Store.
func (s *Store) EventsAfter(ctx context.Context, id string, after int64) ([]operations.Event, error) {
	// What is pending is taken before the database is read: a write that
	// ends in between is then in one or the other (duplicates are removed).
	var unwritten []operations.Event
	s.mu.Lock()
	if l := s.cachedLocked(id); l != nil && after >= l.from {
		i, _ := slices.BinarySearchFunc(l.events, after, func(ev operations.Event, after int64) int {
			if ev.Seq <= after {
				return -1
			}
			return 1
		})
		out := slices.Clone(l.events[i:])
		s.mu.Unlock()
		return out, nil
	}
	// When shared, the unwritten events of an operation whose lease may
	// have ended are not shown: another replica may own those numbers now.
	if p := s.pending[id]; p != nil && (s.live[id] == nil || s.cachedLocked(id) != nil) {
		unwritten = slices.Clone(p.events)
	}
	s.mu.Unlock()
	v, err := s.readTx(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "MATCH (o:"+LabelOperation+" {ns: $ns, id: $id}) "+
			"OPTIONAL MATCH (e:"+LabelEvent+" {ns: $ns, op_id: $id}) WHERE e.seq > $after "+
			"WITH o, e ORDER BY e.seq RETURN e.seq AS seq, e.type AS type, e.time AS time, e.data AS data",
			map[string]any{"ns": s.cfg.Namespace, "id": id, "after": after})
		if err != nil {
			return nil, err
		}
		return res.Collect(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("neo4jstore: read events of %s: %w", id, err)
	}
	recs := v.([]*neo4j.Record)
	if len(recs) == 0 {
		return nil, operations.ErrNotFound
	}
	var out []operations.Event
	for _, r := range recs {
		seq, ok := r.Values[0].(int64)
		if !ok {
			continue // the operation without events (OPTIONAL MATCH)
		}
		typ, _ := r.Values[1].(string)
		at, _ := r.Values[2].(time.Time)
		data, _ := r.Values[3].(string)
		out = append(out, operations.Event{Seq: seq, Type: operations.EventType(typ), Time: at.UTC(), Data: json.RawMessage(data)})
	}
	for _, ev := range unwritten {
		if ev.Seq > after {
			out = append(out, ev)
		}
	}
	slices.SortFunc(out, func(a, b operations.Event) int { return int(min(max(a.Seq-b.Seq, -1), 1)) })
	out = slices.CompactFunc(out, func(a, b operations.Event) bool { return a.Seq == b.Seq })
	return out, nil
}

// DeleteFinishedBefore implements operations.Store, in batches.
func (s *Store) DeleteFinishedBefore(ctx context.Context, t time.Time) (int, error) {
	if err := s.Flush(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		v, err := s.write(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
			res, err := tx.Run(ctx, "MATCH (o:"+LabelOperation+" {ns: $ns}) WHERE o.finished_at < $t AND o.status IN ['completed', 'failed', 'cancelled'] "+
				"WITH o LIMIT $batch "+
				"OPTIONAL MATCH (e:"+LabelEvent+" {ns: $ns, op_id: o.id}) "+
				"WITH o, collect(e) AS evs, o.id AS id FOREACH (x IN evs | DELETE x) DELETE o RETURN id",
				map[string]any{"ns": s.cfg.Namespace, "t": t.UTC(), "batch": int64(retentionBatch)})
			if err != nil {
				return nil, err
			}
			return res.Collect(ctx)
		})
		if err != nil {
			return total, fmt.Errorf("neo4jstore: delete finished operations: %w", err)
		}
		recs := v.([]*neo4j.Record)
		s.mu.Lock()
		for _, r := range recs {
			id, _ := r.Values[0].(string)
			delete(s.known, id)
			delete(s.pending, id)
			delete(s.last, id)
			delete(s.live, id)
			delete(s.lost, id)
			delete(s.ended, id)
		}
		// Another replica's retention may have deleted the ones kept here.
		for id, e := range s.ended {
			if e.op.FinishedAt != nil && e.op.FinishedAt.Before(t) {
				delete(s.ended, id)
			}
		}
		s.mu.Unlock()
		total += len(recs)
		if len(recs) < retentionBatch {
			return total, nil
		}
	}
}

// Counts implements operations.Counter.
func (s *Store) Counts(ctx context.Context) (map[operations.Status]int, error) {
	v, err := s.readTx(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, "MATCH (o:"+LabelOperation+" {ns: $ns}) RETURN o.status AS status, count(*) AS n", map[string]any{"ns": s.cfg.Namespace})
		if err != nil {
			return nil, err
		}
		return res.Collect(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("neo4jstore: count operations: %w", err)
	}
	out := map[operations.Status]int{}
	for _, r := range v.([]*neo4j.Record) {
		st, _ := r.Values[0].(string)
		n, _ := r.Values[1].(int64)
		out[operations.Status(st)] = int(n)
	}
	return out, nil
}

var (
	_ operations.Store   = (*Store)(nil)
	_ operations.Counter = (*Store)(nil)
)
