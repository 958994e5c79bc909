package atg

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawCall sends body (raw bytes, not re-encoded) with the given
// Content-Type and extra headers, and returns the status and the decoded
// error envelope or result.
func rawCall(t *testing.T, srv *Server, method, path, key, contentType, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestStrictInput replays issue 9's lenient-input attacks against a real
// server and Neo4j: each must be refused in the JSON error envelope with
// the right status, code and field, and the near misses must still work.
func TestStrictInput(t *testing.T) {
	t.Parallel()
	srv, key, _ := testServer(t, nil)
	const js = "application/json"
	longPath := "/api/v1/operations/" + strings.Repeat("a", 100<<10)
	tests := []struct {
		name, method, path, ct, body string
		hdr                          []string
		status                       int
		code, field                  string
		msgHas, msgLacks             string
	}{
		{name: "invalid UTF-8 in query text", method: "POST", path: "/api/v1/query", ct: js,
			body: "{\"query\":\"RETURN '\xff\xfe' AS x\"}", status: 400, code: "VALIDATION_ERROR", msgHas: "not valid UTF-8"},
		{name: "invalid UTF-8 in an import node id", method: "POST", path: "/api/v1/operations", ct: js,
			body: "{\"type\":\"import\",\"params\":{\"nodes\":[{\"id\":\"a\xc3\",\"labels\":[\"StrictX\"]}]}}", status: 400, code: "VALIDATION_ERROR", msgHas: "not valid UTF-8"},
		{name: "unpaired surrogate escape in query text", method: "POST", path: "/api/v1/query", ct: js,
			body: `{"query":"RETURN '\ud800' AS x"}`, status: 400, code: "VALIDATION_ERROR", field: "query", msgHas: "surrogate"},
		{name: "invalid UTF-8 in an operation id", method: "GET", path: "/api/v1/operations/op-%FF%FE",
			status: 400, code: "VALIDATION_ERROR", field: "path", msgHas: "UTF-8"},
		{name: "invalid UTF-8 in a list filter", method: "GET", path: "/api/v1/operations?type=%C3",
			status: 400, code: "VALIDATION_ERROR", field: "type", msgHas: "UTF-8"},
		{name: "query parameter twice", method: "GET", path: "/api/v1/operations?limit=5&limit=500",
			status: 400, code: "VALIDATION_ERROR", field: "limit", msgHas: "given 2 times"},
		{name: "Idempotency-Key twice", method: "POST", path: "/api/v1/operations", ct: js, body: `{"type":"import","params":{}}`,
			hdr: []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, status: 400, code: "VALIDATION_ERROR", field: "Idempotency-Key"},
		{name: "duplicate top-level key", method: "POST", path: "/api/v1/query", ct: js,
			body: `{"query":"RETURN 1","mode":"read","mode":"write"}`, status: 400, code: "VALIDATION_ERROR", field: "mode", msgHas: "mode: duplicate key"},
		{name: "duplicate key spelt with an escape", method: "POST", path: "/api/v1/query", ct: js,
			body: `{"query":"RETURN 1","mo\u0064e":"read","mode":"read"}`, status: 400, code: "VALIDATION_ERROR", field: "mode"},
		{name: "duplicate key deep in parameters", method: "POST", path: "/api/v1/query", ct: js,
			body: `{"query":"RETURN $p","parameters":{"p":[{"a":1},{"a":1,"a":2}]}}`, status: 400, code: "VALIDATION_ERROR", field: "parameters.p[1].a"},
		{name: "duplicate key in import properties", method: "POST", path: "/api/v1/operations", ct: js,
			body:   `{"type":"import","params":{"nodes":[{"id":"a","labels":["StrictX"],"properties":{"k":1,"k":2}}]}}`,
			status: 400, code: "VALIDATION_ERROR", field: "params.nodes[0].properties.k"},
		{name: "integer beyond 64 bits", method: "POST", path: "/api/v1/query", ct: js,
			body: `{"query":"RETURN $n AS n","parameters":{"n":123456789012345678901234567890}}`, status: 400, code: "VALIDATION_ERROR", field: "parameters.n", msgHas: "64-bit"},
		{name: "negative integer beyond 64 bits", method: "POST", path: "/api/v1/query", ct: js,
			body: `{"query":"RETURN $n AS n","parameters":{"n":[-9223372036854775809]}}`, status: 400, code: "VALIDATION_ERROR", field: "parameters.n", msgHas: "64-bit"},
		{name: "import property integer beyond 64 bits", method: "POST", path: "/api/v1/operations", ct: js,
			body:   `{"type":"import","params":{"nodes":[{"id":"a","labels":["StrictX"],"properties":{"n":[1,18446744073709551616]}}]}}`,
			status: 400, code: "VALIDATION_ERROR", field: "params.nodes[0].properties.n", msgHas: "64-bit"},
		{name: "charset latin1", method: "POST", path: "/api/v1/query", ct: "application/json; charset=latin1",
			body: `{"query":"RETURN 1"}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE", msgHas: "latin1"},
		{name: "100 KB URL", method: "GET", path: longPath, status: 431, code: "HEADERS_TOO_LARGE"},
		{name: "200 KB of headers", method: "GET", path: "/api/v1/operations", hdr: []string{"X-Pad", strings.Repeat("p", 200<<10)},
			status: 431, code: "HEADERS_TOO_LARGE"},
		{name: "2 MB of headers, past net/http's own limit", method: "GET", path: "/api/v1/operations", hdr: []string{"X-Pad", strings.Repeat("p", 2<<20)},
			status: 431, code: "HEADERS_TOO_LARGE"},
		{name: "timeout_ms 1e99", method: "POST", path: "/api/v1/query", ct: js,
			body: `{"query":"RETURN 1","timeout_ms":1e99}`, status: 400, code: "VALIDATION_ERROR", field: "timeout_ms", msgHas: "1e99", msgLacks: "not number"},
		{name: "timeout_ms as a string", method: "POST", path: "/api/v1/query", ct: js,
			body: `{"query":"RETURN 1","timeout_ms":"5"}`, status: 400, code: "VALIDATION_ERROR", field: "timeout_ms", msgHas: "must be a number, not a string"},
		{name: "field path printed once", method: "POST", path: "/api/v1/operations", ct: js,
			body: `{"type":"import","params":{"nodes":[{"id":"a","labels":["bad label"]}]}}`, status: 400, code: "VALIDATION_ERROR",
			field: "params.nodes[0].labels[0]", msgLacks: "nodes[0].labels[0]: nodes[0].labels[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, h, body := rawCall(t, srv, tt.method, tt.path, key, tt.ct, tt.body, tt.hdr...)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %.300s", status, tt.status, body)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want the JSON envelope: %.300s", ct, body)
			}
			var env struct {
				Error struct {
					Code, Message, RequestID string
					Details                  map[string]any
				}
			}
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("not the envelope: %v: %.300s", err, body)
			}
			e := env.Error
			if e.Code != tt.code {
				t.Errorf("code %q, want %q (%s)", e.Code, tt.code, e.Message)
			}
			if tt.field != "" && e.Details["field"] != tt.field {
				t.Errorf("details.field %v, want %q (%s)", e.Details["field"], tt.field, e.Message)
			}
			if !strings.Contains(e.Message, tt.msgHas) {
				t.Errorf("message %q lacks %q", e.Message, tt.msgHas)
			}
			if tt.msgLacks != "" && strings.Contains(e.Message, tt.msgLacks) {
				t.Errorf("message %q has %q", e.Message, tt.msgLacks)
			}
		})
	}

	// net/http's own 400 for a request it cannot parse comes in the
	// envelope too.
	t.Run("no Host header", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /livez HTTP/1.1\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		var env struct {
			Error struct {
				Code      string `json:"code"`
				Message   string `json:"message"`
				RequestID string `json:"request_id"`
			}
		}
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &env) != nil ||
			env.Error.Code != "VALIDATION_ERROR" || !strings.Contains(env.Error.Message, "Host") || env.Error.RequestID == "" ||
			resp.Header.Get("X-Request-ID") != env.Error.RequestID {
			t.Errorf("%d %v: %s", resp.StatusCode, resp.Header, b)
		}
	})

	// Near misses still work: the same key in two objects, charset=utf-8,
	// the 64-bit extremes exactly.
	allowed := []struct{ name, ct, body, want string }{
		{"same key in sibling objects", "application/json", `{"query":"RETURN $a.x + $b.x AS n","parameters":{"a":{"x":1},"b":{"x":2}}}`, `[[3]]`},
		{"charset utf-8", "application/json; charset=UTF-8", `{"query":"RETURN 'é' AS s"}`, `[["é"]]`},
		{"surrogate pair", "application/json", `{"query":"RETURN '\ud83d\ude00' AS s"}`, `[["😀"]]`},
		{"64-bit extremes", "application/json", `{"query":"RETURN $a AS a, $b AS b","parameters":{"a":9223372036854775807,"b":-9223372036854775808}}`,
			`[[9223372036854775807,-9223372036854775808]]`},
		{"large float literal", "application/json", `{"query":"RETURN $f AS f","parameters":{"f":1e30}}`, `[[1e+30]]`},
	}
	for _, tt := range allowed {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, _, body := rawCall(t, srv, "POST", "/api/v1/query", key, tt.ct, tt.body)
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			var resp struct{ Rows json.RawMessage }
			if err := json.Unmarshal(body, &resp); err != nil || string(resp.Rows) != tt.want {
				t.Errorf("rows %s, want %s (%v)", resp.Rows, tt.want, err)
			}
		})
	}
}

// TestEnvelopeReplyRewritesOnlyNetHTTPErrors: the plain-HTTP connection
// wrapper leaves every ordinary response alone, including one that looks
// like net/http's error replies but carries a Date header, and 501s.
func TestEnvelopeReplyRewritesOnlyNetHTTPErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"HTTP/1.1 431 Request Header Fields Too Large" + goErrorHeaders + "431 Request Header Fields Too Large", true},
		{"HTTP/1.1 400 Bad Request" + goErrorHeaders + "400 Bad Request", true},
		{"HTTP/1.1 400 Bad Request: missing required Host header" + goErrorHeaders + "400 Bad Request: missing required Host header", true},
		{"HTTP/1.1 501 Not Implemented" + goErrorHeaders + "Unsupported transfer encoding", false},
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nDate: Thu, 03 Dec 2026 16:00:00 GMT\r\n\r\n400 Bad Request", false},
		{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: x\r\n\r\n{}", false},
		{`{"rows":[["HTTP/1.1 431 Request Header Fields Too Large` + goErrorHeaders + `"]]}`, false},
		{"HTTP/1.1 ", false},
	} {
		out, ok := envelopeReply([]byte(tt.in))
		if ok != tt.want {
			t.Errorf("%q: rewritten %v, want %v", tt.in, ok, tt.want)
		}
		if ok && !strings.Contains(string(out), "Content-Type: application/json\r\n") {
			t.Errorf("%q became %q", tt.in, out)
		}
	}
}
