package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atgraph/atg/operations"
)

// TestBinary builds atg and runs it as a user would, including a real
// SIGINT during a remote import, which must detach.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	t.Parallel()
	ts := startServer(t, 1, nil)
	label, s := testLabel(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "atg")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	doc := documentFile(t, "tenant.json", label)
	vars := ts.vars(ts.rw)
	command := func(args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir // no .env there
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var out, errb syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		return cmd, &out, &errb
	}
	exe := func(args ...string) result {
		t.Helper()
		cmd, out, errb := command(args...)
		return finish(t, args, cmd.Run(), out, errb, ts.rw)
	}

	if r := exe("help"); r.code != exitOK || !strings.Contains(r.stdout, "130  interrupted") {
		t.Errorf("help:\n%s", r)
	}
	if r := exe("frobnicate"); r.code != exitUsage || r.stdout != "" {
		t.Errorf("unknown command:\n%s", r)
	}
	if r := exe("status"); r.code != exitOK || !strings.Contains(r.stdout, "remote mode, "+ts.srv.URL()) {
		t.Errorf("status:\n%s", r)
	}
	if r := exe("ops", "get", "op_000000000000000000000000"); r.code != exitNotFound {
		t.Errorf("ops get unknown:\n%s", r)
	}

	// Hold the only operation slot so the import stays queued, then SIGINT.
	client := ts.client(t, ts.rw)
	ctx := context.Background()
	if _, err := client.Submit(ctx, "block", nil); err != nil {
		t.Fatal(err)
	}
	cmd, out, errb := command("import", doc)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errb.waitFor(t, "status queued")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := finish(t, []string{"import"}, cmd.Wait(), out, errb, ts.rw)
	id := opID(t, r.stderr)
	if r.code != exitInterrupted || !strings.Contains(r.stderr, `follow it with "atg ops watch `+id+`"`) {
		t.Fatalf("SIGINT during a remote import:\n%s", r)
	}
	if op, err := client.Get(ctx, id); err != nil || op.Status != operations.Queued {
		t.Fatalf("after detaching, the import is %+v (%v), want queued", op, err)
	}
	ts.release()
	if r := exe("ops", "watch", id); r.code != exitOK || !strings.Contains(r.stdout, `"nodes": 9`) {
		t.Errorf("ops watch:\n%s", r)
	}
	if n, _ := countLabel(t, s, label); n != 9 {
		t.Errorf("graph has %d nodes, want 9", n)
	}
}

// finish turns the outcome of a finished command into a result, checking
// that the output never shows key.
func finish(t *testing.T, args []string, err error, out, errb *syncBuffer, key string) result {
	t.Helper()
	r := result{stdout: out.String(), stderr: errb.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	checkOutput(t, args, r, key)
	return r
}
