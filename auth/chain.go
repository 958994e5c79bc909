package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// ErrReadOnly is returned by the management calls of a store that manages
// no keys of its own, such as a [Chain].
var ErrReadOnly = errors.New("auth: key store is read-only")

// Chain is a [KeyStore] over several stores, for keys that come from more
// than one place (e.g. ATG_API_KEYS and a keys file). Authenticate asks
// each store in order; the first that knows the key decides. List returns
// every store's records, in store order. A Chain manages no keys: Create,
// Revoke and Rotate return ErrReadOnly (manage keys in the store that holds
// them).
//
// With an [Authenticator], a Chain of this package's stores parses and
// hashes a presented key once, not once per store.
type Chain []KeyStore

var _ parsedAuthenticator = Chain(nil)

// Authenticate implements [KeyStore].
func (c Chain) Authenticate(ctx context.Context, key string) (Record, error) {
	env, err := ParseKey(key)
	if err != nil {
		return Record{}, err
	}
	return c.authenticateParsed(ctx, key, Digest(key), env)
}

// authenticateParsed implements parsedAuthenticator.
func (c Chain) authenticateParsed(ctx context.Context, key string, d [sha256.Size]byte, env Environment) (Record, error) {
	for _, s := range c {
		var rec Record
		var err error
		if p, ok := s.(parsedAuthenticator); ok {
			rec, err = p.authenticateParsed(ctx, key, d, env)
		} else {
			rec, err = s.Authenticate(ctx, key)
		}
		if !errors.Is(err, ErrUnknownKey) {
			return rec, err
		}
	}
	return Record{}, ErrUnknownKey
}

// List implements [KeyStore].
func (c Chain) List(ctx context.Context) ([]Record, error) {
	out := []Record{}
	for _, s := range c {
		recs, err := s.List(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// Create returns ErrReadOnly.
func (c Chain) Create(context.Context, CreateOptions) (string, Record, error) {
	return "", Record{}, ErrReadOnly
}

// Revoke returns ErrReadOnly.
func (c Chain) Revoke(context.Context, string) (Record, error) { return Record{}, ErrReadOnly }

// Rotate returns ErrReadOnly.
func (c Chain) Rotate(context.Context, string, time.Duration) (string, Record, error) {
	return "", Record{}, ErrReadOnly
}
