// Command atg-load is the load generator of ATG: it drives a real
// atg-server and the real Neo4j behind it with many concurrent clients and
// reports every outcome, the latency per route, the throughput, the
// server's memory and its Neo4j pool.
//
// Usage:
//
//	atg-load [flags]
//
// By default it starts the server in this process, configured from the
// environment exactly as "atg-server serve" would be (ATG_*, ENVIRONMENT,
// NEO4J_*; --env-file adds a .env file), listening on 127.0.0.1:0 with one
// API key per client in an auth.MemoryStore. --spawn runs that same server
// as a child process instead, so that the memory figures are the server's
// alone; --url (with --key or --keys-file) loads a server that is already
// running, whose limits then apply per key you give.
//
// Phases:
//
//  1. warm-up: one client (with the monitoring key, not a load client's)
//     makes a status call, a query and an import (a server's first import
//     creates the uniqueness constraint of the shared base label,
//     atg_id_unique_GraphNode, if missing; none is made for the run's
//     label); then the server's idle memory is sampled after a forced GC;
//  2. load: --clients clients for --duration, each looping over --mix
//     (GET /api/v1/status, POST /api/v1/query with read queries, and
//     imports: POST /api/v1/operations of a small graph under the run's
//     label, followed by a watch of the operation's events to the
//     terminal event), paced at --rpm requests a minute per API key;
//     memory and pool gauges are sampled every --sample-interval;
//  3. open streams: --streams event streams to "load-hold" operations
//     that run until released, held for --streams-hold while the server's
//     memory is measured, then released (in-process and --spawn only;
//     each key opens 5, so 1,000 streams use 200 fresh keys);
//  4. housekeeping: the pool metrics from /api/v1/status and /metrics,
//     then every node under the label is deleted (unless --keep-data;
//     there is no per-label constraint to drop, and the base label's one
//     is shared and stays).
//
// --preload-ops N first puts N finished operations into the history of a
// server atg-load starts (directly through its engine, not over HTTP), as
// if it had been up a while under ATG_OPERATION_RETENTION.
//
// Every HTTP attempt is counted per route as ok (2xx), rate limited (429:
// the limits at work, reported apart and not errors) or an error (any
// other status, a transport failure, a broken stream, an operation that
// did not complete). Latencies are measured client-side over successful
// calls, with exact percentiles over every sample; for event watches they
// are the times to the first and to the terminal event.
//
// The default --rpm of 90 keeps each key under the default
// ATG_RATE_LIMIT_RPM of 100 (bucket of ATG_RATE_LIMIT_BURST 20), and each
// client has at most one operation active (ATG_MAX_OPS_PER_KEY is 10), so
// the expected number of 429s is zero; --rpm 0 sends as fast as the
// server answers, and the 429s then show the limits working.
//
// Output: a human summary on stdout, or with --json the report as JSON on
// stdout (the summary then goes to stderr). Progress goes to stderr.
//
// Exit status: 0 when no request failed (429s excepted), 1 when any did
// or a phase failed, 2 on a usage or configuration error, 130 when
// interrupted.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/atgraph/atg"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// main wires signals to run and exits with its status.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a run sees of its process; tests replace its parts.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	// environ, when not nil, replaces the process environment for the
	// in-process server's configuration (and is added to a spawned one's).
	environ map[string]string
}

// run executes the command line args (without the program name) and
// returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, &env{stdout: stdout, stderr: stderr, stdin: os.Stdin}, args)
}

// runEnv is run with a replaceable environment.
func runEnv(ctx context.Context, e *env, args []string) int {
	// A spawned server's stderr is copied into e.stderr from another
	// goroutine: serialise the writes.
	e.stderr = &lockedWriter{w: e.stderr}
	if len(args) > 0 && args[0] == childCommand {
		return runChild(ctx, e, args[1:])
	}
	o, code, ok := parseFlags(e, args)
	if !ok {
		return code
	}
	return loadTest(ctx, e, o, args)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write implements io.Writer.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// options are the parsed flags; each field is the flag of the same name
// (see parseFlags for their meaning and defaults).
type options struct {
	// clients, duration, rpm, mixText (parsed into mix) and importNodes
	// shape the load phase.
	clients     int
	duration    time.Duration
	rpm         int
	mixText     string
	mix         mix
	importNodes int
	// streams and streamsHold shape the open-streams phase.
	streams     int
	streamsHold time.Duration
	// poolSize, spawn, preloadOps, serverLog, auditLog and envFile
	// configure a server atg-load starts.
	poolSize   int
	spawn      bool
	preloadOps int
	serverLog  string
	auditLog   string
	envFile    string
	// url, key, keysFile and serverPID name an external server instead.
	url       string
	key       string
	keysFile  string
	serverPID int
	// label is the run's node label; keepData skips the cleanup.
	label    string
	keepData bool
	// jsonOut prints the report as JSON.
	jsonOut bool
	// sampleEvery, settle and drainTimeout are timings of the run.
	sampleEvery  time.Duration
	settle       time.Duration
	drainTimeout time.Duration
}

// usageText heads the -h output.
const usageText = `usage: atg-load [flags]

Drives a real atg-server and Neo4j with many clients and reports outcomes,
latency per route, throughput, server memory and the Neo4j pool.

Server (one of):
  (default)            start atg-server in this process from the environment
                       (ATG_*, ENVIRONMENT, NEO4J_*), on 127.0.0.1:0
  --spawn              start it as a child process (server-only memory figures)
  --url URL            load a running server; with --key KEY or --keys-file FILE
                       (one key per line); its limits apply per key

Flags:
`

// identifier is what a label must look like (neo4jpool.IdentifierPattern).
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// parseFlags parses and checks args.
func parseFlags(e *env, args []string) (options, int, bool) {
	var o options
	fs := flag.NewFlagSet("atg-load", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, usageText)
		fs.PrintDefaults()
	}
	fs.IntVar(&o.clients, "clients", 200, "concurrent clients")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "length of the load phase")
	fs.IntVar(&o.rpm, "rpm", 90, "requests per minute per API key (0: unpaced, expect 429s)")
	fs.StringVar(&o.mixText, "mix", "status=3,query=4,import=2", "relative weights of status, query and import (submit + watch)")
	fs.IntVar(&o.importNodes, "import-nodes", 5, "nodes per import (a tenant and N-1 subscriptions it CONTAINS)")
	fs.IntVar(&o.streams, "streams", 1000, "event streams held open in the streams phase (0: skip)")
	fs.DurationVar(&o.streamsHold, "streams-hold", 5*time.Second, "how long the streams are held open")
	fs.IntVar(&o.poolSize, "pool-size", 0, "Neo4j pool size of the server atg-load starts (0: NEO4J_<ENV>_POOL_SIZE or its default)")
	fs.BoolVar(&o.spawn, "spawn", false, "run the server as a child process instead of in this process")
	fs.StringVar(&o.url, "url", "", "base URL of a running server to load instead")
	fs.StringVar(&o.key, "key", "", "API key for --url (read and write scopes)")
	fs.StringVar(&o.keysFile, "keys-file", "", "file of API keys for --url, one per line; client i uses key i mod N")
	fs.IntVar(&o.serverPID, "server-pid", 0, "process ID of the --url server, to read its RSS from /proc")
	fs.IntVar(&o.preloadOps, "preload-ops", 0, "finished operations to put in the history of a server atg-load starts before the run (as if it had been up a while)")
	fs.StringVar(&o.label, "label", "", "node label of the run's data (default AtgLoad_<random>); must be unused")
	fs.BoolVar(&o.keepData, "keep-data", false, "leave the imported nodes in place")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON on stdout (the summary goes to stderr)")
	fs.StringVar(&o.serverLog, "server-log", "", "server log file of a server atg-load starts (default: a file in the temp dir; off: none)")
	fs.StringVar(&o.auditLog, "audit-log", "", "ATG_AUDIT_LOG of a server atg-load starts (default: a file in the temp dir; off: none)")
	fs.StringVar(&o.envFile, "env-file", ".env", "optional .env file for the server atg-load starts (missing is fine)")
	fs.DurationVar(&o.sampleEvery, "sample-interval", time.Second, "memory and pool sampling period during the load")
	fs.DurationVar(&o.settle, "settle", time.Second, "pause before the idle and after-load memory samples")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", time.Minute, "how long calls in flight at the end may take before they are cancelled")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK, false
		}
		return o, exitUsage, false
	}
	bad := func(format string, a ...any) (options, int, bool) {
		fmt.Fprintf(e.stderr, "atg-load: "+format+"\n", a...)
		return o, exitUsage, false
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.mix, err = parseMix(o.mixText); err != nil {
		return bad("%v", err)
	}
	switch {
	case o.clients < 1:
		return bad("--clients must be at least 1")
	case o.duration <= 0:
		return bad("--duration must be positive")
	case o.rpm < 0:
		return bad("--rpm must be >= 0")
	case o.importNodes < 1 || o.importNodes > 1000:
		return bad("--import-nodes must be between 1 and 1000")
	case o.streams < 0:
		return bad("--streams must be >= 0")
	case o.streamsHold < 0:
		return bad("--streams-hold must be >= 0")
	case o.poolSize < 0:
		return bad("--pool-size must be >= 0")
	case o.sampleEvery <= 0:
		return bad("--sample-interval must be positive")
	case o.settle < 0:
		return bad("--settle must be >= 0")
	case o.drainTimeout <= 0:
		return bad("--drain-timeout must be positive")
	case o.url != "" && o.spawn:
		return bad("--url and --spawn exclude each other")
	case o.url == "" && (o.key != "" || o.keysFile != "" || o.serverPID != 0):
		return bad("--key, --keys-file and --server-pid go with --url")
	case o.url != "" && o.key == "" && o.keysFile == "":
		return bad("--url needs --key or --keys-file")
	case o.url != "" && o.key != "" && o.keysFile != "":
		return bad("give --key or --keys-file, not both")
	case o.preloadOps < 0:
		return bad("--preload-ops must be >= 0")
	case o.url != "" && o.preloadOps > 0:
		return bad("--preload-ops applies to a server atg-load starts")
	case o.url != "" && o.poolSize > 0:
		return bad("--pool-size applies to a server atg-load starts; set NEO4J_<ENV>_POOL_SIZE on the --url server")
	case o.label != "" && !identifier.MatchString(o.label):
		return bad("--label %q must match %s", o.label, identifier)
	}
	if o.label == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.label = "AtgLoad_" + hex.EncodeToString(b[:])
	}
	if o.serverLog == "" {
		o.serverLog = filepath.Join(os.TempDir(), "atg-load-"+o.label+"-server.log")
	}
	if o.auditLog == "" {
		o.auditLog = filepath.Join(os.TempDir(), "atg-load-"+o.label+"-audit.log")
	}
	return o, 0, true
}

// readKeys returns the keys of --key or --keys-file.
func readKeys(o options) ([]string, error) {
	if o.key != "" {
		return []string{strings.TrimSpace(o.key)}, nil
	}
	b, err := os.ReadFile(o.keysFile)
	if err != nil {
		return nil, err
	}
	var keys []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no keys", o.keysFile)
	}
	return keys, nil
}

// startTarget starts or connects to the server under load.
func startTarget(ctx context.Context, e *env, o options) (target, error) {
	so := serverOptions{envFile: o.envFile, environ: e.environ, poolSize: o.poolSize, loadKeys: o.clients,
		streamKeys: (o.streams + streamsPerKey - 1) / streamsPerKey, preloadOps: o.preloadOps, serverLog: o.serverLog, auditLog: o.auditLog}
	switch {
	case o.url != "":
		keys, err := readKeys(o)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		return &external{info: ServerInfo{Mode: "external", URL: strings.TrimRight(o.url, "/"), PID: o.serverPID,
			RateLimitRPM: -1, RateLimitBurst: -1, MaxOpsPerKey: -1, AuthFailuresPerMinute: -1}, keys: keys, pid: o.serverPID}, nil
	case o.spawn:
		return spawnServer(ctx, e, so)
	}
	ls, err := startLocalServer(ctx, so)
	if err != nil {
		return nil, err
	}
	return &inProcess{ls: ls}, nil
}

// loadTest runs every phase and prints the report.
func loadTest(ctx context.Context, e *env, o options, args []string) int {
	progress := func(format string, a ...any) {
		fmt.Fprintf(e.stderr, "atg-load: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	rep := &Report{Tool: "atg-load", Version: atg.Version, StartedAt: time.Now().UTC().Truncate(time.Second), Args: redactArgs(args),
		Machine: machineInfo()}
	if la := rep.Machine.LoadAverageBefore; la.One > float64(runtime.NumCPU()) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("load average %s on %d CPUs before the run: other work shares this machine, figures are noisy", la, runtime.NumCPU()))
	}
	goroutinesBefore := runtime.NumGoroutine()
	progress("starting the server (%s)", serverMode(o))
	t, err := startTarget(ctx, e, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "atg-load: %v\n", err)
		return exitUsage
	}
	closed := false
	defer func() {
		if !closed {
			_, _ = t.Close(context.Background())
		}
	}()
	rep.Server = t.Info()
	base := rep.Server.URL
	keys := t.LoadKeys()
	rep.Workload = describeWorkload(o, len(keys), rep.Server)
	if rep.Workload.Note != "" {
		progress("%s", rep.Workload.Note)
	}

	house := newRecorder("housekeeping")
	mon, monHTTP, err := newMonitorClient(base, t.MonitorKey(), house)
	if err != nil {
		fmt.Fprintf(e.stderr, "atg-load: %v\n", err)
		return exitUsage
	}
	defer closeIdle(monHTTP)
	st, err := statusWithLimits(ctx, mon)
	if err != nil {
		fmt.Fprintf(e.stderr, "atg-load: the server does not answer GET /api/v1/status: %v\n", err)
		return exitFailure
	}
	rep.fillServer(st)
	if st.Neo4j.Status != "connected" {
		fmt.Fprintf(e.stderr, "atg-load: the server cannot reach Neo4j (%s); start one with `scripts/neo4j.sh start` and `eval \"$(scripts/neo4j.sh env)\"`, or set NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD\n", st.Neo4j.Error)
		return exitFailure
	}
	if rep.Server.Mode == "external" {
		if lim := rateLimitOf(ctx, monHTTP, base, t.MonitorKey()); lim > 0 {
			rep.Server.RateLimitRPM = lim
			rep.Workload = describeWorkload(o, len(keys), rep.Server)
		}
	}
	if n, err := countLabel(ctx, mon, o.label); err != nil {
		fmt.Fprintf(e.stderr, "atg-load: check label %s: %v\n", o.label, err)
		return exitFailure
	} else if n > 0 {
		fmt.Fprintf(e.stderr, "atg-load: %d nodes already carry label %s; atg-load deletes everything under its label afterwards, so it needs an unused one\n", n, o.label)
		return exitUsage
	}

	// Phase 1: warm-up, then idle memory.
	progress("warm-up against %s (%s server, pool %d)", base, rep.Server.Mode, rep.Server.PoolSize)
	warm := newRecorder("warmup")
	wstart := time.Now()
	if wc, err := newSimClient(o.clients, base, t.MonitorKey(), warm, nil, o.label, o.importNodes); err == nil {
		for _, f := range []func(context.Context, context.Context) error{wc.status, wc.query, wc.importAndWatch} {
			_ = f(ctx, ctx)
		}
		closeIdle(wc.hc)
	}
	rep.Warmup = warm.report(time.Since(wstart))
	sleep(ctx, o.settle)
	if s, err := t.Memory(ctx, true); err == nil {
		rep.Memory.Idle = &s
	} else {
		rep.Memory.Note = err.Error()
	}
	plain := newPlainClient()
	defer plain.CloseIdleConnections()
	before, _ := scrapeMetrics(ctx, plain, base)

	// Phase 2: load, with sampling.
	progress("load: %d clients × %s, mix %s, %s", o.clients, o.duration, o.mix, rep.Workload.Pacing)
	load := newRecorder("load")
	samp := startSampler(ctx, t, base, o.sampleEvery)
	w := workload{clients: o.clients, duration: o.duration, rpm: o.rpm, mix: o.mix, importNodes: o.importNodes, label: o.label, drainTimeout: o.drainTimeout}
	took, lerr := runLoad(ctx, base, keys, w, load)
	samples := samp.stop()
	rep.Load = load.report(took)
	if lerr != nil {
		rep.Problems = append(rep.Problems, "load: "+lerr.Error())
	}
	rep.Memory.UnderLoad = samples.mem.summary(o.sampleEvery)
	progress("load done: %d requests in %.1f s (%.1f/s), %d × 429, %d errors", rep.Load.Requests, took.Seconds(), rep.Load.ThroughputRPS, rep.Load.RateLimited, rep.Load.Errors)
	if ctx.Err() == nil {
		after, err := scrapeMetrics(ctx, plain, base)
		if err == nil && before != nil {
			rep.ServerHTTP = diffCodes(before.httpCodes(), after.httpCodes())
		}
		if st, err := statusWithLimits(ctx, mon); err == nil {
			rep.Pool = poolReport(st, after, samples)
		} else {
			rep.Problems = append(rep.Problems, "pool status after the load: "+err.Error())
		}
		sleep(ctx, o.settle)
		if s, err := t.Memory(ctx, true); err == nil {
			rep.Memory.AfterLoad = &s
		}
	}

	// Phase 3: open streams.
	switch {
	case ctx.Err() != nil:
	case o.streams == 0:
	case t.StreamKeys() == nil:
		rep.Warnings = append(rep.Warnings, "streams phase skipped: it needs the load-hold operation type, which only a server atg-load starts registers")
	case rep.Server.MaxOpsPerKey > 0 && rep.Server.MaxOpsPerKey < streamsPerKey:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("streams phase skipped: each key holds %d operations open, and ATG_MAX_OPS_PER_KEY is %d", streamsPerKey, rep.Server.MaxOpsPerKey))
	default:
		progress("streams: opening %d event streams to held operations", o.streams)
		beforeStreams, err := t.Memory(ctx, true)
		if err != nil {
			beforeStreams = MemSample{}
		}
		rep.Streams = runStreams(ctx, t, plain, base, o.streams, o.streamsHold, o.settle, beforeStreams, progress)
		progress("streams done: %d opened, %d completed", rep.Streams.Opened, rep.Streams.Completed)
	}

	// Phase 4: housekeeping.
	rep.ServerLog = t.LogCounts(ctx)
	if o.keepData {
		rep.Cleanup = CleanupReport{Label: o.label, Skipped: true}
	} else {
		progress("cleanup: deleting the nodes under %s", o.label)
		rep.Cleanup = cleanup(context.WithoutCancel(ctx), mon, o.label)
	}
	rep.Housekeeping = house.report(0)
	closeIdle(monHTTP)
	plain.CloseIdleConnections()
	if rep.Server.Mode != "external" {
		progress("shutting the server down")
	}
	d, err := t.Close(context.WithoutCancel(ctx))
	closed = true
	rep.Shutdown = &ShutdownReport{Seconds: round(d.Seconds(), 3)}
	if err != nil {
		rep.Shutdown.Error = err.Error()
	}
	if rep.Server.Mode == "in-process" {
		rep.Shutdown.GoroutinesBefore = goroutinesBefore
		rep.Shutdown.GoroutinesAfter = settleGoroutines(goroutinesBefore)
	}
	rep.Machine.LoadAverageAfter = loadAverage()
	rep.finish(ctx)

	if o.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		rep.writeSummary(e.stderr)
	} else {
		rep.writeSummary(e.stdout)
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return rep.ExitCode
}

// redactArgs returns args with the value of --key hidden.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	hide := false
	for i, a := range args {
		switch {
		case hide:
			out[i], hide = "***", false
		case a == "--key" || a == "-key":
			out[i], hide = a, true
		case strings.HasPrefix(a, "--key=") || strings.HasPrefix(a, "-key="):
			name, _, _ := strings.Cut(a, "=")
			out[i] = name + "=***"
		default:
			out[i] = a
		}
	}
	return out
}

// serverMode names the server mode the options choose.
func serverMode(o options) string {
	switch {
	case o.url != "":
		return "external " + o.url
	case o.spawn:
		return "spawned child process"
	}
	return "in-process"
}

// settleGoroutines waits up to 5 s for the goroutine count to fall back to
// want (connections and timers wind down after a shutdown) and returns it.
func settleGoroutines(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rateLimitOf reads the per-minute rate of X-RateLimit-Policy from an authenticated request to an
// external server (0 when absent).
func rateLimitOf(ctx context.Context, hc *http.Client, base, key string) int {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/status", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	var n int // X-RateLimit-Policy is "<requests>;w=60"
	_, _ = fmt.Sscanf(resp.Header.Get("X-RateLimit-Policy"), "%d;w=60", &n)
	return n
}
