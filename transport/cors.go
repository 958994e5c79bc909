package transport

import (
	"net/http"
	"strings"
)

// CORS lets browser pages on other origins call the API: Options.CORSOrigins
// lists the allowed origins ("*" allows any). Credentials (cookies) are
// never allowed — the API authenticates by bearer key or, for event
// streams, by the token in links.events, so a page can follow an
// operation with EventSource.
const (
	corsAllowMethods  = "GET, POST, DELETE, OPTIONS"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-ID"
	corsExposeHeaders = "X-Request-ID, Location, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Policy, Idempotent-Replayed"
)

// corsAllowed reports whether origin may call the API.
func (a *API) corsAllowed(origin string) bool {
	for _, o := range a.opts.CORSOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// cors answers preflight requests from allowed origins (204) and adds the
// CORS response headers to their actual requests. Requests without an
// Origin header, or from other origins, pass through unchanged (the browser
// then blocks the page from reading the response).
func (a *API) cors(next http.Handler) http.Handler {
	if len(a.opts.CORSOrigins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !a.corsAllowed(origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
