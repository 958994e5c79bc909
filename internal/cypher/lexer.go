package cypher

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is the kind of a token.
type Kind uint8

// Token kinds. Whitespace and comments produce no tokens.
const (
	// Word is an unquoted identifier or keyword (MATCH, n, db).
	Word Kind = iota + 1
	// Quoted is a backtick-quoted identifier (`my label`).
	Quoted
	// String is a string literal in single or double quotes.
	String
	// Number is a numeric literal (1, 0x1F, 1.5e3).
	Number
	// Param is a parameter ($name, $0, $`odd name`).
	Param
	// Symbol is any other single character: ( ) { } , . ; = and so on.
	Symbol
)

// Token is one lexical token of a statement: Start and End are byte offsets
// into the source, so src[Start:End] is the token's text (quotes included).
type Token struct {
	Kind       Kind
	Start, End int
}

// Text returns the token's text in src.
func (t Token) Text(src string) string { return src[t.Start:t.End] }

// Is reports whether t is the Word kw, in any case.
func (t Token) Is(src, kw string) bool {
	return t.Kind == Word && strings.EqualFold(src[t.Start:t.End], kw)
}

// ErrUnterminated is wrapped by Lex's error for a string, quoted identifier
// or block comment that never ends.
var ErrUnterminated = errors.New("unterminated")

// SyntaxError is Lex's error: what went wrong and at which byte offset.
type SyntaxError struct {
	Offset int
	What   string
	Err    error
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("cypher: %s at offset %d", e.What, e.Offset)
}

// Unwrap returns the sentinel (ErrUnterminated).
func (e *SyntaxError) Unwrap() error { return e.Err }

// Lex splits src into tokens, skipping whitespace, // line comments and
// /* block */ comments. On an unterminated string, quoted identifier or
// block comment it returns the tokens before it and a *SyntaxError.
func Lex(src string) ([]Token, error) {
	toks := make([]Token, 0, len(src)/4+1)
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				return toks, nil
			}
			i += j + 1
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return toks, &SyntaxError{Offset: i, What: "unterminated comment", Err: ErrUnterminated}
			}
			i += 2 + j + 2
		case c == '\'' || c == '"':
			end, ok := scanString(src, i)
			if !ok {
				return toks, &SyntaxError{Offset: i, What: "unterminated string", Err: ErrUnterminated}
			}
			toks = append(toks, Token{Kind: String, Start: i, End: end})
			i = end
		case c == '`':
			end, ok := scanQuoted(src, i)
			if !ok {
				return toks, &SyntaxError{Offset: i, What: "unterminated quoted identifier", Err: ErrUnterminated}
			}
			toks = append(toks, Token{Kind: Quoted, Start: i, End: end})
			i = end
		case c == '$':
			end := i + 1
			switch {
			case end < len(src) && src[end] == '`':
				e, ok := scanQuoted(src, end)
				if !ok {
					return toks, &SyntaxError{Offset: i, What: "unterminated quoted parameter", Err: ErrUnterminated}
				}
				end = e
			default:
				end = scanWord(src, end)
			}
			toks = append(toks, Token{Kind: Param, Start: i, End: end})
			i = end
		case c >= '0' && c <= '9':
			end := scanNumber(src, i)
			toks = append(toks, Token{Kind: Number, Start: i, End: end})
			i = end
		case isWordStart(src, i):
			end := scanWord(src, i)
			toks = append(toks, Token{Kind: Word, Start: i, End: end})
			i = end
		default:
			_, n := utf8.DecodeRuneInString(src[i:])
			toks = append(toks, Token{Kind: Symbol, Start: i, End: i + n})
			i += n
		}
	}
	return toks, nil
}

// scanString returns the end of the string literal opening at src[i].
func scanString(src string, i int) (int, bool) {
	q := src[i]
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case q:
			return j + 1, true
		}
	}
	return len(src), false
}

// scanQuoted returns the end of the backtick identifier opening at src[i];
// a doubled backtick is an escaped one.
func scanQuoted(src string, i int) (int, bool) {
	for j := i + 1; j < len(src); j++ {
		if src[j] == '`' {
			if j+1 < len(src) && src[j+1] == '`' {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return len(src), false
}

func isWordStart(src string, i int) bool {
	r, _ := utf8.DecodeRuneInString(src[i:])
	return r == '_' || unicode.IsLetter(r)
}

func scanWord(src string, i int) int {
	for i < len(src) {
		r, n := utf8.DecodeRuneInString(src[i:])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		i += n
	}
	return i
}

// scanNumber is generous: digits, letters (hex, exponents, suffixes), dots
// followed by a digit, and signs after an exponent.
func scanNumber(src string, i int) int {
	j := i
	for j < len(src) {
		c := src[j]
		switch {
		case c >= '0' && c <= '9', c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			j++
		case c == '.' && j+1 < len(src) && src[j+1] >= '0' && src[j+1] <= '9':
			j++
		case (c == '-' || c == '+') && (src[j-1] == 'e' || src[j-1] == 'E') && !strings.HasPrefix(strings.ToLower(src[i:j]), "0x"):
			j++
		default:
			return j
		}
	}
	return j
}
