package auth

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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func openFileStore(t *testing.T, path string, opts FileStoreOptions) *FileStore {
	t.Helper()
	s, err := OpenFileStore(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("OpenFileStore: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFileStoreFileContent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	s := openFileStore(t, path, FileStoreOptions{})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("opening a missing file created it: %v", err)
	}
	if recs, _ := s.List(ctx); len(recs) != 0 {
		t.Fatal("missing file is not an empty store")
	}
	// A pre-existing, too permissive file is replaced by a 0600 one.
	if err := os.WriteFile(path, []byte(`{"version":1,"keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i, env := range Environments() {
		k, _, err := s.Create(ctx, CreateOptions{ClientID: fmt.Sprintf("c%d", i), Environment: env, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600", fi.Mode().Perm())
	}
	data := readFile(t, path)
	for _, k := range keys {
		if bytes.Contains(data, []byte(k)) || bytes.Contains(data, []byte(k[len(k)-64:])) || bytes.Contains(data, []byte(k[len(k)-64:len(k)-32])) {
			t.Error("keys file contains key material")
		}
		d := Digest(k)
		if !bytes.Contains(data, []byte(`"digest": "`+hex.EncodeToString(d[:])+`"`)) {
			t.Error("keys file lacks a key's digest")
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("file is not JSON: %v", err)
	}
	if doc["version"] != float64(1) {
		t.Errorf("version = %v", doc["version"])
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"keys.json", "keys.json.lock"}, names); diff != "" {
		t.Errorf("directory content (temp files left behind?) (-want +got):\n%s", diff)
	}
	// A fresh store reads the same records.
	s2 := openFileStore(t, path, FileStoreOptions{})
	a, _ := s.List(ctx)
	b, _ := s2.List(ctx)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("reopened records differ (-first +second):\n%s", diff)
	}
	for _, k := range keys {
		if _, err := s2.Authenticate(ctx, k); err != nil {
			t.Errorf("reopened store: %v", err)
		}
	}
}

func TestFileStoreAtomicWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	s := openFileStore(t, path, FileStoreOptions{})
	done := make(chan struct{})
	var readerErr error
	var reads int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err == nil {
				_, err = parseKeysFile(data)
			}
			if err != nil {
				readerErr = err
				return
			}
			reads++
		}
	})
	for i := range 30 {
		if _, _, err := s.Create(ctx, CreateOptions{ClientID: fmt.Sprintf("c%d", i), Environment: Dev}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if readerErr != nil {
		t.Fatalf("a reader saw a partial file: %v", readerErr)
	}
	t.Logf("%d concurrent reads, all complete documents", reads)

	// A failed write leaves the old file intact and no temporary file.
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Log("skipping read-only directory check (root or windows)")
		return
	}
	dir := filepath.Dir(path)
	before := readFile(t, path)
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if _, _, err := s.Create(ctx, CreateOptions{ClientID: "x", Environment: Dev}); err == nil {
		t.Fatal("Create in a read-only directory succeeded")
	}
	if !bytes.Equal(before, readFile(t, path)) {
		t.Error("failed write changed the file")
	}
}

func TestFileStoreReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	server := openFileStore(t, path, FileStoreOptions{})
	cli := openFileStore(t, path, FileStoreOptions{})

	k1, r1, err := server.Create(ctx, CreateOptions{ClientID: "first", Environment: Dev})
	if err != nil {
		t.Fatal(err)
	}
	// Another writer (e.g. "atg-server keys create") adds a key and revokes k1.
	k2, _, err := cli.Create(ctx, CreateOptions{ClientID: "second", Environment: Dev})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, r1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(ctx, k2); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("before Reload: %v, want ErrUnknownKey", err)
	}
	if _, err := server.Authenticate(ctx, k1); err != nil {
		t.Fatalf("before Reload k1: %v", err)
	}
	if err := server.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(ctx, k2); err != nil {
		t.Errorf("after Reload: %v", err)
	}
	if _, err := server.Authenticate(ctx, k1); !errors.Is(err, ErrRevoked) {
		t.Errorf("after Reload k1: %v, want ErrRevoked", err)
	}

	// A bad file on reload keeps the previous state.
	good := readFile(t, path)
	if err := os.WriteFile(path, []byte(`{"version":1,"keys":[{"id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	err = server.Reload(ctx)
	if !errors.Is(err, ErrKeysFile) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "invalid JSON") {
		t.Errorf("Reload(bad file) = %v; want ErrKeysFile naming %s and the problem", err, path)
	}
	if _, err := server.Authenticate(ctx, k2); err != nil {
		t.Errorf("after failed Reload: %v; want the previous state kept", err)
	}
	// Mutations refuse to overwrite a bad file.
	if _, _, err := server.Create(ctx, CreateOptions{ClientID: "third", Environment: Dev}); !errors.Is(err, ErrKeysFile) {
		t.Errorf("Create over a bad file: %v, want ErrKeysFile", err)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	// A deleted file reloads as empty.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(ctx, k2); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("after deleting the file: %v, want ErrUnknownKey", err)
	}
}

func TestFileStoreBadFiles(t *testing.T) {
	t.Parallel()
	digest := func(b byte) string { return strings.Repeat(string("0123456789abcdef"[b]), 64) }
	rec := func(id, env, scopes, dig string) string {
		return fmt.Sprintf(`{"id":%q,"client_id":"c","environment":%q,"scopes":%s,"created_at":"2026-01-01T00:00:00Z","expires_at":null,"revoked_at":null,"last_used_at":null,"digest":%q}`, id, env, scopes, dig)
	}
	doc := func(recs ...string) string { return `{"version":1,"keys":[` + strings.Join(recs, ",") + `]}` }
	tests := []struct {
		name, content, want string
	}{
		{"not JSON", "hello", "invalid JSON"},
		{"trailing data", doc() + " {}", "data after the document"},
		{"no version", `{"keys":[]}`, "unsupported version 0"},
		{"future version", `{"version":2,"keys":[]}`, "unsupported version 2"},
		{"unknown field", `{"version":1,"keys":[],"extra":true}`, `unknown field "extra"`},
		{"duplicate id", doc(rec("key_a", "dev", `["read"]`, digest(1)), rec("key_a", "dev", `["read"]`, digest(2))), `keys[1] (id "key_a"): duplicate id`},
		{"duplicate digest", doc(rec("key_a", "dev", `["read"]`, digest(1)), rec("key_b", "dev", `["read"]`, digest(1))), `keys[1] (id "key_b"): duplicate digest`},
		{"unknown environment", doc(rec("key_a", "prod", `["read"]`, digest(1))), `unknown environment "prod"`},
		{"unknown scope", doc(rec("key_a", "dev", `["read","root"]`, digest(1))), `unknown scope "root"`},
		{"no scopes", doc(rec("key_a", "dev", `[]`, digest(1))), "scopes are empty"},
		{"short digest", doc(rec("key_a", "dev", `["read"]`, "abc")), "digest must be 64 hex"},
		{"non-hex digest", doc(rec("key_a", "dev", `["read"]`, strings.Repeat("z", 64))), "digest is not hexadecimal"},
		{"no id", doc(rec("", "dev", `["read"]`, digest(1))), "keys[0]: id is empty"},
		{"missing created_at", `{"version":1,"keys":[{"id":"key_a","client_id":"c","environment":"dev","scopes":["read"],"digest":"` + digest(1) + `"}]}`, "created_at is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "keys.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenFileStore(context.Background(), path, FileStoreOptions{})
			if !errors.Is(err, ErrKeysFile) {
				t.Fatalf("error = %v, want ErrKeysFile", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q; want it to name %s and contain %q", err, path, tt.want)
			}
		})
	}
	// Empty and whitespace-only files are empty stores.
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openFileStore(t, path, FileStoreOptions{})
}

func TestFileStoreWritersDoNotLoseRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	a := openFileStore(t, path, FileStoreOptions{})
	b := openFileStore(t, path, FileStoreOptions{})
	// Sequential, each store with a stale view of the other's writes.
	if _, _, err := a.Create(ctx, CreateOptions{ClientID: "a1", Environment: Dev}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Create(ctx, CreateOptions{ClientID: "b1", Environment: Dev}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Create(ctx, CreateOptions{ClientID: "a2", Environment: Dev}); err != nil {
		t.Fatal(err)
	}
	// Concurrent, many stores on one file.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			s, err := OpenFileStore(ctx, path, FileStoreOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for i := range 5 {
				if _, _, err := s.Create(ctx, CreateOptions{ClientID: fmt.Sprintf("w%d-%d", w, i), Environment: Dev}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	check := openFileStore(t, path, FileStoreOptions{})
	recs, _ := check.List(ctx)
	if len(recs) != 23 {
		t.Errorf("%d records in the file, want 23", len(recs))
	}
	// The last writer's view includes everyone's records.
	if got, _ := a.List(ctx); len(got) != 3 {
		t.Errorf("a sees %d records before reload, want 3", len(got))
	}
}

// TestFileStoreProcesses runs writers in separate processes (this test
// binary re-executed) against one file, proving the lock works across
// processes.
func TestFileStoreProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	const perWriter = 10
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileStoreHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "ATG_AUTH_HELPER_FILE="+path, "ATG_AUTH_HELPER_ID="+strconv.Itoa(p), "ATG_AUTH_HELPER_N="+strconv.Itoa(perWriter))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("helper %d: %v\n%s", p, err, out)
			}
		})
	}
	s := openFileStore(t, path, FileStoreOptions{})
	for i := range perWriter {
		if _, _, err := s.Create(ctx, CreateOptions{ClientID: fmt.Sprintf("parent-%d", i), Environment: Dev}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.List(ctx)
	if len(recs) != 3*perWriter {
		t.Errorf("%d records, want %d", len(recs), 3*perWriter)
	}
}

func TestFileStoreHelperProcess(t *testing.T) {
	path := os.Getenv("ATG_AUTH_HELPER_FILE")
	if path == "" {
		t.Skip("helper for TestFileStoreProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("ATG_AUTH_HELPER_N"))
	s, err := OpenFileStore(context.Background(), path, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		if _, _, err := s.Create(context.Background(), CreateOptions{ClientID: fmt.Sprintf("child%s-%d", os.Getenv("ATG_AUTH_HELPER_ID"), i), Environment: Dev}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFileStoreLastUsedPersistence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	clock := newFakeClock()
	s := openFileStore(t, path, FileStoreOptions{Now: clock.Now})
	key, rec, err := s.Create(ctx, CreateOptions{ClientID: "c", Environment: Dev})
	if err != nil {
		t.Fatal(err)
	}
	lastUsedOnDisk := func() *time.Time {
		t.Helper()
		other := openFileStore(t, path, FileStoreOptions{})
		recs, _ := other.List(ctx)
		return recs[0].LastUsedAt
	}
	before := readFile(t, path)
	for range 100 {
		if _, err := s.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(before, readFile(t, path)) {
		t.Fatal("Authenticate wrote the file")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lastUsedOnDisk(); got == nil || !got.Equal(clock.Now()) {
		t.Errorf("after Flush last_used_at on disk = %v, want %v", got, clock.Now())
	}
	// Flush with nothing pending does not write.
	flushed := readFile(t, path)
	fi1, _ := os.Stat(path)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(path)
	if !bytes.Equal(flushed, readFile(t, path)) || !os.SameFile(fi1, fi2) {
		t.Error("Flush with nothing pending rewrote the file")
	}

	// A use is persisted by the next mutation ...
	clock.Advance(2 * time.Minute)
	if _, err := s.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	used := clock.Now()
	if _, _, err := s.Create(ctx, CreateOptions{ClientID: "d", Environment: Dev}); err != nil {
		t.Fatal(err)
	}
	if got := lastUsedOnDisk(); got == nil || !got.Equal(used) {
		t.Errorf("after Create last_used_at on disk = %v, want %v", got, used)
	}
	// ... survives a Reload of an older file ...
	clock.Advance(2 * time.Minute)
	if _, err := s.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.List(ctx)
	if got := recs[0]; got.ID != rec.ID || got.LastUsedAt == nil || !got.LastUsedAt.Equal(clock.Now()) {
		t.Errorf("after Reload last_used_at = %v, want the newer in-memory %v", got.LastUsedAt, clock.Now())
	}
	// ... and is written by Close.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := lastUsedOnDisk(); got == nil || !got.Equal(clock.Now()) {
		t.Errorf("after Close last_used_at on disk = %v, want %v", got, clock.Now())
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestFileStoreFlushInterval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	s, err := OpenFileStore(ctx, path, FileStoreOptions{FlushInterval: 5 * time.Millisecond, OnError: func(err error) { t.Errorf("flush: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key, _, err := s.Create(ctx, CreateOptions{ClientID: "c", Environment: Dev})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ix, err := parseKeysFile(readFile(t, path))
		if err != nil {
			t.Fatal(err)
		}
		if ix.records()[0].LastUsedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background flush never wrote last_used_at")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil { // stops the goroutine; goleak checks
		t.Fatal(err)
	}
}

func TestFileStoreConcurrentValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.json")
	clock := newFakeClock()
	s := openFileStore(t, path, FileStoreOptions{Now: clock.Now})
	var keys []string
	for i := range 4 {
		k, _, err := s.Create(ctx, CreateOptions{ClientID: fmt.Sprintf("c%d", i), Environment: Dev})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Authenticate(ctx, keys[(g+i)%len(keys)]); err != nil {
					t.Errorf("Authenticate: %v", err)
					return
				}
				if i%100 == 0 {
					clock.Advance(time.Minute)
				}
			}
		})
	}
	for i := range 10 {
		if _, _, err := s.Create(ctx, CreateOptions{ClientID: fmt.Sprintf("n%d", i), Environment: Dev}); err != nil {
			t.Error(err)
		}
		if err := s.Reload(ctx); err != nil {
			t.Error(err)
		}
		if err := s.Flush(ctx); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestOpenFileStoreErrors(t *testing.T) {
	t.Parallel()
	if _, err := OpenFileStore(context.Background(), "", FileStoreOptions{}); err == nil {
		t.Error("empty path accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenFileStore(ctx, filepath.Join(t.TempDir(), "k.json"), FileStoreOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
	// A path whose directory is missing: opening works (empty), writing fails clearly.
	s := openFileStore(t, filepath.Join(t.TempDir(), "missing", "keys.json"), FileStoreOptions{})
	if _, _, err := s.Create(context.Background(), CreateOptions{ClientID: "c", Environment: Dev}); err == nil {
		t.Error("Create with a missing directory succeeded")
	}
}

func TestFileStoreWaitsForLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	s := openFileStore(t, path, FileStoreOptions{})
	unlock, err := lockFile(context.Background(), path+".lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := s.Create(ctx, CreateOptions{ClientID: "c", Environment: Dev}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Create while another holder has the lock: %v, want DeadlineExceeded", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("file written without the lock")
	}
	unlock()
	if _, _, err := s.Create(context.Background(), CreateOptions{ClientID: "c", Environment: Dev}); err != nil {
		t.Errorf("Create after unlock: %v", err)
	}
}

func TestWriteFileAtomicFailureCleansUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "keys.json")
	// A non-empty directory at the target path makes the rename fail.
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(target, []byte("{}")); err == nil {
		t.Fatal("rename over a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary file left behind: %v", entries)
	}
}

// TestFileStoreFlushWithNothingPendingTouchesNothing: a read-only use (such
// as `keys list`) and the server's periodic flush do no file I/O when no
// last_used_at is pending.
func TestFileStoreFlushWithNothingPendingTouchesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	s := openFileStore(t, path, FileStoreOptions{})
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".lock"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a flush with nothing pending (%v)", filepath.Base(p), err)
		}
	}
}
