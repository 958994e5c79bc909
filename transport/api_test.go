package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/atgraph/atg/audit"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is an API served by httptest. With fixtureOpts.db it talks to the
// real test Neo4j (and needs one); otherwise its database is a closed port.
type fixture struct {
	t        testing.TB
	srv      *httptest.Server
	api      *API
	engine   *operations.Engine
	keys     map[string]string // name → key: reader, writer, admin, other
	store    *auth.MemoryStore // holds keys
	release  chan struct{}
	settings neo4jtest.Settings
}

type fixtureOpts struct {
	// db: the test queries Neo4j, so it needs the test database
	// (neo4jtest.Require); without it the API's database is a closed port.
	db bool
	// neo4jURI replaces the database's address (with db: same credentials).
	neo4jURI     string
	queryMaxRows int
	maxBody      int64
	heartbeat    time.Duration
	wrap         func(http.Handler) http.Handler
	rpm, burst   int
	authFails    int
	maxActive    int
	proxies      string
	https        bool
	audit        io.Writer
	cors         []string
	// authLog receives the key authenticator's log; onAuthFailure is
	// called, besides the audit, on each failed authentication.
	authLog       io.Writer
	onAuthFailure func(*http.Request, error)
	// log receives the API's own log (default: discarded).
	log io.Writer
	// retryTime is the pool's MaxTransactionRetryTime (default: the
	// driver's 30 s); queryMaxBytes the API's QueryMaxBytes.
	retryTime     time.Duration
	queryMaxBytes int64
	// tokenRecheck is Options.EventTokenRecheck.
	tokenRecheck time.Duration
}

// unreachableNeo4j is a closed port: the database of fixtures without db.
const unreachableNeo4j = "bolt://127.0.0.1:1"

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	s := neo4jtest.Settings{URI: unreachableNeo4j, User: "neo4j", Password: "unused"}
	if o.db {
		s = neo4jtest.Require(t)
	}
	ctx := context.Background()
	uri := s.URI
	if o.neo4jURI != "" {
		uri = o.neo4jURI
	}
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: quiet, HealthTimeout: time.Second})
	if err := m.Configure(ctx, "dev", neo4jpool.Config{URI: uri, User: s.User, Password: s.Password, Database: s.Database,
		ConnectionTimeout: 2 * time.Second, MaxTransactionRetryTime: o.retryTime}.WithDefaults()); err != nil {
		t.Fatal(err)
	}
	store := auth.NewMemoryStore()
	keys := map[string]string{}
	for name, scopes := range map[string][]auth.Scope{
		"reader": {auth.ScopeRead}, "writer": {auth.ScopeRead, auth.ScopeWrite},
		"admin": {auth.ScopeAdmin}, "other": {auth.ScopeRead, auth.ScopeWrite},
	} {
		k, _, err := store.Create(ctx, auth.CreateOptions{ClientID: name, Environment: auth.Dev, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
	}
	authn, err := auth.NewAuthenticator(store, auth.Dev)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, keys: keys, store: store, release: make(chan struct{}), settings: s}
	reg := &operations.Registry{}
	must(t, reg.Register(operations.Type{Name: "echo", Run: func(_ context.Context, p json.RawMessage, r operations.Reporter) (any, error) {
		r.Progress(operations.Progress{Done: 1, Total: 2, Phase: "half"})
		r.Log("info", "echoing")
		return p, nil
	}}))
	must(t, reg.Register(operations.Type{Name: "block", Run: func(ctx context.Context, _ json.RawMessage, r operations.Reporter) (any, error) {
		r.Progress(operations.Progress{Done: 0, Total: 1, Phase: "waiting"})
		select {
		case <-f.release:
			return map[string]bool{"released": true}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}))
	must(t, reg.Register(operations.Type{Name: "ticks", Run: func(ctx context.Context, p json.RawMessage, r operations.Reporter) (any, error) {
		var v struct{ N int }
		_ = json.Unmarshal(p, &v)
		for i := 1; i <= v.N; i++ {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.Progress(operations.Progress{Done: int64(i), Total: int64(v.N)})
			time.Sleep(2 * time.Millisecond)
		}
		return map[string]int{"ticks": v.N}, nil
	}}))
	must(t, reg.Register(operations.Type{Name: "needs-tenant", Validate: func(p json.RawMessage) error {
		var v struct {
			TenantID string `json:"tenant_id"`
		}
		if json.Unmarshal(p, &v) != nil || v.TenantID == "" {
			return &operations.ValidationError{Field: "tenant_id", Message: "is required"}
		}
		return nil
	}, Run: func(context.Context, json.RawMessage, operations.Reporter) (any, error) { return nil, nil }}))
	engine, err := operations.New(operations.Config{Registry: reg, MaxConcurrent: 2, Logger: quiet, MaxActivePerClient: o.maxActive})
	must(t, err)
	proxies, err := ParseTrustedProxies(o.proxies)
	must(t, err)
	var auditLog *audit.Logger
	if o.audit != nil {
		auditLog = audit.New(o.audit)
	}
	var api *API
	authLog := quiet
	if o.authLog != nil {
		authLog = slog.New(slog.NewTextHandler(o.authLog, nil))
	}
	mw := &auth.Middleware{Authenticator: authn, Logger: authLog, OnFailure: func(r *http.Request, reason error) {
		api.AuditAuthFailure(r, reason)
		if o.onAuthFailure != nil {
			o.onAuthFailure(r, reason)
		}
	}}
	apiLog := quiet
	if o.log != nil {
		apiLog = slog.New(slog.NewTextHandler(o.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	api, err = NewAPI(Options{
		Environment: "dev", Version: "test", Authenticate: mw.Wrap,
		Engine: engine, DB: m, Logger: apiLog, QueryMaxRows: o.queryMaxRows, MaxBodyBytes: o.maxBody, QueryMaxBytes: o.queryMaxBytes,
		HeartbeatInterval: o.heartbeat, Collectors: []prometheus.Collector{m.Collector()},
		RateLimitRPM: o.rpm, RateLimitBurst: o.burst, AuthFailuresPerMinute: o.authFails,
		TrustedProxies: proxies, RequireHTTPS: o.https, Audit: auditLog, CORSOrigins: o.cors,
		CheckKey: authn.CheckKeyID, EventTokenRecheck: o.tokenRecheck,
	})
	must(t, err)
	f.api, f.engine = api, engine
	var h http.Handler = api
	if o.wrap != nil {
		h = o.wrap(api)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = engine.Close(ctx)
		f.srv.Close()
		_ = m.CloseAll(ctx)
	})
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// do sends a request; key names a fixture key ("" = none); body may be a
// string (sent as JSON) or an io.Reader.
func (f *fixture) do(method, path, key string, body any, hdr ...string) *http.Response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	must(f.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+f.keys[key])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	must(f.t, err)
	f.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// wantError checks an error response: status, code, envelope and request ID.
func wantError(t *testing.T, resp *http.Response, status int, code string) *Error {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var env struct {
		Error *Error `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		t.Fatalf("not an error envelope: %s", body)
	}
	if env.Error.Code != code || env.Error.Message == "" {
		t.Errorf("got %+v, want code %s", env.Error, code)
	}
	if env.Error.RequestID == "" || env.Error.RequestID != resp.Header.Get(HeaderRequestID) {
		t.Errorf("request_id %q vs header %q", env.Error.RequestID, resp.Header.Get(HeaderRequestID))
	}
	return env.Error
}

func TestOpenAPIDescribesExactlyTheRoutes(t *testing.T) {
	t.Parallel()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	must(t, json.Unmarshal(OpenAPIDocument, &doc))
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	var described []string
	for path, methods := range doc.Paths {
		for m := range methods {
			described = append(described, strings.ToUpper(m)+" "+path)
		}
	}
	var registered []string
	for _, rt := range (&API{}).table() {
		registered = append(registered, rt.method+" "+rt.path)
	}
	slices.Sort(described)
	slices.Sort(registered)
	if diff := cmp.Diff(registered, described); diff != "" {
		t.Errorf("routes (-registered +described):\n%s", diff)
	}
}

func TestRoutingErrorsAndRequestIDs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	wantError(t, f.do("GET", "/nope", "", nil), 404, CodeNotFound)
	wantError(t, f.do("GET", "/api/v2/health", "", nil), 404, CodeNotFound)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		resp := f.do(m, "/api/v1/health", "", nil)
		wantError(t, resp, 405, CodeMethodNotAllowed)
		if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") {
			t.Errorf("%s: Allow %q", m, allow)
		}
	}
	resp := f.do("GET", "/livez", "", nil, HeaderRequestID, "client-request-123")
	if got := resp.Header.Get(HeaderRequestID); got != "client-request-123" {
		t.Errorf("echoed request id %q", got)
	}
	resp = f.do("GET", "/livez", "", nil, HeaderRequestID, "bad id with spaces")
	if got := resp.Header.Get(HeaderRequestID); got == "" || strings.Contains(got, " ") {
		t.Errorf("invalid request id not replaced: %q", got)
	}
	a, b := f.do("GET", "/livez", "", nil).Header.Get(HeaderRequestID), f.do("GET", "/livez", "", nil).Header.Get(HeaderRequestID)
	if a == "" || a == b {
		t.Errorf("generated ids %q %q", a, b)
	}
}

func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{db: true})
	resp := f.do("GET", "/livez", "", nil)
	if resp.StatusCode != 200 {
		t.Errorf("livez %d", resp.StatusCode)
	}
	resp = f.do("GET", "/readyz", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/health+json" {
		t.Fatalf("readyz %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ready := decode[healthResponse](t, resp)
	rt := ready.Checks["neo4j:responseTime"]
	if ready.Status != "pass" || len(rt) != 1 || rt[0].Status != "pass" || rt[0].ObservedUnit != "ms" || rt[0].ObservedValue <= 0 {
		t.Errorf("readyz body %+v", ready)
	}
	for i := 0; i < 5; i++ {
		resp = f.do("GET", "/api/v1/health?foo=bar", "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("health %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		h := decode[map[string]any](t, resp)
		keys := slices.Sorted(maps.Keys(h))
		if diff := cmp.Diff([]string{"environment", "neo4j_status", "status", "timestamp", "uptime_seconds", "version"}, keys); diff != "" {
			t.Errorf("health fields: %s", diff)
		}
		if h["status"] != "healthy" || h["neo4j_status"] != "connected" || h["environment"] != "dev" || h["version"] != "test" {
			t.Errorf("health %v", h)
		}
	}
}

func TestHealthWhenNeo4jIsDown(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	proxy := neo4jtest.NewProxy(t, s.Address())
	proxy.Stop()
	f := newFixture(t, fixtureOpts{db: true, neo4jURI: proxy.URI("bolt")})
	start := time.Now()
	resp := f.do("GET", "/readyz", "", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Content-Type") != "application/health+json" {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("readyz took %s with Neo4j down", d)
	}
	ready := decode[healthResponse](t, resp)
	if ready.Status != "fail" || !strings.Contains(ready.Output, "neo4j") || ready.Checks["neo4j:responseTime"][0].Status != "fail" {
		t.Errorf("readyz body %+v", ready)
	}
	h := decode[map[string]any](t, f.do("GET", "/api/v1/health", "", nil))
	if h["status"] != "degraded" || h["neo4j_status"] != "disconnected" {
		t.Errorf("health %v", h)
	}
	if resp := f.do("GET", "/livez", "", nil); resp.StatusCode != 200 {
		t.Errorf("livez must not check dependencies: %d", resp.StatusCode)
	}
	wantError(t, f.do("POST", "/api/v1/query", "reader", `{"query":"RETURN 1"}`), 503, CodeUnavailable)
	// Up again: within the 1 s cache, readyz recovers.
	must(t, proxy.Start())
	deadline := time.Now().Add(10 * time.Second)
	for f.do("GET", "/readyz", "", nil).StatusCode != 200 {
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// panicReader fails the test if the body is read: authentication must come
// first.
type panicReader struct{ t *testing.T }

func (p panicReader) Read([]byte) (int, error) {
	p.t.Error("request body was read before authentication")
	return 0, io.EOF
}

func TestAuthenticationComesFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	for _, path := range []string{"/api/v1/query", "/api/v1/operations"} {
		// Served in-process so that only the server could read the body.
		req := httptest.NewRequest("POST", path, panicReader{t})
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.api.ServeHTTP(rec, req)
		if rec.Code != 401 || !strings.Contains(rec.Body.String(), CodeAuthenticationFailed) {
			t.Errorf("%s without a key: %d %s", path, rec.Code, rec.Body)
		}
		resp := f.do("POST", path, "", `{not json`, "Content-Type", "text/plain")
		wantError(t, resp, 401, CodeAuthenticationFailed)
	}
	for _, path := range []string{"/api/v1/status", "/api/v1/operations", "/api/v1/operations/x", "/api/v1/operations/x/events"} {
		wantError(t, f.do("GET", path, "", nil), 401, CodeAuthenticationFailed)
	}
	wantError(t, f.do("DELETE", "/api/v1/operations/x", "", nil), 401, CodeAuthenticationFailed)
	// Scopes: a read-only key cannot submit or write.
	wantError(t, f.do("POST", "/api/v1/operations", "reader", `{"type":"echo"}`), 403, CodeForbidden)
	wantError(t, f.do("POST", "/api/v1/query", "reader", `{"query":"CREATE (n) RETURN n","mode":"write"}`), 403, CodeForbidden)
}

func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{db: true})
	resp := f.do("GET", "/api/v1/status", "writer", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	type statusBody struct {
		ClientID string   `json:"client_id"`
		Scopes   []string `json:"scopes"`
		Neo4j    struct {
			Status, Version, Edition, Database string
			LatencyMS                          float64 `json:"latency_ms"`
		} `json:"neo4j"`
		Pool struct {
			PoolMax        int64 `json:"pool_max"`
			Recommendation struct{ Action, Reason string }
		} `json:"pool"`
		Operations map[string]int `json:"operations"`
	}
	st := decode[statusBody](t, resp)
	if st.ClientID != "writer" || st.Neo4j.Status != "connected" || !strings.HasPrefix(st.Neo4j.Version, "5.") ||
		st.Neo4j.Edition != "community" || st.Pool.PoolMax != 50 || st.Pool.Recommendation.Action == "" || len(st.Operations) != 5 {
		t.Errorf("status %+v", st)
	}
}

func TestQuery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{db: true, queryMaxRows: 5})
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, f.settings)
	neo4jtest.CleanupLabel(t, d, f.settings, label)

	q := func(key string, body any) *http.Response { return f.do("POST", "/api/v1/query", key, body) }
	// Write mode creates; values come back faithfully.
	resp := q("writer", map[string]any{"mode": "write", "parameters": map[string]any{"big": json.Number("4611686018427387905"), "name": "x"},
		"query": "CREATE (n:" + label + " {big: $big, name: $name, at: datetime('2024-05-06T07:08:09.123456789+02:00'), d: date('2024-05-06'), dur: duration('P1DT2H')}) RETURN n, n.big AS big, 1.5 AS f"})
	if resp.StatusCode != 200 {
		t.Fatalf("write query: %d %s", resp.StatusCode, readBody(resp))
	}
	raw := readBody(resp)
	if !strings.Contains(raw, `"big":4611686018427387905`) || !strings.Contains(raw, `"kind":"node"`) || !strings.Contains(raw, `"labels":["`+label+`"]`) ||
		!strings.Contains(raw, `"at":"2024-05-06T07:08:09.123456789+02:00"`) || !strings.Contains(raw, `"d":"2024-05-06"`) || !strings.Contains(raw, `"dur":"P0M1DT7200S"`) {
		t.Errorf("values not faithful: %s", raw)
	}
	var qr QueryResponse
	must(t, json.Unmarshal([]byte(raw), &qr))
	if diff := cmp.Diff([]string{"n", "big", "f"}, qr.Columns); diff != "" || qr.RowCount != 1 || qr.Truncated || qr.ExecutionTimeMS <= 0 {
		t.Errorf("response %+v", qr)
	}
	// Read mode: the server refuses writes.
	e := wantError(t, q("writer", map[string]any{"query": "CREATE (n:" + label + ") RETURN n"}), 400, CodeQuery)
	if e.Details["neo4j_code"] != "Neo.ClientError.Statement.AccessMode" {
		t.Errorf("read-mode write: %+v", e)
	}
	// Row cap.
	qr = decode[QueryResponse](t, q("reader", map[string]any{"query": "UNWIND range(1, 20) AS x RETURN x"}))
	if qr.RowCount != 5 || !qr.Truncated || qr.TruncatedReason != TruncatedMaxRows || len(qr.Rows) != 5 {
		t.Errorf("row cap: %+v", qr)
	}
	// Syntax error carries Neo4j's code.
	e = wantError(t, q("reader", map[string]any{"query": "RETRUN 1"}), 400, CodeQuery)
	if e.Details["neo4j_code"] != "Neo.ClientError.Statement.SyntaxError" {
		t.Errorf("syntax error: %+v", e)
	}
	// Parameters are parameters, never spliced.
	qr = decode[QueryResponse](t, q("reader", map[string]any{"query": "RETURN $p AS p", "parameters": map[string]any{"p": "x' RETURN 1 //"}}))
	if qr.Rows[0][0] != "x' RETURN 1 //" {
		t.Errorf("parameter: %v", qr.Rows)
	}
	// timeout_ms honoured.
	start := time.Now()
	e = wantError(t, q("reader", map[string]any{"query": "UNWIND range(1, 1000000000) AS x WITH x WHERE x < 0 RETURN count(x)", "timeout_ms": 300}), 400, CodeQuery)
	if code, _ := e.Details["neo4j_code"].(string); !strings.HasPrefix(code, "Neo.ClientError.Transaction.TransactionTimedOut") {
		t.Errorf("timeout not reported by Neo4j's transaction timeout: %+v", e)
	}
	if time.Since(start) > 10*time.Second || !strings.Contains(e.Message, "300 ms") {
		t.Errorf("timeout: %+v after %s", e, time.Since(start))
	}
	// Bad requests.
	for name, tc := range map[string]struct {
		body   string
		ctype  string
		status int
		code   string
		msg    string
	}{
		"unknown field": {`{"query":"RETURN 1","paramters":{}}`, "application/json", 400, CodeValidation, `unknown field "paramters"`},
		"missing query": {`{}`, "application/json", 400, CodeValidation, "query is required"},
		"bad mode":      {`{"query":"RETURN 1","mode":"admin"}`, "application/json", 400, CodeValidation, "mode"},
		"bad timeout":   {`{"query":"RETURN 1","timeout_ms":-1}`, "application/json", 400, CodeValidation, "timeout_ms"},
		"wrong type":    {`{"query":5}`, "application/json", 400, CodeValidation, "query must be a string"},
		"not json":      {`{"query":`, "application/json", 400, CodeValidation, "truncated"},
		"two objects":   {`{"query":"RETURN 1"}{}`, "application/json", 400, CodeValidation, "exactly one"},
		"empty":         {``, "application/json", 400, CodeValidation, "required"},
		"text/plain":    {`query=RETURN 1`, "text/plain", 415, CodeUnsupportedMedia, "JSON"},
		"form":          {`query=RETURN+1`, "application/x-www-form-urlencoded", 415, CodeUnsupportedMedia, "JSON"},
	} {
		t.Run(name, func(t *testing.T) {
			e := wantError(t, f.do("POST", "/api/v1/query", "reader", tc.body, "Content-Type", tc.ctype), tc.status, tc.code)
			if !strings.Contains(e.Message, tc.msg) {
				t.Errorf("message %q lacks %q", e.Message, tc.msg)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{maxBody: 1024})
	big := `{"query":"RETURN 1","parameters":{"p":"` + strings.Repeat("x", 2000) + `"}}`
	wantError(t, f.do("POST", "/api/v1/query", "reader", big), 413, CodePayloadTooLarge)
	// Chunked (no Content-Length) is caught while reading.
	wantError(t, f.do("POST", "/api/v1/query", "reader", io.MultiReader(strings.NewReader(big))), 413, CodePayloadTooLarge)
}

func readBody(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestOperationsLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	// Unknown type names the registered ones; missing params are named.
	e := wantError(t, f.do("POST", "/api/v1/operations", "writer", `{"type":"scan"}`), 400, CodeValidation)
	if !strings.Contains(e.Message, "block, echo, needs-tenant, ticks") {
		t.Errorf("unknown type: %+v", e)
	}
	e = wantError(t, f.do("POST", "/api/v1/operations", "writer", `{"params":{}}`), 400, CodeValidation)
	if e.Message != "operation type is required; supported: block, echo, needs-tenant, ticks" || e.Details["field"] != "type" {
		t.Errorf("missing type: %+v", e)
	}
	e = wantError(t, f.do("POST", "/api/v1/operations", "writer", `{"type":"needs-tenant","params":{}}`), 400, CodeValidation)
	if e.Details["field"] != "params.tenant_id" {
		t.Errorf("missing param: %+v", e)
	}
	wantError(t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo","params":[1]}`), 400, CodeValidation)
	wantError(t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo","params":null}`), 400, CodeValidation)
	wantError(t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo","extra":1}`), 400, CodeValidation)

	resp := f.do("POST", "/api/v1/operations", "writer", `{"type":"echo","params":{"hello":"world"}}`)
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d %s", resp.StatusCode, readBody(resp))
	}
	sub := decode[Submitted](t, resp)
	if sub.Type != "echo" || sub.Status != "queued" && sub.Status != "running" || sub.Links.Self != "/api/v1/operations/"+sub.OperationID ||
		!strings.HasPrefix(sub.Links.Events, sub.Links.Self+"/events?token=") || resp.Header.Get("Location") != sub.Links.Self {
		t.Errorf("submit response %+v", sub)
	}
	if _, err := f.engine.Wait(context.Background(), sub.OperationID); err != nil {
		t.Fatal(err)
	}
	op := decode[OperationView](t, f.do("GET", sub.Links.Self, "writer", nil))
	if op.Status != operations.Completed || string(op.Result) != `{"hello":"world"}` || op.Progress == nil || op.Progress.Phase != "half" || op.FinishedAt == nil {
		t.Errorf("get: %+v", op)
	}
	// Only the owner (and admin) sees it.
	wantError(t, f.do("GET", sub.Links.Self, "other", nil), 404, CodeNotFound)
	wantError(t, f.do("DELETE", sub.Links.Self, "other", nil), 404, CodeNotFound)
	wantError(t, f.do("GET", sub.Links.Self+"/events", "other", nil), 404, CodeNotFound)
	if resp := f.do("GET", sub.Links.Self, "admin", nil); resp.StatusCode != 200 {
		t.Errorf("admin get: %d", resp.StatusCode)
	}
	// Finished: cancelling is a conflict.
	e = wantError(t, f.do("DELETE", sub.Links.Self, "writer", nil), 409, CodeNotCancellable)
	if e.Details["status"] != "completed" {
		t.Errorf("409 details %v", e.Details)
	}
	wantError(t, f.do("GET", "/api/v1/operations/op_nope", "writer", nil), 404, CodeNotFound)

	// List: own only, newest first, filters and bounds.
	list := decode[ListResponse](t, f.do("GET", "/api/v1/operations", "writer", nil))
	if list.Total != 1 || list.Operations[0].ID != sub.OperationID || list.Limit != 50 {
		t.Errorf("list: %+v", list)
	}
	if list := decode[ListResponse](t, f.do("GET", "/api/v1/operations", "other", nil)); list.Total != 0 || list.Operations == nil {
		t.Errorf("other's list: %+v", list)
	}
	if list := decode[ListResponse](t, f.do("GET", "/api/v1/operations?status=completed&type=echo&limit=1&offset=0", "admin", nil)); list.Total != 1 {
		t.Errorf("admin list: %+v", list)
	}
	for _, q := range []string{"status=done", "limit=0", "limit=501", "offset=-1", "limit=x"} {
		wantError(t, f.do("GET", "/api/v1/operations?"+q, "writer", nil), 400, CodeValidation)
	}
}

// TestListParametersHaveOneMessage: a limit or offset out of range gets the
// same VALIDATION_ERROR from the HTTP API, the remote client and
// ListOperations (the embedded client's path); non-integers get it too.
func TestListParametersHaveOneMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	ctx := context.Background()
	c := f.client(t, "writer")
	const limitMsg, offsetMsg = "limit must be an integer between 1 and 500", "offset must be an integer between 0 and 2147483647"
	for _, tc := range []struct {
		query string
		o     ListOptions
		field string
		msg   string
	}{
		{"limit=501", ListOptions{Limit: 501}, "limit", limitMsg},
		{"limit=-1", ListOptions{Limit: -1}, "limit", limitMsg},
		{"offset=-1", ListOptions{Offset: -1}, "offset", offsetMsg},
		{"offset=2147483648", ListOptions{Offset: 1 << 31}, "offset", offsetMsg},
	} {
		e := wantError(t, f.do("GET", "/api/v1/operations?"+tc.query, "writer", nil), 400, CodeValidation)
		if e.Message != tc.msg || e.Details["field"] != tc.field {
			t.Errorf("GET ?%s: %q %v, want %q", tc.query, e.Message, e.Details, tc.msg)
		}
		var ae *Error
		_, err := ListOperations(ctx, f.engine, auth.Identity{ClientID: "writer"}, tc.o)
		if !errors.As(err, &ae) || ae.Code != CodeValidation || ae.Message != tc.msg || ae.Details["field"] != tc.field {
			t.Errorf("ListOperations(%+v): %v, want %q", tc.o, err, tc.msg)
		}
		_, err = c.List(ctx, tc.o)
		if !errors.As(err, &ae) || ae.Code != CodeValidation || ae.Message != tc.msg {
			t.Errorf("Client.List(%+v): %v, want %q", tc.o, err, tc.msg)
		}
	}
	for query, msg := range map[string]string{"limit=0": limitMsg, "limit=x": limitMsg, "limit=": limitMsg, "offset=1.5": offsetMsg, "offset=99999999999999999999": offsetMsg} {
		if e := wantError(t, f.do("GET", "/api/v1/operations?"+query, "writer", nil), 400, CodeValidation); e.Message != msg {
			t.Errorf("GET ?%s: %q, want %q", query, e.Message, msg)
		}
	}
	// In range, both ends.
	if list := decode[ListResponse](t, f.do("GET", "/api/v1/operations?limit=500&offset=2147483647", "writer", nil)); list.Limit != 500 || list.Offset != 2147483647 {
		t.Errorf("list at the bounds: %+v", list)
	}
	if list, err := ListOperations(ctx, f.engine, auth.Identity{ClientID: "writer"}, ListOptions{}); err != nil || list.Limit != 50 || list.Offset != 0 {
		t.Errorf("ListOperations defaults: %+v %v", list, err)
	}
}

func TestCancelRunningOperation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	sub := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"block"}`))
	deadline := time.Now().Add(5 * time.Second)
	for decode[OperationView](t, f.do("GET", sub.Links.Self, "writer", nil)).Status != operations.Running {
		if time.Now().After(deadline) {
			t.Fatal("never running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp := f.do("DELETE", sub.Links.Self, "writer", nil)
	op := decode[OperationView](t, resp)
	if resp.StatusCode != 200 || op.Status != operations.Cancelled || op.Error == nil || op.Error.Code != "CANCELLED" {
		t.Errorf("cancel: %d %+v", resp.StatusCode, op)
	}
	evs := readEvents(t, f, sub.Links.Self+"/events", "writer", "")
	if got := eventTypes(evs); !cmp.Equal(got, []string{"status", "status", "progress", "error"}) {
		t.Errorf("events after cancel: %v", got)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	a := f.do("POST", "/api/v1/operations", "writer", `{"type":"echo","params":{"n":1}}`, HeaderIdempotencyKey, "retry-1")
	b := f.do("POST", "/api/v1/operations", "writer", `{"type":"echo","params":{ "n": 1 }}`, HeaderIdempotencyKey, "retry-1")
	sa, sb := decode[Submitted](t, a), decode[Submitted](t, b)
	if sa.OperationID != sb.OperationID || b.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %s vs %s", sa.OperationID, sb.OperationID)
	}
	wantError(t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo","params":{"n":2}}`, HeaderIdempotencyKey, "retry-1"), 409, CodeIdempotencyReused)
	c := decode[Submitted](t, f.do("POST", "/api/v1/operations", "other", `{"type":"echo","params":{"n":1}}`, HeaderIdempotencyKey, "retry-1"))
	if c.OperationID == sa.OperationID {
		t.Error("another client's key must not replay")
	}
	wantError(t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo"}`, HeaderIdempotencyKey, "has space"), 400, CodeValidation)
}

// readEvents reads an event stream to its end.
func readEvents(t *testing.T, f *fixture, path, key, lastID string) []SSEEvent {
	t.Helper()
	hdr := []string{}
	if lastID != "" {
		hdr = append(hdr, "Last-Event-ID", lastID)
	}
	resp := f.do("GET", path, key, nil, hdr...)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), readBody(resp))
	}
	r := NewSSEReader(resp.Body)
	var out []SSEEvent
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		must(t, err)
		out = append(out, ev)
	}
}

func eventTypes(evs []SSEEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Event
	}
	return out
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{heartbeat: 50 * time.Millisecond})
	sub := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"block"}`))

	// Two watchers follow live; heartbeats arrive while nothing happens.
	var wg sync.WaitGroup
	results := make([][]SSEEvent, 2)
	var rawFirst string
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				resp := f.do("GET", sub.Links.Self+"/events", "writer", nil)
				b, _ := io.ReadAll(resp.Body)
				rawFirst = string(b)
				r := NewSSEReader(strings.NewReader(rawFirst))
				for {
					ev, err := r.Next()
					if err != nil {
						return
					}
					results[i] = append(results[i], ev)
				}
			}
			results[i] = readEvents(t, f, sub.Links.Events, "", "") // by token, no key
		}()
	}
	time.Sleep(300 * time.Millisecond)
	close(f.release)
	wg.Wait()
	want := []string{"status", "status", "progress", "complete"}
	for i, evs := range results {
		if got := eventTypes(evs); !cmp.Equal(got, want) {
			t.Errorf("watcher %d: %v", i, got)
		}
		for j, ev := range evs {
			if ev.ID != fmt.Sprint(j+1) {
				t.Errorf("watcher %d event %d id %q", i, j, ev.ID)
			}
		}
	}
	if !strings.Contains(rawFirst, ": keepalive") || !strings.HasPrefix(rawFirst, "retry: 2000") {
		t.Errorf("stream lacks retry or heartbeat: %q", rawFirst)
	}
	var term operations.TerminalData
	must(t, json.Unmarshal(results[0][3].Data, &term))
	if term.Status != operations.Completed || string(term.Result) != `{"released":true}` || term.OperationID != sub.OperationID {
		t.Errorf("terminal data %s", results[0][3].Data)
	}
	// Replay after the end, and resume after Last-Event-ID.
	if got := eventTypes(readEvents(t, f, sub.Links.Self+"/events", "writer", "")); !cmp.Equal(got, want) {
		t.Errorf("replay: %v", got)
	}
	if evs := readEvents(t, f, sub.Links.Self+"/events", "writer", "2"); !cmp.Equal(eventTypes(evs), want[2:]) || evs[0].ID != "3" {
		t.Errorf("resume after 2: %v", evs)
	}
	// After the largest ID there is nothing; signs and values beyond it are refused.
	if evs := readEvents(t, f, sub.Links.Self+"/events", "writer", "9223372036854775807"); len(evs) != 0 {
		t.Errorf("after the largest Last-Event-ID: %v", evs)
	}
	if evs := readEvents(t, f, sub.Links.Self+"/events", "writer", "0003"); !cmp.Equal(eventTypes(evs), want[3:]) {
		t.Errorf("resume after 0003: %v", evs)
	}
	for _, id := range []string{"x", "+1", "-0", "9223372036854775808"} {
		wantError(t, f.do("GET", sub.Links.Self+"/events", "writer", nil, "Last-Event-ID", id), 400, CodeValidation)
	}
}

// TestLastEventIDSchemaMatchesParser: openapi.json's pattern for
// Last-Event-ID accepts exactly what the server accepts: empty, or decimal
// digits of a value up to math.MaxInt64.
func TestLastEventIDSchemaMatchesParser(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name, In string
				Schema   struct{ Pattern string }
			}
		}
	}
	must(t, json.Unmarshal(OpenAPIDocument, &doc))
	var pattern string
	for _, p := range doc.Paths["/api/v1/operations/{id}/events"]["get"].Parameters {
		if p.Name == "Last-Event-ID" && p.In == "header" {
			pattern = p.Schema.Pattern
		}
	}
	re, err := regexp.Compile(pattern)
	if err != nil || pattern == "" {
		t.Fatalf("pattern %q: %v", pattern, err)
	}
	values := []string{"", "0", "00", "7", "007", "123456789012345678", "1234567890123456789", "9223372036854775807",
		"09223372036854775807", "9223372036854775808", "9223372036854775810", "9300000000000000000", "9999999999999999999",
		"10000000000000000000", "18446744073709551615", "+5", "-0", "-1", " 5", "5 ", "1e3", "0x10", "٣"}
	// Around every digit of the largest value: one below, one above.
	const largest = "9223372036854775807"
	for i := range largest {
		for _, d := range "0123456789" {
			values = append(values, largest[:i]+string(d)+largest[i+1:])
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		values = append(values, strconv.FormatUint(rng.Uint64()>>rng.IntN(64), 10))
	}
	for _, v := range values {
		n, ok := parseLastEventID(v)
		if re.MatchString(v) != ok {
			t.Errorf("%q: schema says %v, server %v", v, re.MatchString(v), ok)
		}
		if want, err := strconv.ParseUint(v, 10, 64); ok && (err != nil || uint64(n) != want) && v != "" {
			t.Errorf("%q parsed as %d", v, n)
		}
	}
}

func TestEventTokens(t *testing.T) {
	t.Parallel()
	var auditBuf syncWriter
	f := newFixture(t, fixtureOpts{audit: &auditBuf})
	a := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo"}`))
	b := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo"}`))
	token := strings.TrimPrefix(a.Links.Events, a.Links.Self+"/events?token=")
	// The token opens only that operation's events, nothing else.
	wantError(t, f.do("GET", b.Links.Self+"/events?token="+token, "", nil), 401, CodeAuthenticationFailed)
	wantError(t, f.do("GET", a.Links.Self+"?token="+token, "", nil), 401, CodeAuthenticationFailed)
	wantError(t, f.do("GET", a.Links.Self+"/events?token="+token+"x", "", nil), 401, CodeAuthenticationFailed)
	wantError(t, f.do("GET", a.Links.Self+"/events?token=garbage", "", nil), 401, CodeAuthenticationFailed)
	// Expired tokens are refused.
	keyID := tokenKeyID(t, f, token, a.OperationID)
	old := f.api.mintEventToken(a.OperationID, "writer", keyID, time.Now().Add(-time.Second))
	wantError(t, f.do("GET", a.Links.Self+"/events?token="+old, "", nil), 401, CodeAuthenticationFailed)
	// Every refused token is an audited authentication failure, like a bad key.
	if n := strings.Count(auditBuf.String(), `"event":"auth_failure"`); n != 5 {
		t.Errorf("%d auth_failure audit lines for 5 refused requests:\n%s", n, auditBuf.String())
	}
	if _, err := f.engine.Wait(context.Background(), a.OperationID); err != nil {
		t.Fatal(err)
	}
	if evs := readEvents(t, f, a.Links.Events, "", ""); len(evs) == 0 || evs[len(evs)-1].Event != "complete" {
		t.Errorf("token stream: %v", eventTypes(evs))
	}
	if strings.Contains(a.Links.Events, f.keys["writer"]) {
		t.Error("an API key went into a URL")
	}
}

// TestBadEventTokenFailsLikeBadKey: a refused event token goes through the
// key authenticator's failure path: its log line, its failure hook (where
// the server audits and calls Server.OnAuthFailure) and its 401.
func TestBadEventTokenFailsLikeBadKey(t *testing.T) {
	t.Parallel()
	var auditBuf, authLog syncWriter
	var mu sync.Mutex
	var hooked []string
	f := newFixture(t, fixtureOpts{audit: &auditBuf, authLog: &authLog, onAuthFailure: func(r *http.Request, _ error) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, r.URL.Path)
	}})
	op := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo"}`))
	events := op.Links.Self + "/events"
	for _, req := range []struct{ query, authorization string }{
		{"", "Bearer atg_dev_" + strings.Repeat("0", 64)},                        // a bad key
		{"?token=garbage", ""},                                                   // a bad token
		{"?token=garbage", "Bearer " + f.keys["writer"]},                         // a bad token, though the key is good
		{strings.TrimPrefix(op.Links.Events, op.Links.Self+"/events") + "x", ""}, // a tampered token
	} {
		var hdr []string
		if req.authorization != "" {
			hdr = []string{"Authorization", req.authorization}
		}
		resp := f.do("GET", events+req.query, "", nil, hdr...)
		wantError(t, resp, 401, CodeAuthenticationFailed)
		if resp.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%q: WWW-Authenticate %q", req.query, resp.Header.Get("WWW-Authenticate"))
		}
	}
	mu.Lock()
	got := slices.Clone(hooked)
	mu.Unlock()
	if want := []string{events, events, events, events}; !cmp.Equal(got, want) {
		t.Errorf("failure hook saw %v, want %v", got, want)
	}
	if n, m := strings.Count(authLog.String(), "authentication failed"), strings.Count(authLog.String(), "remote_addr=127.0.0.1:"); n != 4 || m != 4 {
		t.Errorf("%d authentication failure log lines (%d with remote_addr), want 4:\n%s", n, m, authLog.String())
	}
	if n := strings.Count(auditBuf.String(), `"event":"auth_failure"`); n != 4 {
		t.Errorf("%d auth_failure audit records, want 4:\n%s", n, auditBuf.String())
	}
	if strings.Contains(authLog.String()+auditBuf.String(), "garbage") {
		t.Error("a token reached the log or the audit")
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{db: true})
	f.do("GET", "/api/v1/health", "", nil)
	f.do("POST", "/api/v1/query", "reader", `{"query":"RETURN 1"}`)
	resp := f.do("GET", "/metrics", "", nil)
	body := readBody(resp)
	for _, name := range []string{"atg_http_requests_total", "atg_http_request_duration_seconds", "atg_operations_running",
		"atg_operations_max_concurrent", "atg_neo4j_pool_max_connections", `route="POST /api/v1/query"`} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestPanicsBecome500(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	f.api.mux.Handle("GET /boom", f.api.observe("GET /boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	e := wantError(t, f.do("GET", "/boom", "", nil), 500, CodeInternal)
	if strings.Contains(e.Message, "boom") {
		t.Errorf("internals leaked: %+v", e)
	}
}

// TestOpenAPILimitsMatchValidation: the limits the schema publishes for a
// graph document are the ones neo4jpool enforces.
func TestOpenAPILimitsMatchValidation(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	must(t, json.Unmarshal(OpenAPIDocument, &doc))
	var node struct {
		Properties struct {
			ID     struct{ MaxLength int } `json:"id"`
			Labels struct {
				AnyOf []struct {
					MaxItems int `json:"maxItems"`
					Items    struct{ Pattern string }
				} `json:"anyOf"`
				OneOf []struct {
					MaxItems int `json:"maxItems"`
					Items    struct{ Pattern string }
				} `json:"oneOf"`
			} `json:"labels"`
		} `json:"properties"`
	}
	var rel struct {
		Properties struct {
			Type     struct{ Pattern string } `json:"type"`
			From, To struct{ MaxLength int }
		} `json:"properties"`
	}
	var props struct {
		PropertyNames struct{ MaxLength int } `json:"propertyNames"`
	}
	must(t, json.Unmarshal(doc.Components.Schemas["GraphNode"], &node))
	must(t, json.Unmarshal(doc.Components.Schemas["GraphRelationship"], &rel))
	must(t, json.Unmarshal(doc.Components.Schemas["Properties"], &props))
	labels := append(node.Properties.Labels.AnyOf, node.Properties.Labels.OneOf...)
	if len(labels) == 0 {
		t.Fatal("no labels schema")
	}
	got := []any{node.Properties.ID.MaxLength, rel.Properties.From.MaxLength, rel.Properties.To.MaxLength,
		props.PropertyNames.MaxLength, labels[0].MaxItems, labels[0].Items.Pattern, rel.Properties.Type.Pattern}
	want := []any{neo4jpool.MaxIDLength, neo4jpool.MaxIDLength, neo4jpool.MaxIDLength,
		neo4jpool.MaxPropertyKeyLength, neo4jpool.MaxLabelsPerNode, neo4jpool.IdentifierPattern, neo4jpool.IdentifierPattern}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("openapi.json limits differ from neo4jpool's (-want +got):\n%s", diff)
	}
}
