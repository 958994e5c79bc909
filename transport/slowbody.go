package transport

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/atgraph/atg/auth"
)

// DefaultBodyIdleTimeout is the default of Options.BodyIdleTimeout.
const DefaultBodyIdleTimeout = 30 * time.Second

// ErrBodyIdle matches the error a request body's Read returns when no byte
// arrived within Options.BodyIdleTimeout.
var ErrBodyIdle = errors.New("transport: request body stalled")

// bodyIdleError is the error of a stalled body: it matches ErrBodyIdle and
// unwraps to the connection's deadline error.
type bodyIdleError struct {
	idle time.Duration
	err  error
}

func (e *bodyIdleError) Error() string {
	return fmt.Sprintf("transport: request body stalled: no bytes for %s: %v", e.idle, e.err)
}
func (e *bodyIdleError) Is(target error) bool { return target == ErrBodyIdle }
func (e *bodyIdleError) Unwrap() error        { return e.err }

// idleBody is a request body whose every Read must make progress within
// idle: before each Read it moves the connection's read deadline to
// now+idle (never past the whole-request deadline), and once the body has
// been read to its end it puts that deadline back.
type idleBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	idle     time.Duration
	deadline time.Time // the server's ReadTimeout for the request; zero: none
	done     bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	d := time.Now().Add(b.idle)
	if !b.deadline.IsZero() && b.deadline.Before(d) {
		d = b.deadline
	}
	if b.rc.SetReadDeadline(d) != nil {
		b.done = true // the connection does not support deadlines
		return b.ReadCloser.Read(p)
	}
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded) && (b.deadline.IsZero() || time.Now().Before(b.deadline)):
		b.done = true
		return n, &bodyIdleError{idle: b.idle, err: err}
	default:
		b.done = true
		_ = b.rc.SetReadDeadline(b.deadline)
	}
	return n, err
}

// limitBodyIdle gives requests with a body an idle timeout between body
// bytes (Options.BodyIdleTimeout): a body trickled slower than that fails
// to read with ErrBodyIdle, answered 408 REQUEST_TIMEOUT by decodeJSON.
//
// It also keeps a body nobody reads from holding the connection: net/http
// reads up to 256 KiB of an unread body before and after answering, under
// the whole-request ReadTimeout (minutes), so a request refused without
// its body being read (401, 403, 404, 429, …) whose body is trickled
// would hold its connection that long. Such responses get Connection:
// close, and once the handler is done the read deadline is moved to now.
func (a *API) limitBodyIdle(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		var deadline time.Time
		if a.opts.ReadTimeout > 0 {
			deadline = time.Now().Add(a.opts.ReadTimeout)
		}
		b := &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: a.opts.BodyIdleTimeout, deadline: deadline}
		r.Body = b
		defer func() {
			if !b.done {
				_ = b.rc.SetReadDeadline(time.Now()) // nothing more of this body is wanted
			}
		}()
		next.ServeHTTP(&unreadBodyCloser{ResponseWriter: w, body: b}, r)
	})
}

// unreadBodyCloser adds Connection: close to a response written before
// its request's body was read to the end.
type unreadBodyCloser struct {
	http.ResponseWriter
	body  *idleBody
	wrote bool
}

func (u *unreadBodyCloser) mark() {
	if !u.wrote {
		u.wrote = true
		if !u.body.done {
			u.Header().Set("Connection", "close")
		}
	}
}

func (u *unreadBodyCloser) WriteHeader(code int) {
	u.mark()
	u.ResponseWriter.WriteHeader(code)
}

func (u *unreadBodyCloser) Write(p []byte) (int, error) {
	u.mark()
	return u.ResponseWriter.Write(p)
}

// Flush passes through to the underlying writer.
func (u *unreadBodyCloser) Flush() {
	if f, ok := u.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (u *unreadBodyCloser) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// inFlight counts the requests each API key has open.
type inFlight struct {
	mu    sync.Mutex
	max   int
	count map[string]int
}

// acquire counts one more request of key, unless key already has max.
func (f *inFlight) acquire(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.count[key] >= f.max {
		return false
	}
	f.count[key]++
	return true
}

func (f *inFlight) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.count[key]--; f.count[key] <= 0 {
		delete(f.count, key)
	}
}

// limitInFlight caps the requests one API key has in flight at once
// (Options.MaxRequestsPerKey), event streams included: one more is
// answered 429 RATE_LIMITED with Retry-After: 1 before its body is read.
// Requests by event token count against the key that minted the token.
func (a *API) limitInFlight(next http.Handler) http.Handler {
	if a.inFlight == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.IdentityFrom(r.Context())
		key := limiterKey(id)
		if !a.inFlight.acquire(key) {
			writeAPIError(w, &Error{Code: CodeRateLimited, RetryAfter: time.Second,
				Message: "too many concurrent requests: at most " + strconv.Itoa(a.inFlight.max) + " in flight per API key; retry when one has finished"})
			return
		}
		defer a.inFlight.release(key)
		next.ServeHTTP(w, r)
	})
}

// limiterKey is the key a request is limited by: its API key's ID (for an
// event token, the minting key's), or for identities without one, its
// client.
func limiterKey(id auth.Identity) string {
	if id.KeyID == "" {
		return "client:" + id.ClientID
	}
	return id.KeyID
}
