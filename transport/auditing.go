package transport

import (
	"net/http"

	"github.com/atgraph/atg/audit"
	"github.com/atgraph/atg/auth"
)

// audit writes one audit record about request r (no-op without
// Options.Audit).
func (a *API) audit(r *http.Request, event, outcome string, details map[string]any) {
	if a.opts.Audit == nil {
		return
	}
	id, _ := auth.IdentityFrom(r.Context())
	a.opts.Audit.Log(audit.Record{
		Event: event, RequestID: RequestIDFrom(r.Context()), ClientID: id.ClientID, KeyID: id.KeyID,
		RemoteAddr: a.clientAddr(r), Outcome: outcome, Details: details,
	})
}

// AuditAuthFailure records a failed authentication of r with its reason;
// pass it as auth.Middleware.OnFailure (the server does).
func (a *API) AuditAuthFailure(r *http.Request, reason error) {
	a.audit(r, audit.EventAuthFailure, "denied", map[string]any{"reason": auth.FailureReason(reason), "path": r.URL.Path})
}
