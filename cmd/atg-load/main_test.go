package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/atgraph/atg/internal/neo4jtest"
)

// TestMain runs the tests, or, when started as the --spawn child, the
// child server (os.Executable is the test binary then).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// loadRun is the result of one in-process run of atg-load.
type loadRun struct {
	code           int
	stdout, stderr string
	rep            Report
}

// environFor returns the variables of the in-process server: the test
// Neo4j, an operation namespace of t's own (servers of two tests must not
// be replicas of each other), plus extra.
func environFor(t *testing.T, s neo4jtest.Settings, extra map[string]string) map[string]string {
	vars := s.Env()
	vars["ENVIRONMENT"] = "dev"
	vars["ATG_OPERATION_NAMESPACE"] = neo4jtest.OperationNamespace(t, neo4jtest.Driver(t, s), s)
	maps.Copy(vars, extra)
	return vars
}

// runLoadTool runs atg-load --json with args against the test Neo4j,
// under a fresh label whose nodes are deleted afterwards whatever happens.
func runLoadTool(t *testing.T, extra map[string]string, args ...string) loadRun {
	t.Helper()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	d := neo4jtest.Driver(t, s)
	neo4jtest.CleanupLabel(t, d, s, label)
	dir := t.TempDir()
	all := append([]string{"--json", "--label", label, "--env-file", "", "--server-log", filepath.Join(dir, "server.log"),
		"--audit-log", filepath.Join(dir, "audit.log"), "--settle", "100ms"}, args...)
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader(""), environ: environFor(t, s, extra)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := loadRun{code: runEnv(ctx, e, all), stdout: stdout.String(), stderr: stderr.String()}
	if err := json.Unmarshal(stdout.Bytes(), &r.rep); err != nil {
		t.Fatalf("report is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil); n != 0 && !r.rep.Cleanup.Skipped {
		t.Errorf("%d nodes under %s remain after the run", n, label)
	}
	return r
}

// routeReport returns the report of route rt in p.
func routeReport(t *testing.T, p PhaseReport, rt route) RouteReport {
	t.Helper()
	for _, r := range p.Routes {
		if r.Route == rt.String() {
			return r
		}
	}
	t.Fatalf("phase %s has no route %s: %+v", p.Phase, rt, p.Routes)
	return RouteReport{}
}

// checkLatency checks that l is present and ordered.
func checkLatency(t *testing.T, what string, l *Latency) {
	t.Helper()
	switch {
	case l == nil:
		t.Errorf("%s: no latency", what)
	case l.Count == 0 || l.P50MS <= 0 || l.P50MS > l.P90MS || l.P90MS > l.P99MS || l.P99MS > l.MaxMS:
		t.Errorf("%s: latency out of order: %+v", what, l)
	}
}

// TestLoadInProcess runs the generator for 2 s with 10 clients against an
// in-process server and checks the report's structure and that nothing
// failed.
func TestLoadInProcess(t *testing.T) {
	t.Parallel()
	// Pace at 600/min per key under a limit of 1,000/min so that 2 s give
	// every route traffic, with no 429 expected.
	r := runLoadTool(t, map[string]string{"ATG_RATE_LIMIT_RPM": "1000", "ATG_RATE_LIMIT_BURST": "50"},
		"--clients", "10", "--duration", "2s", "--rpm", "600", "--streams", "20", "--streams-hold", "0s", "--sample-interval", "250ms")
	rep := r.rep
	if r.code != exitOK || rep.ExitCode != exitOK || rep.Errors != 0 || rep.RateLimited != 0 {
		t.Fatalf("exit %d, %d errors, %d × 429, problems %q\nstderr:\n%s", r.code, rep.Errors, rep.RateLimited, rep.Problems, r.stderr)
	}
	if rep.Server.Mode != "in-process" || rep.Server.PID != os.Getpid() || rep.Server.PoolSize != 50 || rep.Server.RateLimitRPM != 1000 {
		t.Errorf("server = %+v", rep.Server)
	}
	if !rep.Workload.UnderRateLimit || rep.Workload.Clients != 10 || rep.Workload.Keys != 10 || rep.Workload.RPMPerKey != 600 {
		t.Errorf("workload = %+v", rep.Workload)
	}
	if rep.Load.Requests == 0 || rep.Load.OK != rep.Load.Requests || rep.Load.ThroughputRPS <= 0 {
		t.Errorf("load totals = %+v", rep.Load)
	}
	for _, rt := range []route{routeStatus, routeQuery, routeSubmit, routeEvents} {
		rr := routeReport(t, rep.Load, rt)
		if rr.Requests == 0 || rr.OK != rr.Requests || rr.Errors != 0 {
			t.Errorf("%s: %+v", rt, rr)
		}
		checkLatency(t, rt.String(), rr.Latency)
		if got := rep.ServerHTTP[rt.String()]["200"] + rep.ServerHTTP[rt.String()]["202"]; int64(got) != rr.Requests {
			t.Errorf("%s: the server counted %v, the clients %d", rt, rep.ServerHTTP[rt.String()], rr.Requests)
		}
	}
	ev := routeReport(t, rep.Load, routeEvents)
	if ev.Watches == 0 || ev.WatchesCompleted != ev.Watches || ev.Resumed != 0 {
		t.Errorf("watches: %+v", ev)
	}
	checkLatency(t, "first event", ev.FirstEvent)
	checkLatency(t, "submit to terminal", ev.SubmitToTerminal)
	if m := rep.Memory; m.Idle == nil || m.Idle.RSSBytes == 0 || m.Idle.Heap == nil || m.UnderLoad == nil || m.UnderLoad.PeakRSSBytes == 0 || m.AfterLoad == nil || !m.InProcess {
		t.Errorf("memory = %+v", m)
	}
	if p := rep.Pool; p == nil || p.Snapshot == nil || p.Snapshot.PoolMax != 50 || p.Snapshot.Recommendation.Action == "" || p.Scrapes == 0 {
		t.Errorf("pool = %+v", p)
	}
	if s := rep.Streams; s == nil || s.Requested != 20 || s.Opened != 20 || s.Completed != 20 || s.Keys != 4 || s.ServerInFlight < 20 ||
		s.MemoryOpen == nil || s.FirstEvent == nil || s.ReleaseToTerminal == nil || s.Phase.Errors != 0 {
		t.Errorf("streams = %+v", s)
	}
	if rep.Cleanup.NodesDeleted == 0 || rep.Cleanup.Error != "" {
		t.Errorf("cleanup = %+v", rep.Cleanup)
	}
	if rep.Shutdown == nil || rep.Shutdown.Error != "" {
		t.Errorf("shutdown = %+v", rep.Shutdown)
	}
	for _, want := range []string{"load phase:", "GET /api/v1/status", "time to first event", "server memory", "Neo4j pool after the load", "recommendation:", "open streams: 20 requested", "result: OK: 0 errors"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestRateLimitedIsCountedNotError runs unpaced against a tight limit: the
// 429s are counted apart, match the server's own count, and are not errors.
func TestRateLimitedIsCountedNotError(t *testing.T) {
	t.Parallel()
	r := runLoadTool(t, map[string]string{"ATG_RATE_LIMIT_RPM": "60", "ATG_RATE_LIMIT_BURST": "3"},
		"--clients", "4", "--duration", "2s", "--rpm", "0", "--mix", "status=1", "--streams", "0")
	rep := r.rep
	if r.code != exitOK || rep.Errors != 0 {
		t.Fatalf("exit %d, %d errors, problems %q\nstderr:\n%s", r.code, rep.Errors, rep.Problems, r.stderr)
	}
	st := routeReport(t, rep.Load, routeStatus)
	if st.RateLimited == 0 || st.Errors != 0 || st.OK == 0 || st.OK+st.RateLimited != st.Requests {
		t.Fatalf("status route: %+v", st)
	}
	if got := rep.ServerHTTP[routeStatus.String()]["429"]; int64(got) != st.RateLimited {
		t.Errorf("server counted %v × 429, clients %d", got, st.RateLimited)
	}
	if rep.Load.RateLimited != st.RateLimited || rep.Workload.UnderRateLimit || rep.Workload.Note == "" {
		t.Errorf("report: rate_limited %d, workload %+v", rep.RateLimited, rep.Workload)
	}
	if !strings.Contains(r.stderr, "× 429 (rate limits; not errors)") || !strings.Contains(r.stderr, "result: OK") {
		t.Errorf("summary:\n%s", r.stderr)
	}
}

// TestSpawnedServer runs the server as a child process and measures its
// memory there.
func TestSpawnedServer(t *testing.T) {
	t.Parallel()
	r := runLoadTool(t, nil, "--spawn", "--clients", "3", "--duration", "1s", "--streams", "10", "--streams-hold", "0s", "--pool-size", "10")
	rep := r.rep
	if r.code != exitOK || rep.Errors != 0 {
		t.Fatalf("exit %d, problems %q\nstderr:\n%s", r.code, rep.Problems, r.stderr)
	}
	if rep.Server.Mode != "spawned" || rep.Server.PID == 0 || rep.Server.PID == os.Getpid() || rep.Server.PoolSize != 10 {
		t.Errorf("server = %+v", rep.Server)
	}
	if m := rep.Memory; m.InProcess || m.Idle == nil || m.Idle.Heap == nil || m.Idle.RSSBytes == 0 || m.AfterLoad == nil {
		t.Errorf("memory = %+v", m)
	}
	if s := rep.Streams; s == nil || s.Opened != 10 || s.Completed != 10 || s.MemoryOpenGC == nil || s.MemoryOpenGC.Heap == nil {
		t.Errorf("streams = %+v", s)
	}
	if rep.Pool == nil || rep.Pool.Snapshot == nil || rep.Pool.Snapshot.PoolMax != 10 {
		t.Errorf("pool = %+v", rep.Pool)
	}
}

// TestExternalServer loads a server started apart with --url and a keys
// file: the streams phase is skipped with a warning, and the RSS comes from
// --server-pid.
func TestExternalServer(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	ctx := context.Background()
	ls, err := startLocalServer(ctx, serverOptions{environ: environFor(t, s, nil), loadKeys: 2, serverLog: "off", auditLog: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ls.shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("# two keys\n"+strings.Join(ls.loadKeys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runLoadTool(t, nil, "--url", ls.info.URL, "--keys-file", keys, "--server-pid", strconv.Itoa(os.Getpid()), "--clients", "4", "--duration", "1s")
	rep := r.rep
	if r.code != exitOK || rep.Errors != 0 {
		t.Fatalf("exit %d, problems %q\nstderr:\n%s", r.code, rep.Problems, r.stderr)
	}
	if rep.Server.Mode != "external" || rep.Server.RateLimitRPM != 100 || rep.Workload.Keys != 2 || rep.Streams != nil {
		t.Errorf("server %+v, workload %+v", rep.Server, rep.Workload)
	}
	if m := rep.Memory; m.Idle == nil || m.Idle.RSSBytes == 0 || m.Idle.Heap != nil {
		t.Errorf("memory = %+v", m)
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "streams phase skipped") || !strings.Contains(rep.Workload.Note, "4 clients share 2 key(s)") {
		t.Errorf("warnings %q, note %q", rep.Warnings, rep.Workload.Note)
	}
}
