package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// decodeJSON reads a JSON request body into v: the media type must be
// application/json (415 otherwise), the body at most limit bytes (413),
// unknown fields are rejected naming the field and trailing data is an
// error (400). It writes the error response itself and reports false when
// the request must not go on.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		WriteError(w, CodeUnsupportedMedia, "request body must be JSON (Content-Type: application/json)", nil)
		return false
	}
	if r.ContentLength > limit {
		WriteError(w, CodePayloadTooLarge, fmt.Sprintf("request body is larger than the %d-byte limit", limit), nil)
		return false
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		writeDecodeError(w, err, limit)
		return false
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeDecodeError(w, err, limit)
			return false
		}
		WriteError(w, CodeValidation, "request body must hold exactly one JSON object", nil)
		return false
	}
	return true
}

func writeDecodeError(w http.ResponseWriter, err error, limit int64) {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		WriteError(w, CodePayloadTooLarge, fmt.Sprintf("request body is larger than the %d-byte limit", limit), nil)
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
		WriteError(w, CodeValidation, fmt.Sprintf("%s must be %s, not %s", field, jsonKind(ute.Type.Kind().String()), ute.Value), map[string]any{"field": field})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		WriteError(w, CodeValidation, fmt.Sprintf("unknown field %q", field), map[string]any{"field": field})
	default:
		WriteError(w, CodeValidation, "request body could not be decoded", nil)
	}
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
