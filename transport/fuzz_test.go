package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// fuzzBody runs body through decodeJSON into v as a handler would and
// checks the outcome is either accepted or one of the documented client
// errors in the envelope, never a panic or a 5xx.
func fuzzBody(t *testing.T, body []byte, v any) bool {
	r := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	w.Header().Set(HeaderRequestID, "fuzz")
	if decodeJSON(w, r, 1<<16, v) {
		if w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Fatalf("accepted but wrote a response: %d %s", w.Code, w.Body)
		}
		return true
	}
	switch w.Code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
	default:
		t.Fatalf("status %d for %q", w.Code, body)
	}
	var env struct {
		Error *Error `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Error == nil || env.Error.RequestID != "fuzz" || env.Error.Message == "" {
		t.Fatalf("not an error envelope: %s", w.Body)
	}
	return false
}

// FuzzQueryRequestBody feeds arbitrary bodies to the query endpoint's
// decoding and validation (everything before the database).
func FuzzQueryRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"query":"RETURN $x","parameters":{"x":[1,2.5,"a",{"b":null}]},"mode":"write","timeout_ms":100}`,
		`{"query":""}`, `{"query":"x","paramters":{}}`, `{"query":"x","parameters":{"n":1e400}}`,
		`{"query":"x","timeout_ms":-1}`, `{"query":"x"}{}`, `[]`, `null`, `{"query":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req QueryRequest
		if !fuzzBody(t, body, &req) {
			return
		}
		pq, verr := prepareQuery(req)
		if verr != nil {
			if verr.Code != CodeValidation || verr.Status != http.StatusBadRequest || verr.Details["field"] == nil {
				t.Fatalf("validation error %+v", verr)
			}
			return
		}
		if strings.TrimSpace(req.Query) == "" || pq.timeout <= 0 || len(pq.params) != len(req.Parameters) {
			t.Fatalf("accepted %+v as %+v", req, pq)
		}
	})
}

// FuzzSubmitRequestBody posts arbitrary bodies to POST /api/v1/operations
// of a real API (engine and authentication; the database is never reached):
// every answer is a 202 with a queued operation or a client error in the
// envelope, never a 5xx or a panic.
func FuzzSubmitRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"type":"noop","params":{"nodes":[{"id":"a","labels":["X"]}]}}`,
		`{"type":"","params":null}`, `{"type":"noop","params":[1]}`, `{"type":"x","extra":1}`, `{}`,
		`{"type":"noop"}`, `{"type":"noop","params":{ "a" : [ 1, 2 ] }}`,
	} {
		f.Add([]byte(s))
	}
	api, key := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/v1/operations", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusAccepted:
			var sub Submitted
			if err := json.Unmarshal(w.Body.Bytes(), &sub); err != nil || sub.Status != "queued" || sub.Type != "noop" {
				t.Fatalf("202 body %s: %v", w.Body, err)
			}
			return
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		var env struct {
			Error *Error `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Error == nil || env.Error.Code != CodeValidation && w.Code == http.StatusBadRequest {
			t.Fatalf("not a validation error envelope: %s", w.Body)
		}
	})
}

// fuzzAPI is an API with a "noop" operation type and one write key. Its
// database manager points at a closed port: submits never touch it.
func fuzzAPI(f *testing.F) (*API, string) {
	ctx := context.Background()
	store := auth.NewMemoryStore()
	key, _, err := store.Create(ctx, auth.CreateOptions{ClientID: "fuzz", Environment: auth.Dev})
	if err != nil {
		f.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(store, auth.Dev)
	if err != nil {
		f.Fatal(err)
	}
	reg := &operations.Registry{}
	if err := reg.Register(operations.Type{Name: "noop", Run: func(context.Context, json.RawMessage, operations.Reporter) (any, error) { return nil, nil }}); err != nil {
		f.Fatal(err)
	}
	engine, err := operations.New(operations.Config{Registry: reg, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	db := neo4jpool.NewManager(neo4jpool.Options{Logger: quiet})
	if err := db.Configure(ctx, "dev", neo4jpool.Config{URI: "bolt://127.0.0.1:1", User: "u", Password: "p"}.WithDefaults()); err != nil {
		f.Fatal(err)
	}
	api, err := NewAPI(Options{Environment: "dev", Authenticate: (&auth.Middleware{Authenticator: authn, Logger: quiet}).Wrap,
		Engine: engine, DB: db, Logger: quiet, MaxBodyBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		_ = engine.Close(ctx)
		_ = db.CloseAll(ctx)
	})
	return api, key
}
