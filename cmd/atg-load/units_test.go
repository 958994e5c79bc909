package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/atgraph/atg/transport"
)

func TestParseMix(t *testing.T) {
	m, err := parseMix("status=3, query=4,import=2")
	if err != nil || m != (mix{3, 4, 2}) {
		t.Fatalf("parseMix = %v, %v", m, err)
	}
	if got := m.requestsPerIteration(); got < 1.222 || got > 1.223 {
		t.Errorf("requestsPerIteration = %v, want 11/9", got)
	}
	if m.String() != "status=3,query=4,import=2" {
		t.Errorf("String = %q", m.String())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var seen [numActions]int
	for range 9000 {
		seen[m.pick(rng)]++
	}
	for a, n := range seen {
		if want := 1000 * m[a]; n < want*8/10 || n > want*12/10 {
			t.Errorf("%s picked %d times of 9000, want about %d", actionNames[a], n, want)
		}
	}
	for _, bad := range []string{"", "status", "status=-1", "walk=1", "status=0,query=0", "status=x"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q) accepted", bad)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	if l.Count != 100 || l.P50MS != 50 || l.P90MS != 90 || l.P99MS != 99 || l.MaxMS != 100 || l.MeanMS != 50.5 {
		t.Errorf("summarize = %+v", l)
	}
	if summarize(nil) != nil {
		t.Error("summarize(nil) is not nil")
	}
	if p := percentile([]time.Duration{7}, 99); p != 7 {
		t.Errorf("percentile of one sample = %v", p)
	}
}

func TestRouteOf(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         route
	}{
		{"GET", "/api/v1/status", routeStatus},
		{"POST", "/api/v1/query", routeQuery},
		{"POST", "/api/v1/operations", routeSubmit},
		{"GET", "/api/v1/operations/op_1/events", routeEvents},
		{"GET", "/api/v1/operations/op_1", routeOther},
		{"DELETE", "/api/v1/operations/op_1", routeOther},
	} {
		if got := routeOf(c.method, c.path); got != c.want {
			t.Errorf("routeOf(%s %s) = %s, want %s", c.method, c.path, got, c.want)
		}
	}
}

func TestRecorderCountsOnce(t *testing.T) {
	r := newRecorder("load")
	r.wire(routeStatus, 200, "")
	r.wire(routeStatus, 429, "")
	r.wire(routeStatus, 503, "SERVICE_UNAVAILABLE")
	// The client's error for the 503 was counted on the wire already.
	r.callFailed(routeStatus, &transport.Error{Status: 503, Code: "SERVICE_UNAVAILABLE"})
	r.callFailed(routeStatus, &wireError{err: errors.New("connection reset by peer")})
	// A failure the wire did not see is counted.
	r.callFailed(routeStatus, errors.New("transport: decode GET /api/v1/status response: unexpected EOF"))
	r.succeeded(routeStatus, time.Millisecond)
	p := r.report(time.Second)
	if len(p.Routes) != 1 {
		t.Fatalf("routes = %+v", p.Routes)
	}
	got := p.Routes[0]
	if got.Requests != 3 || got.OK != 1 || got.RateLimited != 1 || got.Errors != 2 ||
		got.ErrorKinds["HTTP 503 SERVICE_UNAVAILABLE"] != 1 || got.ErrorKinds["client: unexpected EOF"] != 1 {
		t.Errorf("route = %+v", got)
	}
}

func TestParsePromText(t *testing.T) {
	text := `# HELP atg_http_requests_total HTTP requests.
# TYPE atg_http_requests_total counter
atg_http_requests_total{code="200",method="GET",route="GET /api/v1/operations/{id}/events"} 12
atg_http_requests_total{code="429",method="GET",route="GET /api/v1/status"} 3
atg_http_requests_total{code="200",method="GET",route="GET /api/v1/status"} 1.5e+01
atg_neo4j_calls_in_flight{env="dev"} 4
odd{a="x\"y\\z\n",b=""} 1
# TYPE atg_wait_seconds histogram
atg_wait_seconds_bucket{le="0.1"} 1
atg_wait_seconds_bucket{le="+Inf"} 3
atg_wait_seconds_sum 0.75
atg_wait_seconds_count 3
`
	p, err := parsePromText(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	codes := p.httpCodes()
	if codes["GET /api/v1/operations/{id}/events"]["200"] != 12 || codes["GET /api/v1/status"]["429"] != 3 || codes["GET /api/v1/status"]["200"] != 15 {
		t.Errorf("httpCodes = %v", codes)
	}
	if p.sum("atg_neo4j_calls_in_flight", map[string]string{"env": "dev"}) != 4 {
		t.Errorf("sum = %v", p.sum("atg_neo4j_calls_in_flight", nil))
	}
	var odd promSample // the parser's order of families is not the text's
	for _, smp := range p {
		if smp.Name == "odd" {
			odd = smp
		}
	}
	if odd.Labels["a"] != "x\"y\\z\n" || odd.Value != 1 {
		t.Errorf("escaped label = %q (%v)", odd.Labels["a"], odd.Value)
	}
	// Histograms come as their _bucket, _sum and _count series.
	if p.sum("atg_wait_seconds_bucket", map[string]string{"le": "+Inf"}) != 3 || p.sum("atg_wait_seconds_count", nil) != 3 ||
		p.sum("atg_wait_seconds_sum", nil) != 0.75 || p.sum("atg_wait_seconds_bucket", map[string]string{"le": "0.1"}) != 1 {
		t.Errorf("histogram series: %+v", p)
	}
	if _, err := parsePromText(strings.NewReader("bad{a=\"x} 1\n")); err == nil {
		t.Error("unterminated label accepted")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "0"},
		{"--mix", "walk=1"},
		{"--url", "http://x"},
		{"--url", "http://x", "--spawn", "--key", "k"},
		{"--key", "k"},
		{"--url", "http://x", "--key", "k", "--pool-size", "10"},
		{"--url", "http://x", "--key", "k", "--preload-ops", "10"},
		{"--label", "bad label"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		code := runEnv(context.Background(), &env{stdout: &stdout, stderr: &stderr}, args)
		if code != exitUsage || !strings.Contains(stderr.String(), "atg-load") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runEnv(context.Background(), &env{stdout: &stdout, stderr: &stderr}, []string{"-h"}); code != exitOK || !strings.Contains(stderr.String(), "--spawn") {
		t.Errorf("-h: exit %d, %q", code, stderr.String())
	}
}

func TestDescribeWorkload(t *testing.T) {
	o := options{clients: 200, duration: time.Minute, rpm: 90, mix: mix{3, 4, 2}, importNodes: 5}
	w := describeWorkload(o, 200, ServerInfo{RateLimitRPM: 100})
	if !w.UnderRateLimit || w.OfferedRPS != 300 || w.Note != "" {
		t.Errorf("default workload = %+v", w)
	}
	o.rpm = 0
	if w := describeWorkload(o, 200, ServerInfo{RateLimitRPM: 100}); w.UnderRateLimit || !strings.Contains(w.Note, "429") {
		t.Errorf("unpaced = %+v", w)
	}
	o.rpm = 90
	if w := describeWorkload(o, 1, ServerInfo{RateLimitRPM: 100}); w.Keys != 1 || !strings.Contains(w.Note, "share 1 key") {
		t.Errorf("one key = %+v", w)
	}
}

func TestRedactArgs(t *testing.T) {
	got := strings.Join(redactArgs([]string{"--url", "http://x", "--key", "atg_dev_secret", "-key=atg_dev_secret2", "--clients", "3"}), " ")
	if strings.Contains(got, "secret") || got != "--url http://x --key *** -key=*** --clients 3" {
		t.Errorf("redactArgs = %q", got)
	}
}

// TestPacerDoesNotSpin checks that a client whose next paced slot lies past
// the end of the phase waits for the end instead of returning at once (its
// loop would otherwise spin and starve the server of CPU).
func TestPacerDoesNotSpin(t *testing.T) {
	c := &simClient{pace: rate.NewLimiter(rate.Limit(1.0/60), 2)}
	stop, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if !c.wait(stop, 2) {
		t.Fatal("the first two requests were not allowed")
	}
	start := time.Now()
	if c.wait(stop, 1) {
		t.Fatal("a request beyond the rate was allowed")
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("wait returned after %v, before the phase ended", d)
	}
}

// TestMonitorClientWaitsOutOnly429 checks the housekeeping calls: a 429 is
// waited out (Retry-After honoured) and the call repeated; any other error
// comes back after one request, since the monitoring client never retries.
func TestMonitorClientWaitsOutOnly429(t *testing.T) {
	var calls atomic.Int32
	var answer atomic.Int32     // status code of the first answer; then 200
	var retryAfter atomic.Int32 // its Retry-After, in seconds
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 && answer.Load() != http.StatusOK {
			w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Load())))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(int(answer.Load()))
			_, _ = w.Write([]byte(`{"error":{"code":"X","message":"not now"}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"client_id":"monitor","environment":"dev"}`))
	}))
	defer ts.Close()
	c, hc, err := newMonitorClient(ts.URL, "atg_dev_"+strings.Repeat("0", 64), newRecorder("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeIdle(hc)
	ctx := context.Background()

	answer.Store(http.StatusTooManyRequests)
	retryAfter.Store(1)
	start := time.Now()
	st, err := statusWithLimits(ctx, c)
	if err != nil || st.ClientID != "monitor" || calls.Load() != 2 {
		t.Fatalf("after a 429: %+v, %v after %d calls", st, err, calls.Load())
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, want Retry-After's 1s", waited)
	}

	calls.Store(0)
	answer.Store(http.StatusServiceUnavailable)
	_, err = queryWithLimits(ctx, c, transport.QueryRequest{Query: "RETURN 1", Mode: "read"})
	var ae *transport.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Fatalf("after a 503: %v after %d calls, want the 503 after one", err, calls.Load())
	}

	calls.Store(0)
	answer.Store(http.StatusTooManyRequests)
	retryAfter.Store(30)
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := statusWithLimits(cctx, c); !errors.Is(err, context.DeadlineExceeded) || calls.Load() != 1 {
		t.Errorf("context ended while waiting out a 429: %v after %d calls, want context.DeadlineExceeded after one", err, calls.Load())
	}
	if waited := time.Since(start); waited >= 15*time.Second {
		t.Errorf("gave up after %v, want at the context's end (200ms), not after Retry-After's 30s", waited)
	}
}

// failingBody is a response body whose reads fail with err.
type failingBody struct{ err error }

func (b failingBody) Read([]byte) (int, error) { return 0, b.err }
func (b failingBody) Close() error             { return nil }

// TestWatchedBody: a stream the client cancels (EventStream.Close cancels
// the request before the body is closed) is not broken; a truncated one is.
func TestWatchedBody(t *testing.T) {
	for _, tc := range []struct {
		err    error
		broken int64
	}{
		{io.EOF, 0},
		{context.Canceled, 0},
		{fmt.Errorf("read: %w", context.Canceled), 0},
		{io.ErrUnexpectedEOF, 1},
		{errors.New("connection reset by peer"), 1},
	} {
		r := newRecorder("load")
		b := &watchedBody{ReadCloser: failingBody{tc.err}, rec: r}
		_, _ = b.Read(make([]byte, 8))
		_, _ = b.Read(make([]byte, 8)) // reported once
		var errs int64
		for _, rt := range r.report(time.Second).Routes {
			errs += rt.Errors
		}
		if errs != tc.broken {
			t.Errorf("read error %v: %d broken streams recorded, want %d", tc.err, errs, tc.broken)
		}
	}
}
