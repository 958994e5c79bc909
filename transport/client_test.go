package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atgraph/atg/operations"
)

func (f *fixture) client(t *testing.T, key string, mutate ...func(*ClientOptions)) *Client {
	t.Helper()
	o := ClientOptions{BaseURL: f.srv.URL + "/", APIKey: f.keys[key], Version: "9.9.9", RetryBaseDelay: 10 * time.Millisecond, RetryMaxDelay: 100 * time.Millisecond}
	for _, m := range mutate {
		m(&o)
	}
	c, err := NewClient(o)
	must(t, err)
	return c
}

func TestClientCalls(t *testing.T) {
	t.Parallel()
	var ua atomic.Value
	f := newFixture(t, fixtureOpts{db: true, wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ua.Store(r.Header.Get("User-Agent"))
			h.ServeHTTP(w, r)
		})
	}})
	ctx := context.Background()
	c := f.client(t, "writer")
	h, err := c.Health(ctx)
	if err != nil || h.Status != "healthy" || h.Neo4jStatus != "connected" {
		t.Fatalf("Health: %+v %v", h, err)
	}
	if got := ua.Load().(string); got != "atg-go/9.9.9" {
		t.Errorf("User-Agent %q", got)
	}
	st, err := c.Status(ctx)
	if err != nil || st.ClientID != "writer" || st.Neo4j.Status != "connected" {
		t.Fatalf("Status: %+v %v", st, err)
	}
	qr, err := c.Query(ctx, QueryRequest{Query: "RETURN $x + 1 AS y", Parameters: map[string]any{"x": 41}})
	if err != nil || qr.RowCount != 1 || qr.Rows[0][0] != json.Number("42") {
		t.Fatalf("Query: %+v %v", qr, err)
	}
	_, err = c.Query(ctx, QueryRequest{Query: "RETRUN"})
	var ae *Error
	if !errors.As(err, &ae) || !errors.Is(err, ErrQuery) || ae.Status != 400 || ae.RequestID == "" || ae.Details["neo4j_code"] == nil {
		t.Errorf("query error: %#v", err)
	}
	sub, err := c.Submit(ctx, "echo", map[string]string{"a": "b"}, "")
	if err != nil || sub.OperationID == "" {
		t.Fatalf("Submit: %v", err)
	}
	seen, op := follow(t, c, sub.OperationID)
	if op.Status != operations.Completed || string(op.Result) != `{"a":"b"}` {
		t.Fatalf("after the events: %+v", op)
	}
	if len(seen) != 5 || seen[len(seen)-1] != operations.EventComplete {
		t.Errorf("events %v", seen)
	}
	list, err := c.List(ctx, ListOptions{Status: operations.Completed, Type: "echo", Limit: 10})
	if err != nil || list.Total != 1 {
		t.Errorf("List: %+v %v", list, err)
	}
	if _, err := c.Get(ctx, "op_missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get missing: %v", err)
	}
	if _, err := c.Cancel(ctx, sub.OperationID); !errors.Is(err, ErrNotCancellable) {
		t.Errorf("Cancel finished: %v", err)
	}
	_, err = c.Submit(ctx, "nope", nil, "")
	if !errors.Is(err, ErrValidation) || !strings.Contains(err.Error(), "supported: block, echo") {
		t.Errorf("unknown type: %v", err)
	}
	bad := f.client(t, "writer", func(o *ClientOptions) { o.APIKey = "atg_dev_" + strings.Repeat("f", 64) })
	_, err = bad.Status(ctx)
	if !errors.Is(err, ErrAuthenticationFailed) || strings.Contains(err.Error(), strings.Repeat("f", 64)) {
		t.Errorf("bad key: %v", err)
	}
	// A failed operation comes back as its *operations.Error.
	blocked, _ := c.Submit(ctx, "block", nil, "")
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = c.Cancel(ctx, blocked.OperationID)
	}()
	seen, op = follow(t, c, blocked.OperationID)
	if seen[len(seen)-1] != operations.EventError || op.Status != operations.Cancelled || op.Error == nil || op.Error.Code != "CANCELLED" {
		t.Errorf("cancelled: events %v, %+v", seen, op)
	}
}

// follow reads operation id's events to the end and returns their types
// and the operation as it ended.
func follow(t *testing.T, c *Client, id string) ([]operations.EventType, *OperationView) {
	t.Helper()
	ctx := context.Background()
	s, err := c.Events(ctx, id, 0)
	must(t, err)
	defer s.Close()
	var seen []operations.EventType
	for {
		ev, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		seen = append(seen, ev.Type)
	}
	op, err := c.Get(ctx, id)
	must(t, err)
	return seen, op
}

func TestNewClientChecksOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []ClientOptions{{BaseURL: "ftp://x", APIKey: "k"}, {BaseURL: "http://", APIKey: "k"}, {BaseURL: "http://x"},
		{BaseURL: "https://bob:s3cret@x.example", APIKey: "k"}, {BaseURL: "https://t0ken@x.example", APIKey: "k"}} {
		_, err := NewClient(o)
		if err == nil {
			t.Errorf("NewClient(%+v) accepted", o)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "t0ken") {
			t.Errorf("NewClient(%q): error %q shows the user information", o.BaseURL, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                "",
		"https://atg.example.com:8443/x":  "https://atg.example.com:8443/x",
		"https://bob:s3cret@atg.example":  "https://xxxxx@atg.example",
		"https://t0ken@atg.example/p?q=1": "https://xxxxx@atg.example/p?q=1",
		"http://h:port-not-a-number":      "[unparsable URL]",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// flaky fails the first n requests matching match with status (and a
// Retry-After of 1 s for 429), recording each Idempotency-Key seen.
type flaky struct {
	mu     sync.Mutex
	n      int
	status int
	match  func(*http.Request) bool
	seen   []string
	calls  int
}

func (fl *flaky) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fl.match(r) {
			fl.mu.Lock()
			fl.calls++
			fl.seen = append(fl.seen, r.Header.Get(HeaderIdempotencyKey))
			fail := fl.n > 0
			fl.n--
			fl.mu.Unlock()
			if fail {
				if fl.status == 0 { // drop the connection
					panic(http.ErrAbortHandler)
				}
				if fl.status == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "1")
				}
				w.Header().Set(HeaderRequestID, "flaky")
				WriteError(w, codeForStatus(fl.status), "try again", nil)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	isSubmit := func(r *http.Request) bool { return r.Method == "POST" && r.URL.Path == "/api/v1/operations" }
	for _, status := range []int{0, 429, 502, 503, 504} {
		fl := &flaky{n: 2, status: status, match: isSubmit}
		f := newFixture(t, fixtureOpts{wrap: fl.wrap})
		start := time.Now()
		sub, err := f.client(t, "writer").Submit(ctx, "echo", nil, "")
		if err != nil {
			t.Fatalf("status %d: %v", status, err)
		}
		if fl.calls != 3 || fl.seen[0] == "" || fl.seen[0] != fl.seen[1] || fl.seen[1] != fl.seen[2] {
			t.Errorf("status %d: %d calls with keys %v", status, fl.calls, fl.seen)
		}
		if status == 429 && time.Since(start) < 2*time.Second {
			t.Errorf("429: Retry-After not honoured (%s)", time.Since(start))
		}
		list, _ := f.client(t, "writer").List(ctx, ListOptions{})
		if list.Total != 1 || list.Operations[0].ID != sub.OperationID {
			t.Errorf("status %d: retries created %d operations", status, list.Total)
		}
	}
	// Queries are not retried; client errors are not retried; retries end.
	fl := &flaky{n: 1, status: 503, match: func(r *http.Request) bool { return r.URL.Path == "/api/v1/query" }}
	f := newFixture(t, fixtureOpts{wrap: fl.wrap})
	if _, err := f.client(t, "reader").Query(ctx, QueryRequest{Query: "RETURN 1"}); !errors.Is(err, ErrUnavailable) || fl.calls != 1 {
		t.Errorf("query retried: %v after %d calls", err, fl.calls)
	}
	fl = &flaky{n: 100, status: 503, match: func(r *http.Request) bool { return r.URL.Path == "/api/v1/status" }}
	f = newFixture(t, fixtureOpts{wrap: fl.wrap})
	_, err := f.client(t, "reader", func(o *ClientOptions) { o.MaxRetries = 3 }).Status(ctx)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 503 || fl.calls != 4 || ae.RequestID != "flaky" {
		t.Errorf("give up: %v after %d calls", err, fl.calls)
	}
}

// cutter drops every event-stream connection after it has written `after`
// events, the last one only half, so the client must resume mid-event.
type cutter struct {
	after int
	cuts  atomic.Int32
}

func (c *cutter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/events") {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&cuttingWriter{ResponseWriter: w, c: c}, r)
	})
}

type cuttingWriter struct {
	http.ResponseWriter
	c      *cutter
	events int
}

func (w *cuttingWriter) Write(b []byte) (int, error) {
	if strings.HasPrefix(string(b), "id: ") {
		w.events++
		if w.events > w.c.after {
			_, _ = w.ResponseWriter.Write(b[:len(b)/2])
			w.ResponseWriter.(http.Flusher).Flush()
			w.c.cuts.Add(1)
			panic(http.ErrAbortHandler)
		}
	}
	return w.ResponseWriter.Write(b)
}

func (w *cuttingWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func TestEventStreamResumesAfterDroppedConnections(t *testing.T) {
	t.Parallel()
	cut := &cutter{after: 7}
	f := newFixture(t, fixtureOpts{wrap: cut.wrap})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := f.client(t, "writer")
	sub, err := c.Submit(ctx, "ticks", map[string]int{"n": 60}, "")
	must(t, err)
	s, err := c.Events(ctx, sub.OperationID, 0)
	must(t, err)
	defer s.Close()
	var seqs []int64
	for {
		ev, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		seqs = append(seqs, ev.Seq)
	}
	// status, status, 60 progress, complete: 63 events, each exactly once.
	if len(seqs) != 63 {
		t.Fatalf("got %d events: %v", len(seqs), seqs)
	}
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("event %d has seq %d (gap or duplicate): %v", i, seq, seqs)
		}
	}
	if cut.cuts.Load() < 5 {
		t.Errorf("only %d cuts: the test did not exercise resuming", cut.cuts.Load())
	}
	if _, err := s.Next(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("after the terminal event: %v", err)
	}
}

// TestNoRetriesMeansNone: MaxRetries < 0 turns retries off for every call,
// event streams included.
func TestNoRetriesMeansNone(t *testing.T) {
	t.Parallel()
	fl := &flaky{n: 1000, status: 503, match: func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/v1/") }}
	f := newFixture(t, fixtureOpts{wrap: fl.wrap})
	c := f.client(t, "reader", func(o *ClientOptions) { o.MaxRetries = -1 })
	ctx := context.Background()
	if _, err := c.Status(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Status: %v", err)
	}
	if _, err := c.Events(ctx, "op_x", 0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Events: %v", err)
	}
	if fl.calls != 2 {
		t.Errorf("%d requests, want 2 (no retries)", fl.calls)
	}
}

// TestEventStreamGivesUpOnEmptyConnections: connections that end without
// an event are retried with the client's backoff, maxEmptyReconnects
// times, then Next fails.
func TestEventStreamGivesUpOnEmptyConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "retry: 2000\n\n: nothing\n\n")
	}))
	defer srv.Close()
	c, err := NewClient(ClientOptions{BaseURL: srv.URL, APIKey: "k", RetryBaseDelay: 10 * time.Millisecond, RetryMaxDelay: 100 * time.Millisecond})
	must(t, err)
	defer c.Close()
	ctx := context.Background()
	start := time.Now()
	s, err := c.Events(ctx, "op_x", 0)
	must(t, err)
	defer s.Close()
	_, err = s.Next(ctx)
	if err == nil || !strings.Contains(err.Error(), "closed 11 times without delivering an event") {
		t.Errorf("Next: %v", err)
	}
	if n := conns.Load(); n != 1+maxEmptyReconnects {
		t.Errorf("%d connections, want %d", n, 1+maxEmptyReconnects)
	}
	// 10, 20, 40, 80, then 100 ms six times, each within 20 %.
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("gave up after %s: no backoff between empty connections", d)
	}
}
