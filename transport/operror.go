package transport

import (
	"errors"
	"strings"
	"time"

	"github.com/atgraph/atg/operations"
)

// OperationError maps an error of the operations engine to the API error a
// client sees, so that embedded and remote clients fail alike: an unknown
// type or rejected params is VALIDATION_ERROR (details: field, supported),
// an Idempotency-Key reused for another request IDEMPOTENCY_KEY_REUSED (409), an unknown operation NOT_FOUND,
// a finished one OPERATION_NOT_CANCELLABLE, a closed engine
// SERVICE_UNAVAILABLE, too many active operations RATE_LIMITED. It returns
// nil for any other error.
func OperationError(err error) *Error {
	var (
		ute *operations.UnknownTypeError
		ve  *operations.ValidationError
		nce *operations.NotCancellableError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ute):
		return &Error{Code: CodeValidation, Message: ute.Error(), Details: map[string]any{"field": "type", "supported": ute.Supported}}
	case errors.As(err, &ve):
		details := map[string]any{}
		if ve.Field != "" {
			details["field"] = "params." + ve.Field
		}
		return &Error{Code: CodeValidation, Message: "invalid params: " + ve.Error(), Details: details}
	case errors.Is(err, operations.ErrTooManyActive):
		return &Error{Code: CodeRateLimited, Message: err.Error(), RetryAfter: 5 * time.Second}
	case errors.Is(err, operations.ErrIdempotencyConflict):
		return &Error{Code: CodeIdempotencyReused, Message: err.Error(), Details: map[string]any{"field": HeaderIdempotencyKey}}
	case errors.As(err, &nce):
		return &Error{Code: CodeNotCancellable, Message: nce.Error(), Details: map[string]any{"status": string(nce.Status)}}
	case errors.Is(err, operations.ErrNotFound):
		return &Error{Code: CodeNotFound, Message: "operation not found"}
	case errors.Is(err, operations.ErrClosed):
		return &Error{Code: CodeUnavailable, Message: "server is shutting down"}
	}
	return nil
}

// supportedTypesMessage is the message for a submit without a type.
func supportedTypesMessage(names []string) string {
	return "type is required; supported: " + strings.Join(names, ", ")
}
