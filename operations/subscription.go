package operations

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ErrLagged is returned by Subscription.Next when the watcher fell too far
// behind (more than Config.SubscriberBuffer events) and lost its place, so
// that it could not slow the operation or other watchers. Subscribe again
// after the last event seen to resume from the history.
var ErrLagged = errors.New("operations: watcher fell behind and was cut off; resume from the last event seen")

// feed carries one live operation's latest events to its watchers without
// a lock between them and the publisher. The publisher appends to an
// append-only slice and publishes an immutable view of it atomically;
// watchers read views and never block the publisher, nor the publisher
// them. A notifier goroutine wakes them. So publishing costs the same with
// no watcher or with thousands, and never waits for one: a watcher that
// falls more than the window behind loses its place (ErrLagged) and
// resumes from the stored history.
type feed struct {
	max  int // the window: at least this many latest events are kept
	view atomic.Pointer[feedView]
	wake atomic.Pointer[chan struct{}] // closed (and replaced) to wake watchers
	kick chan struct{}                 // buffered 1: "something new", for the notifier
	end  chan struct{}                 // closed with the terminal event: wake at once
}

// feedView is one immutable state of a feed: events holds consecutive
// events, the first numbered first. Elements of events are never written
// again once the view is published.
type feedView struct {
	events []Event
	first  int64
	done   bool // the terminal event is in, or the operation moved
	moved  bool // the operation left this engine without ending here
}

// newFeed returns a feed that keeps at least the last size events.
func newFeed(size int) *feed {
	f := &feed{max: size, kick: make(chan struct{}, 1), end: make(chan struct{})}
	wake := make(chan struct{})
	f.wake.Store(&wake)
	f.view.Store(&feedView{first: 1})
	return f
}

// add appends ev (the next event of the operation) without waiting for
// anyone. Calls must not be concurrent (the engine makes them under its
// lock).
func (f *feed) add(ev Event) {
	v := f.view.Load()
	events, first := v.events, v.first
	if len(events) >= 2*f.max {
		// Keep the last max events in a new array; readers of older views
		// keep theirs.
		keep := events[len(events)-f.max:]
		events = append(make([]Event, 0, 2*f.max), keep...)
		first = keep[0].Seq
	}
	if len(events) == 0 {
		first = ev.Seq
	}
	end := ev.Type.Terminal() && !v.done
	// Appending writes past every published view's length, so no reader
	// sees the element change.
	f.view.Store(&feedView{events: append(events, ev), first: first, done: v.done || end})
	if end {
		close(f.end)
	}
	select {
	case f.kick <- struct{}{}:
	default: // a wake-up is already pending; it will see ev
	}
}

// move ends the feed without a terminal event: the operation goes on
// elsewhere (another replica owns it, or it went back to the queue), and
// watchers continue from the store. Calls must not be concurrent with add.
func (f *feed) move() {
	v := f.view.Load()
	if v.done {
		return
	}
	f.view.Store(&feedView{events: v.events, first: v.first, done: true, moved: true})
	close(f.end)
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// wakeInterval is the shortest time between two wake-ups of an
// operation's watchers: an event published after a quiet spell (and the
// terminal event, always) is delivered at once, and a burst in at most one
// wake-up per interval, so watchers cost the same CPU however fast the
// operation publishes.
const wakeInterval = 50 * time.Millisecond

// notify wakes the watchers after adds, at most once per wakeInterval,
// until the terminal event is in.
func (f *feed) notify() {
	var last time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for range f.kick {
		if wait := wakeInterval - time.Since(last); wait > 0 {
			timer.Reset(wait)
			select { // adds meanwhile coalesce into this wake-up
			case <-timer.C:
			case <-f.end:
			}
		}
		last = time.Now()
		done := f.view.Load().done // read before the wake: nothing follows the terminal event
		next := make(chan struct{})
		close(*f.wake.Swap(&next))
		if done {
			return
		}
	}
}

// feedState says what read found.
type feedState int

const (
	feedEvents feedState = iota // events after the cursor are returned
	feedWait                    // nothing new yet: wait on the channel
	feedEnded                   // the terminal event is at or before the cursor
	feedLagged                  // events after the cursor were dropped
	feedMoved                   // the operation moved: read the store
)

// read returns the events after cursor (shared: read only), or says why
// there are none.
func (f *feed) read(cursor int64) ([]Event, <-chan struct{}, feedState) {
	wake := *f.wake.Load() // before the view: an add after it closes this channel
	v := f.view.Load()
	last := v.first + int64(len(v.events)) - 1
	switch {
	case cursor >= last && v.moved:
		return nil, nil, feedMoved
	case cursor >= last && v.done:
		return nil, nil, feedEnded
	case cursor >= last:
		return nil, wake, feedWait
	case cursor+1 < v.first:
		return nil, nil, feedLagged
	}
	return v.events[cursor+1-v.first:], nil, feedEvents
}

// Subscription delivers one operation's events in order: first the retained
// history after the requested sequence number, then live events, ending
// with the terminal event. Call Close when done. Next and Close may be
// called from different goroutines; Next from one at a time.
type Subscription struct {
	cursor  int64   // Seq of the last event delivered (or the after asked for)
	backlog []Event // history, then batches read from the feed
	feed    *feed   // nil once the operation had ended at Subscribe
	// tail, when set, reads events after a cursor from the store, and
	// whether the operation has ended: for operations this engine does
	// not run (replicas), polled every pollEvery.
	tail      func(ctx context.Context, after int64) ([]Event, bool, error)
	pollEvery time.Duration
	tailedAt  time.Time // of the last read of the store
	// local, with tail, returns the operation's feed if this replica runs
	// it now, and a channel closed when this replica next starts one.
	local func() (*feed, <-chan struct{})
	// stop, with tail, is closed when the engine closes: a replica that
	// shuts down stops following what goes on elsewhere, and its watchers
	// resume on another one (Next returns ErrClosed).
	stop      <-chan struct{}
	done      bool
	lagged    bool
	closed    chan struct{}
	closeOnce sync.Once
}

// Subscribe returns a subscription to id's events with Seq > after, from
// history and live alike (so an after beyond the latest event skips the
// events up to it; the stream still ends with the operation). It fails
// with ErrNotFound for an unknown operation. Subscribing does not hold up
// the operation: the history is read without the engine's lock.
func (e *Engine) Subscribe(ctx context.Context, id string, after int64) (*Subscription, error) {
	e.mu.Lock()
	f := e.feeds[id] // nil if the operation ended: the history is all there is
	e.mu.Unlock()
	// Events published from here on are both in the history and in the
	// feed; the cursor skips the ones already delivered.
	backlog, err := e.store.EventsAfter(ctx, id, after) // ErrNotFound for an unknown id
	if err != nil {
		return nil, err
	}
	sub := &Subscription{cursor: after, backlog: backlog, feed: f, closed: make(chan struct{})}
	if e.shared != nil {
		// The operation may run on another replica (or move to one):
		// follow the store whenever there is no live feed here.
		sub.tail, sub.pollEvery, sub.stop = e.tailEvents(id), e.cfg.PollInterval, e.replicaStop
		sub.local = func() (*feed, <-chan struct{}) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.feeds[id], e.started
		}
	}
	return sub, nil
}

// tailEvents reads operation id's stored events after a cursor, and
// whether it has ended (then with every event up to the terminal one).
func (e *Engine) tailEvents(id string) func(ctx context.Context, after int64) ([]Event, bool, error) {
	return func(ctx context.Context, after int64) ([]Event, bool, error) {
		evs, err := e.store.EventsAfter(ctx, id, after)
		if err != nil || len(evs) > 0 {
			return evs, false, err
		}
		op, err := e.store.Get(ctx, id)
		if err != nil || !op.Status.Terminal() {
			return nil, false, err
		}
		// It ended between the two reads: its last events are in now.
		evs, err = e.store.EventsAfter(ctx, id, after)
		return evs, true, err
	}
}

// Next returns the next event. After the terminal event it returns io.EOF
// (also after Close); it returns ErrLagged if the watcher lost its place,
// ErrClosed when a replica's engine closed while the operation goes on
// (elsewhere, or queued: follow it on another replica from the last event
// seen), or ctx's cause.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		select {
		case <-s.closed:
			return Event{}, io.EOF
		default:
		}
		switch {
		case s.done:
			return Event{}, io.EOF
		case s.lagged:
			return Event{}, ErrLagged
		case len(s.backlog) > 0:
			ev := s.backlog[0]
			s.backlog = s.backlog[1:]
			if ev.Seq <= s.cursor {
				continue // already delivered from the history
			}
			s.cursor = ev.Seq
			s.done = ev.Type.Terminal()
			return ev, nil
		case s.feed == nil && s.tail != nil:
			// If the operation runs here now, follow its feed (once it
			// holds the next event): no store read needed.
			f, started := s.local()
			if f != nil {
				if _, _, st := f.read(s.cursor); st != feedLagged {
					s.feed = f
					continue
				}
				started = nil // the store will have the missing events soon
			}
			select {
			case <-s.stop:
				return Event{}, ErrClosed
			default:
			}
			wait := s.pollEvery - time.Since(s.tailedAt)
			if s.tailedAt.IsZero() || wait <= 0 {
				s.tailedAt = time.Now()
				evs, ended, err := s.tail(ctx, s.cursor)
				if err != nil {
					return Event{}, err
				}
				if len(evs) > 0 {
					s.backlog = evs
					continue
				}
				if ended {
					s.done = true
					return Event{}, io.EOF
				}
				wait = s.pollEvery
			}
			// Read the store again after pollEvery, or look for the feed
			// when this replica starts an operation.
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-started:
			case <-s.stop:
			case <-s.closed:
			case <-ctx.Done():
				t.Stop()
				return Event{}, context.Cause(ctx)
			}
			t.Stop()
			continue
		case s.feed == nil:
			s.done = true
			return Event{}, io.EOF
		}
		var wake <-chan struct{}
		var st feedState
		s.backlog, wake, st = s.feed.read(s.cursor)
		switch st {
		case feedMoved:
			s.feed = nil // from here on the store has the events
		case feedEnded:
			s.done = true
		case feedLagged:
			s.lagged = true
		case feedWait:
			select {
			case <-wake:
			case <-s.closed:
			case <-ctx.Done():
				return Event{}, context.Cause(ctx)
			}
		}
	}
}

// Close stops delivery: Next returns io.EOF from then on. It is safe to
// call more than once and concurrently with Next.
func (s *Subscription) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
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
