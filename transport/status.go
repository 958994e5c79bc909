package transport

import (
	"net/http"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/operations"
)

// statusNeo4j is the database part of /api/v1/status.
type statusNeo4j struct {
	Status    string  `json:"status"`
	Version   string  `json:"version,omitempty"`
	Edition   string  `json:"edition,omitempty"`
	Database  string  `json:"database,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// status reports the caller's identity, the database, the pool with its
// scale recommendation and the operations by status.
func (a *API) status(w http.ResponseWriter, r *http.Request) {
	id, _ := auth.IdentityFrom(r.Context())
	h := a.checkDB(r.Context())
	neo := statusNeo4j{Status: "connected", Version: h.ServerVersion, Edition: h.Edition, Database: h.Database,
		LatencyMS: float64(h.Latency.Microseconds()) / 1000}
	if !h.Healthy {
		neo.Status = "disconnected"
		if h.Err != nil {
			neo.Error = h.Err.Error()
		}
	}
	counts, err := a.opts.Engine.Counts(r.Context())
	if err != nil {
		a.internalError(w, r, "count operations", err)
		return
	}
	ops := map[string]int{}
	for _, s := range operations.Statuses() {
		ops[string(s)] = counts[s]
	}
	resp := map[string]any{
		"client_id":          id.ClientID,
		"key_id":             id.KeyID,
		"environment":        a.opts.Environment,
		"scopes":             id.Scopes,
		"version":            a.opts.Version,
		"neo4j":              neo,
		"operations":         ops,
		"operation_types":    a.opts.Engine.Registry().Names(),
		"max_concurrent_ops": a.opts.Engine.MaxConcurrent(),
		"uptime_seconds":     int64(time.Since(a.opts.Started).Seconds()),
		"timestamp":          time.Now().UTC().Format(time.RFC3339),
	}
	if snap, err := a.opts.DB.Snapshot(a.opts.DBEnvironment); err == nil {
		resp["pool"] = snap
	}
	writeJSON(w, http.StatusOK, resp)
}

// internalError logs err with the request ID and answers 500 without
// internals.
func (a *API) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.log.Error(what, "request_id", RequestIDFrom(r.Context()), "err", err)
	WriteError(w, CodeInternal, "internal server error", nil)
}
