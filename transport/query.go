package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/audit"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/cypher"
	"github.com/atgraph/atg/neo4jpool"
)

// QueryRequest is the body of POST /api/v1/query.
type QueryRequest struct {
	// Query is the Cypher statement (required).
	Query string `json:"query"`
	// Parameters are passed as Cypher parameters, never spliced into Query.
	Parameters map[string]any `json:"parameters,omitempty"`
	// Mode is "read" (default: a read transaction; the server refuses
	// writes) or "write" (needs the write scope).
	Mode string `json:"mode,omitempty"`
	// TimeoutMS bounds the transaction, 0..600000; 0 means 30 s.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// QueryResponse is the result of POST /api/v1/query.
type QueryResponse struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	// RowCount is len(Rows).
	RowCount int `json:"row_count"`
	// Truncated reports that the result had more rows than were returned.
	Truncated bool `json:"truncated"`
	// TruncatedReason says which cap cut the result: "max_rows"
	// (ATG_QUERY_MAX_ROWS) or "max_bytes" (ATG_QUERY_MAX_BYTES); empty
	// when not truncated.
	TruncatedReason string  `json:"truncated_reason,omitempty"`
	ExecutionTimeMS float64 `json:"execution_time_ms"`
}

// Reasons for QueryResponse.TruncatedReason.
const (
	TruncatedMaxRows  = "max_rows"
	TruncatedMaxBytes = "max_bytes"
)

// MaxQueryBytes bounds the length of a Cypher statement.
const MaxQueryBytes = 1 << 20

// queryFetchSize is how many records the query route fetches per batch: a
// few large rows past the byte cap are not read from the database.
const queryFetchSize = 100

func (a *API) query(w http.ResponseWriter, r *http.Request) {
	var req QueryRequest
	if !decodeJSON(w, r, a.opts.MaxBodyBytes, &req) {
		return
	}
	id, _ := auth.IdentityFrom(r.Context())
	if req.Mode == "write" && !id.Has(auth.ScopeWrite) {
		WriteError(w, CodeForbidden, "API key lacks the 'write' scope needed for mode \"write\"", nil)
		return
	}
	pq, verr := prepareQuery(req)
	if verr != nil {
		a.writeErr(w, r, "query failed", verr)
		return
	}
	var st *guardedStatement
	if a.guard != nil { // nil only in benchmarks measuring the guard's cost
		st = a.guard.prepare(req.Query)
	}
	rows := &encodedRows{max: a.queryMaxBytes()}
	run := queryRun{
		db: a.opts.DB, env: a.opts.DBEnvironment, req: req, pq: pq, maxRows: a.opts.QueryMaxRows,
		guard: a.guard, st: st, admin: id.Has(auth.ScopeAdmin), rows: rows,
	}
	resp, err := run.exec(r.Context())
	a.auditQuery(r, req, st, resp, err)
	if err != nil {
		var ae *Error
		switch {
		case errors.As(err, &ae) && ae.Code == CodeUnavailable:
			a.log.Warn("query: database unavailable", "request_id", RequestIDFrom(r.Context()), "err", err)
		case ae == nil && r.Context().Err() != nil:
			err = newError(CodeQuery, "request cancelled", nil) // the client went away; nobody reads this
		}
		a.writeErr(w, r, "query failed", err)
		return
	}
	rows.writeResponse(w, resp)
}

func (a *API) queryMaxBytes() int64 {
	if a.opts.QueryMaxBytes > 0 {
		return a.opts.QueryMaxBytes
	}
	return DefaultQueryMaxBytes
}

// auditQuery records writes, administration statements and refusals, with
// string literals masked: all of them in administration statements (they
// may be passwords), those after PASSWORD in any other.
func (a *API) auditQuery(r *http.Request, req QueryRequest, st *guardedStatement, resp *QueryResponse, err error) {
	var ae *Error
	refused := errors.As(err, &ae) && ae.Code == CodeForbidden && st != nil // only the guard refuses here
	known := st != nil && st.known
	admin := known && st.class.admin
	event := audit.EventQueryWrite
	switch {
	case refused:
		event = audit.EventQueryRefused
	case admin:
		event = audit.EventQueryAdmin
	case req.Mode != "write":
		return
	}
	policy := cypher.MaskPasswords
	if admin || !known {
		policy = cypher.MaskAllStrings
	}
	details := map[string]any{"query": truncate(cypher.Mask(req.Query, policy), 1000), "mode": modeName(req.Mode)}
	outcome := "ok"
	switch {
	case refused:
		outcome, details["reason"] = "denied", st.class.reason
	case err != nil:
		outcome = "error"
	default:
		details["row_count"] = resp.RowCount
	}
	a.audit(r, event, outcome, details)
}

// modeName returns a query mode's name ("read" when empty).
func modeName(mode string) string {
	if mode == "" {
		return "read"
	}
	return mode
}

// QueryLimits cap a query's result; zero fields mean the defaults
// (DefaultQueryMaxRows, DefaultQueryMaxBytes).
type QueryLimits struct {
	// MaxRows is the most rows returned.
	MaxRows int
	// MaxBytes is the most bytes of rows, measured as JSON.
	MaxBytes int64
}

// RunQuery validates req and runs it on environment env of db as POST
// /api/v1/query does, for embedded clients to give the same answers: a
// read transaction for mode read, run once (never retried, never cut short
// of its timeout), rows capped by limits (then Truncated, with
// TruncatedReason), row values exactly as a remote client decodes them
// (JSON types, numbers as json.Number, so 64-bit integers stay exact).
// Problems with the request or the Cypher are an *Error (VALIDATION_ERROR,
// QUERY_ERROR with details.neo4j_code, SERVICE_UNAVAILABLE); anything else
// is returned as is. It neither checks scopes nor classifies the
// statement: its caller holds the database's own credentials.
func RunQuery(ctx context.Context, db *neo4jpool.Manager, env string, req QueryRequest, limits QueryLimits) (*QueryResponse, error) {
	pq, verr := prepareQuery(req)
	if verr != nil {
		return nil, verr
	}
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = DefaultQueryMaxBytes
	}
	rows := &encodedRows{max: limits.MaxBytes}
	run := queryRun{db: db, env: env, req: req, pq: pq, maxRows: limits.MaxRows, admin: true, rows: rows}
	resp, err := run.exec(ctx)
	if err != nil {
		return nil, err
	}
	if resp.Rows, err = rows.decode(); err != nil {
		return nil, err
	}
	return resp, nil
}

// preparedQuery is a validated QueryRequest.
type preparedQuery struct {
	mode    neo4j.AccessMode
	params  map[string]any
	timeout time.Duration
}

// prepareQuery checks req and converts its parameters; problems are a 400
// VALIDATION_ERROR naming the field.
func prepareQuery(req QueryRequest) (*preparedQuery, *Error) {
	invalid := func(field, msg string) *Error {
		return newError(CodeValidation, msg, map[string]any{"field": field})
	}
	switch {
	case strings.TrimSpace(req.Query) == "":
		return nil, invalid("query", "query is required")
	case len(req.Query) > MaxQueryBytes:
		return nil, invalid("query", fmt.Sprintf("query is longer than %d bytes", MaxQueryBytes))
	case req.TimeoutMS < 0 || req.TimeoutMS > MaxQueryTimeout.Milliseconds():
		return nil, invalid("timeout_ms", fmt.Sprintf("timeout_ms must be between 0 (the default, %d) and %d", DefaultQueryTimeout.Milliseconds(), MaxQueryTimeout.Milliseconds()))
	}
	pq := &preparedQuery{mode: neo4j.AccessModeRead, timeout: DefaultQueryTimeout, params: make(map[string]any, len(req.Parameters))}
	switch req.Mode {
	case "", "read":
	case "write":
		pq.mode = neo4j.AccessModeWrite
	default:
		return nil, invalid("mode", `mode must be "read" or "write"`)
	}
	for k, v := range req.Parameters {
		p, err := paramValue(v)
		if err != nil {
			return nil, invalid("parameters."+k, fmt.Sprintf("parameters.%s: %v", k, err))
		}
		pq.params[k] = p
	}
	if req.TimeoutMS > 0 {
		pq.timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	return pq, nil
}

// queryRun is one execution of a query.
type queryRun struct {
	db      *neo4jpool.Manager
	env     string
	req     QueryRequest
	pq      *preparedQuery
	maxRows int
	// guard and st classify the statement (nil: no classification); admin
	// lets administration statements run.
	guard *queryGuard
	st    *guardedStatement
	admin bool
	rows  rowSink
}

// errRefused is the guard's refusal inside the transaction.
type errRefused struct{ reason string }

func (e *errRefused) Error() string { return e.reason }

func (q *queryRun) refusal() *Error {
	return newError(CodeForbidden, "API key lacks the 'admin' scope: "+q.st.class.reason+
		" (Neo4j Community has no access control of its own, so the query route allows administration to admin keys only)", nil)
}

// exec runs the query once: the guard's EXPLAIN (when the statement is not
// classified yet) and the statement share one transaction.
func (q *queryRun) exec(ctx context.Context) (*QueryResponse, error) {
	if q.st != nil && q.st.known && q.st.class.admin && !q.admin {
		return nil, q.refusal()
	}
	maxRows := q.maxRows
	if maxRows <= 0 {
		maxRows = DefaultQueryMaxRows
	}
	timeout := q.pq.timeout
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second) // the server's tx timeout fires first
	defer cancel()
	start := time.Now()
	out := &QueryResponse{}
	work := func(tx neo4j.ManagedTransaction) (any, error) {
		if q.st != nil && !q.st.known {
			if err := q.guard.plan(ctx, tx, q.st); err != nil {
				return nil, err
			}
			if q.st.class.admin && !q.admin {
				return nil, &errRefused{q.st.class.reason}
			}
		}
		res, err := tx.Run(ctx, q.req.Query, q.pq.params)
		if err != nil {
			return nil, err
		}
		if out.Columns, err = res.Keys(); err != nil {
			return nil, err
		}
		for res.Next(ctx) {
			if out.RowCount == maxRows {
				out.Truncated, out.TruncatedReason = true, TruncatedMaxRows
				break
			}
			rec := res.Record()
			row := make([]any, len(rec.Values))
			for i, v := range rec.Values {
				row[i] = jsonValue(v)
			}
			fits, err := q.rows.add(row)
			if err != nil {
				return nil, err
			}
			if !fits {
				out.Truncated, out.TruncatedReason = true, TruncatedMaxBytes
				break
			}
			out.RowCount++
		}
		if !out.Truncated {
			if err := res.Err(); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	_, err := q.db.ExecuteOnce(ctx, q.env, q.pq.mode, queryFetchSize, work, neo4j.WithTxTimeout(timeout))
	if err != nil {
		var refused *errRefused
		if errors.As(err, &refused) {
			return nil, q.refusal()
		}
		return nil, queryError(caller, err, timeout, time.Since(start))
	}
	out.ExecutionTimeMS = float64(time.Since(start).Microseconds()) / 1000
	return out, nil
}

// queryError maps a database error: a timeout (Neo4j's, or ours when the
// caller's ctx is still live) and the caller's Cypher errors are
// QUERY_ERROR with Neo4j's code; an unreachable database or a transient
// failure is SERVICE_UNAVAILABLE; anything else is returned unchanged.
func queryError(ctx context.Context, err error, timeout, took time.Duration) error {
	var ne *neo4j.Neo4jError
	isNeo4j := errors.As(err, &ne)
	switch {
	case isNeo4j && strings.HasPrefix(ne.Code, "Neo.ClientError.Transaction.TransactionTimedOut"),
		// a transaction stopped at its timeout while waiting for a lock
		isNeo4j && (strings.HasSuffix(ne.Code, ".Transaction.LockClientStopped") || strings.HasSuffix(ne.Code, ".Transaction.Terminated")) && took >= timeout,
		// past its timeout the query failed in whatever way (our deadline
		// cut a connection, a procedure ignored the transaction timeout):
		// it did not finish in time, and the caller is still waiting
		took >= timeout && ctx.Err() == nil,
		errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return newError(CodeQuery, fmt.Sprintf("query did not finish within %d ms", timeout.Milliseconds()),
			map[string]any{"neo4j_code": neo4jCode(ne), "timeout_ms": timeout.Milliseconds()})
	case neo4jpool.IsClientError(err) && isNeo4j:
		return newError(CodeQuery, ne.Msg, map[string]any{"neo4j_code": ne.Code})
	case neo4jpool.IsUnavailable(err) || neo4jpool.IsAuthError(err):
		return newError(CodeUnavailable, "database unavailable", nil)
	case neo4jpool.IsRetryable(err) && ctx.Err() == nil:
		return newError(CodeUnavailable, "transient database failure; the query did not run to the end and may be retried", map[string]any{"neo4j_code": neo4jCode(asNeo4jError(err))})
	}
	return err
}

// truncate shortens s to at most n bytes (on a rune boundary), marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func asNeo4jError(err error) *neo4j.Neo4jError {
	var ne *neo4j.Neo4jError
	if errors.As(err, &ne) {
		return ne
	}
	return nil
}

func neo4jCode(ne *neo4j.Neo4jError) string {
	if ne == nil {
		return ""
	}
	return ne.Code
}
