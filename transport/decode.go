package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// decodeJSON reads a JSON request body into v, strictly:
//
//   - the media type must be application/json or */*+json, with no charset
//     parameter or charset=utf-8 (415 otherwise);
//   - the body is at most limit bytes (413);
//   - it must be valid UTF-8, hold exactly one JSON value, no unknown
//     field, no key twice in one object (at any depth) and no unpaired
//     surrogate escape (400, naming the field).
//
// It writes the error response itself and reports false when the request
// must not go on.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if e := checkJSONMediaType(r.Header.Get("Content-Type")); e != nil {
		writeAPIError(w, e)
		return false
	}
	if r.ContentLength > limit {
		WriteError(w, CodePayloadTooLarge, fmt.Sprintf("request body is larger than the %d-byte limit", limit), nil)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		writeBodyReadError(w, err, limit)
		return false
	}
	if i := invalidUTF8At(body); i >= 0 {
		WriteError(w, CodeValidation, fmt.Sprintf("request body is not valid UTF-8 (at byte %d)", i), nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		writeDecodeError(w, err)
		return false
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		WriteError(w, CodeValidation, "request body must hold exactly one JSON object", nil)
		return false
	}
	var se *strictJSONError
	if err := checkStrictJSON(body); errors.As(err, &se) {
		details := map[string]any{}
		if se.Path != "" {
			details["field"] = se.Path
		}
		WriteError(w, CodeValidation, "request body: "+se.Error(), details)
		return false
	}
	return true
}

// checkJSONMediaType accepts application/json and */*+json with no charset
// or charset=utf-8 (RFC 8259: JSON exchanged between systems is UTF-8).
func checkJSONMediaType(ct string) *Error {
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return newError(CodeUnsupportedMedia, "request body must be JSON (Content-Type: application/json)", nil)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return newError(CodeUnsupportedMedia, fmt.Sprintf("request body must be UTF-8 JSON: charset %q is not supported (omit it or send charset=utf-8)", cs),
			map[string]any{"charset": cs})
	}
	return nil
}

// invalidUTF8At returns the offset of the first byte of b that is not
// part of valid UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// writeBodyReadError answers a body that could not be read: too large
// (413), stalled past the idle timeout (408), or cut off (400).
func writeBodyReadError(w http.ResponseWriter, err error, limit int64) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		WriteError(w, CodePayloadTooLarge, fmt.Sprintf("request body is larger than the %d-byte limit", limit), nil)
	case errors.Is(err, ErrBodyIdle):
		var be *bodyIdleError
		errors.As(err, &be)
		w.Header().Set("Connection", "close")
		WriteError(w, CodeRequestTimeout, fmt.Sprintf("request body stalled: no bytes arrived for %s", be.idle), nil)
	default:
		WriteError(w, CodeValidation, "request body could not be read", nil)
	}
}

func writeDecodeError(w http.ResponseWriter, err error) {
	var (
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		WriteError(w, CodeValidation, "request body is required", nil)
	case errors.Is(err, io.ErrUnexpectedEOF):
		WriteError(w, CodeValidation, "request body is truncated JSON", nil)
	case errors.As(err, &se):
		WriteError(w, CodeValidation, fmt.Sprintf("request body is not valid JSON (at byte %d)", se.Offset), nil)
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			field = "body"
		}
		WriteError(w, CodeValidation, typeErrorMessage(field, ute), map[string]any{"field": field})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		WriteError(w, CodeValidation, fmt.Sprintf("unknown field %q", field), map[string]any{"field": field})
	default:
		WriteError(w, CodeValidation, "request body could not be decoded", nil)
	}
}

// typeErrorMessage explains a JSON value of the wrong type or out of the
// range of the field it was meant for. encoding/json's Value is the JSON
// kind ("string", "object", …) or, for numbers, "number <literal>".
func typeErrorMessage(field string, ute *json.UnmarshalTypeError) string {
	want := jsonKind(ute.Type.Kind().String())
	got, literal, _ := strings.Cut(ute.Value, " ")
	if got == "number" && want == "a number" {
		literal = truncate(literal, 40)
		switch ute.Type.Kind().String() {
		case "float32", "float64":
			return fmt.Sprintf("%s must be a number within range, not %s", field, literal)
		}
		return fmt.Sprintf("%s must be an integer within its range, written in digits only (no fraction or exponent), not %s", field, literal)
	}
	return fmt.Sprintf("%s must be %s, not %s", field, want, jsonArticle(got))
}

// jsonArticle names a JSON kind as encoding/json reports it, with its
// article.
func jsonArticle(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "a boolean"
	case "array":
		return "an array"
	case "object":
		return "an object"
	case "null":
		return "null"
	}
	return kind
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return "of another type"
}
