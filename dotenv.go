package atg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// DotenvError reports a malformed line in a .env file. It names the file and
// the line number but never repeats the line's text, which may hold a secret.
type DotenvError struct {
	// Path is the file that was read.
	Path string
	// Line is the 1-based line number of the problem.
	Line int
	// Reason says what is wrong with the line.
	Reason string
}

// Error implements error.
func (e *DotenvError) Error() string {
	return fmt.Sprintf("malformed .env file %s: line %d: %s (expected KEY=VALUE)", e.Path, e.Line, e.Reason)
}

// Is makes every DotenvError match ErrInvalidConfig.
func (e *DotenvError) Is(target error) bool { return target == ErrInvalidConfig }

// The parser is this package's own rather than github.com/joho/godotenv:
// godotenv expands $VAR references and its errors quote the rest of the
// file ("... near %q"), which would put secrets into error messages.

// ReadDotenv reads a .env file into a map. A missing file is not an error: it
// yields an empty map. The grammar is deliberately small and predictable:
//
//   - blank lines and lines whose first non-space character is # are skipped;
//   - an optional leading "export " is ignored;
//   - KEY=VALUE splits on the first '='; key and value are trimmed; keys match
//     [A-Za-z_][A-Za-z0-9_.]*;
//   - a value wrapped in one pair of matching single quotes is taken literally;
//     one wrapped in double quotes may use the escapes \" \\ \n \t;
//   - in an unquoted value, " #" starts a comment;
//   - there is no variable expansion and no multi-line value.
//
// Any other line is a *DotenvError naming the file and line. A later
// definition of the same key wins. The process environment is never read or
// modified.
func ReadDotenv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read .env file: %w", err)
	}
	return ParseDotenv(path, data)
}

// ParseDotenv parses .env content (see ReadDotenv for the grammar). name is
// used in errors only.
func ParseDotenv(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		key, value, ok, reason := parseDotenvLine(sc.Text())
		if reason != "" {
			return nil, &DotenvError{Path: name, Line: lineNo, Reason: reason}
		}
		if ok {
			out[key] = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &DotenvError{Path: name, Line: lineNo + 1, Reason: "line too long"}
	}
	return out, nil
}

// parseDotenvLine parses one line. ok is false for blank and comment lines;
// reason is non-empty when the line is malformed.
func parseDotenvLine(line string) (key, value string, ok bool, reason string) {
	line = strings.TrimSuffix(line, "\r")
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return "", "", false, ""
	}
	if rest, found := strings.CutPrefix(trimmed, "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		trimmed = strings.TrimSpace(rest)
	}
	k, v, found := strings.Cut(trimmed, "=")
	if !found {
		return "", "", false, "no '=' found"
	}
	k = strings.TrimSpace(k)
	if k == "" {
		return "", "", false, "empty variable name"
	}
	if !validDotenvKey(k) {
		return "", "", false, "variable name must match [A-Za-z_][A-Za-z0-9_.]*"
	}
	v, reason = dotenvValue(strings.TrimSpace(v))
	if reason != "" {
		return "", "", false, reason
	}
	return k, v, true, ""
}

func validDotenvKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// dotenvValue unquotes a trimmed value.
func dotenvValue(v string) (string, string) {
	if v == "" {
		return "", ""
	}
	switch q := v[0]; q {
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", "unterminated single-quoted value"
		}
		if rest := strings.TrimSpace(v[end+2:]); rest != "" && !strings.HasPrefix(rest, "#") {
			return "", "unexpected text after the closing quote"
		}
		return v[1 : end+1], ""
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '\\' && i+1 < len(v):
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case '"', '\\':
					b.WriteByte(v[i])
				default:
					b.WriteByte('\\')
					b.WriteByte(v[i])
				}
			case c == '"':
				if rest := strings.TrimSpace(v[i+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
					return "", "unexpected text after the closing quote"
				}
				return b.String(), ""
			default:
				b.WriteByte(c)
			}
		}
		return "", "unterminated double-quoted value"
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if i := strings.Index(v, "\t#"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, ""
}
