package transport

import (
	"testing"
	"time"
)

// TestEventStreamLastEventIDAheadOfTheOperation: a watcher whose
// Last-Event-ID is ahead of a live operation gets no event numbered at or
// below it, and its stream ends with the operation.
func TestEventStreamLastEventIDAheadOfTheOperation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{heartbeat: 50 * time.Millisecond})
	sub := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"block"}`))
	done := make(chan []SSEEvent)
	go func() { done <- readEvents(t, f, sub.Links.Self+"/events", "writer", "100") }()
	time.Sleep(200 * time.Millisecond) // the watcher follows live
	close(f.release)
	if evs := <-done; len(evs) != 0 {
		t.Errorf("after Last-Event-ID 100 of an operation with 4 events, got %d events, the first %s %s", len(evs), evs[0].ID, evs[0].Event)
	}
}
