package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
	"github.com/google/go-cmp/cmp"
)

// result is what one atg run produced.
type result struct {
	code           int
	stdout, stderr string
}

// String shows the result in a test failure.
func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs atg in-process with the given variables (never the process
// environment) and no .env file.
type cli struct {
	t        *testing.T
	vars     map[string]string
	tty      bool
	opts     func(*atg.ClientOptions)
	onClient func(context.Context, *atg.Client) error
}

// newCLI returns a cli with vars as its whole environment.
func newCLI(t *testing.T, vars map[string]string) *cli {
	if vars == nil {
		vars = map[string]string{}
	}
	return &cli{t: t, vars: vars}
}

// run runs atg with args.
func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runIO(context.Background(), "", nil, args...)
}

// runStdin runs atg with args and stdin.
func (c *cli) runStdin(stdin string, args ...string) result {
	c.t.Helper()
	return c.runIO(context.Background(), stdin, nil, args...)
}

// runIO runs atg with ctx (cancel it to interrupt), stdin, and stderr
// copied to tee when not nil.
func (c *cli) runIO(ctx context.Context, stdin string, tee io.Writer, args ...string) result {
	c.t.Helper()
	var out, errb syncBuffer
	var stderr io.Writer = &errb
	if tee != nil {
		stderr = io.MultiWriter(&errb, tee)
	}
	e := &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: stderr, environ: c.vars,
		isTerminal:    func(io.Writer) bool { return c.tty },
		clientOptions: c.opts, onClient: c.onClient,
	}
	code := runEnv(ctx, e, append([]string{"--env-file="}, args...))
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	checkOutput(c.t, args, r, c.vars["ATG_API_KEY"])
	if pw := c.vars["NEO4J_PASSWORD"]; pw != "" && strings.Contains(r.stdout+r.stderr, pw) {
		c.t.Errorf("atg %v: output reveals the Neo4j password", args)
	}
	return r
}

// checkOutput fails t when output shows a stack trace or the API key, or
// an error is more than one line.
func checkOutput(t *testing.T, args []string, r result, key string) {
	t.Helper()
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
		t.Errorf("atg %v: stack trace on stderr:\n%s", args, r.stderr)
	}
	if key != "" && (strings.Contains(r.stdout, key) || strings.Contains(r.stderr, key)) {
		t.Errorf("atg %v: output reveals the API key", args)
	}
	if n := len(errorLine.FindAllString(r.stderr, -1)); n > 1 && r.code != exitOK {
		t.Errorf("atg %v: %d error lines, want one:\n%s", args, n, r.stderr)
	}
}

// errorLine matches the start of an error line: "atg: " or "atg ops get: ".
var errorLine = regexp.MustCompile(`(?m)^atg( [a-z]+)*: `)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the buffer contains sub.
func (s *syncBuffer) waitFor(t *testing.T, sub string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q in:\n%s", sub, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// opIDPattern matches an operation ID.
var opIDPattern = regexp.MustCompile(`op_[0-9a-f]{24}`)

// opID returns the first operation ID in s.
func opID(t *testing.T, s string) string {
	t.Helper()
	id := opIDPattern.FindString(s)
	if id == "" {
		t.Fatalf("no operation ID in:\n%s", s)
	}
	return id
}

// document returns testdata/name with __LABEL__ replaced by label, so
// that every test writes (and cleans up) only its own nodes.
func document(t *testing.T, name, label string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("__LABEL__"), []byte(label))
}

// documentFile writes document(name, label) to a temporary file.
func documentFile(t *testing.T, name, label string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, document(t, name, label), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testLabel returns a fresh label whose nodes are deleted when t ends.
func testLabel(t *testing.T) (string, neo4jtest.Settings) {
	t.Helper()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)
	return label, s
}

// countLabel counts the nodes and relationships among nodes with label.
func countLabel(t *testing.T, s neo4jtest.Settings, label string) (nodes, rels int64) {
	t.Helper()
	d := neo4jtest.Driver(t, s)
	nodes = neo4jtest.Count(t, d, s, "MATCH (n:`"+label+"`) RETURN count(n)", nil)
	rels = neo4jtest.Count(t, d, s, "MATCH (:`"+label+"`)-[r]->(:`"+label+"`) RETURN count(r)", nil)
	return nodes, rels
}

// testServer is an atg.Server on a random port against the test Neo4j,
// with keys of every scope and two extra operation types: "block" runs
// until release is called (or it is cancelled), "fail" fails at once.
type testServer struct {
	srv                 *atg.Server
	rw, readOnly, admin string
	release             func()
}

// vars returns the variables of a remote atg using key.
func (s *testServer) vars(key string) map[string]string {
	return map[string]string{"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": s.srv.URL(), "ATG_API_KEY": key}
}

// client returns a remote client of the server with key.
func (s *testServer) client(t *testing.T, key string) *atg.Client {
	t.Helper()
	c, err := atg.NewClient(atg.ClientOptions{Config: atg.ClientConfig{RemoteMode: true, ServiceURL: s.srv.URL(), APIKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// quietLog discards the test servers' logs.
var quietLog = slog.New(slog.DiscardHandler)

// blockType runs until release is closed or its operation is cancelled.
func blockType(release <-chan struct{}) operations.Type {
	return operations.Type{Name: "block", Run: func(ctx context.Context, _ json.RawMessage, r operations.Reporter) (any, error) {
		r.Log("info", "blocking")
		select {
		case <-release:
			return map[string]bool{"released": true}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
}

// startServer starts a testServer allowing maxOps running operations;
// mutate, when not nil, adjusts its configuration.
func startServer(t *testing.T, maxOps int, mutate func(*atg.ServerConfig)) *testServer {
	t.Helper()
	s := neo4jtest.Require(t)
	ctx := context.Background()
	store := auth.NewMemoryStore()
	key := func(client string, scopes ...auth.Scope) string {
		k, _, err := store.Create(ctx, auth.CreateOptions{ClientID: client, Environment: auth.Dev, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ts := &testServer{rw: key("tester"), readOnly: key("reader", auth.ScopeRead), admin: key("root", auth.ScopeAdmin)}
	release := make(chan struct{})
	var once sync.Once
	ts.release = func() { once.Do(func() { close(release) }) }
	fail := operations.Type{Name: "fail", Run: func(context.Context, json.RawMessage, operations.Reporter) (any, error) {
		return nil, &operations.Error{Code: "BROKEN", Message: "it broke on purpose"}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := atg.ServerConfig{
		Host: "127.0.0.1", Port: 8000, Workers: 1, MaxConcurrentOps: maxOps, Environment: auth.Dev,
		MaxBodyBytes: atg.DefaultMaxBodyBytes, QueryMaxRows: atg.DefaultQueryMaxRows,
		OperationRetention: time.Hour, ShutdownTimeout: 10 * time.Second, AuditLog: "off",
		Neo4j: neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}.WithDefaults(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ts.srv = &atg.Server{Config: cfg, Logger: quietLog, KeyStore: store, Listener: ln, Types: []operations.Type{blockType(release), fail}}
	if err := ts.srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ts.release()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return ts
}

// localVars returns the variables of a local-mode atg on the test Neo4j.
func localVars(t *testing.T) map[string]string {
	t.Helper()
	return neo4jtest.Require(t).Env()
}

// closedPort returns a URL where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// update rewrites the golden files of testdata instead of comparing.
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name, or writes it there with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -run %s -update rewrites it):\n%s", name, t.Name(), diff)
	}
}

// TestHelp checks the help against testdata/help.golden (commands in
// order, global flags, configuration, profiles and the exit-status
// table), and that "help", "--help" and "-h" show the same help.
func TestHelp(t *testing.T) {
	t.Parallel()
	c := newCLI(t, nil)
	r := c.run("help")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("help:\n%s", r)
	}
	golden(t, "help.golden", r.stdout)
	for _, args := range [][]string{{"--help"}, {"-h"}} {
		if h := c.run(args...); h.code != exitOK || h.stdout != r.stdout {
			t.Errorf("%v: exit %d\n%s", args, h.code, h.stdout)
		}
	}
	// The exit-status table of the help is the one exitCode implements.
	for _, line := range []string{"  2    usage or configuration error", "(400 VALIDATION_ERROR)", "the query failed (QUERY_ERROR, 400:", "  130  interrupted"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("help lacks %q", line)
		}
	}
	if exitCode(&transport.Error{Status: 400, Code: transport.CodeQuery}) != exitFailure ||
		exitCode(&transport.Error{Status: 400, Code: transport.CodeValidation}) != exitUsage {
		t.Error("QUERY_ERROR must exit 1 and VALIDATION_ERROR 2, as the help says")
	}
}

// TestHelpCommand checks "atg help" of nested commands, "atg help -h",
// --version and completion.
func TestHelpCommand(t *testing.T) {
	t.Parallel()
	c := newCLI(t, nil)
	tests := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"help", "ops", "list"}, exitOK, "Usage:\n  atg ops list [--status S]", ""},
		{[]string{"help", "ops", "wait"}, exitOK, "--timeout duration", ""},
		{[]string{"help", "-h"}, exitOK, "Usage:\n  atg help [command]...", ""},
		{[]string{"help", "ops", "frob"}, exitUsage, "", `atg help: unknown command "ops frob" (see "atg help -h")`},
		{[]string{"--version"}, exitOK, "atg " + atg.Version + " (", ""},
		{[]string{"version", "-h"}, exitOK, "Usage:\n  atg version", ""},
		{[]string{"ops", "list", "--help"}, exitOK, "-o, --format format", ""},
		{[]string{"completion", "bash"}, exitOK, "bash completion V2 for atg", ""},
		{[]string{"completion", "zsh"}, exitOK, "#compdef atg", ""},
		{[]string{"completion", "fish"}, exitOK, "complete -c atg", ""},
		{[]string{"stats"}, exitUsage, "", `unknown command "stats"; did you mean "status"?`},
	}
	for _, tt := range tests {
		r := c.run(tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) ||
			(tt.stdout == "" && r.stdout != "") || (tt.stderr == "" && r.stderr != "") {
			t.Errorf("%v: want exit %d, stdout %q, stderr %q\n%s", tt.args, tt.code, tt.stdout, tt.stderr, r)
		}
	}
}

// TestUsage checks help, usage errors and configuration errors (exit 2).
func TestUsage(t *testing.T) {
	t.Parallel()
	c := newCLI(t, nil)
	remoteNoURL := newCLI(t, map[string]string{"ATG_REMOTE_MODE": "yes"})
	tests := []struct {
		name           string
		c              *cli
		args           []string
		code           int
		stdout, stderr string
	}{
		{"no command", c, nil, exitUsage, "", "Usage:\n  atg [global flags]"},
		{"help", c, []string{"help"}, exitOK, "Exit status:", ""},
		{"--help", c, []string{"--help"}, exitOK, "Available Commands:", ""},
		{"help query", c, []string{"help", "query"}, exitOK, "Usage:\n  atg query CYPHER", ""},
		{"help unknown", c, []string{"help", "frob"}, exitUsage, "", `unknown command "frob"`},
		{"query -h", c, []string{"query", "-h"}, exitOK, "--param name=value", ""},
		{"import -h", c, []string{"import", "--help"}, exitOK, "--cancel-on-interrupt", ""},
		{"status -h", c, []string{"status", "-h"}, exitOK, "Usage:\n  atg status", ""},
		{"ops -h", c, []string{"ops", "-h"}, exitOK, "\n  watch       follow an operation", ""},
		{"ops list -h", c, []string{"ops", "list", "-h"}, exitOK, "--status S", ""},
		{"version", c, []string{"version"}, exitOK, "atg " + atg.Version, ""},
		{"unknown command", c, []string{"frobnicate"}, exitUsage, "", `atg: unknown command "frobnicate" (see "atg help")`},
		{"unknown global flag", c, []string{"--frob", "status"}, exitUsage, "", `atg: unknown flag: --frob (see "atg help")`},
		{"single-dash flag", c, []string{"status", "-format", "json"}, exitUsage, "", "; flags take two dashes: --format"},
		{"single-dash global flag", c, []string{"-remote", "status"}, exitUsage, "", "; flags take two dashes: --remote"},
		{"unknown flag", c, []string{"status", "--all"}, exitUsage, "", `atg status: unknown flag: --all (see "atg status -h")`},
		{"bad format", c, []string{"--format", "yaml", "status"}, exitUsage, "", `--format "yaml": want table or json`},
		{"bad format after", c, []string{"query", "RETURN 1", "--format=xml"}, exitUsage, "", `--format "xml"`},
		{"remote and local", c, []string{"--remote", "--local", "status"}, exitUsage, "", "--remote and --local exclude each other"},
		{"status extra", c, []string{"status", "now"}, exitUsage, "", `unexpected argument "now"`},
		{"query missing", c, []string{"query"}, exitUsage, "", "missing the Cypher query"},
		{"query two", c, []string{"query", "RETURN 1", "RETURN 2"}, exitUsage, "", "got 2 arguments"},
		{"query empty", c, []string{"query", "  "}, exitUsage, "", "the query is empty"},
		{"query bad param", c, []string{"query", "RETURN $x", "--param", "x"}, exitUsage, "", `--param "x": want name=value`},
		{"query bad param name", c, []string{"query", "RETURN 1", "--param", "1x=2"}, exitUsage, "", "the name must be"},
		{"query dup param", c, []string{"query", "RETURN $x", "--param", "x=1", "--param", "x=2"}, exitUsage, "", "--param x given twice"},
		{"query bad timeout", c, []string{"query", "RETURN 1", "--timeout", "11m"}, exitUsage, "", "--timeout 11m0s: want 1ms to 10m0s"},
		{"import missing", c, []string{"import"}, exitUsage, "", "missing the graph document"},
		{"import no file", c, []string{"import", "testdata/nope.json"}, exitUsage, "", "atg: open testdata/nope.json: no such file or directory"},
		{"import bad chunk", c, []string{"import", "-", "--chunk-size", "-1"}, exitUsage, "", "--chunk-size -1: want 1 to 100000"},
		{"import not an object", c, []string{"import", "testdata/not-an-object.json"}, exitUsage, "", `testdata/not-an-object.json is not a graph document: want a JSON object`},
		{"import malformed", c, []string{"import", "testdata/malformed.json"}, exitUsage, "", "is not a graph document: invalid character ']' looking for beginning of object key string (line 4)"},
		{"import format", c, []string{"import", "-", "--format", "json"}, exitUsage, "", "unknown flag: --format"},
		{"status csv", c, []string{"status", "-o", "csv"}, exitUsage, "", `--format "csv": want table or json`},
		{"ops get jsonl", c, []string{"ops", "get", "op_1", "--format", "jsonl"}, exitUsage, "", `--format "jsonl": want table or json`},
		{"query bad format", c, []string{"query", "RETURN 1", "-o", "yaml"}, exitUsage, "", `--format "yaml": want table, json, jsonl, csv or tsv`},
		{"watch no-headers", c, []string{"ops", "watch", "op_1", "--no-headers"}, exitUsage, "", "unknown flag: --no-headers"},
		{"wait negative timeout", c, []string{"ops", "wait", "op_1", "--timeout", "-1s"}, exitUsage, "", "--timeout -1s: must not be negative"},
		{"missing env file", c, []string{"--env-file", "testdata/no-such.env", "status"}, exitUsage, "", "atg: --env-file testdata/no-such.env: no such file"},
		{"missing env file after", c, []string{"status", "--env-file=testdata/no-such.env"}, exitUsage, "", "no such file"},
		{"ops missing", c, []string{"ops"}, exitUsage, "", "missing subcommand: list, get, cancel, watch or wait"},
		{"ops unknown", c, []string{"ops", "delete"}, exitUsage, "", `unknown subcommand "delete"`},
		{"ops get missing", c, []string{"ops", "get"}, exitUsage, "", `atg ops get: missing an operation ID (see "atg ops get -h")`},
		{"ops list bad status", c, []string{"ops", "list", "--status", "done"}, exitUsage, "", `unknown status "done"`},
		{"ops list bad limit", c, []string{"ops", "list", "--limit", "501"}, exitUsage, "", "--limit 501: want 1 to 500"},
		{"ops list zero limit", c, []string{"ops", "list", "--limit", "0"}, exitUsage, "", "--limit 0: want 1 to 500"},
		{"ops list help shows the limit's default", c, []string{"ops", "list", "-h"}, exitOK, "page size, 1 to 500 (default 50)", ""},
		{"ops in local mode", c, []string{"ops", "list"}, exitUsage, "", `use --remote (or set ATG_REMOTE_MODE=true)`},
		{"ops forced local", remoteNoURL, []string{"--local", "ops", "get", "op_1"}, exitUsage, "", "this is local mode"},
		{"remote without URL", remoteNoURL, []string{"status"}, exitUsage, "", "atg: invalid client configuration: ATG_SERVICE_URL: required when remote mode is enabled; ATG_API_KEY: API key is required"},
		{"--remote without URL", c, []string{"--remote", "status"}, exitUsage, "", "ATG_SERVICE_URL: required when remote mode is enabled"},
		{"local without password", c, []string{"status"}, exitUsage, "", "atg: local mode: invalid neo4j configuration: NEO4J_PASSWORD: neo4j password is required"},
		{"bad environment", newCLI(t, map[string]string{"ENVIRONMENT": "staging"}), []string{"status"}, exitUsage, "", `ENVIRONMENT="staging": must be dev, integration or production`},
		{"bad remote mode", newCLI(t, map[string]string{"ATG_REMOTE_MODE": "maybe"}), []string{"status"}, exitUsage, "", "ATG_REMOTE_MODE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.c.run(tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.code, r)
			}
			if !strings.Contains(r.stdout, tt.stdout) || (tt.stdout == "" && r.stdout != "") {
				t.Errorf("stdout %q, want it to contain %q", r.stdout, tt.stdout)
			}
			if !strings.Contains(r.stderr, tt.stderr) || (tt.stderr == "" && r.stderr != "") {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.stderr)
			}
			if tt.code == exitUsage && tt.stderr != "" && strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 && tt.name != "no command" {
				t.Errorf("usage error in more than one line:\n%s", r.stderr)
			}
		})
	}
}

// TestEnvFile reads the remote configuration from a .env file, and checks
// that --local beats ATG_REMOTE_MODE.
func TestEnvFile(t *testing.T) {
	t.Parallel()
	ts := startServer(t, 2, nil)
	file := filepath.Join(t.TempDir(), "client.env")
	content := fmt.Sprintf("ATG_REMOTE_MODE=true\nATG_SERVICE_URL=%s\nexport ATG_API_KEY='%s'\n", ts.srv.URL(), ts.rw)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := localVars(t)
	c := newCLI(t, vars)
	c.vars["ATG_API_KEY"] = ts.rw // only for the leak check: the file sets it too
	r := c.run("--env-file", file, "status")
	if r.code != exitOK || !strings.Contains(r.stdout, "remote mode, "+ts.srv.URL()) || !strings.Contains(r.stdout, "tester") {
		t.Errorf("status with .env:\n%s", r)
	}
	r = c.run("--env-file", file, "--local", "status")
	if r.code != exitOK || !strings.Contains(r.stdout, "local mode, ") {
		t.Errorf("status --local with ATG_REMOTE_MODE=true in .env:\n%s", r)
	}
	if err := os.WriteFile(file, []byte("ATG_API_KEY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.run("--env-file", file, "status"); r.code != exitUsage || !strings.Contains(r.stderr, "malformed .env file") {
		t.Errorf("malformed .env:\n%s", r)
	}
}

// TestExitCodes checks the mapping of errors to exit statuses.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("transport: GET /api/v1/status: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	tests := []struct {
		name string
		err  error
		code int
	}{
		{"nil", nil, exitOK},
		{"config", &atg.ConfigError{What: "client"}, exitUsage},
		{"input", &inputError{errors.New("x")}, exitUsage},
		{"mode", &modeError{"x"}, exitUsage},
		{"validation 400", &transport.Error{Status: 400, Code: transport.CodeValidation}, exitUsage},
		{"query 400", &transport.Error{Status: 400, Code: transport.CodeQuery}, exitFailure},
		{"401", &transport.Error{Status: 401, Code: transport.CodeAuthenticationFailed}, exitAuth},
		{"403", &transport.Error{Status: 403, Code: transport.CodeForbidden}, exitAuth},
		{"404", &transport.Error{Status: 404, Code: transport.CodeNotFound}, exitNotFound},
		{"409", &transport.Error{Status: 409, Code: transport.CodeNotCancellable}, exitFailure},
		{"413", &transport.Error{Status: 413, Code: transport.CodePayloadTooLarge}, exitFailure},
		{"429", &transport.Error{Status: 429, Code: transport.CodeRateLimited}, exitUnavailable},
		{"500", &transport.Error{Status: 500, Code: transport.CodeInternal}, exitFailure},
		{"502 from a proxy", &transport.Error{Status: 502, Code: transport.CodeUnavailable}, exitUnavailable},
		{"503", &transport.Error{Status: 503, Code: transport.CodeUnavailable}, exitUnavailable},
		{"local database down", &transport.Error{Code: transport.CodeUnavailable}, exitUnavailable},
		{"connection refused", refused, exitUnavailable},
		{"timeout", fmt.Errorf("transport: GET /x: %w", context.DeadlineExceeded), exitUnavailable},
		{"operation failed", &operations.Error{Code: "IMPORT_FAILED"}, exitFailure},
		{"operation cancelled", &operations.Error{Code: operations.CodeCancelled}, exitCancelled},
		{"other", errors.New("boom"), exitFailure},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.code {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.code)
		}
	}
}

// TestRunUsesProcessEnvironment checks run's default wiring: with no
// environ of its own, the configuration comes from the process environment.
// Remote mode, the server URL and the key are set there only, so status
// reaches for that URL (where nothing listens) only if run read them.
func TestRunUsesProcessEnvironment(t *testing.T) {
	url := "http://" + closedPort(t)
	t.Setenv("ATG_REMOTE_MODE", "true")
	t.Setenv("ATG_SERVICE_URL", url)
	t.Setenv("ATG_API_KEY", "atg_dev_"+strings.Repeat("1", 64))
	var out, errb bytes.Buffer
	empty := filepath.Join(t.TempDir(), "empty.env") // a named .env file must exist
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code := run(context.Background(), []string{"--env-file", empty, "status"}, &out, &errb)
	if code != exitUnavailable || out.Len() != 0 ||
		!strings.Contains(errb.String(), "atg: cannot reach the server at "+url+": ") || !strings.Contains(errb.String(), "connection refused") {
		t.Errorf("status: exit %d (want %d), stdout %q, stderr %q", code, exitUnavailable, out.String(), errb.String())
	}
	if isTerminal(&out) {
		t.Error("a buffer is not a terminal")
	}
}
