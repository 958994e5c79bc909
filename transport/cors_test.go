package transport

import (
	"net/http"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{cors: []string{"https://dash.example"}})
	pre := f.do("OPTIONS", "/api/v1/operations", "", nil, "Origin", "https://dash.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	if pre.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials must never be allowed")
	}
	resp := f.do("GET", "/api/v1/status", "reader", nil, "Origin", "https://dash.example")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Errorf("actual request: %d %v", resp.StatusCode, resp.Header)
	}
	other := f.do("GET", "/api/v1/status", "reader", nil, "Origin", "https://evil.example")
	if other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("another origin got CORS headers")
	}
	// Without configured origins there are no CORS headers at all.
	plain := newFixture(t, fixtureOpts{})
	if h := plain.do("GET", "/livez", "", nil, "Origin", "https://dash.example").Header.Get("Access-Control-Allow-Origin"); h != "" {
		t.Errorf("CORS header without configuration: %q", h)
	}
}
