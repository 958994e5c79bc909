package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/atgraph/atg/audit"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxBodyBytes      = 32 << 20
	DefaultQueryMaxRows      = 10000
	DefaultReadyCacheTTL     = time.Second
	DefaultReadyTimeout      = time.Second
	DefaultHeartbeatInterval = 15 * time.Second
	DefaultEventTokenTTL     = 15 * time.Minute
	DefaultQueryTimeout      = 30 * time.Second
	MaxQueryTimeout          = 10 * time.Minute
)

// Options configure an API. Authenticate, Engine and DB are required.
type Options struct {
	// Environment is the server's environment (dev, integration,
	// production), reported by health and status.
	Environment string
	// DBEnvironment names the neo4jpool environment to query; empty means
	// Environment.
	DBEnvironment string
	// Version is reported by /api/v1/health.
	Version string
	// Authenticate wraps handlers that need an API key (for example
	// (*auth.Middleware).Wrap). It must put an auth.Identity in the context
	// and refuse requests without credentials: a refused event token is
	// answered by passing the request to it without its Authorization
	// header, so that bad tokens reach the same failure log and hook as bad
	// keys.
	Authenticate func(http.Handler) http.Handler
	// Engine runs operations.
	Engine *operations.Engine
	// DB is the Neo4j connection manager.
	DB *neo4jpool.Manager
	// Logger receives access logs and errors; nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies (413 above); 0 means 32 MiB.
	MaxBodyBytes int64
	// MaxHeaderBytes caps the request line and headers (431 in the error
	// envelope above); 0 means 64 KiB. The http.Server's own
	// MaxHeaderBytes must be higher, or it answers first in plain text.
	MaxHeaderBytes int
	// BodyIdleTimeout bounds the wait for the next bytes of a request body
	// (408 REQUEST_TIMEOUT past it); 0 means 30 s.
	BodyIdleTimeout time.Duration
	// ReadTimeout is the http.Server's ReadTimeout: the read deadline the
	// body idle timeout puts back once a body is read; 0 means none.
	ReadTimeout time.Duration
	// MaxRequestsPerKey caps the requests one API key may have in flight at
	// once, event streams included (429 RATE_LIMITED with Retry-After
	// past it); 0 means no cap.
	MaxRequestsPerKey int
	// QueryMaxRows caps rows returned by /api/v1/query; 0 means 10,000.
	QueryMaxRows int
	// QueryMaxBytes caps the rows of one /api/v1/query result, measured as
	// JSON; past it the result is truncated (truncated_reason
	// "max_bytes"); 0 means 16 MiB.
	QueryMaxBytes int64
	// QueryGuardCacheSize is how many statement classifications the query
	// route's guard keeps; 0 means 4096.
	QueryGuardCacheSize int
	// ReadyCacheTTL is how long a database check is reused by /readyz,
	// /api/v1/health and /api/v1/status; 0 means 1 s.
	ReadyCacheTTL time.Duration
	// ReadyTimeout bounds the database check of /readyz; 0 means 1 s, so
	// that with the 1 s cache /readyz reflects a database that is down
	// (refusing connections) within 2 s.
	ReadyTimeout time.Duration
	// HeartbeatInterval is the event streams' keep-alive period; 0 means 15 s.
	HeartbeatInterval time.Duration
	// EventTokenTTL is how long the token in links.events is valid; 0 means
	// 15 minutes.
	EventTokenTTL time.Duration
	// CheckKey reports whether the API key with record ID keyID still
	// authenticates, and as whom (for example
	// (*auth.Authenticator).CheckKeyID). Event tokens are accepted only
	// while the key that minted them passes it, checked when a stream opens
	// and every EventTokenRecheck while it is open. Nil means tokens are
	// checked only for their signature, operation and expiry: servers
	// should set it.
	CheckKey func(ctx context.Context, keyID string) (auth.Identity, error)
	// EventTokenRecheck is how often an open event stream by token checks
	// its key with CheckKey; 0 means 5 s.
	EventTokenRecheck time.Duration
	// Collectors are extra Prometheus collectors served on /metrics (for
	// example the neo4jpool manager's).
	Collectors []prometheus.Collector
	// Started is when the server started, for uptime; zero means now.
	Started time.Time
	// RateLimitRPM is how many requests a minute one API key may make
	// (a token bucket of RateLimitBurst); 0 means no limit.
	RateLimitRPM int
	// RateLimitBurst is the bucket size; 0 means min(RateLimitRPM, 20).
	RateLimitBurst int
	// AuthFailuresPerMinute is how many failed authentications one remote
	// address may make a minute (burst the same) before it gets 429 without
	// its key being looked at; 0 means no limit.
	AuthFailuresPerMinute int
	// TrustedProxies are the proxies whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed.
	TrustedProxies []netip.Prefix
	// Audit receives the audit trail (submits, cancels, write queries,
	// administration and refused statements, authentication failures); nil
	// means none.
	Audit *audit.Logger
	// CORSOrigins are the browser origins allowed to call the API (exact
	// scheme://host[:port], or "*"); empty means no CORS headers.
	CORSOrigins []string
	// RequireHTTPS refuses requests that did not arrive over TLS or through
	// a trusted proxy with X-Forwarded-Proto: https (403), except /livez
	// and /readyz.
	RequireHTTPS bool
}

// API is the v1 HTTP API (an http.Handler). Create it with NewAPI.
type API struct {
	opts     Options
	mux      *http.ServeMux
	log      *slog.Logger
	metrics  *httpMetrics
	registry *prometheus.Registry
	tokenKey []byte

	openapiDoc []byte
	handler    http.Handler // the whole chain, built by routes
	unmatched  http.Handler // 404 and 405 in the envelope
	keyLimits  *limiterSet
	ratePolicy string // X-RateLimit-Policy
	failLimits *limiterSet
	inFlight   *inFlight // nil: no cap

	tokenStreams tokenStreams

	guard *queryGuard

	readyMu    sync.Mutex
	readyAt    time.Time
	readyCache neo4jpool.Health
}

// NewAPI builds the API's routes.
func NewAPI(opts Options) (*API, error) {
	switch {
	case opts.Authenticate == nil:
		return nil, errors.New("transport: Options.Authenticate is required")
	case opts.Engine == nil:
		return nil, errors.New("transport: Options.Engine is required")
	case opts.DB == nil:
		return nil, errors.New("transport: Options.DB is required")
	}
	if opts.DBEnvironment == "" {
		opts.DBEnvironment = opts.Environment
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.BodyIdleTimeout <= 0 {
		opts.BodyIdleTimeout = DefaultBodyIdleTimeout
	}
	if opts.QueryMaxRows <= 0 {
		opts.QueryMaxRows = DefaultQueryMaxRows
	}
	if opts.QueryMaxBytes <= 0 {
		opts.QueryMaxBytes = DefaultQueryMaxBytes
	}
	if opts.ReadyCacheTTL <= 0 {
		opts.ReadyCacheTTL = DefaultReadyCacheTTL
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.EventTokenTTL <= 0 {
		opts.EventTokenTTL = DefaultEventTokenTTL
	}
	if opts.EventTokenRecheck <= 0 {
		opts.EventTokenRecheck = DefaultEventTokenRecheck
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	a := &API{opts: opts, mux: http.NewServeMux(), log: opts.Logger, metrics: newHTTPMetrics(), registry: prometheus.NewRegistry(),
		tokenStreams: tokenStreams{open: map[string]*tokenStream{}}}
	if a.log == nil {
		a.log = slog.Default()
	}
	database := ""
	if cfg, err := opts.DB.EnvConfig(opts.DBEnvironment); err == nil {
		database = cfg.Database
	}
	a.guard = newQueryGuard(database, opts.QueryGuardCacheSize)
	a.tokenKey = make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, a.tokenKey); err != nil {
		return nil, fmt.Errorf("transport: event token key: %w", err)
	}
	collectors := append(a.metrics.collectors(), opts.Engine)
	collectors = append(collectors, opts.Collectors...)
	for _, c := range collectors {
		if err := a.registry.Register(c); err != nil {
			return nil, fmt.Errorf("transport: register metrics: %w", err)
		}
	}
	if opts.RateLimitRPM > 0 {
		burst := opts.RateLimitBurst
		if burst <= 0 {
			burst = min(opts.RateLimitRPM, 20)
		}
		a.keyLimits = newLimiterSet(opts.RateLimitRPM, burst, maxLimiterEntries)
		a.ratePolicy = strconv.Itoa(opts.RateLimitRPM) + ";w=60"
	}
	if opts.MaxRequestsPerKey > 0 {
		a.inFlight = &inFlight{max: opts.MaxRequestsPerKey, count: map[string]int{}}
	}
	if opts.AuthFailuresPerMinute > 0 {
		a.failLimits = newLimiterSet(opts.AuthFailuresPerMinute, opts.AuthFailuresPerMinute, maxLimiterEntries)
	}
	doc, err := buildOpenAPI(opts.Engine.Registry())
	if err != nil {
		return nil, err
	}
	a.openapiDoc = doc
	a.routes()
	return a, nil
}

// Registry returns the Prometheus registry served on /metrics.
func (a *API) Registry() *prometheus.Registry { return a.registry }

// route is one entry of the routing table, also used to check the OpenAPI
// document against the registered routes.
type route struct {
	method, path string
	scope        auth.Scope // "" = no authentication
	handler      http.HandlerFunc
	// authenticate wraps the handler of a route with a scope; nil means
	// Options.Authenticate (by API key).
	authenticate func(http.Handler) http.Handler
}

func (a *API) table() []route {
	return []route{
		{"GET", "/livez", "", a.livez, nil},
		{"GET", "/readyz", "", a.readyz, nil},
		{"GET", "/api/v1/health", "", a.health, nil},
		{"GET", "/metrics", "", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}).ServeHTTP, nil},
		{"GET", "/openapi.json", "", a.openapi, nil},
		{"GET", "/api/v1/status", auth.ScopeRead, a.status, nil},
		{"POST", "/api/v1/query", auth.ScopeRead, a.query, nil},
		{"POST", "/api/v1/operations", auth.ScopeWrite, a.submit, nil},
		{"GET", "/api/v1/operations", auth.ScopeRead, a.list, nil},
		{"GET", "/api/v1/operations/{id}", auth.ScopeRead, a.get, nil},
		{"DELETE", "/api/v1/operations/{id}", auth.ScopeWrite, a.cancel, nil},
		// Browsers' EventSource cannot send headers: a short-lived token
		// scoped to this one operation's events may stand in for the key.
		{"GET", "/api/v1/operations/{id}/events", auth.ScopeRead, a.events, a.eventsAuth},
	}
}

// routes builds every handler chain once: per route, metrics and access
// log, the HTTPS rule, and for authenticated routes the failure limit, the
// route's authenticator, the key's rate limit and the scope; then the
// outer chain of request IDs, the body idle timeout and CORS.
func (a *API) routes() {
	for _, rt := range a.table() {
		var h http.Handler = rt.handler
		if rt.scope != "" {
			authenticate := rt.authenticate
			if authenticate == nil {
				authenticate = a.opts.Authenticate
			}
			h = a.limitAuthFailures(authenticate(a.rateLimitKeys(a.limitInFlight(auth.RequireScope(rt.scope, h)))))
		}
		pattern := rt.method + " " + rt.path
		a.mux.Handle(pattern, a.observe(pattern, a.checkRequest(a.requireHTTPS(h))))
	}
	a.unmatched = a.observe("", a.checkRequest(a.requireHTTPS(http.HandlerFunc(a.notRouted))))
	a.handler = withRequestID(a.limitBodyIdle(a.cors(http.HandlerFunc(a.dispatch))))
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.handler.ServeHTTP(w, r)
}
