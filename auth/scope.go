package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Scope is a permission carried by an API key.
//
// [ScopeAdmin] implies every other scope: a key with admin may do anything a
// read or write key may, plus admin-only actions (such as seeing other
// clients' operations).
type Scope string

// The scopes a key can have.
const (
	// ScopeRead allows reading: status, queries in read mode, listing and
	// following operations.
	ScopeRead Scope = "read"
	// ScopeWrite allows changes: write queries, submitting and cancelling
	// operations. It does not imply read.
	ScopeWrite Scope = "write"
	// ScopeAdmin implies every scope.
	ScopeAdmin Scope = "admin"
)

// Valid reports whether s is read, write or admin.
func (s Scope) Valid() bool {
	switch s {
	case ScopeRead, ScopeWrite, ScopeAdmin:
		return true
	}
	return false
}

// DefaultScopes returns the scopes given to a key when none are specified:
// read and write. The caller may modify the returned slice.
func DefaultScopes() []Scope { return []Scope{ScopeRead, ScopeWrite} }

// ParseScopes parses a comma-separated scope list such as "read,write".
// Items are trimmed of spaces and duplicates dropped; the result is in the
// canonical order read, write, admin. An empty list or an unknown scope is an
// error matching [ErrInvalidScope].
func ParseScopes(s string) ([]Scope, error) {
	var scopes []Scope
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		scopes = append(scopes, Scope(item))
	}
	return normalizeScopes(scopes)
}

// normalizeScopes checks every scope, removes duplicates and sorts them in
// the canonical order. An empty list is an error.
func normalizeScopes(in []Scope) ([]Scope, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("%w: at least one scope is required (read, write, admin)", ErrInvalidScope)
	}
	var have [3]bool
	for _, s := range in {
		switch s {
		case ScopeRead:
			have[0] = true
		case ScopeWrite:
			have[1] = true
		case ScopeAdmin:
			have[2] = true
		default:
			return nil, fmt.Errorf("%w %q: expected read, write or admin", ErrInvalidScope, string(s))
		}
	}
	out := make([]Scope, 0, 3)
	for i, sc := range []Scope{ScopeRead, ScopeWrite, ScopeAdmin} {
		if have[i] {
			out = append(out, sc)
		}
	}
	return out, nil
}

// FormatScopes joins scopes with commas, e.g. "read,write".
func FormatScopes(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = string(s)
	}
	return strings.Join(parts, ",")
}

// Identity is who made an authenticated request: the key's record ID, its
// client, environment and scopes. The HTTP middleware puts it in the request
// context; read it with [IdentityFrom].
type Identity struct {
	// KeyID is the ID of the key record (e.g. "key_3f9a0c1b2d4e"), never the key.
	KeyID string `json:"key_id"`
	// ClientID names the client the key was issued to; it owns the
	// operations the client starts.
	ClientID string `json:"client_id"`
	// Environment is the key's (and so the server's) environment.
	Environment Environment `json:"environment"`
	// Scopes are the key's permissions.
	Scopes []Scope `json:"scopes"`
}

// Has reports whether the identity has scope s. [ScopeAdmin] implies every
// scope; an invalid s is never held.
func (id Identity) Has(s Scope) bool {
	if !s.Valid() {
		return false
	}
	return slices.Contains(id.Scopes, s) || slices.Contains(id.Scopes, ScopeAdmin)
}

// identityKey is the context key for the Identity.
type identityKey struct{}

// WithIdentity returns a copy of ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity stored in ctx by [WithIdentity] (the
// HTTP middleware does this), and whether there was one.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
