package transport

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error codes of the v1 API and the HTTP status each goes with.
const (
	CodeValidation           = "VALIDATION_ERROR"          // 400
	CodeQuery                = "QUERY_ERROR"               // 400
	CodeAuthenticationFailed = "AUTHENTICATION_FAILED"     // 401
	CodeForbidden            = "FORBIDDEN"                 // 403
	CodeNotFound             = "NOT_FOUND"                 // 404
	CodeMethodNotAllowed     = "METHOD_NOT_ALLOWED"        // 405
	CodeNotCancellable       = "OPERATION_NOT_CANCELLABLE" // 409
	CodeIdempotencyReused    = "IDEMPOTENCY_KEY_REUSED"    // 409
	CodePayloadTooLarge      = "PAYLOAD_TOO_LARGE"         // 413
	CodeUnsupportedMedia     = "UNSUPPORTED_MEDIA_TYPE"    // 415
	CodeRequestTimeout       = "REQUEST_TIMEOUT"           // 408
	CodeHeaderTooLarge       = "HEADERS_TOO_LARGE"         // 431
	CodeRateLimited          = "RATE_LIMITED"              // 429
	CodeInternal             = "INTERNAL_ERROR"            // 500
	CodeUnavailable          = "SERVICE_UNAVAILABLE"       // 503
)

// Sentinel errors for errors.Is on errors returned by Client: each matches
// any *Error with the same Code.
var (
	ErrValidation           = &Error{Code: CodeValidation}
	ErrQuery                = &Error{Code: CodeQuery}
	ErrAuthenticationFailed = &Error{Code: CodeAuthenticationFailed}
	ErrForbidden            = &Error{Code: CodeForbidden}
	ErrNotFound             = &Error{Code: CodeNotFound}
	ErrNotCancellable       = &Error{Code: CodeNotCancellable}
	ErrIdempotencyReused    = &Error{Code: CodeIdempotencyReused}
	ErrPayloadTooLarge      = &Error{Code: CodePayloadTooLarge}
	ErrUnsupportedMedia     = &Error{Code: CodeUnsupportedMedia}
	ErrRequestTimeout       = &Error{Code: CodeRequestTimeout}
	ErrHeaderTooLarge       = &Error{Code: CodeHeaderTooLarge}
	ErrRateLimited          = &Error{Code: CodeRateLimited}
	ErrInternal             = &Error{Code: CodeInternal}
	ErrUnavailable          = &Error{Code: CodeUnavailable}
)

// Error is the API's error: what the envelope
// {"error":{"code","message","request_id","details"}} carries, plus the HTTP
// status. Servers write it; Client returns it.
type Error struct {
	// Status is the HTTP status code.
	Status int `json:"-"`
	// Code is the stable machine-readable code, e.g. NOT_FOUND.
	Code string `json:"code"`
	// Message is a human-readable explanation without internals.
	Message string `json:"message"`
	// RequestID correlates the response with server logs.
	RequestID string `json:"request_id"`
	// Details carries structured facts, e.g. {"neo4j_code": "..."}.
	Details map[string]any `json:"details,omitempty"`
	// RetryAfter is the server's Retry-After hint, if any.
	RetryAfter time.Duration `json:"-"`
}

// Error implements error: "NOT_FOUND (404): operation not found [request_id=...]".
func (e *Error) Error() string {
	s := e.Code
	if e.Status != 0 {
		s += " (" + strconv.Itoa(e.Status) + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " [request_id=" + e.RequestID + "]"
	}
	return s
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Temporary reports whether retrying the same request later may succeed
// (429, 502, 503, 504).
func (e *Error) Temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

type envelope struct {
	Error *Error `json:"error"`
}

// statusOf returns the HTTP status that goes with a code.
func statusOf(code string) int {
	switch code {
	case CodeValidation, CodeQuery:
		return http.StatusBadRequest
	case CodeAuthenticationFailed:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeNotCancellable, CodeIdempotencyReused:
		return http.StatusConflict
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case CodeRequestTimeout:
		return http.StatusRequestTimeout
	case CodeHeaderTooLarge:
		return http.StatusRequestHeaderFieldsTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// newError returns an *Error with the status of code.
func newError(code, message string, details map[string]any) *Error {
	return &Error{Status: statusOf(code), Code: code, Message: message, Details: details}
}

// WriteError writes the error envelope with the status of code. The request
// ID comes from the response's X-Request-ID header (set by the request-ID
// middleware).
func WriteError(w http.ResponseWriter, code, message string, details map[string]any) {
	writeAPIError(w, &Error{Code: code, Message: message, Details: details})
}

func writeAPIError(w http.ResponseWriter, e *Error) {
	if e.Status == 0 {
		e.Status = statusOf(e.Code)
	}
	e.RequestID = w.Header().Get(HeaderRequestID)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, envelope{Error: e})
}

// writeJSON writes v as a JSON response with Content-Type application/json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, "application/json", v)
}

func writeJSONAs(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = fmt.Appendf(nil, `{"error":{"code":%q,"message":"response could not be encoded","request_id":%q}}`, CodeInternal, w.Header().Get(HeaderRequestID))
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
