package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// strictJSONError is a problem of a syntactically valid JSON document that
// encoding/json lets through: a key repeated in one object (which
// encoding/json resolves silently, last one wins) or a \u escape of an
// unpaired UTF-16 surrogate (which it replaces silently with U+FFFD).
type strictJSONError struct {
	// Path locates the problem, e.g. "params.nodes[3].properties.name";
	// empty means the top level.
	Path string
	// Offset is the byte offset of the problem in the document.
	Offset int
	// Message says what is wrong, without the path.
	Message string
}

// Error implements error: "<path>: <message>", or the message alone at the
// top level.
func (e *strictJSONError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// checkStrictJSON reports the first duplicate object key (compared after
// unescaping, at any depth) or unpaired surrogate escape of doc, which must
// be one valid JSON value (check that first, for example by decoding it);
// on anything else it may stop early and return nil.
func checkStrictJSON(doc []byte) error {
	s := strictScanner{b: doc}
	return s.value()
}

// pathStep is one step of the path to a value: an object key or an array
// index (key == nil).
type pathStep struct {
	key   []byte // the unescaped key; nil for an array element
	index int
}

// pathString formats steps as "a.b[3].c".
func pathString(steps []pathStep) string {
	var b strings.Builder
	for _, st := range steps {
		if st.key == nil {
			b.WriteString("[" + strconv.Itoa(st.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.Write(st.key)
	}
	return b.String()
}

// strictScanner walks a document once. The path and the keys of the
// objects being scanned live in stacks shared by the whole walk, so a
// document costs no allocation per value or key (objects of more than 16
// keys are checked with a map).
type strictScanner struct {
	b    []byte
	i    int
	path []pathStep
	keys [][]byte // the keys of every open object, innermost last
}

// maxStrictDepth stops the scan (without error) of documents nested deeper
// than encoding/json accepts anyway.
const maxStrictDepth = 10000

func (s *strictScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *strictScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *strictScanner) value() error {
	if len(s.path) > maxStrictDepth {
		return nil
	}
	s.ws()
	switch s.peek() {
	case '{':
		return s.object()
	case '[':
		s.i++
		s.ws()
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for n := 0; ; n++ {
			s.path = append(s.path, pathStep{index: n})
			err := s.value()
			s.path = s.path[:len(s.path)-1]
			if err != nil {
				return err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return nil
			}
		}
	case '"':
		_, _, err := s.str()
		return err
	case 0:
		return nil
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				return nil
			}
			s.i++
		}
		return nil
	}
}

func (s *strictScanner) object() error {
	s.i++ // {
	first := len(s.keys)
	defer func() { s.keys = s.keys[:first] }()
	var many map[string]struct{}
	for {
		s.ws()
		switch s.peek() {
		case '}':
			s.i++
			return nil
		case '"':
		default:
			return nil // not valid JSON: the decoder reports it
		}
		start := s.i
		key, escaped, err := s.str()
		if err != nil {
			return err
		}
		if escaped {
			var k string
			if json.Unmarshal(s.b[start:s.i], &k) != nil {
				return nil
			}
			key = []byte(k)
		}
		dup := false
		if many != nil {
			_, dup = many[string(key)]
			many[string(key)] = struct{}{}
		} else {
			for _, k := range s.keys[first:] {
				if bytes.Equal(k, key) {
					dup = true
					break
				}
			}
			s.keys = append(s.keys, key)
			if len(s.keys)-first > 16 {
				many = make(map[string]struct{}, 64)
				for _, k := range s.keys[first:] {
					many[string(k)] = struct{}{}
				}
			}
		}
		if key == nil {
			key = []byte{} // a step with an empty key is still a key
		}
		s.path = append(s.path, pathStep{key: key})
		if dup {
			return &strictJSONError{Path: pathString(s.path), Offset: start,
				Message: "duplicate key: the same object gives it twice"}
		}
		s.ws()
		if s.peek() != ':' {
			return nil
		}
		s.i++
		err = s.value()
		s.path = s.path[:len(s.path)-1]
		if err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return nil
		}
	}
}

// str scans the string literal at s.i (the opening quote) and returns its
// raw contents and whether it holds escapes. An unpaired surrogate escape
// is an error located at the current path.
func (s *strictScanner) str() ([]byte, bool, error) {
	s.i++ // opening quote
	start, escaped := s.i, false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, escaped, nil
		case '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false, nil
			}
			if s.b[s.i+1] != 'u' {
				s.i += 2
				continue
			}
			c, ok := hex4(s.b, s.i+2)
			if !ok {
				return nil, false, nil
			}
			switch {
			case c >= 0xD800 && c < 0xDC00:
				if lo, ok := hex4(s.b, s.i+8); ok && s.b[s.i+6] == '\\' && s.b[s.i+7] == 'u' && lo >= 0xDC00 && lo < 0xE000 {
					s.i += 12
					continue
				}
				return nil, false, surrogateError(s.path, s.i, c)
			case c >= 0xDC00 && c < 0xE000:
				return nil, false, surrogateError(s.path, s.i, c)
			}
			s.i += 6
		default:
			s.i++
		}
	}
	return nil, false, nil
}

func surrogateError(path []pathStep, offset int, c rune) error {
	return &strictJSONError{Path: pathString(path), Offset: offset,
		Message: fmt.Sprintf(`string holds \u%04X, an unpaired UTF-16 surrogate, which is not a character`, c)}
}

// hex4 parses the 4 hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
