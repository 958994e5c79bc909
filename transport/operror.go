package transport

import (
	"errors"
	"time"

	"github.com/atgraph/atg/operations"
)

// OperationError maps an error of the operations engine to the API error
// (with its HTTP status) a client sees, so that embedded and remote clients fail alike: an unknown
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
		return newError(CodeValidation, ute.Error(), map[string]any{"field": "type", "supported": ute.Supported})
	case errors.As(err, &ve):
		details := map[string]any{}
		if ve.Field != "" {
			details["field"] = "params." + ve.Field
		}
		return newError(CodeValidation, "invalid params: "+ve.Error(), details)
	case errors.Is(err, operations.ErrTooManyActive):
		e := newError(CodeRateLimited, err.Error(), nil)
		e.RetryAfter = 5 * time.Second
		return e
	case errors.Is(err, operations.ErrIdempotencyConflict):
		return newError(CodeIdempotencyReused, err.Error(), map[string]any{"field": HeaderIdempotencyKey})
	case errors.As(err, &nce):
		return newError(CodeNotCancellable, nce.Error(), map[string]any{"status": string(nce.Status)})
	case errors.Is(err, operations.ErrNotFound):
		return newError(CodeNotFound, "operation not found", nil)
	case errors.Is(err, operations.ErrClosed):
		return newError(CodeUnavailable, "server is shutting down", nil)
	}
	return nil
}
