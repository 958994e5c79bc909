package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogWritesOneJSONLinePerRecord(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := New(&buf)
	l.now = func() time.Time { return time.Date(2026, 11, 26, 10, 0, 0, 123e6, time.FixedZone("x", 3600)) }
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Log(Record{Event: EventOperationSubmit, RequestID: "r", ClientID: "alice", KeyID: "key_1", RemoteAddr: "10.0.0.7", Outcome: "accepted", Details: map[string]any{"n": i}})
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, line := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if r["time"] != "2026-11-26T09:00:00.123Z" || r["event"] != "operation_submit" || r["outcome"] != "accepted" || r["key_id"] != "key_1" {
			t.Errorf("record %s", line)
		}
	}
	var nilLogger *Logger
	nilLogger.Log(Record{Event: "x"}) // no panic
	if err := nilLogger.Close(); err != nil {
		t.Error(err)
	}
}

func TestOpenFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	for range 2 { // appends across opens
		l, err := Open(path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.Log(Record{Event: EventKeyCreate, Outcome: "created"})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", info.Mode())
	}
	b, _ := os.ReadFile(path)
	if strings.Count(string(b), "\n") != 2 {
		t.Errorf("file:\n%s", b)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "dir", "a.log"), nil, nil); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}
