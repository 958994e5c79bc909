package auth

import "errors"

// Outcomes of authenticating a key. Stores and [Authenticator.Authenticate]
// return these (possibly wrapped, check with errors.Is); the HTTP middleware
// turns all of them into the same 401 response.
var (
	// ErrMalformed: the key is not of the form atg_{env}_{64 hex}. Every
	// *KeyFormatError matches it.
	ErrMalformed = errors.New("auth: malformed API key")
	// ErrUnknownKey: the key is well formed but no store record has its digest.
	ErrUnknownKey = errors.New("auth: unknown API key")
	// ErrExpired: the key's record has an expires_at earlier than now.
	ErrExpired = errors.New("auth: API key expired")
	// ErrRevoked: the key's record has been revoked.
	ErrRevoked = errors.New("auth: API key revoked")
	// ErrWrongEnvironment: the key belongs to another environment than the
	// server's. It is detected from the key's prefix, before any lookup.
	ErrWrongEnvironment = errors.New("auth: API key is for another environment")
	// ErrNoCredentials: the request carried no Authorization header.
	ErrNoCredentials = errors.New("auth: no credentials")
)

// Errors of key management and configuration.
var (
	// ErrNotFound: no record has the given key ID (Revoke, Rotate).
	ErrNotFound = errors.New("auth: key record not found")
	// ErrInvalidEnvironment: an environment name other than dev,
	// integration or production.
	ErrInvalidEnvironment = errors.New("auth: invalid environment")
	// ErrInvalidScope: a scope other than read, write or admin, or an empty
	// scope list.
	ErrInvalidScope = errors.New("auth: invalid scope")
	// ErrInvalidRecord: CreateOptions or a stored record break a rule
	// (client ID syntax, expiry in the past, negative grace period, ...).
	ErrInvalidRecord = errors.New("auth: invalid key record")
	// ErrKeysFile: the keys file cannot be parsed or breaks a rule
	// (duplicate IDs or digests, unknown environments or scopes, ...). The
	// error names the file and the problem.
	ErrKeysFile = errors.New("auth: invalid keys file")
)

// FailureReason returns a short, stable, log-friendly name for an
// authentication error: "missing_credentials", "malformed", "unknown_key",
// "expired", "revoked", "wrong_environment", or "error" for anything else
// (including nil).
func FailureReason(err error) string {
	switch {
	case err == nil:
		return "error"
	case errors.Is(err, ErrNoCredentials):
		return "missing_credentials"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrWrongEnvironment):
		return "wrong_environment"
	case errors.Is(err, ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, ErrRevoked):
		return "revoked"
	case errors.Is(err, ErrExpired):
		return "expired"
	}
	return "error"
}

// isAuthFailure reports whether err is one of the outcomes that mean "the
// presented credentials are not acceptable" (as opposed to a failure of the
// server itself).
func isAuthFailure(err error) bool { return FailureReason(err) != "error" }
