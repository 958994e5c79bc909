package neo4jpool

import (
	"errors"
	"fmt"
)

// IdentifierPattern is the pattern every label, relationship type and
// constraint-name part must match before it is written into Cypher: a letter
// or underscore followed by up to 63 letters, digits or underscores. Anything
// else (spaces, backticks, quotes, parentheses, comments, non-ASCII letters)
// is rejected, so a value like "Resource`) DETACH DELETE n //" never reaches
// the database.
const IdentifierPattern = `^[A-Za-z_][A-Za-z0-9_]{0,63}$`

// isIdentifier reports whether name matches IdentifierPattern (a
// hand-written check: it runs for every label of every imported node).
func isIdentifier(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ErrInvalidIdentifier is matched (with errors.Is) by every error of
// [ValidateIdentifier].
var ErrInvalidIdentifier = errors.New("neo4jpool: invalid identifier")

// ValidateIdentifier returns nil when name matches [IdentifierPattern] and an
// error matching ErrInvalidIdentifier otherwise. kind names what the value is
// for ("label", "relationship type") and appears in the message.
func ValidateIdentifier(kind, name string) error {
	if isIdentifier(name) {
		return nil
	}
	if name == "" {
		return fmt.Errorf("%w: %s must not be empty", ErrInvalidIdentifier, kind)
	}
	shown := name
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return fmt.Errorf("%w: %s %q must match %s (a letter or _ then at most 63 letters, digits or _)",
		ErrInvalidIdentifier, kind, shown, IdentifierPattern)
}

// quoteIdentifier returns name in backticks. Callers validate name with
// ValidateIdentifier first; the pattern admits no backtick, so quoting is
// only there to make reserved words (for example a label "Match") safe.
func quoteIdentifier(name string) string { return "`" + name + "`" }
