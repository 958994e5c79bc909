package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atgraph/atg/internal/neo4jtest"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serverVars returns a valid dev configuration against the test Neo4j.
func serverVars(t *testing.T) map[string]string {
	s := neo4jtest.Require(t)
	vars := s.Env() // NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE
	maps.Copy(vars, map[string]string{
		"ATG_SERVER_HOST": "127.0.0.1", "ATG_SERVER_PORT": strconv.Itoa(freePort(t)), "ATG_SHUTDOWN_TIMEOUT": "5s",
		// the default store (neo4j) with a namespace of the test's own: the
		// servers of two tests must not be replicas of each other
		"ATG_OPERATION_NAMESPACE": neo4jtest.OperationNamespace(t, neo4jtest.Driver(t, s), s),
	})
	return vars
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestServeInDevPrintsURLAndKeyThenShutsDown(t *testing.T) {
	t.Parallel()
	vars := serverVars(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	hup := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, &env{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return vars[k] },
			now: time.Now, environ: vars, hup: hup}, []string{"--env-file", ""}) // "": no .env file
	}()
	waitFor(t, "the dev key", func() bool { return strings.Count(stdout.String(), "----\n") >= 2 })
	lines := strings.Split(stdout.String(), "\n")
	url := "http://127.0.0.1:" + vars["ATG_SERVER_PORT"]
	if !strings.Contains(lines[0], "listening on "+url) {
		t.Errorf("first line %q", lines[0])
	}
	m := regexp.MustCompile(`(?m)^  export KEY=(atg_dev_[0-9a-f]{64})$`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no dev key line in:\n%s", stdout.String())
	}
	key := m[1]
	if want := readyMessage(url, "dev", key); stdout.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout.String(), want)
	}
	if code := get(t, url+"/livez", ""); code != 200 {
		t.Errorf("livez %d", code)
	}
	if code := get(t, url+"/api/v1/status", key); code != 200 {
		t.Errorf("status with the dev key: %d", code)
	}
	if code := get(t, url+"/api/v1/status", ""); code != 401 {
		t.Errorf("status without a key: %d", code)
	}
	hup <- syscall.SIGHUP // no keys file: a no-op that must not break anything
	if strings.Contains(stderr.String(), key) {
		t.Error("the dev key reached the logs")
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if code := get(t, url+"/livez", ""); code != 0 {
		t.Errorf("still serving after shutdown: %d", code)
	}
}

func TestServeRefusesInvalidConfiguration(t *testing.T) {
	t.Parallel()
	c := newCLI(t, map[string]string{"ATG_SERVER_PORT": "99999", "ENVIRONMENT": "staging", "NEO4J_PASSWORD": "weak"})
	code, stdout, stderr := c.run("serve", "--env-file", "")
	if code != exitUsage || stdout != "" {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{"ATG_SERVER_PORT", "99999", "ENVIRONMENT", "staging"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	code, _, stderr = c.run("serve", "--log-format", "xml")
	if code != exitUsage || !strings.Contains(stderr, "--log-format") {
		t.Errorf("bad flag: %d %s", code, stderr)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	vars := serverVars(t)
	s := neo4jtest.Require(t)
	code, stdout, stderr := newCLI(t, vars).run("check", "--env-file", "")
	if code != exitOK || !strings.Contains(stdout, "configuration: OK") || !strings.Contains(stdout, "neo4j: OK (Neo4j 5.") ||
		!strings.Contains(stdout, " at "+s.URI+", database \"") || !strings.HasSuffix(stdout, " ms)\n") || stderr != "" {
		t.Errorf("check: %d\n%s\n%s", code, stdout, stderr)
	}
	bad := maps.Clone(vars)
	bad["NEO4J_PASSWORD"] = "Wrong-Passw0rd-For-Test!"
	start := time.Now()
	code, stdout, stderr = newCLI(t, bad).run("check", "--env-file", "", "--timeout", "30s")
	// Rejected credentials are final: check says so at once, without
	// waiting out --timeout, and never calls the database unreachable.
	if code != exitFailure || !strings.Contains(stderr, "neo4j: credentials rejected at "+s.URI+` (user "`+s.User+`"): `) ||
		strings.Contains(stderr, "not reachable") || strings.Contains(stderr, "Wrong-Passw0rd") || strings.Contains(stdout, "neo4j: OK") ||
		time.Since(start) > 15*time.Second {
		t.Errorf("wrong password: %d %s (%s)", code, stderr, time.Since(start))
	}
	bad["NEO4J_PASSWORD"] = vars["NEO4J_PASSWORD"]
	bad["NEO4J_URI"] = "bolt://127.0.0.1:" + strconv.Itoa(freePort(t))
	start = time.Now()
	code, _, stderr = newCLI(t, bad).run("check", "--env-file", "", "--timeout", "1s")
	if code != exitFailure || !strings.Contains(stderr, "neo4j: not reachable at "+bad["NEO4J_URI"]+" within 1s: ") ||
		strings.Contains(stderr, "credentials rejected") || time.Since(start) > 10*time.Second {
		t.Errorf("unreachable: %d %s (%s)", code, stderr, time.Since(start))
	}
	code, _, stderr = newCLI(t, map[string]string{"ATG_SERVER_WORKERS": "0"}).run("check", "--env-file", "")
	if code != exitUsage || !strings.Contains(stderr, "ATG_SERVER_WORKERS") {
		t.Errorf("invalid config: %d %s", code, stderr)
	}
}

// TestCheckAndServeRefuseWhatCannotServe checks that check refuses, with
// exit 2 and before it calls Neo4j, every setup serve would refuse before
// listening (exit 2 too), and passes a setup serve accepts.
func TestCheckAndServeRefuseWhatCannotServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	production := map[string]string{
		"ENVIRONMENT": "production", "ATG_SERVER_HOST": "127.0.0.1", "ATG_SERVER_PORT": strconv.Itoa(freePort(t)),
		"ATG_TRUSTED_PROXIES": "127.0.0.1/32", "ATG_AUDIT_LOG": "off",
		"NEO4J_URI": "bolt://127.0.0.1:" + strconv.Itoa(freePort(t)), "NEO4J_PASSWORD": "Unused-Passw0rd!xx",
	}
	with := func(kv ...string) map[string]string {
		vars := maps.Clone(production)
		for i := 0; i < len(kv); i += 2 {
			vars[kv[i]] = kv[i+1]
		}
		return vars
	}
	devOnly := filepath.Join(dir, "dev-keys.json")
	if code, _, stderr := newCLI(t, nil).run("keys", "create", "--env", "dev", "--client-id", "a", "--file", devOnly); code != exitOK {
		t.Fatalf("keys create: %d %s", code, stderr)
	}
	prodKeys := filepath.Join(dir, "production-keys.json")
	if code, _, stderr := newCLI(t, nil).run("keys", "create", "--env", "production", "--client-id", "b", "--file", prodKeys); code != exitOK {
		t.Fatalf("keys create: %d %s", code, stderr)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"no keys file yet", with("ATG_KEYS_FILE", filepath.Join(dir, "missing.json")), []string{"no usable production API key"}},
		{"only a dev key", with("ATG_KEYS_FILE", devOnly), []string{"another environment", "no usable production API key"}},
		{"keys file unreadable", with("ATG_KEYS_FILE", dir), []string{"ATG_KEYS_FILE"}},
		{"TLS files missing", with("ATG_KEYS_FILE", prodKeys, "ATG_TLS_CERT_FILE", filepath.Join(dir, "no.crt"),
			"ATG_TLS_KEY_FILE", filepath.Join(dir, "no.key")), []string{"no.crt"}},
		{"audit log in a missing folder", with("ATG_KEYS_FILE", prodKeys, "ATG_AUDIT_LOG", filepath.Join(dir, "none", "audit.log")), []string{"audit.log"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range []string{"check", "serve"} {
				code, stdout, stderr := newCLI(t, tc.vars).run(cmd, "--env-file", "")
				if code != exitUsage || strings.Contains(stdout, "OK") || strings.Contains(stdout, "listening") {
					t.Errorf("%s: exit %d (want %d), stdout %q, stderr:\n%s", cmd, code, exitUsage, stdout, stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, stderr)
					}
				}
				if strings.Contains(stderr, "neo4j: ") || strings.Contains(stderr, "neo4j is ") {
					t.Errorf("%s: reached Neo4j before refusing the setup:\n%s", cmd, stderr)
				}
			}
		})
	}
	// A setup serve accepts passes check's setup step; the (absent)
	// database then fails it with exit 1.
	code, stdout, stderr := newCLI(t, with("ATG_KEYS_FILE", prodKeys)).run("check", "--env-file", "", "--timeout", "1s")
	if code != exitFailure || !strings.Contains(stdout, "configuration: OK (environment production") || !strings.Contains(stderr, "neo4j: not reachable") {
		t.Errorf("valid setup, no database: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestCheckFlags checks that check takes --env-file and --timeout only:
// serve's log flags, which check would ignore, are refused.
func TestCheckFlags(t *testing.T) {
	t.Parallel()
	c := newCLI(t, nil)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check", "--log-format", "json"}, exitUsage, "unknown flag: --log-format"},
		{[]string{"check", "--log-level", "debug"}, exitUsage, "unknown flag: --log-level"},
		{[]string{"check", "--timeout", "soon"}, exitUsage, `invalid argument "soon" for "--timeout" flag`},
		{[]string{"check", "--env-file", "", "now"}, exitUsage, `atg-server check: unexpected argument "now"`},
	} {
		code, stdout, stderr := c.run(tc.args...)
		if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "configuration: OK") {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr:\n%s", tc.args, code, tc.code, stdout, stderr)
		}
	}
}

// TestNamedEnvFileMustExist: a file named with --env-file must exist (a
// typo must not start a server on the defaults); the default .env may be
// missing.
func TestNamedEnvFileMustExist(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "prod.env")
	for _, args := range [][]string{{"--env-file", missing}, {"serve", "--env-file=" + missing}, {"check", "--env-file", missing}} {
		code, stdout, stderr := newCLI(t, nil).run(args...)
		if code != exitUsage || stdout != "" || stderr != "atg-server: --env-file "+missing+": no such file\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	// Without the flag, a missing ./.env is fine: what fails is the
	// configuration (no Neo4j password), not the file.
	if code, _, stderr := newCLI(t, nil).run("check"); code != exitUsage || strings.Contains(stderr, "no such file") || !strings.Contains(stderr, "NEO4J_PASSWORD") {
		t.Errorf("check without --env-file: exit %d, %s", code, stderr)
	}
}

// TestCheckHelp: check -h prints its help on stdout and checks nothing.
func TestCheckHelp(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := newCLI(t, nil).run("check", "-h")
	if code != exitOK || stderr != "" || !strings.Contains(stdout, "atg-server check [--env-file .env] [--timeout 10s]") ||
		!strings.Contains(stdout, "--timeout duration") || strings.Contains(stdout, "configuration: OK") {
		t.Errorf("check -h: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, stdout, _ := newCLI(t, nil).run("version")
	if code != exitOK || !strings.HasPrefix(stdout, "atg-server 0.") {
		t.Errorf("version: %d %q", code, stdout)
	}
}

// TestBinarySIGHUPAndSIGTERM runs the real binary: a key created with
// `keys create` while it runs works after SIGHUP, and SIGTERM stops it with
// exit status 0.
func TestBinarySIGHUPAndSIGTERM(t *testing.T) {
	t.Parallel()
	vars := serverVars(t)
	bin := serverBinary(t)
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "ATG_KEYS_FILE=" + keysFile}
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	create := func(client string) string {
		cmd := exec.Command(bin, "keys", "create", "--env", "dev", "--client-id", client)
		cmd.Env = environ
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("keys create: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	first := create("first")
	cmd := exec.Command(bin, "serve", "--env-file", "")
	cmd.Env = environ
	stdout, _ := cmd.StdoutPipe()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on") {
		t.Fatalf("first line %q, %v; stderr:\n%s", line, err, stderr.String())
	}
	url := "http://127.0.0.1:" + vars["ATG_SERVER_PORT"]
	if code := get(t, url+"/api/v1/status", first); code != 200 {
		t.Errorf("first key: %d", code)
	}
	second := create("second")
	if code := get(t, url+"/api/v1/status", second); code != 401 {
		t.Errorf("new key before SIGHUP: %d", code)
	}
	must(t, cmd.Process.Signal(syscall.SIGHUP))
	waitFor(t, "the reload", func() bool { return get(t, url+"/api/v1/status", second) == 200 })
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15 s of SIGTERM")
	}
	for _, k := range []string{first, second} {
		if strings.Contains(stderr.String(), k) {
			t.Error("a key reached the logs")
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
