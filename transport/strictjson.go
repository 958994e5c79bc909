package transport

import (
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
	if err := s.value(nil); err != nil {
		return err
	}
	return nil
}

// jsonPath is one step of the path to a value, linked to its parent; it is
// turned into a string only when there is a problem to report.
type jsonPath struct {
	parent *jsonPath
	key    string
	index  int // -1 for an object key
}

func (p *jsonPath) String() string {
	if p == nil {
		return ""
	}
	var steps []*jsonPath
	for q := p; q != nil; q = q.parent {
		steps = append(steps, q)
	}
	var b strings.Builder
	for i := len(steps) - 1; i >= 0; i-- {
		q := steps[i]
		if q.index >= 0 {
			b.WriteString("[" + strconv.Itoa(q.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(q.key)
	}
	return b.String()
}

type strictScanner struct {
	b []byte
	i int
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

func (s *strictScanner) value(path *jsonPath) error {
	return s.valueAt(path, 0)
}

func (s *strictScanner) valueAt(path *jsonPath, depth int) error {
	if depth > maxStrictDepth {
		return nil
	}
	s.ws()
	switch s.peek() {
	case '{':
		s.i++
		var small []string
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
			raw, escaped, err := s.str(path)
			if err != nil {
				return err
			}
			key := string(raw)
			if escaped {
				if json.Unmarshal(s.b[start:s.i], &key) != nil {
					return nil
				}
			}
			dup := false
			if many != nil {
				_, dup = many[key]
				many[key] = struct{}{}
			} else {
				for _, k := range small {
					if k == key {
						dup = true
						break
					}
				}
				small = append(small, key)
				if len(small) > 16 {
					many = make(map[string]struct{}, 32)
					for _, k := range small {
						many[k] = struct{}{}
					}
				}
			}
			if dup {
				return &strictJSONError{Path: (&jsonPath{parent: path, key: key, index: -1}).String(), Offset: start,
					Message: "duplicate key: the same object gives it twice"}
			}
			s.ws()
			if s.peek() != ':' {
				return nil
			}
			s.i++
			if err := s.valueAt(&jsonPath{parent: path, key: key, index: -1}, depth+1); err != nil {
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
	case '[':
		s.i++
		s.ws()
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for n := 0; ; n++ {
			if err := s.valueAt(&jsonPath{parent: path, index: n}, depth+1); err != nil {
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
		_, _, err := s.str(path)
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

// str scans the string literal at s.i (the opening quote) and returns its
// raw contents and whether it holds escapes. An unpaired surrogate escape
// is an error located at path.
func (s *strictScanner) str(path *jsonPath) ([]byte, bool, error) {
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
				return nil, false, surrogateError(path, s.i, c)
			case c >= 0xDC00 && c < 0xE000:
				return nil, false, surrogateError(path, s.i, c)
			}
			s.i += 6
		default:
			s.i++
		}
	}
	return nil, false, nil
}

func surrogateError(path *jsonPath, offset int, c rune) error {
	return &strictJSONError{Path: path.String(), Offset: offset,
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
