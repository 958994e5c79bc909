package main

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/atgraph/atg/transport"
)

// route identifies one API route the load generator calls.
type route int

// The routes the generator counts. routeOther collects anything else a
// client sends (for example the GET an EventStream never makes today).
const (
	routeStatus route = iota
	routeQuery
	routeSubmit
	routeEvents
	routeOther
	numRoutes
)

// routeNames are the routes as the server's /metrics labels them.
var routeNames = [numRoutes]string{
	"GET /api/v1/status",
	"POST /api/v1/query",
	"POST /api/v1/operations",
	"GET /api/v1/operations/{id}/events",
	"other",
}

// String returns the route's pattern, e.g. "GET /api/v1/status".
func (r route) String() string { return routeNames[r] }

// routeOf classifies a request by method and path.
func routeOf(method, path string) route {
	switch {
	case method == "GET" && path == "/api/v1/status":
		return routeStatus
	case method == "POST" && path == "/api/v1/query":
		return routeQuery
	case method == "POST" && path == "/api/v1/operations":
		return routeSubmit
	case method == "GET" && strings.HasPrefix(path, "/api/v1/operations/") && strings.HasSuffix(path, "/events"):
		return routeEvents
	}
	return routeOther
}

// routeStats accumulates the outcomes and latencies of one route in one
// phase. Outcomes are counted per HTTP attempt on the wire (so retries and
// reconnections the client makes on its own are visible); latencies per
// successful logical call.
type routeStats struct {
	mu sync.Mutex
	// requests counts HTTP attempts.
	requests int64
	// ok counts attempts answered 2xx.
	ok int64
	// rateLimited counts attempts answered 429.
	rateLimited int64
	// errors counts attempts answered with any other status or that failed
	// at the transport level, plus logical calls that failed after a 2xx.
	errors int64
	// errorKinds counts errors by a short description.
	errorKinds map[string]int64
	// errorSamples keeps the first few full messages (never a key).
	errorSamples []string
	// latency holds the durations of successful logical calls.
	latency []time.Duration
	// first holds, for event watches, the time to the first event.
	first []time.Duration
	// endToEnd holds, for imports, the time from submit to the terminal event.
	endToEnd []time.Duration
	// watches counts event watches started; completed those that saw the
	// terminal event; connections counts event-stream connections that
	// answered 200 (connections - watches = resumptions).
	watches, completed, connections int64
}

// maxErrorSamples bounds the error messages kept per route.
const maxErrorSamples = 10

// addError counts one error of kind, keeping msg if there is room; the
// caller holds s.mu.
func (s *routeStats) addError(kind, msg string) {
	if s.errorKinds == nil {
		s.errorKinds = map[string]int64{}
	}
	s.errors++
	s.errorKinds[kind]++
	if len(s.errorSamples) < maxErrorSamples {
		s.errorSamples = append(s.errorSamples, msg)
	}
}

// recorder holds the statistics of one phase (warm-up, load, streams,
// housekeeping).
type recorder struct {
	// name is the phase's name.
	name string
	// routes holds one routeStats per route.
	routes [numRoutes]*routeStats
}

// newRecorder returns an empty recorder for phase name.
func newRecorder(name string) *recorder {
	r := &recorder{name: name}
	for i := range r.routes {
		r.routes[i] = &routeStats{}
	}
	return r
}

// wire records one HTTP attempt answered with status.
func (r *recorder) wire(rt route, status int, errCode string) {
	s := r.routes[rt]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	switch {
	case status >= 200 && status < 300:
		s.ok++
		if rt == routeEvents {
			s.connections++
		}
	case status == 429:
		s.rateLimited++
	default:
		kind := fmt.Sprintf("HTTP %d", status)
		if errCode != "" {
			kind += " " + errCode
		}
		s.addError(kind, fmt.Sprintf("%s answered %s", rt, kind))
	}
}

// wireFailure records one HTTP attempt that got no response.
func (r *recorder) wireFailure(rt route, err error) {
	s := r.routes[rt]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.addError("transport: "+errorClass(err), fmt.Sprintf("%s: %v", rt, err))
}

// streamBroken records an event stream whose body failed mid-read.
func (r *recorder) streamBroken(err error) {
	s := r.routes[routeEvents]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addError("stream broken: "+errorClass(err), fmt.Sprintf("%s: stream broken: %v", routeEvents, err))
}

// callFailed records a logical call that failed. Failures that an HTTP
// answer or a transport failure explain were already counted by the wire
// and are ignored here.
func (r *recorder) callFailed(rt route, err error) {
	if countedOnWire(err) {
		return
	}
	s := r.routes[rt]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addError("client: "+errorClass(err), fmt.Sprintf("%s: %v", rt, err))
}

// fail records a logical failure with a fixed kind (e.g. an operation that
// ended failed).
func (r *recorder) fail(rt route, kind, msg string) {
	s := r.routes[rt]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addError(kind, msg)
}

// succeeded records the latency of a successful logical call.
func (r *recorder) succeeded(rt route, d time.Duration) {
	s := r.routes[rt]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = append(s.latency, d)
}

// watchStarted counts an event watch.
func (r *recorder) watchStarted() {
	s := r.routes[routeEvents]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watches++
}

// watchDone records a watch that reached the terminal event: first is the
// time to the first event, total the time to the terminal one and e2e (if
// positive) the time from submit to the terminal event.
func (r *recorder) watchDone(first, total, e2e time.Duration) {
	s := r.routes[routeEvents]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.completed++
	s.first = append(s.first, first)
	s.latency = append(s.latency, total)
	if e2e > 0 {
		s.endToEnd = append(s.endToEnd, e2e)
	}
}

// countedOnWire reports whether err comes from an HTTP answer or a
// transport failure, which the counting transport already recorded.
func countedOnWire(err error) bool {
	var ae *transport.Error
	var we *wireError
	return errors.As(err, &ae) || errors.As(err, &we)
}

// errorClass returns a short, stable description of err for grouping.
func errorClass(err error) string {
	var ae *transport.Error
	if errors.As(err, &ae) {
		return fmt.Sprintf("HTTP %d %s", ae.Status, ae.Code)
	}
	msg := err.Error()
	for _, known := range []string{"connection reset", "connection refused", "broken pipe", "i/o timeout",
		"context deadline exceeded", "context canceled", "unexpected EOF", "EOF", "closed"} {
		if strings.Contains(msg, known) {
			return known
		}
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// Latency summarises durations in milliseconds. Percentiles use the
// nearest-rank method over every sample (no histogram approximation).
type Latency struct {
	// Count is the number of samples.
	Count int `json:"count"`
	// P50MS, P90MS, P99MS and MaxMS are the median, 90th, 99th percentile
	// and maximum in milliseconds.
	P50MS float64 `json:"p50_ms"`
	P90MS float64 `json:"p90_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	// MeanMS is the arithmetic mean in milliseconds.
	MeanMS float64 `json:"mean_ms"`
}

// summarize returns the Latency of samples (which it sorts).
func summarize(samples []time.Duration) *Latency {
	if len(samples) == 0 {
		return nil
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return &Latency{
		Count: len(samples),
		P50MS: ms(percentile(samples, 50)), P90MS: ms(percentile(samples, 90)), P99MS: ms(percentile(samples, 99)),
		MaxMS: ms(samples[len(samples)-1]), MeanMS: ms(sum / time.Duration(len(samples))),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms converts d to milliseconds with microsecond precision.
func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// RouteReport is the outcome of one route in one phase.
type RouteReport struct {
	// Route is the route pattern, e.g. "GET /api/v1/status".
	Route string `json:"route"`
	// Requests counts HTTP attempts (including retries and reconnections
	// the client made on its own).
	Requests int64 `json:"requests"`
	// OK counts attempts answered 2xx.
	OK int64 `json:"ok"`
	// RateLimited counts attempts answered 429 (the limits at work; not
	// errors).
	RateLimited int64 `json:"rate_limited_429"`
	// Errors counts everything else: other statuses, transport failures,
	// broken streams and logical failures (e.g. an operation that failed).
	Errors int64 `json:"errors"`
	// ErrorKinds counts the errors by kind.
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	// ErrorSamples are the first few error messages.
	ErrorSamples []string `json:"error_samples,omitempty"`
	// ThroughputRPS is Requests per second of the phase.
	ThroughputRPS float64 `json:"throughput_rps"`
	// Latency is measured client-side over successful calls; for event
	// watches it is the time from opening the stream to the terminal event.
	Latency *Latency `json:"latency,omitempty"`
	// FirstEvent is, for event watches, the time from opening the stream to
	// the first event.
	FirstEvent *Latency `json:"first_event,omitempty"`
	// SubmitToTerminal is, for imports, the time from submitting to the
	// terminal event (queueing and running included).
	SubmitToTerminal *Latency `json:"submit_to_terminal,omitempty"`
	// Watches, WatchesCompleted and Resumed describe event watches: started,
	// ended with the terminal event, and extra connections the client had
	// to open because a stream ended early.
	Watches          int64 `json:"watches,omitempty"`
	WatchesCompleted int64 `json:"watches_completed,omitempty"`
	Resumed          int64 `json:"resumed,omitempty"`
}

// PhaseReport is the outcome of one phase.
type PhaseReport struct {
	// Phase names it: warmup, load, streams or housekeeping.
	Phase string `json:"phase"`
	// DurationSeconds is its wall-clock duration.
	DurationSeconds float64 `json:"duration_seconds"`
	// Requests, OK, RateLimited and Errors are the sums over the routes.
	Requests    int64 `json:"requests"`
	OK          int64 `json:"ok"`
	RateLimited int64 `json:"rate_limited_429"`
	Errors      int64 `json:"errors"`
	// ThroughputRPS is Requests per second; OKThroughputRPS counts only 2xx.
	ThroughputRPS   float64 `json:"throughput_rps"`
	OKThroughputRPS float64 `json:"ok_throughput_rps"`
	// Routes are the routes that saw traffic.
	Routes []RouteReport `json:"routes"`
}

// report summarises the recorder over a phase of duration d.
func (r *recorder) report(d time.Duration) PhaseReport {
	p := PhaseReport{Phase: r.name, DurationSeconds: round(d.Seconds(), 3)}
	secs := d.Seconds()
	for i, s := range r.routes {
		s.mu.Lock()
		rr := RouteReport{
			Route: route(i).String(), Requests: s.requests, OK: s.ok, RateLimited: s.rateLimited, Errors: s.errors,
			ErrorKinds: maps.Clone(s.errorKinds), ErrorSamples: slices.Clone(s.errorSamples),
			Latency: summarize(s.latency), FirstEvent: summarize(s.first), SubmitToTerminal: summarize(s.endToEnd),
			Watches: s.watches, WatchesCompleted: s.completed,
		}
		if s.watches > 0 {
			rr.Resumed = max(s.connections-s.watches, 0)
		}
		s.mu.Unlock()
		if rr.Requests == 0 && rr.Errors == 0 && rr.Watches == 0 {
			continue
		}
		if secs > 0 {
			rr.ThroughputRPS = round(float64(rr.Requests)/secs, 2)
		}
		p.Requests += rr.Requests
		p.OK += rr.OK
		p.RateLimited += rr.RateLimited
		p.Errors += rr.Errors
		p.Routes = append(p.Routes, rr)
	}
	if secs > 0 {
		p.ThroughputRPS = round(float64(p.Requests)/secs, 2)
		p.OKThroughputRPS = round(float64(p.OK)/secs, 2)
	}
	return p
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// round rounds f to n decimals.
func round(f float64, n int) float64 {
	p := math.Pow10(n)
	return math.Round(f*p) / p
}
