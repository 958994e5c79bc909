package neo4jpool

import (
	"context"
	"errors"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// The driver marks its pool closed without synchronisation, and reads that
// mark when a call borrows or returns a connection, so closing a driver
// while a call uses it is a data race inside the driver. The Manager
// therefore retires a driver before closing it: every call registers with
// the driver it uses (users); retiring cancels the calls still waiting for
// a connection (execute and ExecuteOnce hand them to the new driver) and
// waits for every call to be done with the driver.

// errHandOver is the cause of a waiting call's context when its driver is
// retired.
var errHandOver = errors.New("neo4jpool: driver replaced while the call waited for a connection")

// retireTimeout bounds how long closing a driver waits for its calls to be
// done with it; a transaction still running then sees its connection
// closed.
const retireTimeout = 10 * time.Second

// user is one call using a driver.
type user struct {
	cancel  context.CancelCauseFunc
	done    chan struct{}
	waiting bool // still waiting for a connection (under Manager.mu)
	moved   bool // retired while waiting (under Manager.mu)
	ended   bool // release ran (under Manager.mu)
}

// use registers a call that is about to wait for a connection of d, which
// must still be env's current driver (ok false otherwise: get the driver
// again). The call runs with the returned context, calls unwait when it
// has its connection and release when it is done with d.
func (m *Manager) use(ctx context.Context, env string, d neo4j.DriverWithContext) (context.Context, *user, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.envs[env]
	if m.closed || st == nil || st.closed || st.driver != d {
		return nil, nil, false
	}
	uctx, cancel := context.WithCancelCause(ctx)
	u := &user{cancel: cancel, done: make(chan struct{}), waiting: true}
	if m.users == nil {
		m.users = map[neo4j.DriverWithContext]map[*user]struct{}{}
	}
	if m.users[d] == nil {
		m.users[d] = map[*user]struct{}{}
	}
	m.users[d][u] = struct{}{}
	return uctx, u, true
}

// unwait records that u has its connection and reports whether its driver
// was retired while it waited (its context is then cancelled: hand the
// call over). After it returns false, retiring the driver cancels nothing
// of u's.
func (m *Manager) unwait(u *user) (moved bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u.waiting = false
	return u.moved
}

// release ends u's use of d (its session closed); calling it again does
// nothing.
func (m *Manager) release(d neo4j.DriverWithContext, u *user) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u.ended {
		return
	}
	u.ended = true
	delete(m.users[d], u)
	if len(m.users[d]) == 0 {
		delete(m.users, d)
	}
	u.cancel(nil)
	close(u.done)
}

// retire cancels the calls still waiting for a connection of d (no longer
// any environment's current driver) and waits until every call is done
// with it, or ctx ends, or retireTimeout passes.
func (m *Manager) retire(ctx context.Context, d neo4j.DriverWithContext) {
	m.mu.Lock()
	var done []chan struct{}
	for u := range m.users[d] {
		if u.waiting { // under the lock: unwait sees moved, or u is not cancelled
			u.moved = true
			u.cancel(errHandOver)
		}
		done = append(done, u.done)
	}
	m.mu.Unlock()
	if len(done) == 0 {
		return
	}
	timer := time.NewTimer(retireTimeout)
	defer timer.Stop()
	for _, c := range done {
		select {
		case <-c:
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		}
	}
}
