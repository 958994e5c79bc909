package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	return map[string]string{
		"ATG_SERVER_HOST": "127.0.0.1", "ATG_SERVER_PORT": strconv.Itoa(freePort(t)),
		"NEO4J_URI": s.URI, "NEO4J_USER": s.User, "NEO4J_PASSWORD": s.Password, "ATG_SHUTDOWN_TIMEOUT": "5s",
	}
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
			now: time.Now, environ: vars, hup: hup}, []string{"--env-file", filepath.Join(t.TempDir(), "none.env")})
	}()
	waitFor(t, "the dev key", func() bool { return strings.Count(stdout.String(), "\n") >= 3 })
	lines := strings.Split(stdout.String(), "\n")
	url := "http://127.0.0.1:" + vars["ATG_SERVER_PORT"]
	if !strings.Contains(lines[0], "listening on "+url) {
		t.Errorf("first line %q", lines[0])
	}
	key := lines[2]
	if !strings.HasPrefix(key, "atg_dev_") || len(key) != 72 {
		t.Fatalf("dev key line %q", key)
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
	code, stdout, stderr := newCLI(t, vars).run("check", "--env-file", "")
	if code != exitOK || !strings.Contains(stdout, "configuration: OK") || !strings.Contains(stdout, "neo4j: OK (Neo4j 5.") {
		t.Errorf("check: %d\n%s\n%s", code, stdout, stderr)
	}
	bad := map[string]string{}
	for k, v := range vars {
		bad[k] = v
	}
	bad["NEO4J_PASSWORD"] = "Wrong-Passw0rd-For-Test!"
	code, _, stderr = newCLI(t, bad).run("check", "--env-file", "", "--timeout", "3s")
	if code != exitFailure || !strings.Contains(stderr, "neo4j:") || strings.Contains(stderr, "Wrong-Passw0rd") {
		t.Errorf("wrong password: %d %s", code, stderr)
	}
	bad["NEO4J_PASSWORD"] = vars["NEO4J_PASSWORD"]
	bad["NEO4J_URI"] = "bolt://127.0.0.1:" + strconv.Itoa(freePort(t))
	start := time.Now()
	code, _, stderr = newCLI(t, bad).run("check", "--env-file", "", "--timeout", "1s")
	if code != exitFailure || !strings.Contains(stderr, "not reachable") || time.Since(start) > 10*time.Second {
		t.Errorf("unreachable: %d %s (%s)", code, stderr, time.Since(start))
	}
	code, _, stderr = newCLI(t, map[string]string{"ATG_SERVER_WORKERS": "0"}).run("check", "--env-file", "")
	if code != exitUsage || !strings.Contains(stderr, "ATG_SERVER_WORKERS") {
		t.Errorf("invalid config: %d %s", code, stderr)
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
	bin := filepath.Join(t.TempDir(), "atg-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
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
