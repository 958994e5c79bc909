package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atgraph/atg/operations"
)

// countStreams counts the event-stream requests h serves.
func countStreams(n *atomic.Int32) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/events") {
				n.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}
}

// TestEventStreamSurvivesPerCallTimeouts: the context given to Events ends
// as soon as it returns, and 20 Next calls in a row time out while the
// operation is quiet (the server sending heartbeats). The stream still
// delivers the terminal event afterwards, on its first connection.
func TestEventStreamSurvivesPerCallTimeouts(t *testing.T) {
	t.Parallel()
	var streams atomic.Int32
	f := newFixture(t, fixtureOpts{heartbeat: 10 * time.Millisecond, wrap: countStreams(&streams)})
	c := f.client(t, "writer")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := c.Submit(ctx, "block", map[string]any{}, "")
	must(t, err)
	// Wait for the block operation's progress event (seq 3), so that
	// every later Next waits for live events.
	for {
		op, err := c.Get(ctx, sub.OperationID)
		must(t, err)
		if op.LastEventID >= 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	openCtx, openCancel := context.WithCancel(ctx)
	s, err := c.Events(openCtx, sub.OperationID, 3)
	openCancel()
	must(t, err)
	defer s.Close()
	for i := range 20 {
		callCtx, callCancel := context.WithTimeout(ctx, 30*time.Millisecond)
		ev, err := s.Next(callCtx)
		callCancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("quiet call %d: %+v %v, want the call's deadline", i, ev, err)
		}
	}
	close(f.release)
	ev, err := s.Next(ctx)
	if err != nil || ev.Seq != 4 || ev.Type != operations.EventComplete {
		t.Fatalf("after the quiet calls: %+v %v, want the complete event", ev, err)
	}
	if _, err := s.Next(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("after the terminal event: %v", err)
	}
	if n := streams.Load(); n != 1 {
		t.Errorf("%d event-stream connections, want 1", n)
	}
}

// TestEventStreamCloseEndsABlockedNext: Close from another goroutine ends
// a Next that waits for events with io.EOF.
func TestEventStreamCloseEndsABlockedNext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{heartbeat: 10 * time.Millisecond})
	c := f.client(t, "writer")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := c.Submit(ctx, "block", map[string]any{}, "")
	must(t, err)
	s, err := c.Events(ctx, sub.OperationID, 1000)
	must(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Next(ctx)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	must(t, s.Close())
	if err := <-errc; !errors.Is(err, io.EOF) {
		t.Errorf("Next after Close: %v, want io.EOF", err)
	}
	close(f.release)
}

// TestEventStreamAsksForEventStream: the stream request says
// Accept: text/event-stream; other requests still ask for JSON.
func TestEventStreamAsksForEventStream(t *testing.T) {
	t.Parallel()
	accepts := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepts <- r.URL.Path + " " + r.Header.Get("Accept")
		if strings.HasSuffix(r.URL.Path, "/events") {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "id: 1\nevent: complete\ndata: {}\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"operation_id":"op_x","status":"completed"}`)
	}))
	defer srv.Close()
	c, err := NewClient(ClientOptions{BaseURL: srv.URL, APIKey: "k"})
	must(t, err)
	defer c.Close()
	ctx := context.Background()
	s, err := c.Events(ctx, "op_x", 0)
	must(t, err)
	defer s.Close()
	if ev, err := s.Next(ctx); err != nil || ev.Type != operations.EventComplete {
		t.Fatalf("Next: %+v %v", ev, err)
	}
	_, _ = c.Get(ctx, "op_x")
	for _, want := range []string{"/api/v1/operations/op_x/events text/event-stream", "/api/v1/operations/op_x application/json"} {
		if got := <-accepts; got != want {
			t.Errorf("request %q, want %q", got, want)
		}
	}
}
