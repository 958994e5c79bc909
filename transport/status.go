package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// StatusNeo4j is the database part of StatusResponse.
type StatusNeo4j struct {
	Status    string  `json:"status"`
	Version   string  `json:"version,omitempty"`
	Edition   string  `json:"edition,omitempty"`
	Database  string  `json:"database,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// StatusResponse is the body of GET /api/v1/status.
type StatusResponse struct {
	ClientID       string          `json:"client_id"`
	KeyID          string          `json:"key_id"`
	Environment    string          `json:"environment"`
	Scopes         []string        `json:"scopes"`
	Version        string          `json:"version"`
	Neo4j          StatusNeo4j     `json:"neo4j"`
	Pool           json.RawMessage `json:"pool,omitempty"`
	Operations     map[string]int  `json:"operations"` // nil when the operation store is unavailable
	OperationTypes []string        `json:"operation_types"`
	MaxConcurrent  int             `json:"max_concurrent_ops"`
	UptimeSeconds  int64           `json:"uptime_seconds"`
	Timestamp      string          `json:"timestamp"`
}

// StatusSource is what a status report is made of.
type StatusSource struct {
	// Identity is the caller.
	Identity auth.Identity
	// Environment and Version describe the service.
	Environment, Version string
	// Health is a recent check of the database.
	Health neo4jpool.Health
	// Engine runs the operations.
	Engine *operations.Engine
	// DB and DBEnvironment give the pool metrics.
	DB            *neo4jpool.Manager
	DBEnvironment string
	// Started is when the service started.
	Started time.Time
}

// BuildStatus makes the body of GET /api/v1/status, as the server and an
// embedded client both report it: the caller, the database, the pool with
// its scale recommendation, and the operations by status (every status,
// zero included).
func BuildStatus(ctx context.Context, src StatusSource) (*StatusResponse, error) {
	counts, err := src.Engine.Counts(ctx)
	if err != nil && !neo4jpool.IsUnavailable(err) && !neo4jpool.IsAuthError(err) {
		return nil, err
	}
	// A database down (the Neo4j operation store's) leaves the operations
	// unknown: null, where zeros would be a lie.
	countsKnown := err == nil
	h := src.Health
	out := &StatusResponse{
		ClientID: src.Identity.ClientID, KeyID: src.Identity.KeyID, Environment: src.Environment,
		Scopes: make([]string, len(src.Identity.Scopes)), Version: src.Version,
		Neo4j: StatusNeo4j{Status: "connected", Version: h.ServerVersion, Edition: h.Edition, Database: h.Database,
			LatencyMS: float64(h.Latency.Microseconds()) / 1000},
		Operations:     make(map[string]int, 5),
		OperationTypes: src.Engine.Registry().Names(),
		MaxConcurrent:  src.Engine.MaxConcurrent(),
		UptimeSeconds:  int64(time.Since(src.Started).Seconds()),
		Timestamp:      time.Now().UTC().Format(time.RFC3339),
	}
	for i, sc := range src.Identity.Scopes {
		out.Scopes[i] = string(sc)
	}
	if !h.Healthy {
		out.Neo4j.Status = "disconnected"
		if h.Err != nil {
			out.Neo4j.Error = h.Err.Error()
		}
	}
	for _, s := range operations.Statuses() {
		out.Operations[string(s)] = counts[s]
	}
	if !countsKnown {
		out.Operations = nil
	}
	if snap, err := src.DB.Snapshot(src.DBEnvironment); err == nil {
		out.Pool, _ = json.Marshal(snap)
	}
	return out, nil
}

// status reports the caller's identity, the database, the pool with its
// scale recommendation and the operations by status.
func (a *API) status(w http.ResponseWriter, r *http.Request) {
	id, _ := auth.IdentityFrom(r.Context())
	resp, err := BuildStatus(r.Context(), StatusSource{
		Identity: id, Environment: a.opts.Environment, Version: a.opts.Version, Health: a.checkDB(r.Context()),
		Engine: a.opts.Engine, DB: a.opts.DB, DBEnvironment: a.opts.DBEnvironment, Started: a.opts.Started,
	})
	if err != nil {
		a.writeErr(w, r, "count operations", err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// writeErr answers err: an *Error as it is, an operations engine error as
// OperationError maps it, anything else as a 500 (logged with what).
func (a *API) writeErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ae *Error
	if !errors.As(err, &ae) {
		ae = OperationError(err)
	}
	if ae == nil && (neo4jpool.IsUnavailable(err) || neo4jpool.IsAuthError(err)) {
		// the operation store's database (ATG_OPERATION_STORE=neo4j) is
		// down: the request may succeed later
		a.log.Warn(what, "request_id", RequestIDFrom(r.Context()), "err", err)
		ae = &Error{Code: CodeUnavailable, Message: "the database that holds the operations is unavailable; retry later", RetryAfter: time.Second}
	}
	if ae == nil {
		a.internalError(w, r, what, err)
		return
	}
	writeAPIError(w, ae)
}

// internalError logs err with the request ID and answers 500 without
// internals.
func (a *API) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.Error(what, "request_id", RequestIDFrom(r.Context()), "err", err)
	WriteError(w, CodeInternal, "internal server error", nil)
}
