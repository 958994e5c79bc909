package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// MemoryStore is a [KeyStore] that keeps records in memory only; they are
// lost when the process exits. The zero value is an empty store ready to
// use. It is safe for concurrent use; set Now before first use.
type MemoryStore struct {
	// Now returns the current time; nil means time.Now. Tests set it to
	// control expiry and last_used_at.
	Now func() time.Time

	mu sync.RWMutex
	ix *index
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// NewMemoryStoreFromKeys returns a store holding the given keys, typically
// the ATG_API_KEYS list. The key at position N (counting from 1) gets client
// ID "env-key-N", scopes read and write, no expiry, the environment of its
// prefix and a random record ID. A malformed key is an error naming its
// position (never the key); so is a key listed twice.
func NewMemoryStoreFromKeys(keys []string) (*MemoryStore, error) {
	s := &MemoryStore{}
	ix := newIndex(len(keys))
	now := recordTime(time.Now())
	for i, key := range keys {
		env, err := ParseKey(key)
		if err != nil {
			return nil, fmt.Errorf("API key %d of %d: %w", i+1, len(keys), err)
		}
		e := &entry{
			rec: Record{
				ID:          newKeyID(ix),
				ClientID:    fmt.Sprintf("env-key-%d", i+1),
				Environment: env,
				Scopes:      DefaultScopes(),
				CreatedAt:   now,
			},
			digest: Digest(key),
		}
		if prev, dup := ix.byDigest[e.digest]; dup {
			return nil, fmt.Errorf("API key %d of %d: %w: same key as %s", i+1, len(keys), ErrInvalidRecord, prev.rec.ClientID)
		}
		if err := ix.add(e); err != nil {
			return nil, fmt.Errorf("API key %d of %d: %w", i+1, len(keys), err)
		}
	}
	s.ix = ix
	return s, nil
}

func (s *MemoryStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Authenticate implements [KeyStore]. It takes a read lock only.
func (s *MemoryStore) Authenticate(ctx context.Context, key string) (Record, error) {
	s.mu.RLock()
	ix := s.ix
	s.mu.RUnlock()
	return ix.authenticate(key, s.now())
}

// authenticateParsed implements parsedAuthenticator.
func (s *MemoryStore) authenticateParsed(_ context.Context, _ string, d [sha256.Size]byte, env Environment) (Record, error) {
	s.mu.RLock()
	ix := s.ix
	s.mu.RUnlock()
	return ix.lookup(d, env, s.now())
}

// List implements [KeyStore].
func (s *MemoryStore) List(ctx context.Context) ([]Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ix == nil {
		return []Record{}, nil
	}
	return s.ix.records(), nil
}

// Create implements [KeyStore].
func (s *MemoryStore) Create(ctx context.Context, opts CreateOptions) (string, Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix, key, rec, err := s.ix.create(opts, s.now())
	if err != nil {
		return "", Record{}, err
	}
	s.ix = ix
	return key, rec, nil
}

// Revoke implements [KeyStore].
func (s *MemoryStore) Revoke(ctx context.Context, id string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix, rec, err := s.ix.revoke(id, s.now())
	if err != nil {
		return Record{}, err
	}
	s.ix = ix
	return rec, nil
}

// Rotate implements [KeyStore].
func (s *MemoryStore) Rotate(ctx context.Context, id string, grace time.Duration) (string, Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix, key, rec, err := s.ix.rotate(id, grace, s.now())
	if err != nil {
		return "", Record{}, err
	}
	s.ix = ix
	return key, rec, nil
}

var _ KeyStore = (*MemoryStore)(nil)
