package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileVersion is the version of the keys file format written by [FileStore].
const FileVersion = 1

// fileDoc is the keys file: {"version":1,"keys":[{record..., "digest":...}]}.
type fileDoc struct {
	Version int          `json:"version"`
	Keys    []fileRecord `json:"keys"`
}

// fileRecord is a Record plus the hex SHA-256 digest of its key.
type fileRecord struct {
	Record
	Digest string `json:"digest"`
}

// FileStoreOptions configures [OpenFileStore]. The zero value gives the
// defaults.
type FileStoreOptions struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// FlushInterval, if positive, starts a goroutine that writes pending
	// last_used_at updates to the file at this interval (Close stops it).
	// Zero (the default) starts no goroutine: pending updates are written
	// at the next Create, Revoke, Rotate, Flush or Close.
	FlushInterval time.Duration
	// OnError, if set, receives errors from background flushes. They are
	// otherwise dropped; the updates stay pending and are retried.
	OnError func(error)
}

// FileStore is a [KeyStore] backed by a JSON file (ATG_KEYS_FILE) holding
// key records with the SHA-256 digest of each key, never a key:
//
//	{"version": 1, "keys": [{"id": "key_…", "client_id": "…", "environment": "dev",
//	  "scopes": ["read"], "created_at": "…", "expires_at": null, "revoked_at": null,
//	  "last_used_at": null, "digest": "<64 hex>"}]}
//
// A missing file is an empty store; the file is created by the first
// change. Every write replaces the file atomically (temporary file in the
// same directory, fsync, rename, directory fsync) with mode 0600.
//
// Changes (Create, Revoke, Rotate, Flush) take an exclusive lock on the
// sidecar file "<path>.lock" (flock on Unix), re-read the file, apply the
// change and write it back, so concurrent writers, in this process or
// others (the server and an "atg-server keys" command), never lose each
// other's records. The store does not watch the file: call [FileStore.Reload]
// (the server does on SIGHUP) to see changes made by others.
//
// Authentication reads memory only. last_used_at is tracked in memory, at
// most once a minute per key, and written lazily: at the next change, Flush
// or Close, or every FlushInterval if set; never once per request. A crash
// loses at most the usage times not yet written.
type FileStore struct {
	path    string
	now     func() time.Time
	onError func(error)

	mu sync.RWMutex // guards ix; held (read) for a whole authentication
	ix *index

	writeMu sync.Mutex // serialises changes, reloads and flushes in this process

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// OpenFileStore loads the keys file at path and returns a store backed by
// it. A missing file is an empty store; an unreadable or invalid file is an
// error matching [ErrKeysFile] (or the I/O error) that names the file and
// the problem. Call Close when done.
func OpenFileStore(ctx context.Context, path string, opts FileStoreOptions) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("auth: keys file path is empty")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ix, err := readKeysFile(path)
	if err != nil {
		return nil, err
	}
	s := &FileStore{path: path, now: opts.Now, onError: opts.OnError, ix: ix}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.FlushInterval > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.flushLoop(opts.FlushInterval)
	}
	return s, nil
}

// Path returns the keys file's path.
func (s *FileStore) Path() string { return s.path }

// Authenticate implements [KeyStore]. It reads memory only.
func (s *FileStore) Authenticate(ctx context.Context, key string) (Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ix.authenticate(key, s.now())
}

// authenticateParsed implements parsedAuthenticator.
func (s *FileStore) authenticateParsed(_ context.Context, _ string, d [sha256.Size]byte, env Environment) (Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ix.lookup(d, env, s.now())
}

// List implements [KeyStore]. It returns the records as of the last load,
// change or Reload; it does not re-read the file.
func (s *FileStore) List(ctx context.Context) ([]Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ix.records(), nil
}

// Create implements [KeyStore]; see [FileStore] for how the file is updated.
func (s *FileStore) Create(ctx context.Context, opts CreateOptions) (string, Record, error) {
	var key string
	var rec Record
	err := s.update(ctx, func(ix *index) (*index, error) {
		next, k, r, err := ix.create(opts, s.now())
		key, rec = k, r
		return next, err
	})
	if err != nil {
		return "", Record{}, err
	}
	return key, rec, nil
}

// Revoke implements [KeyStore]; see [FileStore] for how the file is updated.
func (s *FileStore) Revoke(ctx context.Context, id string) (Record, error) {
	var rec Record
	err := s.update(ctx, func(ix *index) (*index, error) {
		next, r, err := ix.revoke(id, s.now())
		rec = r
		return next, err
	})
	if err != nil {
		return Record{}, err
	}
	return rec, nil
}

// Rotate implements [KeyStore]; see [FileStore] for how the file is updated.
func (s *FileStore) Rotate(ctx context.Context, id string, grace time.Duration) (string, Record, error) {
	var key string
	var rec Record
	err := s.update(ctx, func(ix *index) (*index, error) {
		next, k, r, err := ix.rotate(id, grace, s.now())
		key, rec = k, r
		return next, err
	})
	if err != nil {
		return "", Record{}, err
	}
	return key, rec, nil
}

// Flush writes pending last_used_at updates to the file (under the lock,
// merged into the file's current content). When no update is pending it
// touches neither the file nor its lock.
func (s *FileStore) Flush(ctx context.Context) error {
	s.mu.RLock()
	pending := hasPendingUsage(s.ix)
	s.mu.RUnlock()
	if !pending {
		return ctx.Err()
	}
	return s.update(ctx, nil)
}

// Reload re-reads the file and replaces the store's records with its
// content, keeping the newer of the in-memory and on-file last_used_at of
// each key. If the file can't be read or is invalid, the store keeps its
// previous records and the error names the file and the problem.
func (s *FileStore) Reload(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	fresh, err := readKeysFile(s.path)
	if err != nil {
		return err
	}
	s.swap(fresh)
	return nil
}

// Close stops the background flusher, if any, and writes pending
// last_used_at updates (waiting at most 10 s for the file lock). The store
// stays usable afterwards, without the flusher. Calling Close again does
// nothing and returns nil.
func (s *FileStore) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = s.Flush(ctx)
	})
	return err
}

func (s *FileStore) flushLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			err := s.Flush(ctx)
			cancel()
			if err != nil && s.onError != nil {
				s.onError(err)
			}
		}
	}
}

// update applies change (nil: none, flush only) to the file's current
// content under the file lock, writes the result if anything changed and
// makes it the store's state.
func (s *FileStore) update(ctx context.Context, change func(*index) (*index, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return err
	}
	defer unlock()

	fresh, err := readKeysFile(s.path)
	if err != nil {
		return err
	}
	s.mergeUsage(fresh)
	next := fresh
	if change != nil {
		if next, err = change(fresh); err != nil {
			return err
		}
	}
	if change != nil && next != fresh || hasPendingUsage(next) {
		if err := writeKeysFile(s.path, next); err != nil {
			return err
		}
	}
	s.swap(next)
	return nil
}

// mergeUsage raises each fresh entry's lastUsed to the store's current
// value for the same ID, if newer.
func (s *FileStore) mergeUsage(fresh *index) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	mergeUsage(fresh, s.ix)
}

func mergeUsage(dst, src *index) {
	if src == nil {
		return
	}
	for id, e := range dst.byID {
		if old := src.byID[id]; old != nil {
			if n := old.lastUsed.Load(); n > e.lastUsed.Load() {
				e.lastUsed.Store(n)
			}
		}
	}
}

// swap makes next the store's state. Authentications hold the read lock
// for their whole duration, so none can update the old entries after the
// final merge below.
func (s *FileStore) swap(next *index) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mergeUsage(next, s.ix)
	s.ix = next
}

func hasPendingUsage(ix *index) bool {
	for _, e := range ix.byID {
		if e.lastUsed.Load() > e.persisted.Load() {
			return true
		}
	}
	return false
}

// readKeysFile loads and checks the keys file at path. A missing or empty
// file is an empty index.
func readKeysFile(path string) (*index, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newIndex(0), nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read keys file: %w", err)
	}
	ix, err := parseKeysFile(data)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeysFile, path, err)
	}
	return ix, nil
}

// parseKeysFile decodes and checks a keys file's content.
func parseKeysFile(data []byte) (*index, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return newIndex(0), nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc fileDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the document")
	}
	if doc.Version != FileVersion {
		return nil, fmt.Errorf("unsupported version %d (expected %d)", doc.Version, FileVersion)
	}
	ix := newIndex(len(doc.Keys))
	for i, fr := range doc.Keys {
		where := fmt.Sprintf("keys[%d]", i)
		if fr.ID != "" {
			where = fmt.Sprintf("keys[%d] (id %q)", i, fr.ID)
		}
		if err := fr.Record.validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		rec := fr.Record.clone()
		rec.Scopes, _ = normalizeScopes(rec.Scopes)
		rec.CreatedAt = rec.CreatedAt.UTC()
		if len(fr.Digest) != 64 {
			return nil, fmt.Errorf("%s: digest must be 64 hex characters (SHA-256 of the key)", where)
		}
		raw, err := hex.DecodeString(fr.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: digest is not hexadecimal", where)
		}
		e := &entry{rec: rec}
		copy(e.digest[:], raw)
		if rec.LastUsedAt != nil {
			n := rec.LastUsedAt.UnixNano()
			e.lastUsed.Store(n)
			e.persisted.Store(n)
		}
		e.rec.LastUsedAt = nil
		if err := ix.add(e); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return ix, nil
}

// encodeKeysFile renders ix as a keys file, oldest record first.
func encodeKeysFile(ix *index) ([]byte, error) {
	es := ix.entries()
	doc := fileDoc{Version: FileVersion, Keys: make([]fileRecord, len(es))}
	for i, e := range es {
		doc.Keys[i] = fileRecord{Record: e.record(), Digest: hex.EncodeToString(e.digest[:])}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// writeKeysFile atomically replaces the file at path with ix (mode 0600) and
// marks the written usage times as persisted.
func writeKeysFile(path string, ix *index) error {
	// Snapshot the usage times first so that what is marked persisted is
	// exactly what is written.
	used := make(map[*entry]int64, len(ix.byID))
	for _, e := range ix.byID {
		used[e] = e.lastUsed.Load()
	}
	data, err := encodeKeysFile(ix)
	if err != nil {
		return fmt.Errorf("auth: encode keys file %s: %w", path, err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("auth: write keys file: %w", err)
	}
	for e, n := range used {
		if n > e.persisted.Load() {
			e.persisted.Store(n)
		}
	}
	return nil
}

// writeFileAtomic writes data to a temporary file in path's directory,
// syncs it, renames it over path and syncs the directory. Readers see the
// old content or the new, never a mix. The file has mode 0600.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

var _ KeyStore = (*FileStore)(nil)
