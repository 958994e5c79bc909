// Package audit writes the security audit trail of an ATG server: one JSON
// line per authentication failure, operation submit, cancel and finish,
// write query, administration or refused query statement, and API key
// create, revoke and rotate.
//
// Each line has the time (RFC 3339, UTC), the event, the request ID, the
// client and key IDs (never a key), the remote address and the outcome:
//
//	{"time":"2026-11-26T10:00:00.123Z","event":"operation_submit","request_id":"…","client_id":"alice","key_id":"key_…","remote_addr":"10.0.0.7","outcome":"accepted","details":{"operation_id":"op_…","type":"import"}}
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event names.
const (
	EventAuthFailure     = "auth_failure"
	EventOperationSubmit = "operation_submit"
	EventOperationCancel = "operation_cancel"
	EventOperationFinish = "operation_finish"
	EventQueryWrite      = "query_write"
	EventQueryAdmin      = "query_admin"   // an administration statement run by an admin key
	EventQueryRefused    = "query_refused" // a statement refused for lack of the admin scope
	EventKeyCreate       = "key_create"
	EventKeyRevoke       = "key_revoke"
	EventKeyRotate       = "key_rotate"
)

// Record is one audit line.
type Record struct {
	// Time is when it happened; zero means now. Written in UTC.
	Time time.Time `json:"time"`
	// Event is one of the Event* names.
	Event string `json:"event"`
	// RequestID is the HTTP request's ID, when there is one.
	RequestID string `json:"request_id,omitempty"`
	// ClientID is the caller's client, when known.
	ClientID string `json:"client_id,omitempty"`
	// KeyID identifies the caller's key record (never the key).
	KeyID string `json:"key_id,omitempty"`
	// RemoteAddr is the caller's address, when there is a caller.
	RemoteAddr string `json:"remote_addr,omitempty"`
	// Outcome says how it ended, e.g. "accepted", "denied", "completed".
	Outcome string `json:"outcome"`
	// Details carries event-specific facts.
	Details map[string]any `json:"details,omitempty"`
}

// Logger writes Records as JSON lines. A nil *Logger discards everything,
// so callers need no checks. It is safe for concurrent use.
type Logger struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	now    func() time.Time
}

// New returns a Logger writing to w.
func New(w io.Writer) *Logger { return &Logger{w: w, now: time.Now} }

// Open returns a Logger for ATG_AUDIT_LOG: "" or "stderr" means stderr,
// "stdout" stdout, "off" nothing at all (a nil Logger), anything else a file
// opened for appending (created with mode 0600).
func Open(path string, stdout, stderr io.Writer) (*Logger, error) {
	switch path {
	case "off":
		return nil, nil
	case "", "stderr":
		return New(stderr), nil
	case "stdout":
		return New(stdout), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err) // the *PathError names the file
	}
	l := New(f)
	l.closer = f
	return l, nil
}

// Log writes r as one line. Write errors are reported on standard error
// (an audit trail must not fail silently) and otherwise ignored.
func (l *Logger) Log(r Record) {
	if l == nil {
		return
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(Record{Time: r.Time, Event: r.Event, Outcome: r.Outcome, Details: map[string]any{"encode_error": err.Error()}})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		fmt.Fprintf(os.Stderr, "audit: write failed: %v\n", err)
	}
}

// Close closes the file Open opened (not standard error or output).
func (l *Logger) Close() error {
	if l == nil || l.closer == nil {
		return nil
	}
	return l.closer.Close()
}
