package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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
