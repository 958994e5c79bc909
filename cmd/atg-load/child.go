package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// childCommand is the hidden first argument that makes atg-load run as the
// spawned server of --spawn (a separate process, so that its memory is the
// server's alone).
const childCommand = "__serve-child"

// handshake is the one JSON line a child prints on stdout once it serves.
type handshake struct {
	// Info describes the server.
	Info ServerInfo `json:"info"`
	// Control is the base URL of the child's control endpoints.
	Control string `json:"control"`
	// LoadKeys, StreamKeys and MonitorKey are the keys the child created
	// (passed over a pipe, never logged).
	LoadKeys   []string `json:"load_keys"`
	StreamKeys []string `json:"stream_keys"`
	MonitorKey string   `json:"monitor_key"`
}

// runChild is the spawned server: it starts a localServer, serves control
// endpoints on another loopback port (GET /memory[?gc=1], POST /release,
// GET /logs), prints the handshake and runs until its stdin closes or it is
// signalled, then shuts down gracefully.
func runChild(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet(childCommand, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var o serverOptions
	fs.StringVar(&o.envFile, "env-file", "", "")
	fs.IntVar(&o.poolSize, "pool-size", 0, "")
	fs.IntVar(&o.loadKeys, "load-keys", 1, "")
	fs.IntVar(&o.streamKeys, "stream-keys", 0, "")
	fs.IntVar(&o.preloadOps, "preload-ops", 0, "")
	fs.StringVar(&o.serverLog, "server-log", "off", "")
	fs.StringVar(&o.auditLog, "audit-log", "off", "")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	ls, err := startLocalServer(ctx, o)
	if err != nil {
		fmt.Fprintf(e.stderr, "atg-load server: %v\n", err)
		return exitFailure
	}
	defer func() {
		if err := ls.shutdown(ctx); err != nil {
			fmt.Fprintf(e.stderr, "atg-load server: shutdown: %v\n", err)
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(e.stderr, "atg-load server: control listener: %v\n", err)
		return exitFailure
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /memory", func(w http.ResponseWriter, r *http.Request) {
		s, err := selfMemory(r.URL.Query().Get("gc") == "1")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(s)
	})
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) { ls.gate.release() })
	mux.HandleFunc("GET /logs", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(ls.logs.snapshot())
	})
	ctl := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ctl.Serve(ln) }()
	defer ctl.Close()

	info := ls.info
	info.Mode = "spawned"
	hs := handshake{Info: info, Control: "http://" + ln.Addr().String(), LoadKeys: ls.loadKeys, StreamKeys: ls.streamKeys, MonitorKey: ls.monitorKey}
	if err := json.NewEncoder(e.stdout).Encode(hs); err != nil {
		return exitFailure
	}
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, e.stdin)
		close(stdinClosed)
	}()
	select {
	case <-stdinClosed:
	case <-ctx.Done():
	}
	return exitOK
}

// spawned is a child process running the server (--spawn).
type spawned struct {
	// cmd is the child; closing stdin asks it to shut down.
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// hs is its handshake; ctl calls its control endpoints.
	hs  handshake
	ctl *http.Client
	// exited receives cmd.Wait's result.
	exited chan error
	// timeout bounds the wait for its exit before it is killed.
	timeout time.Duration
}

// spawnServer starts this program again as a child server and waits for
// its handshake.
func spawnServer(ctx context.Context, e *env, o serverOptions) (*spawned, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--spawn: find this program: %w", err)
	}
	args := []string{childCommand, "--pool-size", strconv.Itoa(o.poolSize), "--load-keys", strconv.Itoa(o.loadKeys),
		"--stream-keys", strconv.Itoa(o.streamKeys), "--preload-ops", strconv.Itoa(o.preloadOps), "--server-log", o.serverLog, "--audit-log", o.auditLog, "--env-file", o.envFile}
	cmd := exec.Command(exe, args...)
	if e.environ != nil {
		cmd.Env = os.Environ()
		for k, v := range e.environ {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stderr = e.stderr
	detachSignals(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--spawn: start %s: %w", exe, err)
	}
	s := &spawned{cmd: cmd, stdin: stdin, ctl: &http.Client{Timeout: 30 * time.Second}, exited: make(chan error, 1), timeout: time.Minute}
	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		if sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		s.exited <- cmd.Wait()
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			err := <-s.exited
			return nil, fmt.Errorf("--spawn: the server process exited before serving: %v", err)
		}
		if err := json.Unmarshal(line, &s.hs); err != nil {
			_, _ = s.Close(ctx)
			return nil, fmt.Errorf("--spawn: bad handshake: %w", err)
		}
	case <-time.After(2 * time.Minute):
		_, _ = s.Close(ctx)
		return nil, errors.New("--spawn: the server process did not start within 2 minutes")
	case <-ctx.Done():
		_, _ = s.Close(ctx)
		return nil, ctx.Err()
	}
	s.hs.Info.PID = cmd.Process.Pid
	return s, nil
}

// Info implements target.
func (s *spawned) Info() ServerInfo { return s.hs.Info }

// LoadKeys implements target.
func (s *spawned) LoadKeys() []string { return s.hs.LoadKeys }

// StreamKeys implements target.
func (s *spawned) StreamKeys() []string { return s.hs.StreamKeys }

// MonitorKey implements target.
func (s *spawned) MonitorKey() string { return s.hs.MonitorKey }

// Memory implements target: the child's own RSS and Go heap.
func (s *spawned) Memory(ctx context.Context, gc bool) (MemSample, error) {
	u := s.hs.Control + "/memory"
	if gc {
		u += "?gc=1"
	}
	var m MemSample
	return m, s.control(ctx, "GET", u, &m)
}

// Release implements target.
func (s *spawned) Release(ctx context.Context) error {
	return s.control(ctx, "POST", s.hs.Control+"/release", nil)
}

// LogCounts implements target.
func (s *spawned) LogCounts(ctx context.Context) map[string]int64 {
	var m map[string]int64
	if s.control(ctx, "GET", s.hs.Control+"/logs", &m) != nil {
		return nil
	}
	return m
}

// control calls a control endpoint of the child.
func (s *spawned) control(ctx context.Context, method, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.ctl.Do(req)
	if err != nil {
		return fmt.Errorf("server control: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("server control %s: HTTP %d: %s", u, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Close implements target: it closes the child's stdin (a graceful
// shutdown) and waits for it to exit, killing it after a minute.
func (s *spawned) Close(context.Context) (time.Duration, error) {
	s.ctl.CloseIdleConnections()
	start := time.Now()
	_ = s.stdin.Close()
	select {
	case err := <-s.exited:
		return time.Since(start), err
	case <-time.After(s.timeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return time.Since(start), fmt.Errorf("the server process did not exit within %s of its stdin closing; killed", s.timeout)
	}
}
