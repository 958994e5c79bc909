package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingStore counts lookups and can fail them.
type countingStore struct {
	KeyStore
	calls atomic.Int64
	err   error
}

func (s *countingStore) Authenticate(ctx context.Context, key string) (Record, error) {
	s.calls.Add(1)
	if s.err != nil {
		return Record{}, s.err
	}
	return s.KeyStore.Authenticate(ctx, key)
}

// fixture is a dev server's store with keys in every state.
type fixture struct {
	store                                          *countingStore
	auth                                           *Authenticator
	clock                                          *fakeClock
	valid, readOnly, admin, expired, revoked, prod string
	validRec, expiredRec, revokedRec               Record
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := newFakeClock()
	mem := &MemoryStore{Now: clock.Now}
	f := &fixture{store: &countingStore{KeyStore: mem}, clock: clock}
	ctx := context.Background()
	create := func(opts CreateOptions) (string, Record) {
		k, r, err := mem.Create(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		return k, r
	}
	f.valid, f.validRec = create(CreateOptions{ClientID: "client-rw", Environment: Dev})
	f.readOnly, _ = create(CreateOptions{ClientID: "client-ro", Environment: Dev, Scopes: []Scope{ScopeRead}})
	f.admin, _ = create(CreateOptions{ClientID: "client-admin", Environment: Dev, Scopes: []Scope{ScopeAdmin}})
	f.expired, f.expiredRec = create(CreateOptions{ClientID: "client-exp", Environment: Dev, TTL: time.Hour})
	f.revoked, f.revokedRec = create(CreateOptions{ClientID: "client-rev", Environment: Dev})
	f.prod, _ = create(CreateOptions{ClientID: "client-prod", Environment: Production}) // known to the store, wrong env
	if _, err := mem.Revoke(ctx, f.revokedRec.ID); err != nil {
		t.Fatal(err)
	}
	clock.Advance(25 * time.Hour) // the TTL key is now expired by a day
	a, err := NewAuthenticator(f.store, Dev)
	if err != nil {
		t.Fatal(err)
	}
	f.auth = a
	return f
}

func TestAuthenticator(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		key       string
		want      error
		wantCalls int64 // store lookups
		wantKeyID string
	}{
		{"valid", f.valid, nil, 1, f.validRec.ID},
		{"malformed", "atg_dev_short", ErrMalformed, 0, ""},
		{"wrong environment, before lookup", f.prod, ErrWrongEnvironment, 0, ""},
		{"wrong environment, unknown key", mustGenerate(t, Integration), ErrWrongEnvironment, 0, ""},
		{"unknown", mustGenerate(t, Dev), ErrUnknownKey, 1, ""},
		{"expired", f.expired, ErrExpired, 1, f.expiredRec.ID},
		{"revoked", f.revoked, ErrRevoked, 1, f.revokedRec.ID},
	}
	for _, tt := range tests {
		before := f.store.calls.Load()
		id, err := f.auth.Authenticate(ctx, tt.key)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.want)
		}
		if got := f.store.calls.Load() - before; got != tt.wantCalls {
			t.Errorf("%s: %d store lookups, want %d", tt.name, got, tt.wantCalls)
		}
		if id.KeyID != tt.wantKeyID {
			t.Errorf("%s: KeyID = %q, want %q", tt.name, id.KeyID, tt.wantKeyID)
		}
		if err != nil && strings.Contains(err.Error(), tt.key) {
			t.Errorf("%s: error contains the key", tt.name)
		}
	}
	id, _ := f.auth.Authenticate(ctx, f.valid)
	want := Identity{KeyID: f.validRec.ID, ClientID: "client-rw", Environment: Dev, Scopes: []Scope{ScopeRead, ScopeWrite}}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	if _, err := NewAuthenticator(nil, Dev); err == nil {
		t.Error("NewAuthenticator(nil) succeeded")
	}
	if _, err := NewAuthenticator(f.store, "prod"); !errors.Is(err, ErrInvalidEnvironment) {
		t.Errorf("NewAuthenticator(prod) = %v", err)
	}
	if f.auth.Environment() != Dev || f.auth.Store() != f.store {
		t.Error("accessors")
	}
}

// trapBody fails the test if the request body is read.
type trapBody struct {
	t    *testing.T
	read atomic.Bool
}

func (b *trapBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	b.t.Error("request body was read")
	return 0, errors.New("body must not be read")
}

func (b *trapBody) Close() error { return nil }

// logCapture collects JSON slog records.
type logCapture struct{ buf bytes.Buffer }

func (c *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (c *logCapture) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(c.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestMiddlewareSuccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, header := range []string{"Bearer " + f.valid, "bearer " + f.valid, "BEARER " + f.valid} {
		var logs logCapture
		m := &Middleware{Authenticator: f.auth, Logger: logs.logger()}
		body := &trapBody{t: t}
		var got Identity
		var called bool
		h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			if body.read.Load() {
				t.Error("body read before the handler")
			}
			got, _ = IdentityFrom(r.Context())
			w.WriteHeader(http.StatusNoContent)
		}))
		req := httptest.NewRequest(http.MethodPost, "/api/v1/query", body)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !called || rec.Code != http.StatusNoContent {
			t.Fatalf("%.6s: status %d, handler called %v", header, rec.Code, called)
		}
		want := Identity{KeyID: f.validRec.ID, ClientID: "client-rw", Environment: Dev, Scopes: []Scope{ScopeRead, ScopeWrite}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("identity (-want +got):\n%s", diff)
		}
		if logs.buf.Len() != 0 {
			t.Errorf("success logged: %s", logs.buf.String())
		}
	}
}

func TestMiddlewareFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const wantBody = `{"error":{"code":"AUTHENTICATION_FAILED","message":"Invalid or missing API key","request_id":"req-42"}}`
	tests := []struct {
		name      string
		headers   []string // Authorization values
		reason    error
		code      string // FailureReason
		wantKeyID string
	}{
		{"missing", nil, ErrNoCredentials, "missing_credentials", ""},
		{"empty header", []string{""}, ErrMalformed, "malformed", ""},
		{"basic scheme", []string{"Basic " + f.valid}, ErrMalformed, "malformed", ""},
		{"scheme only", []string{"Bearer"}, ErrMalformed, "malformed", ""},
		{"scheme and space", []string{"Bearer "}, ErrMalformed, "malformed", ""},
		{"two spaces", []string{"Bearer  " + f.valid}, ErrMalformed, "malformed", ""},
		{"trailing data", []string{"Bearer " + f.valid + " x"}, ErrMalformed, "malformed", ""},
		{"no scheme", []string{f.valid}, ErrMalformed, "malformed", ""},
		{"two headers", []string{"Bearer " + f.valid, "Bearer " + f.valid}, ErrMalformed, "malformed", ""},
		{"malformed key", []string{"Bearer atg_dev_short"}, ErrMalformed, "malformed", ""},
		{"upper-case hex", []string{"Bearer " + f.valid[:8] + strings.ToUpper(f.valid[8:])}, ErrMalformed, "malformed", ""},
		{"unknown", []string{"Bearer " + mustGenerate(t, Dev)}, ErrUnknownKey, "unknown_key", ""},
		{"expired", []string{"Bearer " + f.expired}, ErrExpired, "expired", f.expiredRec.ID},
		{"revoked", []string{"Bearer " + f.revoked}, ErrRevoked, "revoked", f.revokedRec.ID},
		{"wrong environment", []string{"Bearer " + f.prod}, ErrWrongEnvironment, "wrong_environment", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logCapture
			var gotReason error
			m := &Middleware{
				Authenticator: f.auth,
				Logger:        logs.logger(),
				OnFailure:     func(r *http.Request, reason error) { gotReason = reason },
			}
			h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Error("handler called")
			}))
			req := httptest.NewRequest(http.MethodPost, "/api/v1/operations", &trapBody{t: t})
			req.RemoteAddr = "192.0.2.7:5555"
			for _, v := range tt.headers {
				req.Header.Add("Authorization", v)
			}
			req.Header.Set("X-Request-ID", "req-42")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", rec.Code)
			}
			if got := rec.Body.String(); got != wantBody {
				t.Errorf("body = %s\nwant  %s", got, wantBody)
			}
			wantHeaders := map[string]string{"Content-Type": "application/json", "Www-Authenticate": "Bearer"}
			for k, v := range wantHeaders {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !errors.Is(gotReason, tt.reason) {
				t.Errorf("OnFailure reason = %v, want %v", gotReason, tt.reason)
			}
			logged := logs.buf.String()
			for _, v := range tt.headers {
				if _, key, _ := strings.Cut(v, " "); len(key) > 8 && strings.Contains(logged, strings.TrimSpace(key)) {
					t.Errorf("log contains the key: %s", logged)
				}
			}
			recs := logs.records(t)
			if len(recs) != 1 {
				t.Fatalf("%d log lines, want 1", len(recs))
			}
			want := map[string]any{
				"level": "WARN", "msg": "authentication failed", "reason": tt.code,
				"remote_addr": "192.0.2.7:5555", "request_id": "req-42", "method": "POST", "path": "/api/v1/operations",
			}
			if tt.wantKeyID != "" {
				want["key_id"] = tt.wantKeyID
			}
			got := recs[0]
			for k := range got {
				if _, ok := want[k]; !ok && k != "time" && k != "error" && k != "client_id" {
					t.Errorf("unexpected log attribute %q", k)
				}
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("log %s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestMiddlewareRequestID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := &Middleware{Authenticator: f.auth, Logger: slog.New(slog.DiscardHandler)}
	h := m.Wrap(http.NotFoundHandler())
	tests := []struct {
		name, outer, inner, want string
	}{
		{"set by outer middleware wins", "from-response", "from-request", "from-response"},
		{"request header", "", "from-request", "from-request"},
		{"none", "", "", ""},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tt.inner != "" {
			req.Header.Set("X-Request-ID", tt.inner)
		}
		rec := httptest.NewRecorder()
		if tt.outer != "" {
			rec.Header().Set("X-Request-ID", tt.outer)
		}
		h.ServeHTTP(rec, req)
		var env struct {
			Error struct {
				RequestID string `json:"request_id"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatal(err)
		}
		if env.Error.RequestID != tt.want {
			t.Errorf("%s: request_id = %q, want %q", tt.name, env.Error.RequestID, tt.want)
		}
	}
}

func TestMiddlewareStoreFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	broken := &countingStore{KeyStore: f.store.KeyStore, err: errors.New("database unreachable")}
	a, _ := NewAuthenticator(broken, Dev)
	var logs logCapture
	m := &Middleware{Authenticator: a, Logger: logs.logger()}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+f.valid)
	rec := httptest.NewRecorder()
	m.Wrap(http.NotFoundHandler()).ServeHTTP(rec, req)
	want := `{"error":{"code":"INTERNAL_ERROR","message":"Internal server error","request_id":""}}`
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != want {
		t.Errorf("got %d %s, want 500 %s", rec.Code, rec.Body, want)
	}
	if recs := logs.records(t); len(recs) != 1 || recs[0]["level"] != "ERROR" || recs[0]["reason"] != "error" {
		t.Errorf("log = %v", recs)
	}
}

func TestMiddlewareCustomErrorWriter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var calls []string
	m := &Middleware{
		Authenticator: f.auth,
		Logger:        slog.New(slog.DiscardHandler),
		WriteError: func(w http.ResponseWriter, r *http.Request, status int, code, message string) {
			calls = append(calls, code)
			w.WriteHeader(status)
		},
	}
	h := m.Wrap(m.RequireScope(ScopeWrite, http.NotFoundHandler()))
	for _, key := range []string{"", f.readOnly} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
	if diff := cmp.Diff([]string{CodeAuthenticationFailed, CodeForbidden}, calls); diff != "" {
		t.Errorf("writer calls (-want +got):\n%s", diff)
	}
}

func TestRequireScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := &Middleware{Authenticator: f.auth, Logger: slog.New(slog.DiscardHandler)}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	tests := []struct {
		name     string
		key      string
		scope    Scope
		wantCode int
		wantBody string
	}{
		{"read key reads", f.readOnly, ScopeRead, 200, ""},
		{"read key writes", f.readOnly, ScopeWrite, 403, `{"error":{"code":"FORBIDDEN","message":"API key lacks the 'write' scope","request_id":"r1"}}`},
		{"rw key writes", f.valid, ScopeWrite, 200, ""},
		{"rw key admin", f.valid, ScopeAdmin, 403, `{"error":{"code":"FORBIDDEN","message":"API key lacks the 'admin' scope","request_id":"r1"}}`},
		{"admin key writes", f.admin, ScopeWrite, 200, ""},
		{"admin key admin", f.admin, ScopeAdmin, 200, ""},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodPost, "/", &trapBody{t: t})
		req.Header.Set("Authorization", "Bearer "+tt.key)
		req.Header.Set("X-Request-ID", "r1")
		rec := httptest.NewRecorder()
		m.Wrap(RequireScope(tt.scope, ok)).ServeHTTP(rec, req)
		if rec.Code != tt.wantCode {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.wantCode)
		}
		if tt.wantBody != "" {
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("%s: body %s, want %s", tt.name, got, tt.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q", tt.name, ct)
			}
		}
	}
	// Without the authentication middleware in front, RequireScope fails closed.
	rec := httptest.NewRecorder()
	RequireScope(ScopeRead, ok).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("no identity: status %d, want 401", rec.Code)
	}
}

func TestFailureReason(t *testing.T) {
	t.Parallel()
	tests := map[error]string{
		nil:                         "error",
		ErrNoCredentials:            "missing_credentials",
		&KeyFormatError{Problem: 1}: "malformed",
		ErrUnknownKey:               "unknown_key",
		ErrExpired:                  "expired",
		ErrRevoked:                  "revoked",
		ErrWrongEnvironment:         "wrong_environment",
		errors.New("x"):             "error",
	}
	for err, want := range tests {
		if got := FailureReason(err); got != want {
			t.Errorf("FailureReason(%v) = %q, want %q", err, got, want)
		}
	}
}
