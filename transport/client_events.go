package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
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
// twice, and ends (io.EOF) after the terminal event. Not safe for
// concurrent use; call Close when done.
type EventStream struct {
	c    *Client
	id   string
	last int64
	done bool

	// empty counts consecutive connections that ended without delivering
	// an event (delivered: whether the current one has); they are retried
	// with the client's backoff (pause, fresh after each delivering
	// connection), and not forever.
	empty     int
	delivered bool
	pause     retry.Backoff

	resp  *http.Response
	rd    *SSEReader
	timer *time.Timer
	mu    sync.Mutex
}

// Events opens the event stream of operation id, starting after sequence
// number after (0: from the beginning).
func (c *Client) Events(ctx context.Context, id string, after int64) (*EventStream, error) {
	s := &EventStream{c: c, id: id, last: after}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// LastSeq returns the sequence number of the last event delivered.
func (s *EventStream) LastSeq() int64 { return s.last }

// connect (re)opens the stream after s.last, retrying connection failures
// and temporary server errors.
func (s *EventStream) connect(ctx context.Context) error {
	s.closeConn()
	return s.c.withRetries(ctx, func(ctx context.Context) error {
		hdr := http.Header{"Accept": {"text/event-stream"}}
		if s.last > 0 {
			hdr.Set("Last-Event-ID", strconv.FormatInt(s.last, 10))
		}
		resp, err := s.c.send(ctx, request{method: "GET", path: "/api/v1/operations/" + url.PathEscape(s.id) + "/events", header: hdr}, nil)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return readError(resp)
		}
		s.mu.Lock()
		s.resp = resp
		s.timer = time.AfterFunc(StreamIdleTimeout, func() { resp.Body.Close() })
		s.rd = NewSSEReader(&idleReader{r: resp.Body, t: s.timer})
		s.mu.Unlock()
		return nil
	})
}

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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.resp != nil {
		s.resp.Body.Close()
		s.resp = nil
	}
}

// Next returns the next event. After the terminal event (complete or error)
// it returns io.EOF. A dropped connection is resumed transparently; an
// error is returned when ctx ends or the server refuses the stream.
func (s *EventStream) Next(ctx context.Context) (Event, error) {
	if s.done {
		return Event{}, io.EOF
	}
	stop := context.AfterFunc(ctx, s.closeConn)
	defer stop()
	for {
		if s.rd == nil {
			if err := s.pauseBeforeReconnect(ctx); err != nil {
				return Event{}, err
			}
			if err := s.connect(ctx); err != nil {
				return Event{}, err
			}
			s.delivered = false
		}
		ev, err := s.rd.Next()
		if err != nil {
			if ctx.Err() != nil {
				return Event{}, context.Cause(ctx)
			}
			// The stream ended without a terminal event or broke: resume.
			if s.delivered {
				s.empty, s.pause = 0, nil
			} else {
				s.empty++
			}
			s.rd = nil
			s.closeConn()
			continue
		}
		seq, perr := strconv.ParseInt(ev.ID, 10, 64)
		if perr != nil || seq <= s.last {
			continue // not an operation event, or a duplicate
		}
		s.last, s.delivered = seq, true
		out := Event{Seq: seq, Type: operations.EventType(ev.Event), Data: json.RawMessage(ev.Data)}
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

// Close releases the connection. It is safe to call more than once.
func (s *EventStream) Close() error {
	s.done = true
	s.closeConn()
	return nil
}
