package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// roundRobin is a load balancer in front of replicas: each request goes
// to the next backend in turn, whether or not it is up (a request to one
// that is down gets the proxy's 502, as from a real balancer between two
// health checks).
type roundRobin struct {
	mu       sync.Mutex
	backends []*url.URL
	next     int
}

func (rr *roundRobin) set(i int, u string) {
	parsed, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for len(rr.backends) <= i {
		rr.backends = append(rr.backends, nil)
	}
	rr.backends[i] = parsed
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr.mu.Lock()
	target := rr.backends[rr.next%len(rr.backends)]
	rr.next++
	rr.mu.Unlock()
	p := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		FlushInterval: -1, // event streams
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.ServeHTTP(w, r)
}

// TestRollingRestartThroughAProxy: three replicas behind a round-robin
// proxy are restarted one by one (SIGTERM, then a new process under the
// same replica id) while clients submit imports, follow their events and
// read operations through the proxy with transport.Client. No request
// fails, every import completes, and every stream delivers each event of
// the stored history once, in order, ending with the completion.
func TestRollingRestartThroughAProxy(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("restarts three servers")
	}
	rs := newReplicaSet(t)
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	ids := []string{"r0", "r1", "r2"}
	rr := &roundRobin{}
	procs := make([]*serverProcess, len(ids))
	for i, id := range ids {
		procs[i] = rs.start(id)
		rr.set(i, procs[i].url)
	}
	proxy := httptest.NewServer(rr)
	t.Cleanup(proxy.Close)
	client, err := transport.NewClient(transport.ClientOptions{BaseURL: proxy.URL, APIKey: rs.key, MaxRetries: 50,
		RetryBaseDelay: 20 * time.Millisecond, RetryMaxDelay: 500 * time.Millisecond})
	must(t, err)
	t.Cleanup(func() { _ = client.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stop atomic.Bool
	var failures sync.Map // what went wrong, by worker
	fail := func(worker int, format string, args ...any) {
		failures.Store(fmt.Sprintf("%d/%d", worker, time.Now().UnixNano()), fmt.Sprintf(format, args...))
	}
	var completed atomic.Int64
	var wg sync.WaitGroup
	for w := range 3 {
		label := neo4jtest.Unique(t) + fmt.Sprint("w", w)
		neo4jtest.CleanupLabel(t, d, s, label)
		wg.Go(func() {
			for round := 0; !stop.Load(); round++ {
				doc := longImport(fmt.Sprintf("%s%d", label, round), 200)
				doc["chunk_size"] = 20
				sub, err := client.Submit(ctx, "import", doc, "")
				if err != nil {
					fail(w, "submit: %v", err)
					return
				}
				seen, err := followAll(ctx, client, sub.OperationID)
				if err != nil {
					fail(w, "events of %s: %v", sub.OperationID, err)
					return
				}
				op, err := client.Get(ctx, sub.OperationID)
				if err != nil {
					fail(w, "get %s: %v", sub.OperationID, err)
					return
				}
				if op.Status != operations.Completed {
					fail(w, "%s ended %s: %+v", sub.OperationID, op.Status, op.Error)
					return
				}
				if _, err := client.List(ctx, transport.ListOptions{}); err != nil {
					fail(w, "list: %v", err)
					return
				}
				// Every stored event was delivered once, in order.
				stored, err := followAll(ctx, client, sub.OperationID)
				if err != nil {
					fail(w, "replay of %s: %v", sub.OperationID, err)
					return
				}
				for seq := range stored {
					if !seen[seq] {
						fail(w, "%s: stored event %d was not delivered live (delivered %d events)", sub.OperationID, seq, len(seen))
						return
					}
				}
				completed.Add(1)
			}
		})
	}

	// Restart each replica in turn once the clients are busy.
	time.Sleep(time.Second)
	for i, id := range ids {
		must(t, procs[i].cmd.Process.Signal(syscall.SIGTERM))
		err := <-procs[i].exited
		procs[i].exited <- err
		if err != nil {
			t.Errorf("replica %s exited with %v", id, err)
		}
		procs[i] = rs.start(id)
		rr.set(i, procs[i].url)
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	failures.Range(func(k, v any) bool {
		t.Errorf("client %v: %v", k, v)
		return true
	})
	t.Logf("%d imports completed through the proxy while 3 replicas restarted one by one", completed.Load())
	if completed.Load() < 3 {
		t.Errorf("only %d imports completed", completed.Load())
	}
}

// followAll reads operation id's events from the start to the end through
// c, which resumes cut streams, and returns the sequence numbers seen.
// A sequence number seen twice, or out of order, is an error; so is a
// stream that does not end with the operation's terminal event.
func followAll(ctx context.Context, c *transport.Client, id string) (map[int64]bool, error) {
	es, err := c.Events(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	defer es.Close()
	seen := map[int64]bool{}
	var last transport.Event
	for {
		ev, err := es.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return seen, err
		}
		if ev.Seq <= last.Seq {
			return seen, fmt.Errorf("event %d after %d", ev.Seq, last.Seq)
		}
		seen[ev.Seq] = true
		last = ev
	}
	if !last.Type.Terminal() {
		return seen, fmt.Errorf("the stream ended after %d events with %q, not the terminal event", len(seen), last.Type)
	}
	return seen, nil
}
