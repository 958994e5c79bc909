package cypher

import (
	"errors"
	"strings"
)

// Masked is what Mask writes in place of a string literal's content.
const Masked = "***"

// MaskPolicy says which string literals Mask replaces.
type MaskPolicy uint8

const (
	// MaskPasswords masks the string literals after a PASSWORD keyword
	// (SET PASSWORD 'x', SET PASSWORD FROM 'old' TO 'new').
	MaskPasswords MaskPolicy = iota
	// MaskAllStrings masks every string literal: for administration
	// statements, whose literals may be passwords, names or settings.
	MaskAllStrings
)

// Mask returns src with string literals replaced by '***' as policy says,
// ready for an audit record or a log line. Comments are kept. Where src
// cannot be lexed (an unterminated string or comment), everything from the
// problem on is masked.
func Mask(src string, policy MaskPolicy) string {
	toks, err := Lex(src)
	var b strings.Builder
	b.Grow(len(src))
	last, afterPassword := 0, false
	for _, t := range toks {
		switch {
		case t.Is(src, "PASSWORD"):
			afterPassword = true
		case t.Kind == String && (policy == MaskAllStrings || afterPassword):
			b.WriteString(src[last:t.Start])
			q := src[t.Start : t.Start+1]
			b.WriteString(q + Masked + q)
			last = t.End
		}
	}
	var se *SyntaxError
	if errors.As(err, &se) {
		b.WriteString(src[last:se.Offset])
		b.WriteString(Masked)
		return b.String()
	}
	b.WriteString(src[last:])
	return b.String()
}
