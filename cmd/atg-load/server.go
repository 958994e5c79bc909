package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/operations"
)

// holdTypeName is the operation type the server started by atg-load
// registers for the open-streams phase: it runs until released.
const holdTypeName = "load-hold"

// noopTypeName is the operation type --preload-ops fills the server's
// operation history with: it completes at once.
const noopTypeName = "load-noop"

// noopType is an operation that does nothing.
func noopType() operations.Type {
	return operations.Type{
		Name:        noopTypeName,
		Description: "atg-load: complete at once (fills the operation history for --preload-ops)",
		Run: func(context.Context, json.RawMessage, operations.Reporter) (any, error) {
			return map[string]bool{"done": true}, nil
		},
	}
}

// preload runs n load-noop operations on the server's engine directly (no
// HTTP, so no rate limit), each for its own client ID, and waits until they
// have all finished: they stay in the history for ATG_OPERATION_RETENTION
// like the operations of a server that has been up a while.
func (ls *localServer) preload(ctx context.Context, n int) error {
	eng := ls.srv.Engine()
	var last string
	for i := range n {
		op, _, err := eng.Submit(ctx, operations.SubmitRequest{ClientID: fmt.Sprintf("preload-%07d", i), Type: noopTypeName})
		if err != nil {
			return fmt.Errorf("preload operation %d: %w", i, err)
		}
		last = op.ID
		if i%1000 == 999 { // keep the queue short
			if _, err := eng.Wait(ctx, last); err != nil {
				return err
			}
		}
	}
	if last == "" {
		return nil
	}
	_, err := eng.Wait(ctx, last)
	return err
}

// holdGate releases every load-hold operation at once.
type holdGate struct {
	// once closes ch, which the held operations wait on.
	once sync.Once
	ch   chan struct{}
}

// newHoldGate returns a closed-for-now gate.
func newHoldGate() *holdGate { return &holdGate{ch: make(chan struct{})} }

// release lets every held operation (and every later one) complete.
func (g *holdGate) release() { g.once.Do(func() { close(g.ch) }) }

// holdType is an operation that reports one log event and then waits until
// g is released (or it is cancelled).
func holdType(g *holdGate) operations.Type {
	return operations.Type{
		Name:        holdTypeName,
		Description: "atg-load: hold an operation open until the load generator releases it",
		Run: func(ctx context.Context, _ json.RawMessage, r operations.Reporter) (any, error) {
			r.Log("info", "holding until atg-load releases it")
			select {
			case <-g.ch:
				return map[string]bool{"released": true}, nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		},
	}
}

// logCounter counts server log records at warn level and above by level
// and message, so the report can show what the server complained about.
type logCounter struct {
	// mu guards counts ("LEVEL message" → records).
	mu     sync.Mutex
	counts map[string]int64
}

// add counts one record.
func (c *logCounter) add(level slog.Level, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int64{}
	}
	c.counts[level.String()+" "+msg]++
}

// snapshot returns a copy of the counts.
func (c *logCounter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// countingHandler is a slog.Handler that counts warn+ records in c and
// passes records next accepts to next (nil: count only).
type countingHandler struct {
	// next formats the records (nil: none); c counts them.
	next slog.Handler
	c    *logCounter
}

// Enabled implements slog.Handler.
func (h countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || (h.next != nil && h.next.Enabled(ctx, l))
}

// Handle implements slog.Handler.
func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.c.add(r.Level, r.Message)
	}
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if h.next == nil {
		return h
	}
	return countingHandler{next: h.next.WithAttrs(attrs), c: h.c}
}

// WithGroup implements slog.Handler.
func (h countingHandler) WithGroup(name string) slog.Handler {
	if h.next == nil {
		return h
	}
	return countingHandler{next: h.next.WithGroup(name), c: h.c}
}

// serverOptions say how to start an atg-server in this process.
type serverOptions struct {
	// envFile is an optional .env file; environ, when not nil, replaces the
	// process environment (tests).
	envFile string
	environ map[string]string
	// poolSize overrides NEO4J_<ENV>_POOL_SIZE when > 0.
	poolSize int
	// loadKeys and streamKeys are how many API keys to create for the load
	// clients and the open-streams phase; one more is made for monitoring
	// and cleanup.
	loadKeys, streamKeys int
	// preloadOps is how many finished operations to put in the server's
	// history before the run (see localServer.preload).
	preloadOps int
	// serverLog is the server log file ("off": count warnings only);
	// auditLog is ATG_AUDIT_LOG for this server ("off" disables it).
	serverLog, auditLog string
}

// ServerInfo describes the server under load.
type ServerInfo struct {
	// Mode is in-process, spawned or external.
	Mode string `json:"mode"`
	// URL is the server's base URL.
	URL string `json:"url"`
	// PID is the server's process ID (0 when unknown).
	PID int `json:"pid,omitempty"`
	// Version is the atg version the server reports.
	Version string `json:"version,omitempty"`
	// Environment is the server's environment.
	Environment string `json:"environment,omitempty"`
	// PoolSize is the Neo4j pool's maximum size.
	PoolSize int `json:"pool_size,omitempty"`
	// MaxConcurrentOps is ATG_MAX_CONCURRENT_OPS.
	MaxConcurrentOps int `json:"max_concurrent_ops,omitempty"`
	// RateLimitRPM, RateLimitBurst, MaxOpsPerKey and AuthFailuresPerMinute
	// are the server's limits (0: off; -1: unknown).
	RateLimitRPM          int `json:"rate_limit_rpm"`
	RateLimitBurst        int `json:"rate_limit_burst"`
	MaxOpsPerKey          int `json:"max_ops_per_key"`
	AuthFailuresPerMinute int `json:"auth_failures_per_minute"`
	// PreloadedOps is how many finished operations --preload-ops put in the
	// server's history before the run.
	PreloadedOps int `json:"preloaded_ops,omitempty"`
	// ServerLog and AuditLog are where the server wrote its logs.
	ServerLog string `json:"server_log,omitempty"`
	AuditLog  string `json:"audit_log,omitempty"`
}

// localServer is an atg.Server run by atg-load, with keys in an
// auth.MemoryStore and the load-hold type registered.
type localServer struct {
	// srv is the server and cfg its configuration.
	srv *atg.Server
	cfg atg.ServerConfig
	// gate releases the load-hold operations.
	gate *holdGate
	// logs counts the server's warnings; logFile receives its log.
	logs    *logCounter
	logFile *os.File
	// info describes it.
	info ServerInfo
	// loadKeys, streamKeys and monitorKey are the keys made for the run.
	loadKeys, streamKeys []string
	monitorKey           string
}

// startLocalServer configures an atg.Server from the environment exactly as
// "atg-server serve" would (ATG_*, ENVIRONMENT, NEO4J_*), then overrides
// what a load run needs: a loopback listener on a free port, plain HTTP,
// an in-memory key store with one key per client, the load-hold type, and
// optionally the pool size.
func startLocalServer(ctx context.Context, o serverOptions) (_ *localServer, err error) {
	cfg, err := atg.LoadServerConfig(atg.LoadOptions{DotenvFile: o.envFile, Environ: o.environ})
	if err != nil {
		return nil, fmt.Errorf("server configuration: %w", err)
	}
	if cfg.Environment == auth.Production {
		return nil, errors.New("ENVIRONMENT=production requires HTTPS from trusted proxies; run the in-process server in dev or integration, or load a deployed server with --url")
	}
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TrustedProxies = "", "", nil
	cfg.APIKeys, cfg.KeysFile = nil, ""
	if o.poolSize > 0 {
		cfg.Neo4j.MaxPoolSize = o.poolSize
	}
	cfg.AuditLog = o.auditLog
	ls := &localServer{cfg: cfg, gate: newHoldGate(), logs: &logCounter{}}
	defer func() {
		if err != nil && ls.logFile != nil {
			ls.logFile.Close()
		}
	}()
	var next slog.Handler
	if o.serverLog != "off" {
		if ls.logFile, err = os.OpenFile(o.serverLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			return nil, fmt.Errorf("server log: %w", err)
		}
		next = slog.NewTextHandler(ls.logFile, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	log := slog.New(countingHandler{next: next, c: ls.logs})

	store := auth.NewMemoryStore()
	mk := func(clientID string) (string, error) {
		key, _, err := store.Create(ctx, auth.CreateOptions{ClientID: clientID, Environment: cfg.Environment})
		return key, err
	}
	for i := range o.loadKeys {
		k, err := mk(fmt.Sprintf("load-%04d", i))
		if err != nil {
			return nil, err
		}
		ls.loadKeys = append(ls.loadKeys, k)
	}
	for i := range o.streamKeys {
		k, err := mk(fmt.Sprintf("streams-%04d", i))
		if err != nil {
			return nil, err
		}
		ls.streamKeys = append(ls.streamKeys, k)
	}
	if ls.monitorKey, err = mk("load-monitor"); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ls.srv = &atg.Server{Config: cfg, Logger: log, KeyStore: store, Listener: ln, Types: []operations.Type{holdType(ls.gate), noopType()}}
	if err := ls.srv.Start(ctx); err != nil {
		ln.Close()
		return nil, err
	}
	ls.info = ServerInfo{
		URL: ls.srv.URL(), PID: os.Getpid(), Version: atg.Version, Environment: string(cfg.Environment),
		PoolSize: cfg.Neo4j.MaxPoolSize, MaxConcurrentOps: cfg.MaxConcurrentOps,
		RateLimitRPM: cfg.RateLimitRPM, RateLimitBurst: cfg.RateLimitBurst, MaxOpsPerKey: cfg.MaxOpsPerKey,
		AuthFailuresPerMinute: cfg.AuthFailuresPerMinute, AuditLog: cfg.AuditLog, ServerLog: o.serverLog,
	}
	if ls.info.AuditLog == "" {
		ls.info.AuditLog = "stderr"
	}
	if o.preloadOps > 0 {
		if err := ls.preload(ctx, o.preloadOps); err != nil {
			_ = ls.shutdown(ctx)
			return nil, err
		}
		ls.info.PreloadedOps = o.preloadOps
	}
	return ls, nil
}

// shutdown stops the server within ATG_SHUTDOWN_TIMEOUT.
func (ls *localServer) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ls.cfg.ShutdownTimeout)
	defer cancel()
	err := ls.srv.Shutdown(ctx)
	if ls.logFile != nil {
		if cerr := ls.logFile.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// target is the server under load, however it runs.
type target interface {
	// Info describes the server.
	Info() ServerInfo
	// LoadKeys are the API keys of the load clients (client i uses key
	// i mod len).
	LoadKeys() []string
	// StreamKeys are fresh keys for the open-streams phase (nil: the phase
	// is not possible against this server).
	StreamKeys() []string
	// MonitorKey reads /api/v1/status and cleans up.
	MonitorKey() string
	// Memory samples the server's memory (gc: force a collection first,
	// where possible).
	Memory(ctx context.Context, gc bool) (MemSample, error)
	// Release completes every load-hold operation.
	Release(ctx context.Context) error
	// LogCounts returns the server's warn+ log records by message (nil:
	// unknown).
	LogCounts(ctx context.Context) map[string]int64
	// Close stops a server atg-load started and reports how long that took.
	Close(ctx context.Context) (time.Duration, error)
}

// inProcess is a localServer in this process.
type inProcess struct {
	// ls is the server.
	ls *localServer
}

// Info implements target.
func (t *inProcess) Info() ServerInfo {
	i := t.ls.info
	i.Mode = "in-process"
	return i
}

// LoadKeys implements target.
func (t *inProcess) LoadKeys() []string { return t.ls.loadKeys }

// StreamKeys implements target.
func (t *inProcess) StreamKeys() []string { return t.ls.streamKeys }

// MonitorKey implements target.
func (t *inProcess) MonitorKey() string { return t.ls.monitorKey }

// Memory implements target: this whole process, load clients included.
func (t *inProcess) Memory(_ context.Context, gc bool) (MemSample, error) { return selfMemory(gc) }

// Release implements target.
func (t *inProcess) Release(context.Context) error { t.ls.gate.release(); return nil }

// LogCounts implements target.
func (t *inProcess) LogCounts(context.Context) map[string]int64 { return t.ls.logs.snapshot() }

// Close implements target.
func (t *inProcess) Close(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	err := t.ls.shutdown(ctx)
	return time.Since(start), err
}

// external is a server atg-load did not start (--url).
type external struct {
	// info describes it; keys are the API keys given.
	info ServerInfo
	keys []string
	// pid is --server-pid (0: unknown).
	pid int
}

// Info implements target.
func (t *external) Info() ServerInfo { return t.info }

// LoadKeys implements target.
func (t *external) LoadKeys() []string { return t.keys }

// StreamKeys implements target: the phase needs the load-hold type.
func (t *external) StreamKeys() []string { return nil }

// MonitorKey implements target.
func (t *external) MonitorKey() string { return t.keys[0] }

// Memory implements target: RSS of --server-pid when given.
func (t *external) Memory(context.Context, bool) (MemSample, error) {
	if t.pid <= 0 {
		return MemSample{}, errors.New("server memory unknown: pass --server-pid for an external server on this machine")
	}
	return procMemory(fmt.Sprint(t.pid))
}

// Release implements target.
func (t *external) Release(context.Context) error {
	return errors.New("an external server has no load-hold operations")
}

// LogCounts implements target.
func (t *external) LogCounts(context.Context) map[string]int64 { return nil }

// Close implements target.
func (t *external) Close(context.Context) (time.Duration, error) { return 0, nil }
