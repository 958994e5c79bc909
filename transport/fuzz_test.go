package transport

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzBody runs body through decodeJSON into v as a handler would and
// checks the outcome is either accepted or one of the documented client
// errors in the envelope, never a panic or a 5xx.
func fuzzBody(t *testing.T, body []byte, v any) bool {
	r := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	w.Header().Set(HeaderRequestID, "fuzz")
	if decodeJSON(w, r, 1<<16, v) {
		if w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Fatalf("accepted but wrote a response: %d %s", w.Code, w.Body)
		}
		return true
	}
	switch w.Code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
	default:
		t.Fatalf("status %d for %q", w.Code, body)
	}
	var env struct {
		Error *Error `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Error == nil || env.Error.RequestID != "fuzz" || env.Error.Message == "" {
		t.Fatalf("not an error envelope: %s", w.Body)
	}
	return false
}

// FuzzQueryRequestBody feeds arbitrary bodies to the query endpoint's
// decoding and validation (everything before the database).
func FuzzQueryRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"query":"RETURN $x","parameters":{"x":[1,2.5,"a",{"b":null}]},"mode":"write","timeout_ms":100}`,
		`{"query":""}`, `{"query":"x","paramters":{}}`, `{"query":"x","parameters":{"n":1e400}}`,
		`{"query":"x","timeout_ms":-1}`, `{"query":"x"}{}`, `[]`, `null`, `{"query":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req QueryRequest
		if !fuzzBody(t, body, &req) {
			return
		}
		pq, verr := prepareQuery(req)
		if verr != nil {
			if verr.Code != CodeValidation || verr.Status != http.StatusBadRequest || verr.Details["field"] == nil {
				t.Fatalf("validation error %+v", verr)
			}
			return
		}
		if strings.TrimSpace(req.Query) == "" || pq.timeout <= 0 || len(pq.params) != len(req.Parameters) {
			t.Fatalf("accepted %+v as %+v", req, pq)
		}
	})
}

// FuzzSubmitRequestBody feeds arbitrary bodies to the submit endpoint's
// decoding.
func FuzzSubmitRequestBody(f *testing.F) {
	for _, s := range []string{
		`{"type":"import","params":{"nodes":[{"id":"a","labels":["X"]}]}}`,
		`{"type":"","params":null}`, `{"type":"x","params":[1]}`, `{"type":"x","extra":1}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req SubmitRequest
		if !fuzzBody(t, body, &req) {
			return
		}
		if len(req.Params) > 0 && !json.Valid(req.Params) {
			t.Fatalf("accepted invalid params JSON %q", req.Params)
		}
	})
}
