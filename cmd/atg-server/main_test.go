package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestMain runs the tests, then removes the atg-server binary that
// serverBinary built, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtServer.dir != "" {
		_ = os.RemoveAll(builtServer.dir)
	}
	os.Exit(code)
}

// builtServer is the atg-server binary serverBinary builds once for every
// test that runs the real binary.
var builtServer struct {
	once sync.Once
	dir  string // temporary directory holding it; removed by TestMain
	path string
	err  error
}

// serverBinary builds atg-server once per test run and returns its path.
// It is built with -race when this test binary is, so that the binary's
// data races fail the tests that run it (exit status 66), as in-process
// ones do.
func serverBinary(t *testing.T) string {
	t.Helper()
	builtServer.once.Do(func() {
		dir, err := os.MkdirTemp("", "atg-server-test-")
		if err != nil {
			builtServer.err = err
			return
		}
		builtServer.dir = dir
		bin := filepath.Join(dir, "atg-server")
		args := []string{"build", "-o", bin}
		if raceBuild() {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
			builtServer.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		builtServer.path = bin
	})
	if builtServer.err != nil {
		t.Fatal(builtServer.err)
	}
	return builtServer.path
}

// raceBuild reports whether this test binary was built with -race.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// cli runs atg-server in-process with the given environment variables.
type cli struct {
	t    *testing.T
	vars map[string]string
	now  func() time.Time
}

func newCLI(t *testing.T, vars map[string]string) *cli {
	if vars == nil {
		vars = map[string]string{} // never the process environment
	}
	return &cli{t: t, vars: vars, now: time.Now}
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return c.vars[k] }, now: c.now, environ: c.vars}
	code = runEnv(context.Background(), e, args)
	if s := errb.String(); strings.Contains(s, "goroutine ") || strings.Contains(s, "panic") {
		c.t.Errorf("atg-server %v: stack trace on stderr:\n%s", args, s)
	}
	return code, out.String(), errb.String()
}

// secrets collects keys and their digests, to check that no output or file
// reveals them.
type secrets []string

func (s *secrets) add(key string) {
	d := auth.Digest(key)
	*s = append(*s, key, key[len(key)-64:], hex.EncodeToString(d[:]))
}

func (s secrets) check(t *testing.T, where, text string) {
	t.Helper()
	for _, v := range s {
		if strings.Contains(text, v) {
			t.Errorf("%s reveals a key or digest", where)
			return
		}
	}
}

func (s secrets) checkKeysOnly(t *testing.T, where, text string) {
	t.Helper()
	for i := 0; i < len(s); i += 3 {
		if strings.Contains(text, s[i]) || strings.Contains(text, s[i+1]) {
			t.Errorf("%s reveals a key", where)
			return
		}
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	c := newCLI(t, nil)
	tests := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{nil, exitUsage, "", "NEO4J_PASSWORD"}, // serve is the default; it needs a configuration
		{[]string{"help"}, exitOK, "Usage:\n  atg-server [flags]\n  atg-server [command]", ""},
		{[]string{"--help"}, exitOK, "keys", ""},
		{[]string{"serve-me"}, exitUsage, "", `unknown command "serve-me"`},
		{[]string{"keys"}, exitUsage, "", "Usage:\n  atg-server keys <subcommand>"},
		{[]string{"keys", "help"}, exitOK, "Usage:\n  atg-server keys <subcommand>", ""},
		{[]string{"keys", "delete"}, exitUsage, "", `unknown subcommand "delete"`},
		// Help asked for goes to stdout, with the flags spelt --name.
		{[]string{"keys", "create", "-h"}, exitOK, "      --client-id string", ""},
		{[]string{"help", "keys", "create"}, exitOK, "      --client-id string", ""},
		{[]string{"--version"}, exitOK, "atg-server 0.", ""},
		{[]string{"version", "-h"}, exitOK, "Usage:\n  atg-server version", ""},
		{[]string{"version", "now"}, exitUsage, "", `unexpected argument "now"`},
		{[]string{"completion", "bash"}, exitOK, "bash completion", ""},
	}
	for _, tt := range tests {
		code, stdout, stderr := c.run(tt.args...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d", tt.args, code, tt.code)
		}
		if !strings.Contains(stdout, tt.stdout) || (tt.stdout == "" && stdout != "") {
			t.Errorf("%v: stdout %q, want it to contain %q", tt.args, stdout, tt.stdout)
		}
		if !strings.Contains(stderr, tt.stderr) {
			t.Errorf("%v: stderr %q, want it to contain %q", tt.args, stderr, tt.stderr)
		}
		if (len(tt.args) == 0 || tt.args[0] != "completion") && singleDashFlag.MatchString(stdout+stderr) {
			t.Errorf("%v: a flag spelt with one dash:\n%s%s", tt.args, stdout, stderr)
		}
	}
}

// singleDashFlag matches a long flag spelt with one dash ("-client-id").
var singleDashFlag = regexp.MustCompile(`(^|[\s\[])-[a-z][a-z-]+`)

func TestKeysLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "keys.json")
	c := newCLI(t, map[string]string{keysFileEnv: file})
	var keys secrets

	// create prints the key alone on stdout.
	code, stdout, stderr := c.run("keys", "create", "--env", "dev", "--client-id", "team-a", "--expires-in", "30d")
	if code != exitOK {
		t.Fatalf("create: exit %d: %s", code, stderr)
	}
	if !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("create stdout %q: want exactly one line", stdout)
	}
	key1 := strings.TrimSuffix(stdout, "\n")
	if env, err := auth.ParseKey(key1); err != nil || env != auth.Dev {
		t.Fatalf("create printed %q… (%v), not a dev key", key1[:min(len(key1), 8)], err)
	}
	keys.add(key1)
	keys.checkKeysOnly(t, "create stderr", stderr)
	for _, want := range []string{"team-a", "read,write", file} {
		if !strings.Contains(stderr, want) {
			t.Errorf("create stderr %q lacks %q", stderr, want)
		}
	}

	// create --json, flags in any order, --file given explicitly.
	code, stdout, _ = c.run("keys", "create", "--json", "--scopes", "admin", "--file", file, "--client-id", "ops", "--env", "production", "--expires-in", "never")
	if code != exitOK {
		t.Fatalf("create --json: exit %d", code)
	}
	var created keyOutput
	if err := json.Unmarshal([]byte(stdout), &created); err != nil {
		t.Fatalf("create --json output: %v", err)
	}
	keys.add(created.Key)
	if created.Record.ClientID != "ops" || created.Record.Environment != auth.Production || !cmp.Equal(created.Record.Scopes, []auth.Scope{auth.ScopeAdmin}) || created.Record.ExpiresAt != nil {
		t.Errorf("create --json record = %+v", created.Record)
	}

	// list: table and JSON, never a key or digest.
	code, stdout, stderr = c.run("keys", "list")
	if code != exitOK {
		t.Fatalf("list: exit %d: %s", code, stderr)
	}
	keys.check(t, "list", stdout+stderr)
	if !strings.Contains(stdout, "team-a") || !strings.Contains(stdout, created.Record.ID) || !strings.Contains(stdout, "active") {
		t.Errorf("list table:\n%s", stdout)
	}
	code, stdout, _ = c.run("keys", "list", "--json")
	if code != exitOK {
		t.Fatalf("list --json: exit %d", code)
	}
	keys.check(t, "list --json", stdout)
	var raw []map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	wantFields := []string{"client_id", "created_at", "environment", "expires_at", "id", "last_used_at", "revoked_at", "scopes"}
	for _, r := range raw {
		var got []string
		for k := range r {
			got = append(got, k)
		}
		if diff := cmp.Diff(wantFields, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("list --json fields (-want +got):\n%s", diff)
		}
	}
	var recs []auth.Record
	if err := json.Unmarshal([]byte(stdout), &recs); err != nil || len(recs) != 2 {
		t.Fatalf("list --json = %d records, %v", len(recs), err)
	}
	id1 := recs[0].ID // oldest first: creation order
	if recs[0].ClientID != "team-a" || recs[0].ExpiresAt == nil || recs[0].ExpiresAt.Sub(recs[0].CreatedAt) != 30*24*time.Hour {
		t.Errorf("first record %+v", recs[0])
	}

	// rotate: a new key, printed once; the old one expires after the grace.
	code, stdout, stderr = c.run("keys", "rotate", id1, "--grace", "1h")
	if code != exitOK {
		t.Fatalf("rotate: exit %d: %s", code, stderr)
	}
	key3 := strings.TrimSuffix(stdout, "\n")
	if strings.Count(stdout, "\n") != 1 || auth.ValidateKey(key3) != nil || key3 == key1 {
		t.Fatalf("rotate stdout is not one new key")
	}
	keys.add(key3)
	keys.checkKeysOnly(t, "rotate stderr", stderr)

	// revoke with the flag after the ID.
	code, stdout, stderr = c.run("keys", "revoke", created.Record.ID, "--file", file)
	if code != exitOK || !strings.Contains(stdout, "Revoked key "+created.Record.ID) {
		t.Fatalf("revoke: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// The file holds digests only, with mode 0600.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	keys.checkKeysOnly(t, "keys file", string(data))
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v", fi.Mode().Perm())
	}

	// What a server would see.
	s, err := auth.OpenFileStore(ctx, file, auth.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Authenticate(ctx, key1); err != nil {
		t.Errorf("old key during grace: %v", err)
	}
	if rec, err := s.Authenticate(ctx, key3); err != nil || rec.ClientID != "team-a" {
		t.Errorf("rotated key: %+v, %v", rec, err)
	}
	if _, err := s.Authenticate(ctx, created.Key); !errors.Is(err, auth.ErrRevoked) {
		t.Errorf("revoked key: %v", err)
	}
	later, err := auth.OpenFileStore(ctx, file, auth.FileStoreOptions{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	if _, err := later.Authenticate(ctx, key1); !errors.Is(err, auth.ErrExpired) {
		t.Errorf("old key after grace: %v", err)
	}

	code, stdout, _ = c.run("keys", "list")
	keys.check(t, "final list", stdout)
	if code != exitOK || !strings.Contains(stdout, "revoked") || strings.Count(stdout, "\n") != 4 {
		t.Errorf("final list:\n%s", stdout)
	}
}

func TestKeysErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version":7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, map[string]string{keysFileEnv: file})
	noEnv := newCLI(t, nil)
	_, stdout, _ := c.run("keys", "create", "--env", "dev", "--client-id", "x")
	revokedKey := strings.TrimSpace(stdout)
	_, stdout, _ = c.run("keys", "list", "--json")
	var recs []auth.Record
	if err := json.Unmarshal([]byte(stdout), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("setup: %v", err)
	}
	if code, _, _ := c.run("keys", "revoke", recs[0].ID); code != exitOK {
		t.Fatal("setup revoke failed")
	}

	tests := []struct {
		name   string
		c      *cli
		args   []string
		code   int
		stderr string
	}{
		{"no keys file", noEnv, []string{"keys", "list"}, exitUsage, "no keys file: pass --file or set ATG_KEYS_FILE"},
		{"missing env", c, []string{"keys", "create", "--client-id", "x"}, exitUsage, "--env and --client-id are required"},
		{"missing client", c, []string{"keys", "create", "--env", "dev"}, exitUsage, "--env and --client-id are required"},
		{"bad env", c, []string{"keys", "create", "--env", "prod", "--client-id", "x"}, exitUsage, `--env: auth: invalid environment "prod"`},
		{"bad scope", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--scopes", "read,root"}, exitUsage, `invalid scope "root"`},
		{"bad client id", c, []string{"keys", "create", "--env", "dev", "--client-id", "a b"}, exitUsage, `client ID "a b" must be`},
		{"bad duration", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--expires-in", "soon"}, exitUsage, `invalid duration "soon"`},
		{"negative duration", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--expires-in", "-1h"}, exitUsage, "must not be negative"},
		{"zero expiry", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--expires-in", "0s"}, exitUsage, "--expires-in never"},
		{"zero days", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--expires-in", "0d"}, exitUsage, "must live longer than 0"},
		{"overflowing hours", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--expires-in", "9999999999h"}, exitUsage, "too long, the most is 36600d"},
		{"overflowing days", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--expires-in", "99999999999999999999d"}, exitUsage, "too long, the most is 36600d"},
		{"over 100 years", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--expires-in", "36601d"}, exitUsage, "too long"},
		{"negative days", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--expires-in", "-3d"}, exitUsage, "must not be negative"},
		{"unknown flag", c, []string{"keys", "list", "--all"}, exitUsage, "unknown flag: --all"},
		{"single-dash flag", c, []string{"keys", "list", "-file", file}, exitUsage, "unknown shorthand flag: 'f' in -file; flags take two dashes: --file"},
		{"extra argument", c, []string{"keys", "list", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"revoke without ID", c, []string{"keys", "revoke"}, exitUsage, "missing key ID"},
		{"revoke two IDs", c, []string{"keys", "revoke", "a", "b"}, exitUsage, "expected one key ID, got 2"},
		{"revoke unknown", c, []string{"keys", "revoke", "key_000000000000"}, exitFailure, `key record not found: "key_000000000000"`},
		{"rotate unknown", c, []string{"keys", "rotate", "key_000000000000"}, exitFailure, "not found"},
		{"rotate revoked", c, []string{"keys", "rotate", recs[0].ID}, exitFailure, "revoked"},
		{"rotate negative grace", c, []string{"keys", "rotate", recs[0].ID, "--grace", "-5m"}, exitUsage, "must not be negative"},
		{"bad file", c, []string{"keys", "list", "--file", bad}, exitFailure, bad + ": unsupported version 7"},
		{"missing directory", c, []string{"keys", "create", "--env", "dev", "--client-id", "x", "--file", filepath.Join(dir, "nope", "k.json")}, exitFailure, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tt.c.run(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q on error, want nothing", stdout)
			}
			if strings.Contains(stderr, revokedKey) {
				t.Error("stderr reveals a key")
			}
		})
	}
}

// TestRunUsesProcessEnvironment checks run's default wiring (os.Getenv).
func TestRunUsesProcessEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys.json")
	t.Setenv(keysFileEnv, file)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "list", "--json"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != "[]" {
		t.Errorf("list --json of an empty store = %q, want []", got)
	}
}

// TestBinary builds atg-server and runs it as a user would.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not found")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := serverBinary(t)
	file := filepath.Join(dir, "keys.json")
	exe := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), keysFileEnv+"="+file)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(errb.String(), "goroutine ") {
			t.Errorf("stack trace from %v", args)
		}
		return code, out.String(), errb.String()
	}
	var keys secrets
	code, stdout, stderr := exe("keys", "create", "--env", "integration", "--client-id", "ci", "--scopes", "read")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, stderr)
	}
	key := strings.TrimSuffix(stdout, "\n")
	if !strings.HasPrefix(key, "atg_integration_") || len(key) != 80 || strings.Contains(key, "\n") {
		t.Fatalf("create stdout is not one integration key")
	}
	keys.add(key)
	code, stdout, _ = exe("keys", "list", "--json")
	keys.check(t, "list --json", stdout)
	var recs []auth.Record
	if err := json.Unmarshal([]byte(stdout), &recs); code != 0 || err != nil || len(recs) != 1 {
		t.Fatalf("list --json: exit %d, %v", code, err)
	}
	code, stdout, _ = exe("keys", "list")
	keys.check(t, "list", stdout)
	if code != 0 || !strings.Contains(stdout, recs[0].ID) {
		t.Errorf("list: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = exe("keys", "rotate", recs[0].ID, "--grace", "0")
	if code != 0 || auth.ValidateKey(strings.TrimSpace(stdout)) != nil {
		t.Errorf("rotate: exit %d", code)
	}
	keys.add(strings.TrimSpace(stdout))
	if code, _, _ := exe("keys", "revoke", recs[0].ID); code != 0 {
		t.Errorf("revoke: exit %d", code)
	}
	data, _ := os.ReadFile(file)
	keys.checkKeysOnly(t, "keys file", string(data))
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"frobnicate"}, 2},
		{[]string{"keys", "create", "--env", "staging", "--client-id", "x"}, 2},
		{[]string{"keys", "revoke", "key_000000000000"}, 1},
	} {
		if code, stdout, stderr := exe(tc.args...); code != tc.code || stdout != "" || stderr == "" {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q", tc.args, code, tc.code, stdout, stderr)
		}
	}
}
