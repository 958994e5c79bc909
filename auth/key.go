package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Environment names the deployment an API key belongs to. A server accepts
// only keys of its own environment.
type Environment string

// The environments a key can belong to. There are no others.
const (
	// Dev is the local development environment ("dev").
	Dev Environment = "dev"
	// Integration is the shared test environment ("integration").
	Integration Environment = "integration"
	// Production is the live environment ("production").
	Production Environment = "production"
)

// Environments returns every valid environment, in the order dev,
// integration, production. The caller may modify the returned slice.
func Environments() []Environment {
	return []Environment{Dev, Integration, Production}
}

// Valid reports whether e is one of [Dev], [Integration] or [Production].
func (e Environment) Valid() bool {
	switch e {
	case Dev, Integration, Production:
		return true
	}
	return false
}

// String returns the environment's name, e.g. "dev".
func (e Environment) String() string { return string(e) }

// ParseEnvironment returns the environment named s ("dev", "integration" or
// "production"; exact, lower case, no surrounding space). Any other value is
// an error matching [ErrInvalidEnvironment].
func ParseEnvironment(s string) (Environment, error) {
	e := Environment(s)
	if !e.Valid() {
		return "", fmt.Errorf("%w %q: expected dev, integration or production", ErrInvalidEnvironment, s)
	}
	return e, nil
}

const (
	// KeyPrefix starts every API key.
	KeyPrefix = "atg_"
	// KeyHexLen is the number of lowercase hexadecimal characters at the
	// end of every API key (32 random bytes, 256 bits).
	KeyHexLen = 64
	// MinKeyLen is the length of the shortest valid key (a dev key:
	// "atg_dev_" plus 64 hex characters). Integration keys are 80
	// characters long and production keys 79.
	MinKeyLen = len(KeyPrefix) + len(Dev) + 1 + KeyHexLen
)

// KeyProblem says which rule a malformed API key broke. Rules are checked in
// the order of the constants below; the first failure is reported.
type KeyProblem int

// The rules an API key must satisfy, in the order [ParseKey] checks them.
const (
	// KeyEmpty: the key is the empty string.
	KeyEmpty KeyProblem = iota + 1
	// KeyTooShort: the key has fewer than [MinKeyLen] (72) characters.
	KeyTooShort
	// KeyBadPrefix: the key does not start with "atg_".
	KeyBadPrefix
	// KeyMissingParts: the key has no second "_" separating the
	// environment from the hex portion.
	KeyMissingParts
	// KeyBadEnvironment: the environment is not dev, integration or
	// production.
	KeyBadEnvironment
	// KeyBadHexLength: the hex portion is not exactly 64 characters.
	KeyBadHexLength
	// KeyNonHex: the hex portion has a character outside 0-9 and a-f.
	// Upper-case hexadecimal is rejected on purpose: keys are generated in
	// lower case, and one spelling per key keeps digests unambiguous.
	KeyNonHex
)

// KeyFormatError reports why a string is not a well-formed API key. It never
// contains the key: Env holds the key's environment segment only when it is
// short and made of letters (so that a typo such as "prod" can be shown);
// otherwise Env is empty. errors.Is(err, ErrMalformed) is true for every
// *KeyFormatError.
type KeyFormatError struct {
	// Problem is the first rule the key broke.
	Problem KeyProblem
	// Env is the key's environment segment for KeyBadEnvironment, if it is
	// safe to show (at most 12 ASCII lower-case letters); else empty.
	Env string
	// HexLen is the length of the hex portion for KeyBadHexLength.
	HexLen int
}

// Error returns a message naming the broken rule and the expected format.
func (e *KeyFormatError) Error() string {
	switch e.Problem {
	case KeyEmpty:
		return "API key is required"
	case KeyTooShort:
		return fmt.Sprintf("API key too short (expected at least %d characters)", MinKeyLen)
	case KeyBadPrefix:
		return "invalid format: API key must start with 'atg_' prefix; expected atg_{environment}_{64-hex-chars}"
	case KeyMissingParts:
		return "invalid format: API key missing environment or hex portion; expected atg_{environment}_{64-hex-chars}"
	case KeyBadEnvironment:
		if e.Env != "" {
			return fmt.Sprintf("invalid format: unsupported environment '%s'; expected dev, integration or production", e.Env)
		}
		return "invalid format: unsupported environment; expected dev, integration or production"
	case KeyBadHexLength:
		return fmt.Sprintf("invalid format: hex portion must be exactly %d characters, got %d", KeyHexLen, e.HexLen)
	case KeyNonHex:
		return "invalid format: hex portion contains non-hexadecimal characters; only 0-9 and a-f are allowed"
	}
	return "invalid format: malformed API key"
}

// Is reports whether target is [ErrMalformed], so that
// errors.Is(err, ErrMalformed) matches every key format error.
func (e *KeyFormatError) Is(target error) bool { return target == ErrMalformed }

// ParseKey checks that s is a well-formed API key,
// atg_{environment}_{64 lowercase hex}, and returns its environment. It does
// not look the key up anywhere. The checks run in this order, and the first
// failure is returned as a *[KeyFormatError]: empty, shorter than 72
// characters, no "atg_" prefix, no environment or hex portion, unknown
// environment, hex portion not 64 characters, non-hex (including upper-case)
// characters. The error never contains the key.
func ParseKey(s string) (Environment, error) {
	if s == "" {
		return "", &KeyFormatError{Problem: KeyEmpty}
	}
	if len(s) < MinKeyLen {
		return "", &KeyFormatError{Problem: KeyTooShort}
	}
	rest, ok := strings.CutPrefix(s, KeyPrefix)
	if !ok {
		return "", &KeyFormatError{Problem: KeyBadPrefix}
	}
	envPart, hexPart, ok := strings.Cut(rest, "_")
	if !ok || envPart == "" || hexPart == "" {
		return "", &KeyFormatError{Problem: KeyMissingParts}
	}
	env := Environment(envPart)
	if !env.Valid() {
		return "", &KeyFormatError{Problem: KeyBadEnvironment, Env: safeEnvSegment(envPart)}
	}
	if len(hexPart) != KeyHexLen {
		return "", &KeyFormatError{Problem: KeyBadHexLength, HexLen: len(hexPart)}
	}
	// Accumulate through a table instead of branching per character: keys
	// are random, so per-character branches would be mispredicted about
	// half the time and dominate the cost of validation.
	var bad byte
	for i := 0; i < len(hexPart); i++ {
		bad |= notLowerHex[hexPart[i]]
	}
	if bad != 0 {
		return "", &KeyFormatError{Problem: KeyNonHex}
	}
	return env, nil
}

// notLowerHex[c] is 0 for 0-9 and a-f, 1 for every other byte.
var notLowerHex = func() (t [256]byte) {
	for c := range t {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			t[c] = 1
		}
	}
	return t
}()

// safeEnvSegment returns seg if it can be shown in an error without revealing
// key material: at most 12 ASCII lower-case letters (e.g. "prod",
// "staging"). Anything else, which might be part of a secret, yields "".
func safeEnvSegment(seg string) string {
	if len(seg) > 12 {
		return ""
	}
	for i := 0; i < len(seg); i++ {
		if seg[i] < 'a' || seg[i] > 'z' {
			return ""
		}
	}
	return seg
}

// ValidateKey returns the error [ParseKey] would return for s, or nil if s is
// a well-formed API key.
func ValidateKey(s string) error {
	_, err := ParseKey(s)
	return err
}

// Generate returns a new API key for env: "atg_" + env + "_" + 64 lowercase
// hex characters encoding 32 bytes from crypto/rand. An invalid env is an
// error matching [ErrInvalidEnvironment].
func Generate(env Environment) (string, error) {
	if !env.Valid() {
		return "", fmt.Errorf("generate API key: %w %q: expected dev, integration or production", ErrInvalidEnvironment, string(env))
	}
	var b [KeyHexLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate API key: %w", err)
	}
	return KeyPrefix + string(env) + "_" + hex.EncodeToString(b[:]), nil
}

// Redact returns a form of key that is safe to print or log.
//
//   - "" stays "" (so an unset key is visibly unset);
//   - "atg_{env}_…" with a known env becomes "atg_{env}_***", e.g. "atg_dev_***",
//     whether or not the rest is well formed;
//   - anything else becomes "***".
//
// Only a known environment name is ever kept, so no part of a secret (or of
// a mistyped one) is revealed.
func Redact(key string) string {
	if key == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(key, KeyPrefix); ok {
		if env, _, ok := strings.Cut(rest, "_"); ok && Environment(env).Valid() {
			return KeyPrefix + env + "_***"
		}
	}
	return "***"
}

// Digest returns the SHA-256 digest of key. Stores keep and compare digests,
// never keys.
func Digest(key string) [sha256.Size]byte {
	// Hash keys of usual length from a stack buffer: no allocation.
	var buf [128]byte
	if len(key) <= len(buf) {
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}
