package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// action is one thing a simulated client does per iteration.
type action int

// The actions of the mix. An import is a submit followed by a watch of
// the operation's events to its end.
const (
	actStatus action = iota
	actQuery
	actImport
	numActions
)

// actionNames name the actions in --mix.
var actionNames = [numActions]string{"status", "query", "import"}

// mix is the relative weight of each action.
type mix [numActions]int

// String formats the mix as --mix takes it.
func (m mix) String() string {
	parts := make([]string, numActions)
	for i, w := range m {
		parts[i] = fmt.Sprintf("%s=%d", actionNames[i], w)
	}
	return strings.Join(parts, ",")
}

// parseMix parses "status=3,query=4,import=2" (omitted actions weigh 0).
func parseMix(s string) (mix, error) {
	var m mix
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return m, fmt.Errorf("--mix: %q is not name=weight", part)
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return m, fmt.Errorf("--mix: weight of %s must be a non-negative integer", name)
		}
		found := false
		for i, a := range actionNames {
			if a == name {
				m[i], found = n, true
			}
		}
		if !found {
			return m, fmt.Errorf("--mix: unknown action %q (want status, query, import)", name)
		}
		total += n
	}
	if total == 0 {
		return m, errors.New("--mix: at least one weight must be positive")
	}
	return m, nil
}

// pick chooses an action by weight.
func (m mix) pick(rng *rand.Rand) action {
	total := 0
	for _, w := range m {
		total += w
	}
	n := rng.IntN(total)
	for i, w := range m {
		if n < w {
			return action(i)
		}
		n -= w
	}
	return actStatus
}

// requestsPerIteration is the mean number of requests one iteration of m
// makes (an import makes two: submit and watch).
func (m mix) requestsPerIteration() float64 {
	total, reqs := 0, 0
	for i, w := range m {
		total += w
		if action(i) == actImport {
			reqs += 2 * w
		} else {
			reqs += w
		}
	}
	return float64(reqs) / float64(total)
}

// workload describes what the load clients do.
type workload struct {
	// clients run for duration, each doing mix.
	clients  int
	duration time.Duration
	mix      mix
	// rpm paces each key (0: unpaced).
	rpm int
	// importNodes is the size of an import; label the run's node label.
	importNodes int
	label       string
	// drainTimeout bounds the calls still running when duration ends.
	drainTimeout time.Duration
}

// simClient is one simulated client: its own HTTP connection pool and API
// key, and two transport.Clients over them: calls never retries (so every
// 429 is seen and counted), events keeps the client's default retries
// (an event watch resumes as users' programs would; the counting transport
// still records each attempt).
type simClient struct {
	// id numbers the client; rec records its requests.
	id  int
	rec *recorder
	// hc is its own HTTP client (connection pool); calls and events are
	// the API clients over it.
	hc     *http.Client
	calls  *transport.Client
	events *transport.Client
	// pace is shared by the clients of one key; nil: unpaced.
	pace *rate.Limiter
	// rng picks the actions.
	rng *rand.Rand
	// label and nodes shape its imports.
	label string
	nodes int

	// imports and queries count what it sent (for unique ids and the
	// query rotation); lastTenant is the tenant of its last import.
	imports    int
	lastTenant string
	queries    int
}

// newSimClient returns client id using key.
func newSimClient(id int, baseURL, key string, rec *recorder, pace *rate.Limiter, label string, nodes int) (*simClient, error) {
	hc := newHTTPClient(rec)
	opts := transport.ClientOptions{BaseURL: baseURL, APIKey: key, UserAgent: "atg-load", Version: atg.Version,
		HTTPClient: hc, RequestTimeout: 2 * time.Minute, MaxRetries: -1}
	calls, err := transport.NewClient(opts)
	if err != nil {
		return nil, err
	}
	opts.MaxRetries = 0 // the default: transport.DefaultMaxRetries
	events, err := transport.NewClient(opts)
	if err != nil {
		return nil, err
	}
	return &simClient{id: id, rec: rec, hc: hc, calls: calls, events: events, pace: pace,
		rng: rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano()))), label: label, nodes: nodes}, nil
}

// wait blocks until the client's pacer allows n more requests; false when
// the phase (stop) ends first. WaitN fails at once when the next slot lies
// past stop's deadline: the client then sits out the rest of the phase
// instead of spinning (a spinning client would starve the server of CPU).
func (c *simClient) wait(stop context.Context, n int) bool {
	if c.pace == nil {
		return stop.Err() == nil
	}
	if c.pace.WaitN(stop, n) != nil {
		<-stop.Done()
		return false
	}
	return true
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// backoff pauses after a failed call: a 429's Retry-After (the limits at
// work), or a short pause after an error so a broken server is not hammered.
func (c *simClient) backoff(stop context.Context, err error) {
	var ae *transport.Error
	if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
		sleep(stop, min(max(ae.RetryAfter, 100*time.Millisecond), transport.MaxRetryAfter))
		return
	}
	sleep(stop, 100*time.Millisecond)
}

// run loops over the mix until stop ends; calls use ctx, so a call started
// before stop finishes (an import is followed to its end).
func (c *simClient) run(stop, ctx context.Context, m mix) {
	for stop.Err() == nil {
		var err error
		switch m.pick(c.rng) {
		case actStatus:
			err = c.status(stop, ctx)
		case actQuery:
			err = c.query(stop, ctx)
		case actImport:
			err = c.importAndWatch(stop, ctx)
		}
		if err != nil {
			c.backoff(stop, err)
		}
	}
}

// status calls GET /api/v1/status.
func (c *simClient) status(stop, ctx context.Context) error {
	if !c.wait(stop, 1) {
		return nil
	}
	start := time.Now()
	_, err := c.calls.Status(ctx)
	if err != nil {
		c.rec.callFailed(routeStatus, err)
		return err
	}
	c.rec.succeeded(routeStatus, time.Since(start))
	return nil
}

// nextQuery returns the next read query of this client's rotation: a label
// count, a lookup by id (a label scan filtered on id), a one-hop traversal
// from that node and a filtered label scan. The lookup and the traversal
// match (n:<label> {id: $id}) on the run's label, which has no index (the
// importer's only constraint, hence index, is on the base label,
// GraphNode.id), so neither is an index seek: the lookup plans as
// NodeByLabelScan + Filter. The queries stay as they are: the published
// figures were measured with them.
func (c *simClient) nextQuery() transport.QueryRequest {
	l := "`" + c.label + "`"
	id := c.lastTenant
	if id == "" {
		id = c.label + "-none"
	}
	c.queries++
	switch c.queries % 4 {
	case 0:
		return transport.QueryRequest{Query: "MATCH (n:" + l + ") RETURN count(n) AS nodes", Mode: "read"}
	case 1:
		return transport.QueryRequest{Query: "MATCH (n:" + l + " {id: $id}) RETURN n.id AS id, n.name AS name", Parameters: map[string]any{"id": id}, Mode: "read"}
	case 2:
		return transport.QueryRequest{Query: "MATCH (t:" + l + " {id: $id})-[:CONTAINS]->(s) RETURN s.id AS id ORDER BY id LIMIT 20", Parameters: map[string]any{"id": id}, Mode: "read"}
	default:
		return transport.QueryRequest{Query: "MATCH (n:" + l + ") WHERE n.client = $client RETURN count(n) AS mine", Parameters: map[string]any{"client": c.id}, Mode: "read"}
	}
}

// query calls POST /api/v1/query with a read query.
func (c *simClient) query(stop, ctx context.Context) error {
	if !c.wait(stop, 1) {
		return nil
	}
	q := c.nextQuery()
	start := time.Now()
	_, err := c.calls.Query(ctx, q)
	if err != nil {
		c.rec.callFailed(routeQuery, err)
		return err
	}
	c.rec.succeeded(routeQuery, time.Since(start))
	return nil
}

// graph returns this client's next import: a tenant and nodes-1
// subscriptions it CONTAINS, all under the run's label, with ids no other
// client or iteration uses.
func (c *simClient) graph() atg.ImportParams {
	c.imports++
	prefix := fmt.Sprintf("%s-c%d-i%d", c.label, c.id, c.imports)
	tenant := prefix + "-t"
	g := atg.ImportParams{Nodes: []neo4jpool.Node{{ID: tenant, Labels: []string{c.label},
		Properties: map[string]any{"name": tenant, "kind": "tenant", "client": c.id}}}}
	for k := 1; k < c.nodes; k++ {
		id := fmt.Sprintf("%s-s%d", prefix, k)
		g.Nodes = append(g.Nodes, neo4jpool.Node{ID: id, Labels: []string{c.label},
			Properties: map[string]any{"name": id, "kind": "subscription", "client": c.id}})
		g.Relationships = append(g.Relationships, neo4jpool.Relationship{Type: "CONTAINS", From: tenant, To: id})
	}
	return g
}

// importAndWatch submits an import and follows its events to the end.
func (c *simClient) importAndWatch(stop, ctx context.Context) error {
	// One wait for both requests (submit and watch), so the pacing never
	// sits between them and inflates the submit-to-terminal time.
	if !c.wait(stop, 2) {
		return nil
	}
	g := c.graph()
	start := time.Now()
	sub, err := c.calls.Submit(ctx, atg.ImportTypeName, g, "")
	if err != nil {
		c.rec.callFailed(routeSubmit, err)
		return err
	}
	c.rec.succeeded(routeSubmit, time.Since(start))
	if err := watch(ctx, c.events, c.rec, sub.OperationID, start, nil); err != nil {
		return err
	}
	c.lastTenant = g.Nodes[0].ID
	return nil
}

// watch follows operation id's events to the terminal event, recording the
// time to the first event and to the terminal one (and, when submitted is
// not zero, from submit to terminal). first, when not nil, is called once
// with the first event. An operation that ends failed or cancelled is an
// error.
func watch(ctx context.Context, cl *transport.Client, rec *recorder, id string, submitted time.Time, first func()) error {
	rec.watchStarted()
	start := time.Now()
	s, err := cl.Events(ctx, id, 0)
	if err != nil {
		rec.callFailed(routeEvents, err)
		return err
	}
	defer s.Close()
	var toFirst time.Duration
	for {
		ev, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("operation %s: the event stream ended without a terminal event", id)
			rec.fail(routeEvents, "client: no terminal event", err.Error())
			return err
		}
		if err != nil {
			rec.callFailed(routeEvents, err)
			return err
		}
		if toFirst == 0 {
			toFirst = max(time.Since(start), time.Nanosecond)
			if first != nil {
				first()
			}
		}
		if !ev.Type.Terminal() {
			continue
		}
		if ev.Type == operations.EventError {
			var td operations.TerminalData
			_ = json.Unmarshal(ev.Data, &td)
			code := "unknown"
			if td.Error != nil {
				code = td.Error.Code
			}
			err := fmt.Errorf("operation %s ended %s: %s", id, td.Status, string(ev.Data))
			rec.fail(routeEvents, "operation "+string(td.Status)+": "+code, err.Error())
			return err
		}
		var e2e time.Duration
		if !submitted.IsZero() {
			e2e = time.Since(submitted)
		}
		rec.watchDone(toFirst, time.Since(start), e2e)
		return nil
	}
}

// runLoad runs the load phase: w.clients clients for w.duration, each
// using key i mod len(keys), paced per key at w.rpm requests a minute.
// Calls in flight when the duration ends may finish within drainTimeout;
// after that they are cancelled (and counted as errors). It returns the
// wall-clock time the phase took, including the drain.
func runLoad(ctx context.Context, baseURL string, keys []string, w workload, rec *recorder) (time.Duration, error) {
	pacers := map[string]*rate.Limiter{}
	clients := make([]*simClient, w.clients)
	for i := range clients {
		key := keys[i%len(keys)]
		var p *rate.Limiter
		if w.rpm > 0 {
			if p = pacers[key]; p == nil {
				p = rate.NewLimiter(rate.Limit(float64(w.rpm)/60), 2) // burst 2: an import's submit and watch
				pacers[key] = p
			}
		}
		c, err := newSimClient(i, baseURL, key, rec, p, w.label, w.importNodes)
		if err != nil {
			return 0, err
		}
		clients[i] = c
	}
	defer func() {
		for _, c := range clients {
			closeIdle(c.hc)
		}
	}()
	callCtx, cancelCalls := context.WithCancel(ctx)
	defer cancelCalls()
	start := time.Now()
	stop, cancelStop := context.WithDeadline(ctx, start.Add(w.duration))
	defer cancelStop()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			// Spread the first requests over one pacing interval so the
			// clients do not fire in lockstep.
			if w.rpm > 0 {
				sleep(stop, time.Duration(c.rng.Int64N(int64(time.Minute)/int64(w.rpm))))
			}
			c.run(stop, callCtx, w.mix)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	<-stop.Done()
	select {
	case <-done:
	case <-time.After(w.drainTimeout):
		cancelCalls()
		<-done
		return time.Since(start), fmt.Errorf("calls were still running %s after the load ended; they were cancelled", w.drainTimeout)
	case <-ctx.Done():
		cancelCalls()
		<-done
		return time.Since(start), ctx.Err()
	}
	return time.Since(start), nil
}
