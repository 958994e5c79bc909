package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
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
	after, ok := parseLastEventID(r.Header.Get("Last-Event-ID"))
	if !ok {
		WriteError(w, CodeValidation, "Last-Event-ID must be a decimal integer from 0 to 9223372036854775807", map[string]any{"field": "Last-Event-ID"})
		return
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
			// resumes with Last-Event-ID), operations.ErrClosed (this
			// replica shuts down: the client resumes on another) or the
			// client went away.
			return
		}
	}
}

// parseLastEventID parses a Last-Event-ID header (as openapi.json's pattern
// describes it): empty means 0, else decimal digits only (leading zeros
// allowed, no sign) of a value up to math.MaxInt64.
func parseLastEventID(s string) (int64, bool) {
	if s == "" {
		return 0, true
	}
	if strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
