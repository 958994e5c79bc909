package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeysAuditTrail: every key change is one audit line naming the keys
// file (also when it comes from ATG_KEYS_FILE), written after the
// command's messages, and stdout carries nothing but the key even with
// ATG_AUDIT_LOG=stdout.
func TestKeysAuditTrail(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.json")
	c := newCLI(t, map[string]string{"ATG_KEYS_FILE": file, "ATG_AUDIT_LOG": "stdout"})
	code, stdout, stderr := c.run("keys", "create", "--env", "dev", "--client-id", "alice")
	if code != exitOK || !keyOnly(stdout) {
		t.Fatalf("create: exit %d, stdout %q", code, stdout)
	}
	var rec struct {
		Event, Outcome string
		Details        map[string]any
	}
	// The record comes after the human message, not in the middle of it.
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	line := lines[len(lines)-1]
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "Created key ") || !strings.HasPrefix(lines[1], "Store the key now") {
		t.Errorf("create stderr: want the message, then the audit record:\n%s", stderr)
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Event != "key_create" || rec.Outcome != "created" || rec.Details["keys_file"] != file {
		t.Errorf("audit line %q: %+v %v", line, rec, err)
	}
	if strings.Contains(stderr, strings.TrimSpace(stdout)) {
		t.Error("the key reached the audit line")
	}
}

func keyOnly(stdout string) bool {
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	return len(lines) == 1 && strings.HasPrefix(lines[0], "atg_dev_") && len(lines[0]) == 72
}
