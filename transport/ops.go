package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/atgraph/atg/audit"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/operations"
)

// SubmitRequest is the body of POST /api/v1/operations.
type SubmitRequest struct {
	// Type is a registered operation type, e.g. "import".
	Type string `json:"type"`
	// Params are the type's parameters.
	Params json.RawMessage `json:"params,omitempty"`
}

// Links are the URLs of an operation, relative to the server's base URL.
type Links struct {
	// Self is the operation's URL.
	Self string `json:"self"`
	// Events is its event stream; when the server minted one, it carries a
	// short-lived token (valid for this stream only) so that a browser's
	// EventSource can follow it without an API key.
	Events string `json:"events"`
}

// OperationView is an operation as the API returns it.
type OperationView struct {
	operations.Operation
	Links Links `json:"links"`
}

// ListResponse is the body of GET /api/v1/operations.
type ListResponse struct {
	Operations []OperationView `json:"operations"`
	Total      int             `json:"total"`
	Limit      int             `json:"limit"`
	Offset     int             `json:"offset"`
}

// MaxListLimit caps the page size of GET /api/v1/operations.
const MaxListLimit = 500

// HeaderIdempotencyKey makes operation submits safe to retry.
const HeaderIdempotencyKey = "Idempotency-Key"

// ViewOf is op as the API shows it, with links relative to the server's
// base URL (no event token).
func ViewOf(op operations.Operation) OperationView {
	self := "/api/v1/operations/" + url.PathEscape(op.ID)
	return OperationView{Operation: op, Links: Links{Self: self, Events: self + "/events"}}
}

// view is ViewOf with, when withToken is set and op has not ended, an event
// token in links.events.
func (a *API) view(op operations.Operation, withToken bool) OperationView {
	v := ViewOf(op)
	if withToken && !op.Status.Terminal() {
		v.Links.Events += "?token=" + url.QueryEscape(a.mintEventToken(op.ID, op.ClientID, time.Now().Add(a.opts.EventTokenTTL)))
	}
	return v
}

// ListOperations returns one page of the operations caller may see (its
// own; an admin's: all), newest first, as GET /api/v1/operations does for
// the server and an embedded client alike. A bad status, a limit outside
// 1..MaxListLimit (0 means the default 50) or a negative offset is a
// VALIDATION_ERROR.
func ListOperations(ctx context.Context, engine *operations.Engine, caller auth.Identity, o ListOptions) (*ListResponse, error) {
	f := operations.Filter{Type: o.Type, Limit: o.Limit, Offset: o.Offset}
	if !caller.Has(auth.ScopeAdmin) {
		f.ClientID = caller.ClientID
	}
	if o.Status != "" {
		st, err := operations.ParseStatus(string(o.Status))
		if err != nil {
			return nil, newError(CodeValidation, err.Error(), map[string]any{"field": "status"})
		}
		f.Status = st
	}
	if f.Limit == 0 {
		f.Limit = operations.DefaultListLimit
	}
	if f.Limit < 1 || f.Limit > MaxListLimit {
		return nil, newError(CodeValidation, fmt.Sprintf("limit must be an integer between 1 and %d", MaxListLimit), map[string]any{"field": "limit"})
	}
	if f.Offset < 0 {
		return nil, newError(CodeValidation, "offset must not be negative", map[string]any{"field": "offset"})
	}
	page, total, err := engine.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &ListResponse{Operations: make([]OperationView, len(page)), Total: total, Limit: f.Limit, Offset: f.Offset}
	for i, op := range page {
		out.Operations[i] = ViewOf(op)
	}
	return out, nil
}

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	id, _ := auth.IdentityFrom(r.Context())
	key := r.Header.Get(HeaderIdempotencyKey)
	if key != "" && !validRequestID(key) {
		WriteError(w, CodeValidation, "Idempotency-Key must be 1 to 128 visible ASCII characters", map[string]any{"field": HeaderIdempotencyKey})
		return
	}
	var req SubmitRequest
	if !decodeJSON(w, r, a.opts.MaxBodyBytes, &req) {
		return
	}
	op, created, err := a.opts.Engine.Submit(r.Context(), operations.SubmitRequest{
		ClientID: id.ClientID, Type: req.Type, Params: req.Params, IdempotencyKey: key,
	})
	if err != nil {
		if ae := OperationError(err); ae != nil {
			a.audit(r, audit.EventOperationSubmit, "rejected", map[string]any{"type": req.Type, "code": ae.Code})
		}
		a.writeErr(w, r, "submit operation", err)
		return
	}
	a.audit(r, audit.EventOperationSubmit, "accepted", map[string]any{"type": op.Type, "operation_id": op.ID, "idempotent_replay": !created})
	v := a.view(op, true)
	w.Header().Set("Location", v.Links.Self)
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusAccepted, Submitted{OperationID: op.ID, Type: op.Type, Status: op.Status, CreatedAt: op.CreatedAt, Links: v.Links})
}

// visibleOperation loads the operation named in the path, answering 404
// when it does not exist or the caller may not see it.
func (a *API) visibleOperation(w http.ResponseWriter, r *http.Request) (operations.Operation, bool) {
	id, _ := auth.IdentityFrom(r.Context())
	op, err := a.opts.Engine.Get(r.Context(), r.PathValue("id"))
	if err == nil && !op.VisibleTo(id.ClientID, id.Has(auth.ScopeAdmin)) {
		err = operations.ErrNotFound // other clients' operations do not exist for the caller
	}
	if err != nil {
		a.writeErr(w, r, "get operation", err)
		return operations.Operation{}, false
	}
	return op, true
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	if op, ok := a.visibleOperation(w, r); ok {
		writeJSON(w, http.StatusOK, a.view(op, true))
	}
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request) {
	op, ok := a.visibleOperation(w, r)
	if !ok {
		return
	}
	op, err := a.opts.Engine.Cancel(r.Context(), op.ID, operations.ReasonClientAsked)
	outcome := "cancelled"
	if err != nil {
		outcome = "refused"
	}
	a.audit(r, audit.EventOperationCancel, outcome, map[string]any{"operation_id": r.PathValue("id")})
	if err != nil {
		a.writeErr(w, r, "cancel operation", err)
		return
	}
	writeJSON(w, http.StatusOK, a.view(op, false))
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	id, _ := auth.IdentityFrom(r.Context())
	q := r.URL.Query()
	o := ListOptions{Type: q.Get("type")}
	if q.Has("status") { // present but empty is an error too
		st, err := operations.ParseStatus(q.Get("status"))
		if err != nil {
			WriteError(w, CodeValidation, err.Error(), map[string]any{"field": "status"})
			return
		}
		o.Status = st
	}
	var ok bool
	if o.Limit, ok = queryInt(w, q, "limit", operations.DefaultListLimit, 1, MaxListLimit); !ok {
		return
	}
	if o.Offset, ok = queryInt(w, q, "offset", 0, 0, 1<<31-1); !ok {
		return
	}
	out, err := ListOperations(r.Context(), a.opts.Engine, id, o)
	if err != nil {
		a.writeErr(w, r, "list operations", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// queryInt parses an optional integer query parameter within [lo, hi].
func queryInt(w http.ResponseWriter, q url.Values, name string, def, lo, hi int) (int, bool) {
	if !q.Has(name) {
		return def, true
	}
	s := q.Get(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		WriteError(w, CodeValidation, fmt.Sprintf("%s must be an integer between %d and %d", name, lo, hi), map[string]any{"field": name})
		return 0, false
	}
	return n, true
}
