// Package neo4jstore is an operations.Store kept in Neo4j, so that
// operations, their results and their event histories outlive the process
// that ran them.
//
// Operations are nodes labelled AtgOperation and events nodes labelled
// AtgOperationEvent, both carrying the store's namespace (ns), so that
// several deployments, or tests, share one database without seeing each
// other. Open creates the constraints and indexes they need. The tenant
// graph never uses these labels.
//
// Writes that change an operation's status, error or result, and every
// status, complete and error event, are written as soon as they are made,
// off the caller's goroutine; progress is coalesced to at most one write
// per operation every Config.ProgressInterval. Reads see every write at
// once, written or not. Flush waits for everything accepted so far, and
// Close flushes before it returns.
//
// A Store is also an operations.SharedStore, for several replicas (each
// with its own Store, Config.Shared set) on one namespace. Claim, TakeOver,
// Renew, Release, RequestCancel and SaveCheckpoint are each one write
// transaction that locks the operations it changes before reading them
// (Neo4j reads committed data: without the lock, two replicas could claim
// one operation); leases are on the database's clock. The writer is fenced:
// a state or event lands only for the run (replica and attempt) that owns
// the operation and never after its end, and is otherwise dropped and
// logged.
//
//	store, err := neo4jstore.Open(ctx, neo4jstore.Config{Manager: m, Environment: "dev", Namespace: "dev"})
//	if err != nil { ... }
//	defer store.Close(ctx)
//	engine, err := operations.New(operations.Config{Registry: reg, Store: store})
package neo4jstore
