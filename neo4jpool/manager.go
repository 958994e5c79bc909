package neo4jpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"
)

// Defaults of [Options].
const (
	// DefaultHealthTimeout bounds one health check (Check, CheckAll and each
	// attempt of WaitReady), whatever the pool's acquisition timeout.
	DefaultHealthTimeout = 3 * time.Second
	// DefaultReadyInitialBackoff is WaitReady's first wait between attempts.
	DefaultReadyInitialBackoff = 100 * time.Millisecond
	// DefaultReadyMaxBackoff caps each of WaitReady's waits.
	DefaultReadyMaxBackoff = 2 * time.Second
)

// sessionCloseTimeout bounds returning a connection to the pool after a
// call, even when the caller's context is already done.
const sessionCloseTimeout = 10 * time.Second

// Options tunes a [Manager]. The zero value gives the defaults.
type Options struct {
	// Logger receives the manager's own messages and the driver's log lines
	// (see LevelTrace for the levels). Nil means nothing is logged: library
	// code logs only to a logger it is given (pass slog.Default() to log
	// where the program does).
	Logger *slog.Logger
	// HealthTimeout bounds one health check. Zero means DefaultHealthTimeout.
	HealthTimeout time.Duration
	// ChunkTimeout bounds one chunk of ChunkedWrite, ChunkedWriteSeq and
	// Importer, retries included, so that a database that stops answering
	// (hung, not down) fails the write instead of stalling it. Zero means
	// DefaultChunkTimeout; negative means no bound.
	ChunkTimeout time.Duration
	// MetricsWindow is the sliding window of peak utilisation and of the
	// scale recommendation. Zero means DefaultMetricsWindow.
	MetricsWindow time.Duration
	// ReadyInitialBackoff is WaitReady's first wait; later waits double,
	// with ±20 % jitter. Zero means DefaultReadyInitialBackoff.
	ReadyInitialBackoff time.Duration
	// ReadyMaxBackoff caps each of WaitReady's waits. Zero means
	// DefaultReadyMaxBackoff.
	ReadyMaxBackoff time.Duration
	// DriverConfig, when set, is called for every driver the manager
	// creates, after the manager has applied Config (pool size, timeouts,
	// logger). Use it for TLS settings and the like. Replacing c.Log turns
	// off the log-derived metrics.
	DriverConfig func(env string, c *config.Config)
}

// Manager owns one pooled Neo4j driver per named environment ("dev",
// "integration", ...). It is safe for concurrent use, and its zero value is
// ready to use with default Options.
//
// Drivers are created lazily, exactly once, on the first call that needs
// one (Driver, ExecuteRead, ExecuteWrite, NewSession, Check), and verified
// with VerifyConnectivity once at creation. A driver that fails
// verification is closed and not cached: the next call tries again.
//
// Close closes one environment and CloseAll the manager; both are safe to
// call more than once and report later use with an error matching
// net.ErrClosed.
type Manager struct {
	opts Options

	mu      sync.Mutex
	closed  bool
	envs    map[string]*envState
	metrics map[string]*envMetrics // per environment name, kept across reconfiguration
	// users are the calls using each driver (see handover.go).
	users map[neo4j.DriverWithContext]map[*user]struct{}

	// importLocks serialise imports without an id constraint, one
	// channel (of capacity 1) per environment and base label.
	importMu    sync.Mutex
	importLocks map[[2]string]chan struct{}

	// Test hooks (see export_test.go).
	verifications atomic.Int64
	driversClosed atomic.Int64
}

// envState is one configuration of one environment.
type envState struct {
	cfg     Config
	closed  bool
	driver  neo4j.DriverWithContext
	pending *attempt
	// schema records labels whose id constraint an Importer ensured on
	// this configuration, so later imports skip the schema transaction.
	schema map[string]bool
}

// attempt is one driver creation in progress; others wait on done.
type attempt struct {
	done chan struct{}
	err  error
	// retry tells waiters to try again themselves instead of sharing err:
	// the creator's own context ended, or the environment changed.
	retry bool
}

// NewManager returns a Manager with the given options.
func NewManager(opts Options) *Manager {
	return &Manager{opts: opts}
}

// discardLogger is the logger of a Manager given none.
var discardLogger = slog.New(slog.DiscardHandler)

func (m *Manager) logger() *slog.Logger {
	if m.opts.Logger != nil {
		return m.opts.Logger
	}
	return discardLogger
}

// metricsForLocked returns the metrics of env, creating them. m.mu is held.
func (m *Manager) metricsForLocked(env string) *envMetrics {
	if m.metrics == nil {
		m.metrics = make(map[string]*envMetrics)
	}
	em := m.metrics[env]
	if em == nil {
		em = newEnvMetrics(env, m.opts.MetricsWindow, nil)
		m.metrics[env] = em
	}
	return em
}

// Configure sets (or replaces) the configuration of env. cfg gets
// Config.WithDefaults and must pass Config.Validate (the error then matches
// ErrInvalidConfig). No connection is made: the driver is created on first
// use. Reconfiguring an environment, or configuring one that was closed,
// closes its old driver, if any: ExecuteRead/ExecuteWrite/ExecuteOnce
// calls still waiting for one of its connections move to the new driver;
// Configure waits (until ctx ends, at most 10 s) for the calls already
// running on the old driver to finish before it closes it, and a call
// still running after that sees its connection closed. Close and CloseAll
// wait the same way.
func (m *Manager) Configure(ctx context.Context, env string, cfg Config) error {
	if env == "" {
		return fmt.Errorf("neo4jpool: configure: %w: environment name is empty", ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("neo4jpool: configure environment %q: %w", env, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errManagerClosed()
	}
	if m.envs == nil {
		m.envs = make(map[string]*envState)
	}
	old := m.envs[env]
	m.envs[env] = &envState{cfg: cfg}
	m.metricsForLocked(env).poolMax.Store(int64(cfg.MaxPoolSize))
	var oldDriver neo4j.DriverWithContext
	if old != nil {
		old.closed = true
		oldDriver, old.driver = old.driver, nil
	}
	m.mu.Unlock()

	if oldDriver != nil {
		m.logger().Info("neo4jpool: environment reconfigured, closing its previous driver",
			slog.String("env", env), slog.String("uri", RedactURI(old.cfg.URI)))
		if err := m.closeDriver(ctx, oldDriver); err != nil {
			return &EnvError{Env: env, URI: RedactURI(old.cfg.URI), Op: "close previous driver", Err: err}
		}
	}
	return nil
}

// lookupLocked returns the state of env or the error to report. m.mu is held.
func (m *Manager) lookupLocked(env string) (*envState, error) {
	if m.closed {
		return nil, errManagerClosed()
	}
	st := m.envs[env]
	if st == nil {
		return nil, &unknownEnvError{env: env, known: m.environmentsLocked()}
	}
	if st.closed {
		return nil, errEnvClosed(env)
	}
	return st, nil
}

// Driver returns the driver of env, creating and verifying it on first use.
// The manager owns the driver: do not close it. Errors name the environment
// and (redacted) URI and wrap the driver's error; an unknown environment
// gives an error matching ErrUnknownEnvironment, a closed one net.ErrClosed.
func (m *Manager) Driver(ctx context.Context, env string) (neo4j.DriverWithContext, error) {
	d, _, err := m.driver(ctx, env)
	return d, err
}

// driver returns the driver and the configuration it was created from.
func (m *Manager) driver(ctx context.Context, env string) (neo4j.DriverWithContext, Config, error) {
	for {
		m.mu.Lock()
		st, err := m.lookupLocked(env)
		if err != nil {
			m.mu.Unlock()
			return nil, Config{}, err
		}
		if st.driver != nil {
			d, cfg := st.driver, st.cfg
			m.mu.Unlock()
			return d, cfg, nil
		}
		if a := st.pending; a != nil {
			cfg := st.cfg
			m.mu.Unlock()
			select {
			case <-a.done:
			case <-ctx.Done():
				return nil, Config{}, &EnvError{Env: env, URI: RedactURI(cfg.URI), Op: "connect", Err: context.Cause(ctx)}
			}
			if a.err != nil && !a.retry {
				return nil, Config{}, a.err
			}
			continue
		}
		a := &attempt{done: make(chan struct{})}
		st.pending = a
		cfg := st.cfg
		em := m.metricsForLocked(env)
		m.mu.Unlock()

		d, err := m.open(ctx, env, cfg, em)

		m.mu.Lock()
		st.pending = nil
		current := !m.closed && !st.closed && m.envs[env] == st
		if err == nil && current {
			st.driver = d
		}
		m.mu.Unlock()

		if !current {
			// Reconfigured or closed meanwhile: drop this driver and look again.
			if d != nil {
				_ = m.closeDriver(context.WithoutCancel(ctx), d)
			}
			a.retry = true
			close(a.done)
			continue
		}
		a.err = err
		a.retry = err != nil && ctx.Err() != nil
		close(a.done)
		if err != nil {
			return nil, Config{}, err
		}
		return d, cfg, nil
	}
}

// opCreateDriver is the EnvError.Op of a driver the driver package refused
// to create (a *neo4j.UsageError: a setting it does not accept). Creation
// does no I/O, so trying again with the same configuration cannot succeed.
const opCreateDriver = "create driver"

// open creates and verifies a driver. A driver that fails verification is
// closed.
func (m *Manager) open(ctx context.Context, env string, cfg Config, em *envMetrics) (neo4j.DriverWithContext, error) {
	uri := RedactURI(cfg.URI)
	logger := &driverLogger{env: env, logger: m.logger(), metrics: em}
	d, err := neo4j.NewDriverWithContext(cfg.URI, neo4j.BasicAuth(cfg.User, cfg.Password, ""), func(c *config.Config) {
		c.MaxConnectionPoolSize = cfg.MaxPoolSize
		c.ConnectionAcquisitionTimeout = cfg.ConnectionTimeout
		c.SocketConnectTimeout = min(c.SocketConnectTimeout, cfg.ConnectionTimeout)
		c.MaxTransactionRetryTime = cfg.MaxTransactionRetryTime
		c.Log = logger
		if m.opts.DriverConfig != nil {
			m.opts.DriverConfig(env, c)
		}
	})
	if err != nil {
		return nil, &EnvError{Env: env, URI: uri, Op: opCreateDriver, Err: err}
	}
	m.verifications.Add(1)
	if err := d.VerifyConnectivity(ctx); err != nil {
		_ = m.closeDriver(context.WithoutCancel(ctx), d)
		return nil, &EnvError{Env: env, URI: uri, Op: "connect", Err: err}
	}
	m.logger().Info("neo4jpool: connected",
		slog.String("env", env), slog.String("uri", uri), slog.Int("max_pool_size", cfg.MaxPoolSize))
	return d, nil
}

func (m *Manager) closeDriver(ctx context.Context, d neo4j.DriverWithContext) error {
	m.retire(ctx, d) // the driver's Close must not race with a borrow
	m.driversClosed.Add(1)
	return d.Close(ctx)
}

// Close closes the driver of env (if one was created) and marks env
// closed: later calls for env, including a second Close, return an error
// matching net.ErrClosed, until Configure sets env up again.
func (m *Manager) Close(ctx context.Context, env string) error {
	m.mu.Lock()
	st, err := m.lookupLocked(env)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	st.closed = true
	d := st.driver
	st.driver = nil
	m.mu.Unlock()
	if d == nil {
		return nil
	}
	if err := m.closeDriver(ctx, d); err != nil {
		return &EnvError{Env: env, URI: RedactURI(st.cfg.URI), Op: "close", Err: err}
	}
	return nil
}

// CloseAll closes every driver and the manager: later calls, including a
// second CloseAll, return an error matching net.ErrClosed. Metrics stay
// readable.
func (m *Manager) CloseAll(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errManagerClosed()
	}
	m.closed = true
	type toClose struct {
		env string
		uri string
		d   neo4j.DriverWithContext
	}
	var drivers []toClose
	for env, st := range m.envs {
		if !st.closed && st.driver != nil {
			drivers = append(drivers, toClose{env, RedactURI(st.cfg.URI), st.driver})
		}
		st.closed = true
		st.driver = nil
	}
	m.mu.Unlock()
	var errs []error
	for _, c := range drivers {
		if err := m.closeDriver(ctx, c.d); err != nil {
			errs = append(errs, &EnvError{Env: c.env, URI: c.uri, Op: "close", Err: err})
		}
	}
	return errors.Join(errs...)
}

// Environments returns the names of the configured, open environments,
// sorted.
func (m *Manager) Environments() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	return m.environmentsLocked()
}

func (m *Manager) environmentsLocked() []string {
	names := make([]string, 0, len(m.envs))
	for name, st := range m.envs {
		if !st.closed {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// EnvConfig returns the configuration of env, with defaults applied, the
// password removed and the URI redacted: safe to show.
func (m *Manager) EnvConfig(env string) (Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.lookupLocked(env)
	if err != nil {
		return Config{}, err
	}
	cfg := st.cfg
	cfg.Password = ""
	cfg.URI = RedactURI(cfg.URI)
	return cfg, nil
}

// schemaEnsured reports whether the id constraint of label was ensured on
// env's current configuration.
func (m *Manager) schemaEnsured(env, label string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.envs[env]
	return st != nil && st.schema[label]
}

// markSchemaEnsured records that the id constraint of label exists on env's
// current configuration.
func (m *Manager) markSchemaEnsured(env, label string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.envs[env]; st != nil {
		if st.schema == nil {
			st.schema = make(map[string]bool)
		}
		st.schema[label] = true
	}
}

// lockImports waits until no other import of base label in env holds the
// lock (or ctx ends), takes it and returns its release.
func (m *Manager) lockImports(ctx context.Context, env, base string) (func(), error) {
	m.importMu.Lock()
	if m.importLocks == nil {
		m.importLocks = make(map[[2]string]chan struct{})
	}
	key := [2]string{env, base}
	ch := m.importLocks[key]
	if ch == nil {
		ch = make(chan struct{}, 1)
		m.importLocks[key] = ch
	}
	m.importMu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// envMetricsFor returns the metrics of a configured, open env.
func (m *Manager) envMetricsFor(env string) (*envMetrics, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.lookupLocked(env); err != nil {
		return nil, err
	}
	return m.metricsForLocked(env), nil
}

// NewSession opens a session on env's database (Config.Database) with the
// given access mode, creating the driver on first use. The caller closes the
// session. Work run through a raw session is not counted by the
// transaction metrics; prefer ExecuteRead and ExecuteWrite. Use it for
// auto-commit queries (session.Run, for example CALL { ... } IN
// TRANSACTIONS), which the driver does not retry: wrap them in [Retry].
func (m *Manager) NewSession(ctx context.Context, env string, mode neo4j.AccessMode) (neo4j.SessionWithContext, error) {
	d, cfg, err := m.driver(ctx, env)
	if err != nil {
		return nil, err
	}
	return d.NewSession(ctx, neo4j.SessionConfig{AccessMode: mode, DatabaseName: cfg.Database}), nil
}

// ExecuteRead runs work in a managed read transaction on env's database
// (the server refuses writes in it), with the driver's retries of transient
// failures for up to Config.MaxTransactionRetryTime: work may run more than
// once and must be idempotent. It maintains the environment's metrics.
func (m *Manager) ExecuteRead(ctx context.Context, env string, work neo4j.ManagedTransactionWork, configurers ...func(*neo4j.TransactionConfig)) (any, error) {
	return m.execute(ctx, env, neo4j.AccessModeRead, work, configurers)
}

// ExecuteWrite runs work in a managed write transaction on env's database,
// with the driver's retries of transient failures for up to
// Config.MaxTransactionRetryTime: work may run more than once and must be
// idempotent. Do not wrap it in [Retry]. It maintains the environment's
// metrics. When work returned nil but the commit got no answer (the
// connection broke, or ctx ended, during COMMIT), the error matches
// ErrCommitOutcomeUnknown: the transaction may have been committed.
func (m *Manager) ExecuteWrite(ctx context.Context, env string, work neo4j.ManagedTransactionWork, configurers ...func(*neo4j.TransactionConfig)) (any, error) {
	return m.execute(ctx, env, neo4j.AccessModeWrite, work, configurers)
}

func (m *Manager) execute(ctx context.Context, env string, mode neo4j.AccessMode,
	work neo4j.ManagedTransactionWork, configurers []func(*neo4j.TransactionConfig)) (any, error) {
	return m.call(ctx, env, work, func(c callOn) (any, error) {
		return m.executeOn(c.ctx, env, c.d, c.cfg, mode, work, configurers, c.start, c.em, c.attempts, c.started)
	})
}

// callOn is what call gives its run function: the driver, the context to
// use it with, and the call's metrics. started must be called once the
// call has a connection; when it reports true the driver was retired
// meanwhile: run then stops before any work and returns an error.
type callOn struct {
	ctx      context.Context
	d        neo4j.DriverWithContext
	cfg      Config
	em       *envMetrics
	start    time.Time
	attempts *int
	started  func() (moved bool)
}

// call is the frame of ExecuteRead, ExecuteWrite and ExecuteOnce: it
// checks work, keeps the environment's call metrics, and runs run on
// env's current driver, registered as one of its users (handover.go).
// When the environment is reconfigured or closed while the call waits for
// a connection, so that its work never ran, the call moves to the new
// driver (m.driver reports a closed environment), at most maxHandOvers
// times.
func (m *Manager) call(ctx context.Context, env string, work neo4j.ManagedTransactionWork, run func(callOn) (any, error)) (result any, err error) {
	if work == nil {
		return nil, errors.New("neo4jpool: transaction work function is nil")
	}
	em, err := m.envMetricsFor(env)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	em.callBegin()
	attempts := 0
	defer func() { em.callEnd(err, attempts, start) }()

	for round := 1; ; round++ {
		d, cfg, err := m.driver(ctx, env)
		if err != nil {
			return nil, err
		}
		uctx, u, ok := m.use(ctx, env, d)
		if !ok { // replaced since m.driver returned it
			if round < maxHandOvers {
				continue
			}
			return nil, &EnvError{Env: env, URI: RedactURI(cfg.URI), Op: "connect", Err: errHandOver}
		}
		ran := attempts
		result, err = run(callOn{ctx: uctx, d: d, cfg: cfg, em: em, start: start, attempts: &attempts, started: func() bool { return m.unwait(u) }})
		moved := m.unwait(u)
		m.release(d, u) // run closed its session
		if err != nil && attempts == ran && round < maxHandOvers && ctx.Err() == nil && (moved || !m.isCurrentDriver(env, d)) {
			continue
		}
		return result, err
	}
}

// maxHandOvers bounds how many drivers one call tries when its environment
// is reconfigured while it waits.
const maxHandOvers = 3

// isCurrentDriver reports whether d is env's current driver.
func (m *Manager) isCurrentDriver(env string, d neo4j.DriverWithContext) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.envs[env]
	return !m.closed && st != nil && !st.closed && st.driver == d
}

// executeOn runs work in one managed transaction on driver d, adding the
// work function's runs to *attempts.
func (m *Manager) executeOn(ctx context.Context, env string, d neo4j.DriverWithContext, cfg Config, mode neo4j.AccessMode,
	work neo4j.ManagedTransactionWork, configurers []func(*neo4j.TransactionConfig),
	start time.Time, em *envMetrics, attempts *int, started func() (moved bool)) (any, error) {
	guard := newRetryGuard(ctx, cfg.MaxTransactionRetryTime, em.connFailed.Load)
	defer guard.stop()
	session := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: mode, DatabaseName: cfg.Database})
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCloseTimeout)
		defer cancel()
		_ = session.Close(closeCtx)
	}()

	counted := func(tx neo4j.ManagedTransaction) (any, error) {
		if err := guard.enter(); err != nil {
			return nil, err
		}
		if started() { // a connection in hand, but of a retired driver
			return nil, errHandOver
		}
		*attempts++
		if *attempts == 1 {
			em.txStart.observe(time.Since(start).Seconds())
		}
		em.txBegin()
		defer em.txEnd()
		res, err := work(tx)
		guard.leave(err)
		return res, err
	}
	ctx = guard.ctx
	op := "write transaction"
	var result any
	var err error
	if mode == neo4j.AccessModeRead {
		result, err = session.ExecuteRead(ctx, counted, configurers...)
		op = "read transaction"
	} else {
		result, err = session.ExecuteWrite(ctx, counted, configurers...)
	}
	if err != nil {
		err = guard.explain(err)
		if mode == neo4j.AccessModeWrite && guard.lastWorkSucceeded() && !serverRefused(err) {
			// The work ran to its end, and then COMMIT got no answer (the
			// connection broke, the context ended): it may have committed.
			err = &CommitUnknownError{Err: err}
		}
		return nil, &EnvError{Env: env, URI: RedactURI(cfg.URI), Op: op, Err: err}
	}
	return result, nil
}

// ErrCommitOutcomeUnknown is matched by the error of a write transaction
// whose work function returned nil but whose COMMIT got no answer from the
// server (the connection broke, or the context ended, while it was in
// flight): the transaction may or may not have been committed.
var ErrCommitOutcomeUnknown = errors.New("neo4jpool: commit outcome unknown")

// CommitUnknownError reports a write transaction whose commit outcome is
// unknown (see ErrCommitOutcomeUnknown, which it matches). Err is the
// driver's error. Running the work again is safe only if it is idempotent.
type CommitUnknownError struct {
	// Err is the driver's error.
	Err error
}

// Error implements error.
func (e *CommitUnknownError) Error() string {
	return fmt.Sprintf("%s (it may have been committed): %v", ErrCommitOutcomeUnknown, e.Err)
}

// Is makes errors.Is(err, ErrCommitOutcomeUnknown) true.
func (e *CommitUnknownError) Is(target error) bool { return target == ErrCommitOutcomeUnknown }

// Unwrap returns the driver's error.
func (e *CommitUnknownError) Unwrap() error { return e.Err }

// serverRefused reports whether the last error of err came from the server
// (a *neo4j.Neo4jError): then the transaction was not committed.
func serverRefused(err error) bool {
	var limit *neo4j.TransactionExecutionLimit
	if errors.As(err, &limit) && len(limit.Errors) > 0 {
		err = limit.Errors[len(limit.Errors)-1]
	}
	var ne *neo4j.Neo4jError
	return errors.As(err, &ne)
}

// Snapshot returns the pool metrics of env (see [Snapshot] for what each
// field measures). The environment must be configured and open.
func (m *Manager) Snapshot(env string) (Snapshot, error) {
	em, err := m.envMetricsFor(env)
	if err != nil {
		return Snapshot{}, err
	}
	return em.snapshot(), nil
}

// Snapshots returns the pool metrics of every environment ever configured
// (including closed ones), sorted by name.
func (m *Manager) Snapshots() []Snapshot {
	ems := m.allMetrics()
	out := make([]Snapshot, len(ems))
	for i, em := range ems {
		out[i] = em.snapshot()
	}
	return out
}

func (m *Manager) allMetrics() []*envMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*envMetrics, 0, len(m.metrics))
	for _, em := range m.metrics {
		out = append(out, em)
	}
	slices.SortFunc(out, func(a, b *envMetrics) int { return strings.Compare(a.env, b.env) })
	return out
}
