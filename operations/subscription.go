package operations

import (
	"context"
	"errors"
	"io"
	"math"
)

// ErrLagged is returned by Subscription.Next when the watcher fell too far
// behind and was cut off so it could not slow the operation or other
// watchers. Subscribe again after the last event seen to resume.
var ErrLagged = errors.New("operations: watcher fell behind and was cut off; resume from the last event seen")

// Subscription delivers one operation's events in order: first the retained
// history after the requested sequence number, then live events, ending
// with the terminal event. Call Close when done.
type Subscription struct {
	e       *Engine
	id      string
	after   int64 // live events up to this Seq are skipped
	backlog []Event
	ch      chan Event
	lagged  bool // set under e.mu before ch is closed
	done    bool
}

// Subscribe returns a subscription to id's events with Seq > after, from
// history and live alike (so an after beyond the latest event skips the
// events up to it; the stream still ends with the operation). It fails
// with ErrNotFound for an unknown operation.
func (e *Engine) Subscribe(ctx context.Context, id string, after int64) (*Subscription, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	backlog, err := e.store.EventsAfter(ctx, id, after) // ErrNotFound for an unknown id
	if err != nil {
		return nil, err
	}
	sub := &Subscription{e: e, id: id, after: after, backlog: backlog, ch: make(chan Event, e.cfg.SubscriberBuffer)}
	if _, live := e.live[id]; live {
		if e.subs[id] == nil {
			e.subs[id] = map[*Subscription]struct{}{}
		}
		e.subs[id][sub] = struct{}{}
	} else {
		close(sub.ch) // finished: the history is all there is
	}
	return sub, nil
}

// Next returns the next event. After the terminal event it returns io.EOF;
// it returns ErrLagged if the watcher was cut off, or ctx's error.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	if s.done {
		return Event{}, io.EOF
	}
	if len(s.backlog) > 0 {
		ev := s.backlog[0]
		s.backlog = s.backlog[1:]
		s.done = ev.Type.Terminal()
		return ev, nil
	}
	select {
	case ev, ok := <-s.ch:
		if !ok {
			s.e.mu.Lock()
			lagged := s.lagged
			s.e.mu.Unlock()
			if lagged {
				return Event{}, ErrLagged
			}
			s.done = true
			return Event{}, io.EOF
		}
		s.done = ev.Type.Terminal()
		return ev, nil
	case <-ctx.Done():
		return Event{}, context.Cause(ctx)
	}
}

// Close stops delivery. It is safe to call more than once.
func (s *Subscription) Close() {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	if subs, ok := s.e.subs[s.id]; ok {
		if _, mine := subs[s]; mine {
			delete(subs, s)
			close(s.ch)
		}
	}
	s.done = true
}

// Wait blocks until operation id has ended (or ctx is done) and returns it.
func (e *Engine) Wait(ctx context.Context, id string) (Operation, error) {
	for {
		sub, err := e.Subscribe(ctx, id, math.MaxInt64)
		if err != nil {
			return Operation{}, err
		}
		for {
			_, err = sub.Next(ctx)
			if err != nil {
				break
			}
		}
		sub.Close()
		switch {
		case errors.Is(err, io.EOF):
			return e.Get(ctx, id)
		case errors.Is(err, ErrLagged):
			continue
		default:
			return Operation{}, err
		}
	}
}
