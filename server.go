package atg

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atgraph/atg/audit"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/operations/neo4jstore"
	"github.com/atgraph/atg/transport"
)

// TypeFactory builds an operation type that works on environment env of
// db: the Server's or local Client's own Neo4j manager.
type TypeFactory func(db *neo4jpool.Manager, env string) operations.Type

// ErrServerClosed is returned by Server methods after Shutdown. It matches
// net.ErrClosed.
var ErrServerClosed = fmt.Errorf("atg: server closed: %w", net.ErrClosed)

// HTTP server timeouts. Event streams extend their own write deadline per
// event, so they may outlive WriteTimeout.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 5 * time.Minute
	WriteTimeout      = transport.MaxQueryTimeout + time.Minute
	IdleTimeout       = 2 * time.Minute
	// MaxHeaderBytes is the http.Server's own cap on a request's line and
	// headers. The API enforces its lower limit
	// (transport.DefaultMaxHeaderBytes, 64 KiB) itself, to answer 431 in
	// the JSON error envelope; past this one net/http answers first, in
	// plain text, which the server turns into the envelope on plain HTTP
	// (not under TLS).
	MaxHeaderBytes = 1 << 20
)

// Server is an atg-server: the v1 HTTP API over one environment's Neo4j,
// with API-key authentication and the operations engine. Set Config (and
// optionally the other fields), then Start; Shutdown stops it.
//
// With no key configured in dev, Start generates one ephemeral dev key
// (see DevKey); in other environments it refuses to start without keys. It
// never serves without authentication. Start succeeds even when Neo4j is
// unreachable: /readyz then answers 503 with the reason.
type Server struct {
	// Config is the validated server configuration (see LoadServerConfig).
	Config ServerConfig
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// Types are operation types to register besides the built-in "import".
	Types []operations.Type
	// TypeFactories build more operation types from the server's own Neo4j
	// manager and environment (so they share its one pool), e.g.
	// func(m *neo4jpool.Manager, env string) operations.Type { return ScanType(m, env) }.
	TypeFactories []TypeFactory
	// ScanSource opens what the built-in "scan" operation reads; nil
	// means Azure Resource Graph with the server's own credentials
	// (Config.AzureSource: AZURE_ACCESS_TOKEN, else the managed identity
	// unless ATG_USE_MANAGED_IDENTITY=false, ATG_AZURE_CLOUD,
	// ATG_AZURE_ARM_ENDPOINT). Scans default to Config.TargetTenantID.
	ScanSource SourceFactory
	// KeyStore, when set, replaces the stores built from Config.APIKeys
	// and Config.KeysFile. It must hold a usable key of Config.Environment
	// (in dev, Start adds a generated one otherwise).
	KeyStore auth.KeyStore
	// Listener, when set, is served instead of listening on
	// Config.Host:Config.Port (tests use a random port this way).
	Listener net.Listener
	// OnAuthFailure, when set, is called after each failed authentication.
	OnAuthFailure func(r *http.Request, reason error)

	mu        sync.Mutex
	state     int // 0 new, 1 started, 2 shut down
	tls       *certReloader
	audit     *audit.Logger
	devKey    string
	log       *slog.Logger
	db        *neo4jpool.Manager
	engine    *operations.Engine
	opStore   *neo4jstore.Store // nil with the memory store
	api       *transport.API
	fileStore *auth.FileStore
	http      *http.Server
	ln        net.Listener
	served    chan error
}

// Start builds the server and starts serving in the background. It
// returns once the listener is open. Errors of the configuration or the
// setup (see Preflight) match ErrInvalidConfig; others are failures to
// listen or to build the server.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case 1:
		return errors.New("atg: server already started")
	case 2:
		return ErrServerClosed
	}
	if err := s.Config.Validate(); err != nil {
		return err
	}
	cfg := s.Config
	env := string(cfg.Environment)
	defer func() {
		if err != nil {
			s.cleanup(context.Background())
		}
	}()
	authn, err := s.setUp(ctx)
	if err != nil {
		return err
	}
	mw := &auth.Middleware{Authenticator: authn, Logger: s.log, OnFailure: func(r *http.Request, reason error) {
		s.api.AuditAuthFailure(r, reason)
		if s.OnAuthFailure != nil {
			s.OnAuthFailure(r, reason)
		}
	}}

	s.db = neo4jpool.NewManager(neo4jpool.Options{Logger: s.log})
	if err := s.db.Configure(ctx, env, cfg.Neo4j); err != nil {
		return err
	}
	checkCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	h := s.db.Check(checkCtx, env)
	cancel()
	if h.Healthy {
		s.log.Info("neo4j is reachable", "uri", neo4jpool.RedactURI(cfg.Neo4j.URI), "version", h.ServerVersion,
			"edition", h.Edition, "database", h.Database, "latency_ms", h.Latency.Milliseconds())
	} else {
		s.log.Warn("neo4j is not reachable: serving anyway, /readyz answers 503 until it is; start one with `scripts/neo4j.sh start` (then `eval \"$(scripts/neo4j.sh env)\"`) or point NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD at yours",
			"uri", neo4jpool.RedactURI(cfg.Neo4j.URI), "err", h.Err)
	}

	var store operations.Store
	replica := ""
	if cfg.OperationStore == OperationStoreNeo4j {
		ns := cfg.OperationNamespace
		if ns == "" {
			ns = env
		}
		// Every server on the namespace is a replica of one service: they
		// share the queue and answer for each other's operations.
		// Like the rest of the server, the store waits for a Neo4j that is
		// down: it creates its schema when Neo4j answers, and until then
		// operations fail with 503.
		openCtx, cancelOpen := ctx, context.CancelFunc(func() {})
		if !h.Healthy {
			openCtx, cancelOpen = context.WithTimeout(ctx, time.Second)
		}
		s.opStore, err = neo4jstore.Open(openCtx, neo4jstore.Config{Manager: s.db, Environment: env, Namespace: ns, Logger: s.log, Shared: true, Lazy: true})
		cancelOpen()
		if err != nil {
			return fmt.Errorf("atg: open the operation store: %w", err)
		}
		store, replica = s.opStore, cmp.Or(cfg.ReplicaID, defaultReplicaID())
		s.log.Info("operations are shared with the other replicas of the namespace", "namespace", ns, "replica_id", replica)
	}
	s.engine, err = newEngine(s.db, env, s.Types, s.TypeFactories, ScanOptions{Source: s.scanSource(), DefaultTenantID: cfg.TargetTenantID}, operations.Config{
		Store:         store,
		MaxConcurrent: cfg.MaxConcurrentOps, Retention: cfg.OperationRetention, Logger: s.log,
		MaxActivePerClient: cfg.MaxOpsPerKey, OnFinish: s.auditFinish,
		Replica: replica, Lease: cfg.OperationLease,
	})
	if err != nil {
		return err
	}
	s.api, err = transport.NewAPI(transport.Options{
		Environment: env, Version: Version, Authenticate: mw.Wrap, Engine: s.engine, DB: s.db,
		Logger: s.log, MaxBodyBytes: cfg.MaxBodyBytes, QueryMaxRows: cfg.QueryMaxRows, QueryMaxBytes: cfg.QueryMaxBytes,
		Collectors:   []prometheus.Collector{s.db.Collector()},
		RateLimitRPM: cfg.RateLimitRPM, RateLimitBurst: cfg.RateLimitBurst, AuthFailuresPerMinute: cfg.AuthFailuresPerMinute,
		TrustedProxies: cfg.TrustedProxies, RequireHTTPS: cfg.Environment == auth.Production, Audit: s.audit,
		CORSOrigins: cfg.CORSOrigins, MaxRequestsPerKey: cfg.MaxRequestsPerKey,
		BodyIdleTimeout: cfg.BodyIdleTimeout, ReadTimeout: ReadTimeout, CheckKey: authn.CheckKeyID,
	})
	if err != nil {
		return err
	}
	s.ln = s.Listener
	if s.ln == nil {
		addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
		if s.ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("atg: listen on %s: %w", addr, err)
		}
	}
	s.http = &http.Server{
		Handler: s.api, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.served = make(chan error, 1)
	if s.tls == nil {
		s.ln = envelopeListener{s.ln}
	}
	if s.tls != nil {
		s.http.TLSConfig = s.tls.tlsConfig()
		go func(srv *http.Server, ln net.Listener) { s.served <- srv.ServeTLS(ln, "", "") }(s.http, s.ln)
	} else {
		go func(srv *http.Server, ln net.Listener) { s.served <- srv.Serve(ln) }(s.http, s.ln)
	}
	s.state = 1
	s.log.Info("atg-server listening", "url", s.urlLocked(), "environment", env, "version", Version,
		"workers", cfg.Workers, "max_concurrent_ops", cfg.MaxConcurrentOps)
	if cfg.Workers != 1 {
		s.log.Info("ATG_SERVER_WORKERS is reported, not used: one Go process serves every request", "workers", cfg.Workers)
	}
	return nil
}

// Preflight makes, without listening or connecting to Neo4j, the checks
// by which Start can fail before it connects: the configuration, the audit
// log (opened for appending, so created if missing), the TLS certificate and
// key, and the key stores, which outside dev must hold a usable key of
// Config.Environment. It returns what Start would fail with (a
// *ConfigError or *SetupError, both matching ErrInvalidConfig) and leaves
// s as it was. Keys of another environment are logged as warnings.
func (s *Server) Preflight(ctx context.Context) error {
	if err := s.Config.Validate(); err != nil {
		return err
	}
	p := &Server{Config: s.Config, Logger: s.Logger, KeyStore: s.KeyStore}
	_, err := p.setUp(ctx)
	return errors.Join(err, p.cleanup(context.Background()))
}

// setUp sets the logger, opens the audit log, loads the TLS certificate,
// builds the key store and returns its authenticator: the parts of Start
// that need neither Neo4j nor the network. Its errors are *SetupError; the
// caller cleans up on error.
func (s *Server) setUp(ctx context.Context) (*auth.Authenticator, error) {
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	cfg := s.Config
	var err error
	if s.audit, err = audit.Open(cfg.AuditLog, os.Stdout, os.Stderr); err != nil {
		return nil, &SetupError{Err: err}
	}
	if cfg.TLSCertFile != "" {
		if s.tls, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, &SetupError{Err: err}
		}
	}
	store, err := s.keyStore(ctx)
	if err != nil {
		return nil, &SetupError{Err: err}
	}
	authn, err := auth.NewAuthenticator(store, cfg.Environment)
	if err != nil {
		return nil, &SetupError{Err: err}
	}
	return authn, nil
}

// keyStore builds the key store from the configuration: s.KeyStore, or
// the stores of ATG_API_KEYS and ATG_KEYS_FILE, plus a generated dev key in
// dev when none of them holds a usable key.
func (s *Server) keyStore(ctx context.Context) (auth.KeyStore, error) {
	cfg := s.Config
	var stores auth.Chain
	if s.KeyStore != nil {
		stores = append(stores, s.KeyStore)
	} else if err := s.configuredKeyStores(ctx, &stores); err != nil {
		return nil, err
	}
	recs, err := stores.List(ctx)
	if err != nil {
		return nil, err
	}
	usable := 0
	now := time.Now()
	for _, r := range recs {
		switch {
		case r.Environment != cfg.Environment:
			s.log.Warn("API key of another environment will never authenticate here", "key_id", r.ID, "client_id", r.ClientID,
				"key_environment", r.Environment, "server_environment", cfg.Environment)
		case r.Status(now) == auth.StatusActive:
			usable++
		}
	}
	if usable == 0 {
		if cfg.Environment != auth.Dev {
			return nil, fmt.Errorf("atg: no usable %s API key: set ATG_API_KEYS or create one with `atg-server keys create --env %s` (ATG_KEYS_FILE)",
				cfg.Environment, cfg.Environment)
		}
		dev := auth.NewMemoryStore()
		key, _, err := dev.Create(ctx, auth.CreateOptions{ClientID: "dev", Environment: auth.Dev,
			Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeWrite, auth.ScopeAdmin}})
		if err != nil {
			return nil, err
		}
		s.devKey = key
		stores = append(stores, dev)
	}
	if len(stores) == 1 {
		return stores[0], nil
	}
	return stores, nil
}

// configuredKeyStores appends the stores of ATG_API_KEYS and ATG_KEYS_FILE
// to stores.
func (s *Server) configuredKeyStores(ctx context.Context, stores *auth.Chain) error {
	cfg := s.Config
	if len(cfg.APIKeys) > 0 {
		mem, err := auth.NewMemoryStoreFromKeys(cfg.APIKeys)
		if err != nil {
			return fmt.Errorf("ATG_API_KEYS: %w", err)
		}
		*stores = append(*stores, mem)
	}
	if cfg.KeysFile != "" {
		fs, err := auth.OpenFileStore(ctx, cfg.KeysFile, auth.FileStoreOptions{FlushInterval: time.Minute,
			OnError: func(err error) { s.log.Warn("keys file: flush last_used_at", "err", err) }})
		if err != nil {
			return fmt.Errorf("ATG_KEYS_FILE: %w", err)
		}
		s.fileStore = fs
		*stores = append(*stores, fs)
	}
	return nil
}

// DevKey returns the ephemeral dev key Start generated because no key was
// configured in dev, or "". It is valid until the process exits.
func (s *Server) DevKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devKey
}

// URL returns the base URL the server listens on, e.g. http://127.0.0.1:8000.
// A wildcard host is shown as 127.0.0.1.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urlLocked()
}

func (s *Server) urlLocked() string {
	if s.ln == nil {
		return ""
	}
	addr, ok := s.ln.Addr().(*net.TCPAddr)
	if !ok {
		return "http://" + s.ln.Addr().String()
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http://"
	if s.tls != nil {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Handler returns the server's HTTP handler, or nil before Start.
func (s *Server) Handler() http.Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api == nil {
		return nil // not a nil *transport.API in a non-nil interface
	}
	return s.api
}

// Manager returns the Neo4j manager (after Start).
func (s *Server) Manager() *neo4jpool.Manager {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db
}

// Engine returns the operations engine (after Start).
func (s *Server) Engine() *operations.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.engine
}

// Reload re-reads ATG_KEYS_FILE and the TLS certificate and key (atg-server
// calls it on SIGHUP). Whatever fails to load keeps its previous state; the
// errors are returned together.
func (s *Server) Reload(ctx context.Context) error {
	s.mu.Lock()
	fs, certs := s.fileStore, s.tls
	s.mu.Unlock()
	var errs []error
	if fs != nil {
		errs = append(errs, fs.Reload(ctx))
	}
	if certs != nil {
		errs = append(errs, certs.Reload())
	}
	return errors.Join(errs...)
}

// auditFinish records an operation reaching its terminal state.
func (s *Server) auditFinish(op operations.Operation) {
	details := map[string]any{"operation_id": op.ID, "type": op.Type}
	if op.Error != nil {
		details["error_code"] = op.Error.Code
	}
	if op.StartedAt != nil && op.FinishedAt != nil {
		details["duration_seconds"] = op.FinishedAt.Sub(*op.StartedAt).Seconds()
	}
	s.audit.Log(audit.Record{Event: audit.EventOperationFinish, ClientID: op.ClientID, Outcome: string(op.Status), Details: details})
}

// Wait blocks until the server stops serving and returns why (nil after a
// clean Shutdown).
func (s *Server) Wait() error {
	s.mu.Lock()
	served := s.served
	s.mu.Unlock()
	if served == nil {
		return errors.New("atg: server not started")
	}
	err := <-served
	served <- err // let other waiters see it too
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server gracefully within ctx: running and queued
// operations end cancelled with reason "server shutdown" (their work stops
// through its context), the listener closes, open requests finish, and the
// Neo4j drivers close. A second call returns an error matching net.ErrClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == 2 {
		return ErrServerClosed
	}
	if s.state == 0 {
		s.state = 2
		return nil
	}
	s.state = 2
	return s.cleanup(ctx)
}

// cleanup releases whatever Start built, in dependency order.
func (s *Server) cleanup(ctx context.Context) error {
	var errs []error
	if s.engine != nil {
		if err := ignoreClosed(s.engine.Close(ctx)); err != nil {
			errs = append(errs, err)
		}
	}
	if s.opStore != nil { // after the engine: its last states are written
		if err := ignoreClosed(s.opStore.Close(ctx)); err != nil {
			errs = append(errs, err)
		}
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("atg: http shutdown: %w", err))
			_ = s.http.Close()
		}
	} else if s.ln != nil && s.Listener == nil {
		_ = s.ln.Close()
	}
	if s.db != nil {
		if err := ignoreClosed(s.db.CloseAll(ctx)); err != nil {
			errs = append(errs, err)
		}
	}
	if s.fileStore != nil {
		if err := s.fileStore.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.audit.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// scanSource returns ScanSource, or the server's Resource Graph source.
func (s *Server) scanSource() SourceFactory {
	if s.ScanSource != nil {
		return s.ScanSource
	}
	cfg := s.Config
	return func(ctx context.Context, p ScanParams) (azure.Source, error) {
		return azure.NewResourceGraphSource(ctx, cfg.AzureSource(p.TenantID))
	}
}
