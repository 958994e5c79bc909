package operations

import (
	"encoding/json"
	"time"
)

// Operation is one submitted unit of work and everything known about it.
type Operation struct {
	// ID identifies the operation ("op_" + 24 hex digits).
	ID string `json:"operation_id"`
	// Type is the registered type name, e.g. "import".
	Type string `json:"type"`
	// Status is the current state.
	Status Status `json:"status"`
	// ClientID owns the operation: only it (and admin keys) may see it.
	ClientID string `json:"client_id"`
	// Progress is the latest progress report, nil before the first.
	Progress *Progress `json:"progress"`
	// Result is the JSON result of a completed operation.
	Result json.RawMessage `json:"result,omitempty"`
	// Error says why a failed or cancelled operation ended.
	Error *Error `json:"error,omitempty"`
	// CreatedAt is when it was submitted.
	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when it began running.
	StartedAt *time.Time `json:"started_at,omitempty"`
	// FinishedAt is when it reached a terminal state.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// LastEventID is the sequence number of its latest event.
	LastEventID int64 `json:"last_event_id"`
	// Replica names the server replica running it (empty when one server
	// runs everything, or before a replica claims it).
	Replica string `json:"replica,omitempty"`
	// Attempt counts the runs: 1 for the first, one more each time a
	// replica takes it over after another died; 0 before the first run.
	Attempt int `json:"attempt,omitempty"`

	// Checkpoint is what a resumable operation saved of its progress, for
	// a replica that takes it over. Never encoded.
	Checkpoint json.RawMessage `json:"-"`

	// Params are the submitted parameters. They are kept until the
	// operation ends and never encoded.
	Params json.RawMessage `json:"-"`
	// IdempotencyKey is the client's Idempotency-Key, if any.
	IdempotencyKey string `json:"-"`
	// RequestDigest identifies type+params for idempotent replays.
	RequestDigest string `json:"-"`
}

// VisibleTo reports whether a caller with clientID (admin: any) may see op.
func (op Operation) VisibleTo(clientID string, admin bool) bool {
	return admin || op.ClientID == clientID
}

// Progress is a progress report of a running operation.
type Progress struct {
	// Percent is 0..100. When zero and Total > 0 it is computed from Done.
	Percent float64 `json:"percent"`
	// Phase names the current step, e.g. "nodes" or "relationships".
	Phase string `json:"phase,omitempty"`
	// Message is a human-readable line.
	Message string `json:"message,omitempty"`
	// Done counts the work units finished so far.
	Done int64 `json:"done"`
	// Total counts all work units, 0 when unknown.
	Total int64 `json:"total"`
}

// normalize fills Percent from Done/Total when unset and clamps it to 0..100.
func (p Progress) normalize() Progress {
	if p.Percent == 0 && p.Total > 0 {
		p.Percent = float64(p.Done) * 100 / float64(p.Total)
	}
	if p.Percent < 0 || p.Percent != p.Percent { // negative or NaN
		p.Percent = 0
	}
	if p.Percent > 100 {
		p.Percent = 100
	}
	return p
}

// Error is the public description of why an operation failed or was
// cancelled. Work functions return one (possibly wrapped) to choose what the
// caller sees; any other error becomes INTERNAL_ERROR "operation failed",
// with the details logged on the server only.
type Error struct {
	// Code is a stable machine-readable code, e.g. SERVICE_UNAVAILABLE.
	Code string `json:"code"`
	// Message is safe to show to the operation's owner.
	Message string `json:"message"`
	// Details carries structured facts, e.g. {"committed": 4000}.
	Details map[string]any `json:"details,omitempty"`
	// Err is the underlying cause; never encoded.
	Err error `json:"-"`
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Error codes used by the engine itself.
const (
	CodeCancelled     = "CANCELLED"
	CodeInternal      = "INTERNAL_ERROR"
	CodeInterrupted   = "INTERRUPTED"
	CodeValidation    = "VALIDATION_ERROR"
	CodeUnavailable   = "SERVICE_UNAVAILABLE"
	ReasonShutdown    = "server shutdown"
	ReasonClientAsked = "cancelled by client"
)

// EventType is the kind of an operation event.
type EventType string

// The event types. Every stream ends with exactly one complete or error
// event.
const (
	EventStatus   EventType = "status"
	EventProgress EventType = "progress"
	EventLog      EventType = "log"
	EventComplete EventType = "complete"
	EventError    EventType = "error"
)

// Terminal reports whether t ends an operation's stream.
func (t EventType) Terminal() bool { return t == EventComplete || t == EventError }

// Event is one entry in an operation's history. Seq numbers start at 1 and
// increase by one per event of that operation.
type Event struct {
	Seq  int64           `json:"seq"`
	Type EventType       `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// StatusData is the data of a status event.
type StatusData struct {
	OperationID string    `json:"operation_id"`
	Status      Status    `json:"status"`
	Time        time.Time `json:"timestamp"`
}

// ProgressData is the data of a progress event.
type ProgressData struct {
	OperationID string `json:"operation_id"`
	Progress
	Time time.Time `json:"timestamp"`
}

// LogData is the data of a log event.
type LogData struct {
	OperationID string    `json:"operation_id"`
	Level       string    `json:"level"`
	Message     string    `json:"message"`
	Time        time.Time `json:"timestamp"`
}

// TerminalData is the data of a complete or error event.
type TerminalData struct {
	OperationID string          `json:"operation_id"`
	Status      Status          `json:"status"`
	Result      json.RawMessage `json:"result,omitempty"`
	Error       *Error          `json:"error,omitempty"`
	Time        time.Time       `json:"timestamp"`
}
