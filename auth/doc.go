// Package auth implements ATG's API keys: their format, generation and
// hashing, key stores, and HTTP authentication middleware. It depends on the
// standard library only and can be used without the rest of ATG.
//
// # Keys
//
// A key looks like atg_{environment}_{64 lowercase hex}, for example
// "atg_dev_" followed by 64 characters of 0-9a-f; the environment is dev,
// integration or production and the hex part encodes 256 bits from
// crypto/rand ([Generate]). [ParseKey] checks the format and reports the
// first broken rule as a *[KeyFormatError] (always matching [ErrMalformed],
// never containing the key). Upper-case hex is rejected on purpose. Use
// [Redact] to print a key ("atg_dev_***").
//
// # Stores
//
// A [KeyStore] keeps a [Record] per key (id, client_id, environment, scopes,
// created_at, expires_at, revoked_at, last_used_at) indexed by the key's
// SHA-256 [Digest]; it never keeps the key. Authentication is a map lookup by
// digest followed by a constant-time comparison of the digests, so its cost
// does not grow with the number of keys. [MemoryStore] is in-memory
// ([NewMemoryStoreFromKeys] builds one from the ATG_API_KEYS list);
// [FileStore] persists records in a JSON file (ATG_KEYS_FILE) written
// atomically with mode 0600, locked against concurrent writers and
// reloadable with [FileStore.Reload]. Stores create, list, revoke and rotate
// keys; rotation issues a new key for the same client and lets the old one
// work for a grace period. A [Chain] authenticates against several stores
// (e.g. ATG_API_KEYS and a keys file) as one.
//
// The outcome of an authentication is nil or one of the sentinel errors
// [ErrMalformed], [ErrWrongEnvironment], [ErrUnknownKey], [ErrRevoked] and
// [ErrExpired] (test with errors.Is; [FailureReason] names them for logs).
//
// # Scopes
//
// Keys carry scopes [ScopeRead], [ScopeWrite] and [ScopeAdmin]; admin implies
// every scope ([Identity.Has]).
//
// # HTTP
//
// [Authenticator] accepts the keys of one server environment: a key with
// another environment's prefix is rejected before any lookup. [Middleware]
// reads "Authorization: Bearer <key>" before the request body is touched,
// puts the [Identity] in the request context ([IdentityFrom]) and answers
// every failure with the same 401 body in the ATG error envelope, logging
// the reason (never the key) with log/slog. [RequireScope] answers 403 when
// the identity lacks a scope.
package auth
