package operations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Reporter is how running work tells watchers what it is doing. Calls are
// cheap and safe from any goroutine; reports after the operation ended are
// dropped.
type Reporter interface {
	// Progress publishes a progress event and records it as the
	// operation's latest progress.
	Progress(p Progress)
	// Log publishes a log event; level is "debug", "info", "warn" or "error".
	Log(level, message string)
}

// RunFunc does an operation's work. ctx is cancelled when the operation is
// cancelled or the engine shuts down; the work must then return promptly.
// The returned value is encoded as the operation's JSON result.
type RunFunc func(ctx context.Context, params json.RawMessage, r Reporter) (any, error)

// Type describes one kind of operation.
type Type struct {
	// Name is what clients submit as "type": lowercase letters, digits and
	// dashes, starting with a letter.
	Name string
	// Description is a one-line summary shown to clients.
	Description string
	// ParamsSchema is the JSON Schema of params (optional), published in
	// the server's /openapi.json; it may use $ref to the document's
	// components. Without it params are described as any object.
	ParamsSchema json.RawMessage
	// Validate checks params before the operation is queued (optional).
	// Return a *ValidationError (or wrap one) to name the offending field.
	Validate func(params json.RawMessage) error
	// Run does the work (required).
	Run RunFunc
	// Resumable says the work can go on after the server replica running
	// it stopped: with several replicas (Config.Replica), another replica
	// then runs it again, and Run continues from the last checkpoint it
	// saved (SaveCheckpoint, ResumeFrom) so that its result is the same
	// as one uninterrupted run's. A clean shutdown hands resumable work
	// back to the queue. Work of other types fails with code INTERRUPTED
	// when its replica dies, and is cancelled at a shutdown.
	Resumable bool
}

// ValidationError reports parameters rejected at submit time.
type ValidationError struct {
	// Field is the offending parameter path, e.g. "nodes[3].labels[0]".
	Field string
	// Message says what is wrong.
	Message string
}

// Error implements error.
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Errors returned by the registry and the engine.
var (
	// ErrUnknownType is matched by *UnknownTypeError.
	ErrUnknownType = errors.New("unknown operation type")
	// ErrNotFound means no operation has that ID (or the caller may not see it).
	ErrNotFound = errors.New("operation not found")
	// ErrNotCancellable is matched by *NotCancellableError.
	ErrNotCancellable = errors.New("operation not cancellable")
	// ErrIdempotencyConflict means an Idempotency-Key was reused for a
	// different request.
	ErrIdempotencyConflict = errors.New("the Idempotency-Key was already used for a different request")
	// ErrTooManyActive is matched by *TooManyActiveError.
	ErrTooManyActive = errors.New("too many active operations")
)

// TooManyActiveError says a client already has the most queued and running
// operations it may have (Config.MaxActivePerClient).
type TooManyActiveError struct {
	ClientID string
	Limit    int
}

// Error implements error.
func (e *TooManyActiveError) Error() string {
	return fmt.Sprintf("at most %d operations may be queued or running per client; wait for one to finish or cancel one", e.Limit)
}

// Is makes the error match ErrTooManyActive.
func (e *TooManyActiveError) Is(target error) bool { return target == ErrTooManyActive }

// UnknownTypeError names the unknown type and the registered ones.
type UnknownTypeError struct {
	Type      string
	Supported []string
}

// Error implements error: `unknown operation type "x"; supported: import, scan`
// (or "operation type is required; supported: ..." when Type is empty).
func (e *UnknownTypeError) Error() string {
	if e.Type == "" {
		return "operation type is required; supported: " + strings.Join(e.Supported, ", ")
	}
	return fmt.Sprintf("unknown operation type %q; supported: %s", e.Type, strings.Join(e.Supported, ", "))
}

// Is makes the error match ErrUnknownType.
func (e *UnknownTypeError) Is(target error) bool { return target == ErrUnknownType }

// NotCancellableError says an operation has already ended.
type NotCancellableError struct {
	ID     string
	Status Status
}

// Error implements error.
func (e *NotCancellableError) Error() string {
	return fmt.Sprintf("operation %s cannot be cancelled: it is already %s", e.ID, e.Status)
}

// Is makes the error match ErrNotCancellable.
func (e *NotCancellableError) Is(target error) bool { return target == ErrNotCancellable }

var typeName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// Registry holds the operation types an engine can run. The zero value is an
// empty registry ready to use; it is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	types map[string]Type
}

// Register adds t. It fails when the name is invalid or taken, or Run is nil.
func (r *Registry) Register(t Type) error {
	if !typeName.MatchString(t.Name) {
		return fmt.Errorf("operation type name %q must match %s", t.Name, typeName)
	}
	if t.Run == nil {
		return fmt.Errorf("operation type %q has no Run function", t.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.types[t.Name]; dup {
		return fmt.Errorf("operation type %q is already registered", t.Name)
	}
	if r.types == nil {
		r.types = map[string]Type{}
	}
	r.types[t.Name] = t
	return nil
}

// Lookup returns the type called name, or an *UnknownTypeError.
func (r *Registry) Lookup(name string) (Type, error) {
	r.mu.RLock()
	t, ok := r.types[name]
	r.mu.RUnlock()
	if !ok {
		return Type{}, &UnknownTypeError{Type: name, Supported: r.Names()}
	}
	return t, nil
}

// Names lists the registered type names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.types))
}

// Types lists the registered types, sorted by name.
func (r *Registry) Types() []Type {
	names := r.Names()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Type, 0, len(names))
	for _, n := range names {
		out = append(out, r.types[n])
	}
	return out
}
