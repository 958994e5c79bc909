package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// refDuplicateKey is the reference check of duplicate keys: a walk of
// encoding/json's tokens, one key set per open object.
func refDuplicateKey(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		obj      bool
		keys     map[string]bool
		wantsKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return false
		}
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wantsKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.wantsKey = false
				continue
			}
		}
		if top != nil && top.obj {
			top.wantsKey = true // after this value, the next token is a key or '}'
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, wantsKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].obj {
				stack[len(stack)-1].wantsKey = true
			}
		}
	}
}

var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F][0-9a-fA-F]{2}`)

func TestCheckStrictJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		doc, path string // path "-" means no error
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, "-"},
		{`{"a":1,"a":2}`, "a"},
		{`{"a":{"b":[0,{"c":1,"c":1}]}}`, "a.b[1].c"},
		{`{"\u0061":1,"a":2}`, "a"},
		{`{"a\"b":1,"a\"b":2}`, `a"b`},
		{`{"s":"\ud83d\ude00"}`, "-"},
		{`{"s":"\\ud800"}`, "-"}, // an escaped backslash, then text
		{`{"s":"\ud800"}`, "s"},
		{`{"s":["x","\udc00"]}`, "s[1]"},
		{`{"s":"\ud800\u0041"}`, "s"},
		{`"\ud800"`, ""},
		{`[1,2,{"k":true,"k":false}]`, "[2].k"},
	}
	for _, tt := range tests {
		err := checkStrictJSON([]byte(tt.doc))
		var se *strictJSONError
		switch {
		case tt.path == "-" && err != nil:
			t.Errorf("%s: %v", tt.doc, err)
		case tt.path != "-" && !errors.As(err, &se):
			t.Errorf("%s: no error", tt.doc)
		case tt.path != "-" && se.Path != tt.path:
			t.Errorf("%s: path %q, want %q (%v)", tt.doc, se.Path, tt.path, err)
		case tt.path != "-" && tt.path != "" && err.Error() != tt.path+": "+se.Message:
			t.Errorf("%s: error %q is not the path once and the message", tt.doc, err)
		}
	}
}

// FuzzStrictJSON checks the strict decoder's extra checks against
// references on arbitrary valid UTF-8 JSON: it reports a duplicate key exactly
// when encoding/json's tokens show one, and a surrogate problem only when
// the document has a surrogate escape; and it never panics on anything.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"a":{"b":1},"b":{"b":1}}`, `{"\u0061":1,"a":1}`, `["\ud800"]`, `"\ud83d\ude00"`,
		`{"s":"\\ud800"}`, `[[[{"x":[{"y":1,"y":2}]}]]]`, `{"":1,"":2}`, `{"a":"\"","b":"\\"}`, `1e5`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := checkStrictJSON(doc)               // any input: must not panic
		if !json.Valid(doc) || !utf8.Valid(doc) { // decodeJSON checks both first
			return
		}
		var se *strictJSONError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("error of another type: %v", err)
		}
		dupRef := refDuplicateKey(doc)
		hasSurrogate := surrogateEscape.Match(doc)
		switch {
		case err == nil && dupRef:
			t.Fatalf("duplicate key not reported in %q", doc)
		case err != nil && strings.Contains(se.Message, "duplicate key") && !dupRef:
			t.Fatalf("duplicate key reported in %q: %v", doc, err)
		case err != nil && strings.Contains(se.Message, "surrogate") && !hasSurrogate:
			t.Fatalf("surrogate reported in %q: %v", doc, err)
		}
		if err == nil && hasSurrogate {
			// Every surrogate escape must then be part of a pair: decoding
			// yields no U+FFFD the document does not spell itself.
			var v any
			_ = json.Unmarshal(doc, &v)
			b, _ := json.Marshal(v)
			if bytes.Contains(b, []byte("\ufffd")) && !bytes.Contains(doc, []byte("\ufffd")) && !regexp.MustCompile(`(?i)\\ufffd`).Match(doc) {
				t.Fatalf("unpaired surrogate let through in %q", doc)
			}
		}
	})
}
