package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/atgraph/atg/operations"
)

// StreamIdleTimeout is how long an event stream may stay silent (the server
// sends a heartbeat every 15 s) before the client drops the connection and
// resumes on a new one.
const StreamIdleTimeout = 45 * time.Second

// Event is one operation event received from the server.
type Event struct {
	// Seq is the event's sequence number within its operation (from 1).
	Seq int64
	// Type is status, progress, log, complete or error.
	Type operations.EventType
	// Data is the event's JSON payload.
	Data json.RawMessage
}

// EventStream follows one operation's events. It reconnects after a
// dropped connection with Last-Event-ID, so no event is lost or delivered
// twice, and ends (io.EOF) after the terminal event. The stream owns its
// connection: the context given to Events bounds only opening it, and the
// context of a Next call bounds only that call (a per-call timeout leaves
// the connection open for the next call). Next is not safe for concurrent
// use; Close may be called from any goroutine. Call Close when done.
type EventStream struct {
	c    *Client
	id   string
	last int64
	done bool

	// ctx is the stream's own: its requests live until Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	// empty counts consecutive connections that ended without delivering
	// an event (delivered: whether the current one has); they are retried
	// with the client's backoff (pause, fresh after each delivering
	// connection), and not forever.
	empty     int
	delivered bool
	pause     retry.Backoff

	conn *streamConn // the current connection; nil between connections
}

// streamConn is one event-stream connection, read by its own goroutine so
// that a caller may stop waiting without closing it.
type streamConn struct {
	ctx    context.Context // the request's; cancelled by close
	cancel context.CancelFunc
	events chan sseResult
}

// sseResult is one SSEReader.Next outcome.
type sseResult struct {
	ev  SSEEvent
	err error
}

// Events opens the event stream of operation id, starting after sequence
// number after (0: from the beginning). ctx bounds opening the stream
// (retries included), not the stream's life.
func (c *Client) Events(ctx context.Context, id string, after int64) (*EventStream, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &EventStream{c: c, id: id, last: after, ctx: sctx, cancel: cancel}
	if err := s.connect(ctx); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// LastSeq returns the sequence number of the last event delivered.
func (s *EventStream) LastSeq() int64 { return s.last }

// connect (re)opens the stream after s.last, retrying connection failures
// and temporary server errors. ctx bounds the wait for the response; the
// connection itself lives in the stream's context.
func (s *EventStream) connect(ctx context.Context) error {
	s.closeConn()
	return s.c.withRetries(ctx, func(ctx context.Context) error {
		hdr := http.Header{"Accept": {"text/event-stream"}}
		if s.last > 0 {
			hdr.Set("Last-Event-ID", strconv.FormatInt(s.last, 10))
		}
		rctx, cancel := context.WithCancel(s.ctx)
		stop := context.AfterFunc(ctx, cancel) // until the response arrives
		resp, err := s.c.send(rctx, request{method: "GET", path: "/api/v1/operations/" + url.PathEscape(s.id) + "/events", header: hdr}, nil)
		if !stop() {
			// The caller's ctx ended while connecting: this connection is
			// cut; report the caller's reason.
			if err == nil {
				resp.Body.Close()
			}
			cancel()
			if s.ctx.Err() != nil {
				return io.EOF // closed meanwhile
			}
			return context.Cause(ctx)
		}
		if err != nil {
			cancel()
			return err
		}
		if resp.StatusCode != http.StatusOK {
			defer cancel()
			defer resp.Body.Close()
			return readError(resp)
		}
		conn := &streamConn{ctx: rctx, cancel: cancel, events: make(chan sseResult)}
		go conn.read(resp.Body)
		s.conn = conn
		return nil
	})
}

// read decodes the connection's events and hands them to Next until the
// connection fails or is closed. A connection silent for
// StreamIdleTimeout (no heartbeat) is dropped.
func (c *streamConn) read(body io.ReadCloser) {
	timer := time.AfterFunc(StreamIdleTimeout, func() { body.Close() })
	defer timer.Stop()
	defer body.Close()
	rd := NewSSEReader(&idleReader{r: body, t: timer})
	for {
		ev, err := rd.Next()
		select {
		case c.events <- sseResult{ev: ev, err: err}:
		case <-c.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// close ends the connection (its goroutine then exits).
func (c *streamConn) close() { c.cancel() }

// idleReader resets the idle timer on every read that returns data.
type idleReader struct {
	r io.Reader
	t *time.Timer
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.t.Reset(StreamIdleTimeout)
	}
	return n, err
}

func (s *EventStream) closeConn() {
	if s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
}

// Next returns the next event. After the terminal event (complete or error)
// it returns io.EOF, as after Close. A dropped connection is resumed
// transparently. When ctx ends Next returns its cause and the stream stays
// open: a later call continues where this one stopped. An error is also
// returned when the server refuses the stream.
func (s *EventStream) Next(ctx context.Context) (Event, error) {
	for {
		if s.done || s.ctx.Err() != nil {
			s.closeConn()
			return Event{}, io.EOF
		}
		if s.conn == nil {
			if err := s.pauseBeforeReconnect(ctx); err != nil {
				return Event{}, err
			}
			if err := s.connect(ctx); err != nil {
				if s.ctx.Err() != nil {
					return Event{}, io.EOF // closed meanwhile
				}
				return Event{}, err
			}
			s.delivered = false
		}
		var r sseResult
		select {
		case r = <-s.conn.events:
		case <-ctx.Done():
			return Event{}, context.Cause(ctx) // the connection stays open
		case <-s.ctx.Done():
			continue // closed
		}
		if r.err != nil {
			// The stream ended without a terminal event or broke: resume.
			if s.delivered {
				s.empty, s.pause = 0, nil
			} else {
				s.empty++
			}
			s.closeConn()
			continue
		}
		seq, perr := strconv.ParseInt(r.ev.ID, 10, 64)
		if perr != nil || seq <= s.last {
			continue // not an operation event, or a duplicate
		}
		s.last, s.delivered = seq, true
		out := Event{Seq: seq, Type: operations.EventType(r.ev.Event), Data: json.RawMessage(r.ev.Data)}
		if out.Type.Terminal() {
			s.done = true
			s.closeConn()
		}
		return out, nil
	}
}

// maxEmptyReconnects bounds consecutive reconnections that deliver nothing.
const maxEmptyReconnects = 10

// pauseBeforeReconnect waits the client's backoff when connections keep
// ending without delivering events, and gives up after maxEmptyReconnects
// reconnections in a row that delivered nothing.
func (s *EventStream) pauseBeforeReconnect(ctx context.Context) error {
	if s.empty == 0 {
		return nil
	}
	if s.pause == nil {
		s.pause = retry.WithMaxRetries(maxEmptyReconnects, s.c.backoff())
	}
	d, stop := s.pause.Next()
	if stop {
		return fmt.Errorf("transport: the event stream of operation %s closed %d times without delivering an event", s.id, s.empty)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Close releases the connection; Next then returns io.EOF. It is safe to
// call more than once, and from another goroutine than Next's.
func (s *EventStream) Close() error {
	s.cancel()
	return nil
}
