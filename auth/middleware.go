package auth

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
)

// Error codes and messages of the responses written by this package, as in
// the ATG HTTP API error envelope.
const (
	// CodeAuthenticationFailed is the code of every 401 response.
	CodeAuthenticationFailed = "AUTHENTICATION_FAILED"
	// CodeForbidden is the code of 403 responses for a missing scope.
	CodeForbidden = "FORBIDDEN"
	// CodeInternal is the code of 500 responses (the key store failed).
	CodeInternal = "INTERNAL_ERROR"
	// MessageAuthenticationFailed is the message of every 401 response,
	// whatever the reason.
	MessageAuthenticationFailed = "Invalid or missing API key"
)

// RequestIDHeader is the header carrying the request ID.
const RequestIDHeader = "X-Request-ID"

// ErrorWriter writes an error response with the given HTTP status, code and
// message. Headers already set on w (e.g. WWW-Authenticate) must be kept.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, status int, code, message string)

// errorEnvelope is the JSON body {"error":{"code","message","request_id"}}.
type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// WriteError writes the ATG error envelope,
// {"error":{"code":…,"message":…,"request_id":…}}, with status and
// Content-Type application/json. The request ID is [RequestID](w, r). It
// is the default [ErrorWriter].
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	body, err := json.Marshal(errorEnvelope{Error: errorBody{Code: code, Message: message, RequestID: RequestID(w, r)}})
	if err != nil { // not reachable: the envelope has only strings
		body = []byte(`{"error":{"code":"INTERNAL_ERROR","message":"Internal server error","request_id":""}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// RequestID returns the request's ID: the X-Request-ID response header if an
// outer middleware has already set it, else the X-Request-ID request
// header, else "".
func RequestID(w http.ResponseWriter, r *http.Request) string {
	if w != nil {
		if id := w.Header().Get(RequestIDHeader); id != "" {
			return id
		}
	}
	if r != nil {
		return r.Header.Get(RequestIDHeader)
	}
	return ""
}

// Middleware authenticates HTTP requests by API key. Configure it and call
// [Middleware.Wrap]. Only Authenticator is required.
type Middleware struct {
	// Authenticator checks keys (required).
	Authenticator *Authenticator
	// Logger receives one Warn line per failed authentication with the
	// reason, key ID (if known), remote address, method, path and request
	// ID, never the key. Nil means slog.Default().
	Logger *slog.Logger
	// OnFailure, if set, is called after each failed authentication (before
	// the response is written) with the request and the reason, an error
	// matching ErrNoCredentials, ErrMalformed, ErrWrongEnvironment,
	// ErrUnknownKey, ErrRevoked or ErrExpired, or another error if the
	// store failed. Use it to count or rate-limit failures.
	OnFailure func(r *http.Request, reason error)
	// WriteError writes the error responses; nil means [WriteError].
	WriteError ErrorWriter
}

// Wrap returns a handler that authenticates each request before calling
// next, and never reads the request body. The key is taken from the
// Authorization header, which must be exactly "Bearer <key>": the scheme is
// matched case-insensitively (RFC 7235), followed by one space and the key,
// with nothing else; a request with several Authorization headers is
// rejected. On success the [Identity] is added to the request context (see
// [IdentityFrom]). Every authentication failure (missing, malformed,
// unknown, expired, revoked or wrong-environment key) gets the same
// response: 401, WWW-Authenticate: Bearer, and the body
// {"error":{"code":"AUTHENTICATION_FAILED","message":"Invalid or missing API key","request_id":"…"}}.
// If the store itself fails (any other error), the response is 500
// INTERNAL_ERROR without details.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	if m.Authenticator == nil {
		panic("auth: Middleware.Wrap: Authenticator is nil")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := bearerToken(r.Header)
		var id Identity
		if err == nil {
			id, err = m.Authenticator.Authenticate(r.Context(), key)
		}
		if err != nil {
			m.fail(w, r, id, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// fail logs the failure, calls OnFailure and writes the response.
func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, id Identity, reason error) {
	logger := m.Logger
	if logger == nil {
		logger = slog.Default()
	}
	attrs := []slog.Attr{
		slog.String("reason", FailureReason(reason)),
		slog.String("error", reason.Error()),
		slog.String("remote_addr", r.RemoteAddr),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("request_id", RequestID(w, r)),
	}
	if id.KeyID != "" {
		attrs = append(attrs, slog.String("key_id", id.KeyID), slog.String("client_id", id.ClientID))
	}
	level, msg := slog.LevelWarn, "authentication failed"
	if !isAuthFailure(reason) {
		level, msg = slog.LevelError, "authentication error"
	}
	logger.LogAttrs(r.Context(), level, msg, attrs...)
	if m.OnFailure != nil {
		m.OnFailure(r, reason)
	}
	write := m.WriteError
	if write == nil {
		write = WriteError
	}
	if !isAuthFailure(reason) {
		write(w, r, http.StatusInternalServerError, CodeInternal, "Internal server error")
		return
	}
	w.Header().Set("WWW-Authenticate", "Bearer")
	write(w, r, http.StatusUnauthorized, CodeAuthenticationFailed, MessageAuthenticationFailed)
}

// bearerToken extracts the key from "Authorization: Bearer <key>". It
// returns ErrNoCredentials when there is no Authorization header and an
// error matching ErrMalformed when the header is not exactly one
// "Bearer <token>" (scheme case-insensitive, one space, no other spaces).
// Errors never contain the header's value.
func bearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", ErrNoCredentials
	case 1:
	default:
		return "", malformedHeader("several Authorization headers")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", malformedHeader("Authorization header is not of the form 'Bearer <key>'")
	}
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", malformedHeader("Authorization header must be 'Bearer', one space and the key")
	}
	return token, nil
}

// headerError is a malformed Authorization header; it matches ErrMalformed.
type headerError string

func (e headerError) Error() string        { return "auth: malformed credentials: " + string(e) }
func (e headerError) Is(target error) bool { return target == ErrMalformed }

func malformedHeader(problem string) error { return headerError(problem) }

// RequireScope returns a handler that calls next only if the request's
// [Identity] (set by [Middleware.Wrap]) has scope; [ScopeAdmin] has every
// scope. Otherwise it writes 403
// {"error":{"code":"FORBIDDEN","message":"API key lacks the '<scope>' scope","request_id":"…"}}
// with [WriteError]. A request without an identity (Wrap is not in front)
// gets 401 AUTHENTICATION_FAILED, so a wiring mistake fails closed.
func RequireScope(scope Scope, next http.Handler) http.Handler {
	return requireScope(scope, next, WriteError)
}

// RequireScope is like the package-level [RequireScope] but writes errors
// with m.WriteError.
func (m *Middleware) RequireScope(scope Scope, next http.Handler) http.Handler {
	write := m.WriteError
	if write == nil {
		write = WriteError
	}
	return requireScope(scope, next, write)
}

func requireScope(scope Scope, next http.Handler, write ErrorWriter) http.Handler {
	msg := "API key lacks the '" + string(scope) + "' scope"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := IdentityFrom(r.Context())
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			write(w, r, http.StatusUnauthorized, CodeAuthenticationFailed, MessageAuthenticationFailed)
			return
		}
		if !id.Has(scope) {
			write(w, r, http.StatusForbidden, CodeForbidden, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}
