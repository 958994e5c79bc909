package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// eventWriteTimeout bounds one write to an event stream: a watcher that
// cannot take an event within it is cut off (it can resume).
const eventWriteTimeout = 30 * time.Second

// events streams an operation's events as text/event-stream: the history
// after Last-Event-ID, then live events with a heartbeat comment every
// HeartbeatInterval, ending after the terminal event.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	op, ok := a.visibleOperation(w, r)
	if !ok {
		return
	}
	var after int64
	if s := r.Header.Get("Last-Event-ID"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			WriteError(w, CodeValidation, "Last-Event-ID must be a non-negative integer", map[string]any{"field": "Last-Event-ID"})
			return
		}
		after = n
	}
	sub, err := a.opts.Engine.Subscribe(r.Context(), op.ID, after)
	if err != nil {
		a.writeErr(w, r, "subscribe to events", err)
		return
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(f func() error) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if err := f(); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(func() error { _, err := io.WriteString(w, "retry: 2000\n\n"); return err }) {
		return
	}
	for {
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.HeartbeatInterval)
		ev, err := sub.Next(ctx)
		cancel()
		switch {
		case err == nil:
			if !write(func() error {
				return WriteSSE(w, SSEEvent{ID: strconv.FormatInt(ev.Seq, 10), Event: string(ev.Type), Data: ev.Data})
			}) || ev.Type.Terminal() {
				return
			}
		case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
			if !write(func() error { return WriteSSEComment(w, "keepalive") }) {
				return
			}
		default:
			// io.EOF (ended), operations.ErrLagged (cut off: the client
			// resumes with Last-Event-ID) or the client went away.
			return
		}
	}
}
