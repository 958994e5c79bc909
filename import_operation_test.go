package atg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// TestImportErrorCancelledOnlyByTheCaller: an import is CANCELLED only
// when its own context ended; a context error from inside the driver, or
// the retry-time bound, is reported with its real cause.
func TestImportErrorCancelledOnlyByTheCaller(t *testing.T) {
	t.Parallel()
	deadlock := &neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.DeadlockDetected", Msg: "deadlock"}
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	chunk := func(err error) error {
		return &neo4jpool.ImportError{Phase: neo4jpool.PhaseNodes, Err: &neo4jpool.ChunkError{Err: err}}
	}
	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		code     string
		neo4j    string
		retryEnd bool
	}{
		{"retry time over a deadlock", live, chunk(&neo4jpool.RetryTimeError{Limit: time.Second, Attempts: 1, Err: deadlock}),
			"IMPORT_FAILED", deadlock.Code, true},
		{"bare context error from the driver", live, chunk(context.Canceled), "IMPORT_FAILED", "", false},
		{"caller cancelled", cancelled, chunk(fmt.Errorf("wrapped: %w", context.Canceled)), operations.CodeCancelled, "", false},
		{"caller cancelled during a deadlock", cancelled, chunk(deadlock), operations.CodeCancelled, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var oe *operations.Error
			if !errors.As(importError(tt.ctx, tt.err), &oe) {
				t.Fatal("not an *operations.Error")
			}
			if oe.Code != tt.code {
				t.Errorf("code %s, want %s (%s)", oe.Code, tt.code, oe.Message)
			}
			if got, _ := oe.Details["neo4j_code"].(string); got != tt.neo4j {
				t.Errorf("neo4j_code %q, want %q", got, tt.neo4j)
			}
			if got, _ := oe.Details["retry_time_exceeded"].(bool); got != tt.retryEnd {
				t.Errorf("retry_time_exceeded %v, want %v", got, tt.retryEnd)
			}
		})
	}
}

// TestImportErrorDetailsOffset: the error details carry the resume offset
// within the failed phase and whether the last chunk's outcome is unknown.
func TestImportErrorDetailsOffset(t *testing.T) {
	t.Parallel()
	conn := &neo4j.ConnectivityError{Inner: errors.New("connection lost during commit")}
	tests := []struct {
		name    string
		err     error
		offset  int
		unknown bool
	}{
		{"known", &neo4jpool.ImportError{Phase: neo4jpool.PhaseRelationships, Offset: 20,
			Result: neo4jpool.ImportResult{Nodes: 5, Relationships: 13}, Err: &neo4jpool.ChunkError{Committed: 20, Chunk: 2, Err: conn}}, 20, false},
		{"outcome unknown", &neo4jpool.ImportError{Phase: neo4jpool.PhaseNodes, Offset: 30,
			Err: &neo4jpool.ChunkError{Committed: 30, Chunk: 3, OutcomeUnknown: true, Err: &neo4jpool.CommitUnknownError{Err: conn}}}, 30, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var oe *operations.Error
			if !errors.As(importError(context.Background(), tt.err), &oe) {
				t.Fatal("not an *operations.Error")
			}
			if oe.Details["offset"] != tt.offset || oe.Details["outcome_unknown"] != tt.unknown {
				t.Errorf("details %v", oe.Details)
			}
			if tt.unknown && !strings.Contains(oe.Message, "may or may not have been committed") {
				t.Errorf("message %q", oe.Message)
			}
		})
	}
}
