package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// parsedAuthenticator is implemented by this package's stores and Chain: it
// authenticates a key that ParseKey has already accepted (as environment
// env) and whose Digest is d, skipping a second parse and hash.
type parsedAuthenticator interface {
	authenticateParsed(ctx context.Context, key string, d [sha256.Size]byte, env Environment) (Record, error)
}

// Authenticator checks presented keys for one server environment against a
// [KeyStore]. It is safe for concurrent use.
type Authenticator struct {
	store KeyStore
	env   Environment
}

// NewAuthenticator returns an Authenticator accepting only keys of env that
// store knows. A nil store or invalid env is an error.
func NewAuthenticator(store KeyStore, env Environment) (*Authenticator, error) {
	if store == nil {
		return nil, errors.New("auth: NewAuthenticator: nil KeyStore")
	}
	if !env.Valid() {
		return nil, fmt.Errorf("auth: NewAuthenticator: %w %q", ErrInvalidEnvironment, string(env))
	}
	return &Authenticator{store: store, env: env}, nil
}

// Environment returns the environment whose keys a accepts.
func (a *Authenticator) Environment() Environment { return a.env }

// Store returns the store a looks keys up in.
func (a *Authenticator) Store() KeyStore { return a.store }

// Authenticate checks key and returns the identity it grants. The checks,
// in order: the key's format (a *KeyFormatError matching ErrMalformed);
// its environment prefix against the server's (ErrWrongEnvironment, decided
// before any lookup); then the store (ErrUnknownKey, ErrRevoked,
// ErrExpired). On failure the returned Identity is empty except for KeyID
// and ClientID when the key's record was found (revoked or expired keys),
// for logging. Errors never contain the key.
func (a *Authenticator) Authenticate(ctx context.Context, key string) (Identity, error) {
	env, err := ParseKey(key)
	if err != nil {
		return Identity{}, err
	}
	if env != a.env {
		return Identity{}, fmt.Errorf("%w: key is for %s, this server is %s", ErrWrongEnvironment, env, a.env)
	}
	var rec Record
	if p, ok := a.store.(parsedAuthenticator); ok {
		rec, err = p.authenticateParsed(ctx, key, Digest(key), env)
	} else {
		rec, err = a.store.Authenticate(ctx, key)
	}
	if err != nil {
		return Identity{KeyID: rec.ID, ClientID: rec.ClientID}, err
	}
	if rec.Environment != a.env {
		return Identity{KeyID: rec.ID, ClientID: rec.ClientID}, fmt.Errorf("%w: record %s is for %s", ErrWrongEnvironment, rec.ID, rec.Environment)
	}
	return Identity{KeyID: rec.ID, ClientID: rec.ClientID, Environment: rec.Environment, Scopes: rec.Scopes}, nil
}

// recordChecker is implemented by this package's stores and Chain: the
// record with ID id and whether it is usable at the store's now
// (ErrUnknownKey, ErrRevoked, ErrExpired, with the record for the last two).
type recordChecker interface {
	checkRecordID(ctx context.Context, id string) (Record, error)
}

// CheckKeyID reports whether the key whose record ID is id may still
// authenticate now, without the key itself: for credentials derived from a
// key earlier (such as event tokens) that must die with it. It returns the
// identity the key grants, or ErrUnknownKey (no such record),
// ErrRevoked, ErrExpired or ErrWrongEnvironment, like Authenticate. Stores
// of other packages are searched with List. It does not update
// last_used_at.
func (a *Authenticator) CheckKeyID(ctx context.Context, id string) (Identity, error) {
	var rec Record
	var err error
	if l, ok := a.store.(recordChecker); ok {
		rec, err = l.checkRecordID(ctx, id)
	} else {
		rec, err = listCheckRecordID(ctx, a.store, id, time.Now())
	}
	failed := Identity{KeyID: rec.ID, ClientID: rec.ClientID}
	switch {
	case err != nil:
		return failed, err
	case rec.Environment != a.env:
		return failed, fmt.Errorf("%w: record %s is for %s", ErrWrongEnvironment, rec.ID, rec.Environment)
	}
	return Identity{KeyID: rec.ID, ClientID: rec.ClientID, Environment: rec.Environment, Scopes: rec.Scopes}, nil
}

// recordStatus is nil for a record usable at now, else ErrRevoked or
// ErrExpired.
func recordStatus(rec Record, now time.Time) error {
	switch {
	case rec.RevokedAt != nil:
		return ErrRevoked
	case rec.expiredAt(now):
		return ErrExpired
	}
	return nil
}

// listCheckRecordID is checkRecordID for any store, through List.
func listCheckRecordID(ctx context.Context, s KeyStore, id string, now time.Time) (Record, error) {
	recs, err := s.List(ctx)
	if err != nil {
		return Record{}, err
	}
	for _, r := range recs {
		if r.ID == id {
			return r, recordStatus(r, now)
		}
	}
	return Record{}, ErrUnknownKey
}

// checkRecordID implements recordChecker.
func (ix *index) checkRecordID(id string, now time.Time) (Record, error) {
	e := ix.lookupID(id)
	if e == nil {
		return Record{}, ErrUnknownKey
	}
	rec := e.record()
	return rec, recordStatus(rec, now)
}

// checkRecordID implements recordChecker.
func (s *MemoryStore) checkRecordID(_ context.Context, id string) (Record, error) {
	s.mu.RLock()
	ix := s.ix
	s.mu.RUnlock()
	return ix.checkRecordID(id, s.now())
}

// checkRecordID implements recordChecker.
func (s *FileStore) checkRecordID(_ context.Context, id string) (Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ix.checkRecordID(id, s.now())
}

// checkRecordID implements recordChecker: the first store that knows id
// decides.
func (c Chain) checkRecordID(ctx context.Context, id string) (Record, error) {
	for _, s := range c {
		var rec Record
		var err error
		if l, ok := s.(recordChecker); ok {
			rec, err = l.checkRecordID(ctx, id)
		} else {
			rec, err = listCheckRecordID(ctx, s, id, time.Now())
		}
		if !errors.Is(err, ErrUnknownKey) {
			return rec, err
		}
	}
	return Record{}, ErrUnknownKey
}
