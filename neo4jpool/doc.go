// Package neo4jpool is ATG's database layer: one pooled Neo4j driver per
// named environment, health checks, honest pool metrics, chunked write
// transactions with progress, a retry helper for the work the driver does
// not retry, and a graph importer. It uses the official driver,
// github.com/neo4j/neo4j-go-driver/v5 (pinned to v5.28.4, see "Metrics").
//
// # Manager
//
// A [Manager] holds one [Config] per environment ("dev", "integration",
// "production", ...). [Manager.Configure] validates and stores it; the
// driver is created on first use, exactly once even under concurrent first
// use, and verified once (VerifyConnectivity). A driver that fails
// verification is closed and not cached. Errors are [*EnvError] values that
// name the environment and the URI (password redacted) and wrap the
// driver's error, so errors.Is/As reach *neo4j.Neo4jError and
// *neo4j.ConnectivityError. An unknown environment gives
// [ErrUnknownEnvironment]; after [Manager.Close] or [Manager.CloseAll],
// calls give an error matching net.ErrClosed. Config maps to the driver as:
// MaxPoolSize → MaxConnectionPoolSize (per server), ConnectionTimeout →
// ConnectionAcquisitionTimeout (and caps the 5 s socket connect timeout),
// MaxTransactionRetryTime → MaxTransactionRetryTime.
//
// [Manager.ExecuteRead] and [Manager.ExecuteWrite] run managed transactions
// (retried by the driver on transient failures, so work functions must be
// idempotent) and maintain the metrics. [Manager.Driver] and
// [Manager.NewSession] give raw access.
//
// # Health
//
// [Manager.Check] probes one environment with its own short timeout
// (Options.HealthTimeout, 3 s), so a saturated pool cannot hold it for the
// acquisition timeout, and reports latency, server version, edition,
// database and, when unhealthy, the cause. [Manager.WaitReady] repeats the
// check with exponential backoff and jitter until healthy or its context
// ends, and returns the last cause.
//
// # Metrics
//
// The v5 driver has no pool metrics API and none is planned
// (neo4j/neo4j-go-driver#637), so the manager measures what it can and says
// what it cannot (see [Snapshot]):
//
//   - transactions active inside work functions (a lower bound of
//     connections in use) and calls in flight (demand);
//   - time from a call to the first run of its work function, a histogram
//     named atg_neo4j_tx_start_seconds because that is what it measures
//     (queueing, dialling, BEGIN), not true acquisition time;
//   - waits in the pool queue ("Borrow queued", once per wait, so a borrow
//     that waits twice counts twice), given-up borrows ("Borrow time-out":
//     acquisition time-outs, but also borrows whose caller's context ended
//     while they waited, and dials that timed out) and connections created,
//     failed and closed, counted from the driver's log lines through a
//     wrapping logger (config.Log) that also forwards every line to slog;
//     these strings are not driver API, so the driver version is pinned and
//     the parser is golden-tested against testdata/poollog/v5.28.4.txt;
//   - transactions committed, failed and retried (work run more than once);
//   - utilisation (tx_active / MaxPoolSize), its peak over a sliding window
//     (Options.MetricsWindow, 1 min) and a recommendation: scale_up when the
//     peak is above 80 % or the driver logged a queued or given-up borrow
//     in the window (see [Recommend] for what that does not distinguish),
//     scale_down when the peak is below 20 %, ok otherwise.
//
// Idle connections and true acquisition time are not observable in v5.
// With neo4j:// routing the pool limit applies per server, so utilisation
// against MaxPoolSize is an approximation there.
//
// [Manager.Collector] exports all of it to Prometheus under the names of
// the Metric* constants, labelled env; nothing is registered globally.
// [Manager.Snapshot] returns the same numbers as a JSON-friendly struct.
//
// # Transactions and retries
//
// [ChunkedWrite] and [ChunkedWriteSeq] (for streams, holding one chunk in
// memory) write items in chunks, one managed write transaction per chunk,
// call a progress function after each commit and, on failure, return a
// [*ChunkError] whose Committed field is the offset to resume from.
//
// [Retry] retries work the driver does not retry (auto-commit session.Run,
// CALL { ... } IN TRANSACTIONS) with go-retry: exponential backoff, jitter,
// a cap, attempt and duration limits, classifying errors with [IsRetryable]
// (the driver's neo4j.IsRetryable, looking through wrapping). It never
// retries syntax, constraint or authentication errors. Do not wrap
// ExecuteRead/ExecuteWrite in it: the driver already retries those.
// [IsAuthError], [IsUnavailable] and [IsClientError] classify errors for
// callers such as an HTTP layer (503, 400, ...).
//
// # Graph import
//
// An [Importer] MERGEs a [Graph] of [Node] and [Relationship] values:
// nodes by id on a shared base label ("GraphNode", backed by a uniqueness
// constraint), grouped by label set; relationships by type between ids.
// Labels and relationship types must match [IdentifierPattern]
// ([ValidateGraph] checks a document before any work starts), so nothing a
// caller sends is spliced unchecked into Cypher. Importing twice changes
// nothing.
package neo4jpool
