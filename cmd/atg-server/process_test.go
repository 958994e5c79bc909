package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// serverProcess is an atg-server binary started by startServerProcess.
type serverProcess struct {
	cmd *exec.Cmd
	// exited receives cmd.Wait's result; a test that takes it must send
	// it back for the cleanup.
	exited chan error
	stderr *syncBuffer
	url    string
	key    string
	hc     *http.Client
}

// startServerProcess runs the test binary's atg-server (serverBinary) with
// args and only vars (plus PATH and HOME) in its environment, waits for
// its "listening on" line, and kills it when t ends. Requests made with do
// carry key.
func startServerProcess(t *testing.T, vars map[string]string, key string, args ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(serverBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	p := &serverProcess{cmd: cmd, exited: make(chan error, 1), stderr: &syncBuffer{}, key: key,
		url: "http://127.0.0.1:" + vars["ATG_SERVER_PORT"], hc: &http.Client{Transport: &http.Transport{}}}
	cmd.Stderr = p.stderr
	must(t, cmd.Start())
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		p.hc.CloseIdleConnections()
		_ = cmd.Process.Kill()
		<-p.exited
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on") {
		t.Fatalf("first line %q, %v; stderr:\n%s", line, err, p.stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return p
}

// do sends a request with the process's key, body (if not nil) as JSON,
// and returns the status and body of the answer.
func (p *serverProcess) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		must(t, err)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+p.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
