package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Record describes one API key without the key: who it belongs to, what it
// may do and its life cycle. Times are UTC, set by stores to whole seconds,
// and encode as RFC 3339 (e.g. "2026-03-01T12:00:00Z"); a nil time encodes
// as null.
type Record struct {
	// ID identifies the record, e.g. "key_3f9a0c1b2d4e". It is random and
	// never derived from the key; it is safe to log.
	ID string `json:"id"`
	// ClientID names the client the key was issued to.
	ClientID string `json:"client_id"`
	// Environment is the key's environment (also its prefix).
	Environment Environment `json:"environment"`
	// Scopes are the key's permissions, in the order read, write, admin.
	Scopes []Scope `json:"scopes"`
	// CreatedAt is when the key was created.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the key stops working: it is expired iff
	// now > ExpiresAt. Nil means it never expires.
	ExpiresAt *time.Time `json:"expires_at"`
	// RevokedAt is when the key was revoked; nil means not revoked.
	RevokedAt *time.Time `json:"revoked_at"`
	// LastUsedAt is when the key last authenticated a request, to within
	// a minute (it is updated at most once a minute); nil means never.
	LastUsedAt *time.Time `json:"last_used_at"`
}

// Record states, as returned by [Record.Status].
const (
	// StatusActive: the key authenticates (not revoked, not expired).
	StatusActive = "active"
	// StatusExpired: now is past the record's expires_at.
	StatusExpired = "expired"
	// StatusRevoked: the record has been revoked (whatever its expiry).
	StatusRevoked = "revoked"
)

// Status returns "revoked" if the record is revoked, else "expired" if it
// has expired at now, else "active".
func (r Record) Status(now time.Time) string {
	switch {
	case r.RevokedAt != nil:
		return StatusRevoked
	case r.expiredAt(now):
		return StatusExpired
	}
	return StatusActive
}

// expiredAt reports whether the record is expired at now (strictly after
// expires_at).
func (r Record) expiredAt(now time.Time) bool {
	return r.ExpiresAt != nil && now.After(*r.ExpiresAt)
}

// clone returns a deep copy of r, so callers can't modify a store's state.
func (r Record) clone() Record {
	r.Scopes = slices.Clone(r.Scopes)
	r.ExpiresAt = cloneTime(r.ExpiresAt)
	r.RevokedAt = cloneTime(r.RevokedAt)
	r.LastUsedAt = cloneTime(r.LastUsedAt)
	return r
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func timePtr(t time.Time) *time.Time { return &t }

// recordTime is t as stored in records: UTC, truncated to the second.
func recordTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// maxClientIDLen bounds ClientID.
const maxClientIDLen = 128

// validClientID reports whether id is 1 to 128 characters from A-Z a-z 0-9
// and . _ @ : - (so it is safe in logs, tables and file names).
func validClientID(id string) bool {
	if id == "" || len(id) > maxClientIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("._@:-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validate checks a record's fields (not its key or digest) as read from a
// keys file. The errors describe the problem only; callers add context.
func (r Record) validate() error {
	if r.ID == "" {
		return errors.New("id is empty")
	}
	if !validClientID(r.ClientID) {
		return fmt.Errorf("client_id %q must be 1-%d characters of A-Z a-z 0-9 . _ @ : -", r.ClientID, maxClientIDLen)
	}
	if !r.Environment.Valid() {
		return fmt.Errorf("unknown environment %q (expected dev, integration or production)", string(r.Environment))
	}
	if len(r.Scopes) == 0 {
		return errors.New("scopes are empty (expected read, write and/or admin)")
	}
	for _, sc := range r.Scopes {
		if !sc.Valid() {
			return fmt.Errorf("unknown scope %q (expected read, write or admin)", string(sc))
		}
	}
	if r.CreatedAt.IsZero() {
		return errors.New("created_at is missing")
	}
	return nil
}

// CreateOptions describes a key to create.
type CreateOptions struct {
	// ClientID names the client (required): 1-128 characters of A-Z a-z
	// 0-9 . _ @ : -.
	ClientID string
	// Environment is the key's environment (required).
	Environment Environment
	// Scopes are the key's permissions; nil or empty means [DefaultScopes]
	// (read and write).
	Scopes []Scope
	// ExpiresAt, if not zero, is when the key expires; it must be in the
	// future. Set at most one of ExpiresAt and TTL.
	ExpiresAt time.Time
	// TTL, if not zero, makes the key expire TTL after its creation; it
	// must be positive. Zero ExpiresAt and TTL mean the key never expires.
	TTL time.Duration
}

// KeyStore holds API key records, keyed by the SHA-256 digest of the key,
// and authenticates keys against them. Implementations are safe for
// concurrent use. [MemoryStore] and [FileStore] implement it.
type KeyStore interface {
	// Authenticate looks key up by its digest and returns its record if
	// the key is usable now. Failures: a *KeyFormatError (ErrMalformed),
	// ErrUnknownKey, ErrRevoked, ErrExpired. For ErrRevoked and ErrExpired
	// the record is returned too (so its ID can be logged). A success
	// updates last_used_at, at most once a minute.
	Authenticate(ctx context.Context, key string) (Record, error)
	// List returns every record (active, expired and revoked), oldest
	// first.
	List(ctx context.Context) ([]Record, error)
	// Create generates a new key, stores its record and returns both. The
	// key is returned only here; the store keeps its digest.
	Create(ctx context.Context, opts CreateOptions) (key string, rec Record, err error)
	// Revoke marks the record with ID id as revoked (now) and returns it.
	// Revoking a revoked key is not an error and keeps the first
	// revocation time. An unknown id is ErrNotFound.
	Revoke(ctx context.Context, id string) (Record, error)
	// Rotate replaces the key with ID id: it creates a new key with the
	// same client, environment and scopes (and, if the old key had an
	// expiry, the same lifetime counted from now), and makes the old key
	// expire at now+grace, or keeps its current expiry if that is
	// earlier. A revoked or expired key can't be rotated (ErrRevoked,
	// ErrExpired; create a new one instead); an unknown id is
	// ErrNotFound; a negative grace is ErrInvalidRecord.
	Rotate(ctx context.Context, id string, grace time.Duration) (newKey string, newRec Record, err error)
}

// lastUsedResolution is how often last_used_at is updated at most, per key.
const lastUsedResolution = time.Minute

// entry is a record in an index, with its digest and usage state.
type entry struct {
	rec    Record // LastUsedAt is not kept here; see lastUsed
	digest [32]byte
	// lastUsed is the last use in Unix nanoseconds (0 = never), updated
	// concurrently by authentications.
	lastUsed atomic.Int64
	// persisted is the lastUsed value known to be in the backing file
	// (FileStore only).
	persisted atomic.Int64
	// seq orders entries created in the same second: the order they were
	// added (or appear in the keys file).
	seq uint64
}

// record returns a copy of the entry's record with its current LastUsedAt.
func (e *entry) record() Record {
	r := e.rec.clone()
	if n := e.lastUsed.Load(); n != 0 {
		r.LastUsedAt = timePtr(time.Unix(0, n).UTC().Truncate(time.Second))
	}
	return r
}

// touch records a use at now unless the last recorded use is less than
// lastUsedResolution ago.
func (e *entry) touch(now time.Time) {
	n := now.UnixNano()
	for {
		old := e.lastUsed.Load()
		if old != 0 && n-old < int64(lastUsedResolution) {
			return
		}
		if e.lastUsed.CompareAndSwap(old, n) {
			return
		}
	}
}

// index is an immutable set of entries, looked up by digest or ID. Stores
// replace their index on every change (copy on write); entries' usage
// fields are the only mutable part.
type index struct {
	byDigest map[[32]byte]*entry
	byID     map[string]*entry
	nextSeq  uint64
}

func newIndex(n int) *index {
	return &index{byDigest: make(map[[32]byte]*entry, n), byID: make(map[string]*entry, n)}
}

// add inserts e after every other entry; it fails on a duplicate ID or
// digest.
func (ix *index) add(e *entry) error {
	if _, dup := ix.byID[e.rec.ID]; dup {
		return fmt.Errorf("duplicate id %q", e.rec.ID)
	}
	if _, dup := ix.byDigest[e.digest]; dup {
		return fmt.Errorf("duplicate digest (record %q)", e.rec.ID)
	}
	e.seq = ix.nextSeq
	ix.nextSeq++
	ix.byID[e.rec.ID] = e
	ix.byDigest[e.digest] = e
	return nil
}

// entries returns the entries oldest first (by created_at, then the order
// they were added).
func (ix *index) entries() []*entry {
	out := make([]*entry, 0, len(ix.byID))
	for _, e := range ix.byID {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *entry) int {
		if c := a.rec.CreatedAt.Compare(b.rec.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	return out
}

// records returns copies of every record, oldest first.
func (ix *index) records() []Record {
	es := ix.entries()
	out := make([]Record, len(es))
	for i, e := range es {
		out[i] = e.record()
	}
	return out
}

// authenticate implements KeyStore.Authenticate against ix.
func (ix *index) authenticate(key string, now time.Time) (Record, error) {
	env, err := ParseKey(key)
	if err != nil {
		return Record{}, err
	}
	return ix.lookup(Digest(key), env, now)
}

// lookup is authenticate for a key already checked by ParseKey, whose
// environment is env and Digest d.
func (ix *index) lookup(d [sha256.Size]byte, env Environment, now time.Time) (Record, error) {
	var e *entry
	if ix != nil {
		e = ix.byDigest[d]
	}
	// The map lookup found the entry by digest; comparing the digests
	// again in constant time is defence in depth against a broken map key.
	if e == nil || subtle.ConstantTimeCompare(e.digest[:], d[:]) != 1 {
		return Record{}, ErrUnknownKey
	}
	if e.rec.RevokedAt != nil {
		return e.record(), ErrRevoked
	}
	if e.rec.expiredAt(now) {
		return e.record(), ErrExpired
	}
	if e.rec.Environment != env {
		// A record whose environment disagrees with its key's prefix can
		// only come from a hand-edited file; never accept it.
		return e.record(), ErrWrongEnvironment
	}
	e.touch(now)
	return e.record(), nil
}

// clone returns a copy of ix sharing its entries.
func (ix *index) clone() *index {
	if ix == nil {
		return newIndex(0)
	}
	c := newIndex(len(ix.byID) + 1)
	c.nextSeq = ix.nextSeq
	for id, e := range ix.byID {
		c.byID[id] = e
		c.byDigest[e.digest] = e
	}
	return c
}

// replace swaps the entry with old's ID for a new entry holding rec, keeping
// old's usage state.
func (ix *index) replace(old *entry, rec Record) *entry {
	e := &entry{rec: rec, digest: old.digest, seq: old.seq}
	e.lastUsed.Store(old.lastUsed.Load())
	e.persisted.Store(old.persisted.Load())
	ix.byID[rec.ID] = e
	ix.byDigest[e.digest] = e
	return e
}

// newKeyID returns a fresh random record ID not used in ix: "key_" + 12
// lowercase hex characters.
func newKeyID(ix *index) string {
	for {
		var b [6]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		id := "key_" + hex.EncodeToString(b[:])
		if ix == nil || ix.byID[id] == nil {
			return id
		}
	}
}

// newEntry creates a key and its entry from opts at now. It validates opts.
func newEntry(ix *index, opts CreateOptions, now time.Time) (string, *entry, error) {
	now = recordTime(now)
	if !validClientID(opts.ClientID) {
		return "", nil, fmt.Errorf("%w: client ID %q must be 1-%d characters of A-Z a-z 0-9 . _ @ : -", ErrInvalidRecord, opts.ClientID, maxClientIDLen)
	}
	if !opts.Environment.Valid() {
		return "", nil, fmt.Errorf("%w %q: expected dev, integration or production", ErrInvalidEnvironment, string(opts.Environment))
	}
	scopes := opts.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes()
	}
	scopes, err := normalizeScopes(scopes)
	if err != nil {
		return "", nil, err
	}
	var expires *time.Time
	switch {
	case !opts.ExpiresAt.IsZero() && opts.TTL != 0:
		return "", nil, fmt.Errorf("%w: set either ExpiresAt or TTL, not both", ErrInvalidRecord)
	case opts.TTL < 0:
		return "", nil, fmt.Errorf("%w: TTL %v must be positive", ErrInvalidRecord, opts.TTL)
	case opts.TTL > 0:
		expires = timePtr(now.Add(opts.TTL))
	case !opts.ExpiresAt.IsZero():
		if !opts.ExpiresAt.After(now) {
			return "", nil, fmt.Errorf("%w: expiry %s is not in the future", ErrInvalidRecord, opts.ExpiresAt.UTC().Format(time.RFC3339))
		}
		expires = timePtr(recordTime(opts.ExpiresAt))
	}
	key, err := Generate(opts.Environment)
	if err != nil {
		return "", nil, err
	}
	e := &entry{
		rec: Record{
			ID:          newKeyID(ix),
			ClientID:    opts.ClientID,
			Environment: opts.Environment,
			Scopes:      scopes,
			CreatedAt:   now,
			ExpiresAt:   expires,
		},
		digest: Digest(key),
	}
	return key, e, nil
}

// create returns a copy of ix with a new key added.
func (ix *index) create(opts CreateOptions, now time.Time) (*index, string, Record, error) {
	key, e, err := newEntry(ix, opts, now)
	if err != nil {
		return nil, "", Record{}, err
	}
	c := ix.clone()
	if err := c.add(e); err != nil {
		return nil, "", Record{}, fmt.Errorf("create key: %w", err)
	}
	return c, key, e.record(), nil
}

// revoke returns a copy of ix with record id revoked at now. Revoking twice
// keeps the first time and returns ix unchanged.
func (ix *index) revoke(id string, now time.Time) (*index, Record, error) {
	old := ix.lookupID(id)
	if old == nil {
		return nil, Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if old.rec.RevokedAt != nil {
		return ix, old.record(), nil
	}
	rec := old.rec.clone()
	rec.RevokedAt = timePtr(recordTime(now))
	c := ix.clone()
	return c, c.replace(old, rec).record(), nil
}

// rotate returns a copy of ix in which id expires at now+grace (or earlier,
// if it already did) and a new key for the same client exists.
func (ix *index) rotate(id string, grace time.Duration, now time.Time) (*index, string, Record, error) {
	now = recordTime(now)
	if grace < 0 {
		return nil, "", Record{}, fmt.Errorf("%w: grace period %v must not be negative", ErrInvalidRecord, grace)
	}
	old := ix.lookupID(id)
	if old == nil {
		return nil, "", Record{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if old.rec.RevokedAt != nil {
		return nil, "", Record{}, fmt.Errorf("rotate %q: %w", id, ErrRevoked)
	}
	if old.rec.expiredAt(now) {
		return nil, "", Record{}, fmt.Errorf("rotate %q: %w", id, ErrExpired)
	}
	opts := CreateOptions{ClientID: old.rec.ClientID, Environment: old.rec.Environment, Scopes: old.rec.Scopes}
	if old.rec.ExpiresAt != nil {
		if life := old.rec.ExpiresAt.Sub(old.rec.CreatedAt); life > 0 {
			opts.TTL = life
		}
	}
	key, e, err := newEntry(ix, opts, now)
	if err != nil {
		return nil, "", Record{}, err
	}
	rec := old.rec.clone()
	if end := now.Add(grace); rec.ExpiresAt == nil || end.Before(*rec.ExpiresAt) {
		rec.ExpiresAt = timePtr(end)
	}
	c := ix.clone()
	c.replace(old, rec)
	if err := c.add(e); err != nil {
		return nil, "", Record{}, fmt.Errorf("rotate %q: %w", id, err)
	}
	return c, key, e.record(), nil
}

func (ix *index) lookupID(id string) *entry {
	if ix == nil {
		return nil
	}
	return ix.byID[id]
}
