package neo4jpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/sethvargo/go-retry"
)

// healthQuery asks the server for its version and edition; the result
// summary names the database that answered.
const healthQuery = "CALL dbms.components() YIELD name, versions, edition " +
	"WHERE name = 'Neo4j Kernel' RETURN versions[0] AS version, edition"

// Health is the result of one health check of one environment.
type Health struct {
	// Environment is the environment checked.
	Environment string
	// Healthy is true when the database answered the probe query.
	Healthy bool
	// Latency is how long the check took, including creating and verifying
	// the driver on first use.
	Latency time.Duration
	// Err is why the check failed (nil when Healthy): the driver's error,
	// wrapped in an *EnvError, or ErrUnknownEnvironment, net.ErrClosed.
	Err error
	// ServerVersion is the Neo4j version, for example "5.26.0".
	ServerVersion string
	// Edition is "community" or "enterprise".
	Edition string
	// Database is the database that answered (the configured one, or the
	// server's default).
	Database string
	// Address is the server address that answered (host:port).
	Address string
	// CheckedAt is when the check started.
	CheckedAt time.Time
}

// MarshalJSON encodes h with latency in milliseconds and the error as text.
func (h Health) MarshalJSON() ([]byte, error) {
	type out struct {
		Environment   string    `json:"environment"`
		Healthy       bool      `json:"healthy"`
		LatencyMS     float64   `json:"latency_ms"`
		Error         string    `json:"error,omitempty"`
		ServerVersion string    `json:"server_version,omitempty"`
		Edition       string    `json:"edition,omitempty"`
		Database      string    `json:"database,omitempty"`
		Address       string    `json:"address,omitempty"`
		CheckedAt     time.Time `json:"checked_at"`
	}
	o := out{
		Environment: h.Environment, Healthy: h.Healthy,
		LatencyMS:     float64(h.Latency) / float64(time.Millisecond),
		ServerVersion: h.ServerVersion, Edition: h.Edition, Database: h.Database,
		Address: h.Address, CheckedAt: h.CheckedAt,
	}
	if h.Err != nil {
		o.Error = h.Err.Error()
	}
	return json.Marshal(o)
}

func (m *Manager) healthTimeout() time.Duration {
	if m.opts.HealthTimeout > 0 {
		return m.opts.HealthTimeout
	}
	return DefaultHealthTimeout
}

// Check probes env once: it creates the driver if needed (verifying it once,
// as every creation does), then runs a small auto-commit read query that
// reports the server version, edition and database. The check has its own
// deadline, Options.HealthTimeout (default 3 s), so a saturated pool fails
// it quickly instead of holding it for the acquisition timeout. The driver
// does not retry it. Check never panics and never returns a nil Err when
// unhealthy.
func (m *Manager) Check(ctx context.Context, env string) Health {
	start := time.Now()
	h := Health{Environment: env, CheckedAt: start}
	timeout := m.healthTimeout()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	err := m.probe(cctx, env, &h)
	h.Latency = time.Since(start)
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("health check timed out after %s: %w", timeout, err)
		}
		h.Err = err
	} else {
		h.Healthy = true
	}
	m.mu.Lock()
	em := m.metrics[env]
	m.mu.Unlock()
	if em != nil {
		em.setHealth(h)
	}
	return h
}

func (m *Manager) probe(ctx context.Context, env string, h *Health) error {
	d, cfg, err := m.driver(ctx, env)
	if err != nil {
		return err
	}
	envErr := func(err error) error {
		return &EnvError{Env: env, URI: RedactURI(cfg.URI), Op: "health check", Err: err}
	}
	session := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeRead, DatabaseName: cfg.Database})
	defer func() {
		// Bounded like the check itself, so that a stalled server cannot
		// hold a health check for the general session-close time.
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.healthTimeout())
		defer cancel()
		_ = session.Close(closeCtx)
	}()
	result, err := session.Run(ctx, healthQuery, nil)
	if err != nil {
		return envErr(err)
	}
	record, err := result.Single(ctx)
	if err != nil {
		return envErr(err)
	}
	if v, ok := record.Get("version"); ok {
		h.ServerVersion, _ = v.(string)
	}
	if v, ok := record.Get("edition"); ok {
		h.Edition, _ = v.(string)
	}
	summary, err := result.Consume(ctx)
	if err != nil {
		return envErr(err)
	}
	if db := summary.Database(); db != nil {
		h.Database = db.Name()
	}
	if srv := summary.Server(); srv != nil {
		h.Address = srv.Address()
	}
	return nil
}

// CheckAll checks every configured, open environment concurrently and
// returns the results sorted by environment.
func (m *Manager) CheckAll(ctx context.Context) []Health {
	envs := m.Environments()
	out := make([]Health, len(envs))
	var wg sync.WaitGroup
	for i, env := range envs {
		wg.Go(func() { out[i] = m.Check(ctx, env) })
	}
	wg.Wait()
	return out // in the order of Environments: sorted
}

// LastHealth returns the result of the most recent Check of env, if any.
func (m *Manager) LastHealth(env string) (Health, bool) {
	m.mu.Lock()
	em := m.metrics[env]
	m.mu.Unlock()
	if em == nil {
		return Health{}, false
	}
	return em.health()
}

// NotReadyError is returned by [Manager.WaitReady] when its context ends
// before the environment became healthy. It wraps both the last health
// check's cause and the context's error.
type NotReadyError struct {
	// Env is the environment waited for.
	Env string
	// Attempts is how many health checks ran.
	Attempts int
	// Last is the cause of the last failed check.
	Last error
	// Cause is why waiting stopped: context.Cause of the caller's context.
	Cause error
}

// Error implements error.
func (e *NotReadyError) Error() string {
	return fmt.Sprintf("neo4jpool: environment %q not ready after %d attempt(s) (%v); last error: %v",
		e.Env, e.Attempts, e.Cause, e.Last)
}

// Unwrap returns the last check's cause and the context's error.
func (e *NotReadyError) Unwrap() []error { return []error{e.Last, e.Cause} }

// permanent reports health-check failures that waiting cannot fix: an
// unknown or closed environment, rejected credentials, or a driver the
// driver package refused to create from the configuration.
func permanent(err error) bool {
	if errors.Is(err, ErrUnknownEnvironment) || isClosedErr(err) || IsAuthError(err) {
		return true
	}
	var envErr *EnvError
	return errors.As(err, &envErr) && envErr.Op == opCreateDriver
}

// WaitReady checks env until it is healthy or ctx ends, waiting between
// attempts with exponential backoff (Options.ReadyInitialBackoff doubling,
// ±20 % jitter, capped at Options.ReadyMaxBackoff; one fresh backoff per
// call). It returns nil once healthy. It stops at once, returning the
// cause, when waiting cannot help: an unknown or closed environment,
// rejected credentials, or a configuration the driver refuses when
// creating the driver (an *EnvError with Op "create driver" wrapping a
// *neo4j.UsageError, for example from a setting made in
// Options.DriverConfig). When ctx ends first it returns a *NotReadyError
// that wraps the cause of the last check that ran to its end and the
// context's error.
func (m *Manager) WaitReady(ctx context.Context, env string) error {
	initial := m.opts.ReadyInitialBackoff
	if initial <= 0 {
		initial = DefaultReadyInitialBackoff
	}
	capped := m.opts.ReadyMaxBackoff
	if capped <= 0 {
		capped = DefaultReadyMaxBackoff
	}
	b := retry.WithCappedDuration(capped, retry.WithJitterPercent(20, retry.NewExponential(initial)))

	var last error
	attempts := 0
	err := retry.Do(ctx, b, func(ctx context.Context) error {
		attempts++
		h := m.Check(ctx, env)
		if h.Healthy {
			return nil
		}
		// An attempt cut short by ctx ending says only that; keep the cause
		// of the last attempt that ran to its end.
		if last == nil || ctx.Err() == nil {
			last = h.Err
		}
		if permanent(h.Err) {
			return h.Err
		}
		m.logger().Debug("neo4jpool: waiting for environment", "env", env, "attempt", attempts, "err", h.Err)
		return retry.RetryableError(h.Err)
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		if last == nil {
			last = err
		}
		return &NotReadyError{Env: env, Attempts: attempts, Last: last, Cause: context.Cause(ctx)}
	default:
		return err
	}
}
