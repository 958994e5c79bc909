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
	Columns         []string `json:"columns"`
	Rows            [][]any  `json:"rows"`
	RowCount        int      `json:"row_count"`
	Truncated       bool     `json:"truncated"`
	ExecutionTimeMS float64  `json:"execution_time_ms"`
}

// MaxQueryBytes bounds the length of a Cypher statement.
const MaxQueryBytes = 1 << 20

func (a *API) query(w http.ResponseWriter, r *http.Request) {
	var req QueryRequest
	if !decodeJSON(w, r, a.opts.MaxBodyBytes, &req) {
		return
	}
	if req.Mode == "write" {
		id, _ := auth.IdentityFrom(r.Context())
		if !id.Has(auth.ScopeWrite) {
			WriteError(w, CodeForbidden, "API key lacks the 'write' scope needed for mode \"write\"", nil)
			return
		}
	}
	resp, err := RunQuery(r.Context(), a.opts.DB, a.opts.DBEnvironment, req, a.opts.QueryMaxRows)
	if req.Mode == "write" {
		outcome, details := "ok", map[string]any{"query": truncate(req.Query, 1000)}
		if err != nil {
			outcome = "error"
		} else {
			details["row_count"] = resp.RowCount
		}
		a.audit(r, audit.EventQueryWrite, outcome, details)
	}
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
	writeJSON(w, http.StatusOK, resp)
}

// RunQuery validates req and runs it on environment env of db exactly as
// POST /api/v1/query does (embedded clients use it to give the same
// answers): a read transaction for mode read, at most maxRows rows (then
// Truncated), Neo4j values converted to JSON-friendly values. Problems with
// the request or the Cypher are an *Error (VALIDATION_ERROR, QUERY_ERROR
// with details.neo4j_code, SERVICE_UNAVAILABLE); anything else is returned
// as is. It does not check scopes.
func RunQuery(ctx context.Context, db *neo4jpool.Manager, env string, req QueryRequest, maxRows int) (*QueryResponse, error) {
	pq, verr := prepareQuery(req)
	if verr != nil {
		return nil, verr
	}
	if maxRows <= 0 {
		maxRows = DefaultQueryMaxRows
	}
	resp, err := runQuery(ctx, db, env, pq.mode, req.Query, pq.params, pq.timeout, maxRows)
	if err != nil {
		return nil, queryError(ctx, err, pq.timeout)
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

func runQuery(ctx context.Context, db *neo4jpool.Manager, env string, mode neo4j.AccessMode, query string, params map[string]any, timeout time.Duration, maxRows int) (*QueryResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second) // the server's tx timeout fires first
	defer cancel()
	start := time.Now()
	work := func(tx neo4j.ManagedTransaction) (any, error) {
		res, err := tx.Run(ctx, query, params)
		if err != nil {
			return nil, err
		}
		keys, err := res.Keys()
		if err != nil {
			return nil, err
		}
		out := &QueryResponse{Columns: keys, Rows: [][]any{}}
		for res.Next(ctx) {
			if len(out.Rows) == maxRows {
				out.Truncated = true
				break
			}
			rec := res.Record()
			row := make([]any, len(rec.Values))
			for i, v := range rec.Values {
				row[i] = jsonValue(v)
			}
			out.Rows = append(out.Rows, row)
		}
		if !out.Truncated {
			if err := res.Err(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var v any
	var err error
	if mode == neo4j.AccessModeWrite {
		v, err = db.ExecuteWrite(ctx, env, work, neo4j.WithTxTimeout(timeout))
	} else {
		v, err = db.ExecuteRead(ctx, env, work, neo4j.WithTxTimeout(timeout))
	}
	if err != nil {
		return nil, err
	}
	out := v.(*QueryResponse)
	out.RowCount = len(out.Rows)
	out.ExecutionTimeMS = float64(time.Since(start).Microseconds()) / 1000
	return out, nil
}

// queryError maps a database error: the caller's Cypher errors are
// QUERY_ERROR with Neo4j's code; an unreachable database is
// SERVICE_UNAVAILABLE; anything else is returned unchanged.
func queryError(ctx context.Context, err error, timeout time.Duration) error {
	var ne *neo4j.Neo4jError
	switch {
	case errors.As(err, &ne) && strings.HasPrefix(ne.Code, "Neo.ClientError.Transaction.TransactionTimedOut"),
		errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return newError(CodeQuery, fmt.Sprintf("query did not finish within %d ms", timeout.Milliseconds()),
			map[string]any{"neo4j_code": neo4jCode(ne)})
	case neo4jpool.IsClientError(err) && errors.As(err, &ne):
		return newError(CodeQuery, ne.Msg, map[string]any{"neo4j_code": ne.Code})
	case neo4jpool.IsUnavailable(err) || neo4jpool.IsAuthError(err):
		return newError(CodeUnavailable, "database unavailable", nil)
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

func neo4jCode(ne *neo4j.Neo4jError) string {
	if ne == nil {
		return ""
	}
	return ne.Code
}
