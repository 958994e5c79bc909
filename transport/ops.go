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

// view is ViewOf with, when minter is an API key's identity and op has
// not ended, an event token in links.events, valid while that key is.
func (a *API) view(op operations.Operation, minter auth.Identity) OperationView {
	v := ViewOf(op)
	if minter.KeyID != "" && !op.Status.Terminal() {
		v.Links.Events += "?token=" + url.QueryEscape(a.mintEventToken(op.ID, op.ClientID, minter.KeyID, time.Now().Add(a.opts.EventTokenTTL)))
	}
	return v
}

// ListOperations returns one page of the operations caller may see (its
// own; an admin's: all), newest first, as GET /api/v1/operations does for
// the server and an embedded client alike. A bad status, a limit outside
// 1..MaxListLimit (0 means the default 50) or an offset outside
// 0..2147483647 is a VALIDATION_ERROR.
func ListOperations(ctx context.Context, engine *operations.Engine, caller auth.Identity, o ListOptions) (*ListResponse, error) {
	if o.Limit == 0 {
		o.Limit = operations.DefaultListLimit
	}
	return listOperations(ctx, engine, caller, o)
}

// maxListOffset is the largest offset of GET /api/v1/operations.
const maxListOffset = 1<<31 - 1

// listOperations is ListOperations once a zero limit has been replaced by
// the default: it checks every parameter's range (in the one place where
// the API's messages about them are made) and lists.
func listOperations(ctx context.Context, engine *operations.Engine, caller auth.Identity, o ListOptions) (*ListResponse, error) {
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
	if f.Limit < 1 || f.Limit > MaxListLimit {
		return nil, listParamError("limit")
	}
	if f.Offset < 0 || f.Offset > maxListOffset {
		return nil, listParamError("offset")
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

// listParamError is the VALIDATION_ERROR of a limit or offset that is not
// an integer in its range.
func listParamError(name string) *Error {
	lo, hi := 1, MaxListLimit
	if name == "offset" {
		lo, hi = 0, maxListOffset
	}
	return newError(CodeValidation, fmt.Sprintf("%s must be an integer between %d and %d", name, lo, hi), map[string]any{"field": name})
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
	v := a.view(op, id)
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
		id, _ := auth.IdentityFrom(r.Context())
		writeJSON(w, http.StatusOK, a.view(op, id))
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
	writeJSON(w, http.StatusOK, a.view(op, auth.Identity{}))
}

// list serves GET /api/v1/operations. It only turns the query's strings
// into ListOptions (an absent limit is the default, a present one is
// checked as given); listOperations checks the ranges.
func (a *API) list(w http.ResponseWriter, r *http.Request) {
	id, _ := auth.IdentityFrom(r.Context())
	q := r.URL.Query()
	o := ListOptions{Type: q.Get("type"), Limit: operations.DefaultListLimit}
	if q.Has("status") { // present but empty is an error too
		st, err := operations.ParseStatus(q.Get("status"))
		if err != nil {
			WriteError(w, CodeValidation, err.Error(), map[string]any{"field": "status"})
			return
		}
		o.Status = st
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"limit", &o.Limit}, {"offset", &o.Offset}} {
		if !q.Has(p.name) {
			continue
		}
		n, err := strconv.Atoi(q.Get(p.name))
		if err != nil {
			writeAPIError(w, listParamError(p.name))
			return
		}
		*p.dst = n
	}
	out, err := listOperations(r.Context(), a.opts.Engine, id, o)
	if err != nil {
		a.writeErr(w, r, "list operations", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
