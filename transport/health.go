package transport

import (
	"context"
	"net/http"
	"time"

	"github.com/atgraph/atg/neo4jpool"
)

// livez answers 200 while the process serves; it checks no dependency.
func (a *API) livez(w http.ResponseWriter, r *http.Request) {
	writeJSONAs(w, http.StatusOK, "application/health+json", map[string]string{"status": "pass"})
}

// checkDB returns a database health result no older than ReadyCacheTTL,
// checking with its own timeout so a saturated pool cannot hang the caller.
func (a *API) checkDB(ctx context.Context) neo4jpool.Health {
	a.readyMu.Lock()
	defer a.readyMu.Unlock()
	if !a.readyAt.IsZero() && time.Since(a.readyAt) < a.opts.ReadyCacheTTL {
		return a.readyCache
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.ReadyTimeout)
	defer cancel()
	h := a.opts.DB.Check(ctx, a.opts.DBEnvironment)
	a.readyCache, a.readyAt = h, time.Now()
	return h
}

type healthCheck struct {
	ComponentID   string  `json:"componentId,omitempty"`
	ComponentType string  `json:"componentType"`
	ObservedValue float64 `json:"observedValue"`
	ObservedUnit  string  `json:"observedUnit"`
	Status        string  `json:"status"`
	Time          string  `json:"time"`
	Output        string  `json:"output,omitempty"`
}

type healthResponse struct {
	Status      string                   `json:"status"`
	Version     string                   `json:"version,omitempty"`
	ServiceID   string                   `json:"serviceId"`
	Description string                   `json:"description"`
	Output      string                   `json:"output,omitempty"`
	Checks      map[string][]healthCheck `json:"checks"`
}

// readyz reports, in application/health+json, whether Neo4j answers: 200
// pass or 503 fail with the reason.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	h := a.checkDB(r.Context())
	check := healthCheck{
		ComponentID: h.Database, ComponentType: "datastore",
		ObservedValue: float64(h.Latency.Microseconds()) / 1000, ObservedUnit: "ms",
		Status: "pass", Time: h.CheckedAt.UTC().Format(time.RFC3339Nano),
	}
	resp := healthResponse{Status: "pass", Version: a.opts.Version, ServiceID: "atg-server",
		Description: "ATG server readiness: can it reach Neo4j?",
		Checks:      map[string][]healthCheck{"neo4j:responseTime": {check}}}
	status := http.StatusOK
	if !h.Healthy {
		reason := "neo4j check failed"
		if h.Err != nil {
			reason = "neo4j unavailable: " + h.Err.Error()
		}
		resp.Status, resp.Output = "fail", reason
		resp.Checks["neo4j:responseTime"][0].Status = "fail"
		resp.Checks["neo4j:responseTime"][0].Output = reason
		status = http.StatusServiceUnavailable
	}
	writeJSONAs(w, status, "application/health+json", resp)
}

// HealthResponse is the body of GET /api/v1/health.
type HealthResponse struct {
	Status        string `json:"status"`
	Version       string `json:"version"`
	Environment   string `json:"environment"`
	Neo4jStatus   string `json:"neo4j_status"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	Timestamp     string `json:"timestamp"`
}

// NewHealthResponse makes the body of GET /api/v1/health from a database
// check h, as the server and an embedded client both report it: "healthy"
// and "connected", or "degraded" and "disconnected".
func NewHealthResponse(h neo4jpool.Health, version, environment string, started time.Time) HealthResponse {
	out := HealthResponse{Status: "healthy", Version: version, Environment: environment, Neo4jStatus: "connected",
		UptimeSeconds: int64(time.Since(started).Seconds()), Timestamp: time.Now().UTC().Format(time.RFC3339)}
	if !h.Healthy {
		out.Status, out.Neo4jStatus = "degraded", "disconnected"
	}
	return out
}

// health is the original's /api/v1/health: always 200, "degraded" when Neo4j
// does not answer.
func (a *API) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, NewHealthResponse(a.checkDB(r.Context()), a.opts.Version, a.opts.Environment, a.opts.Started))
}
