package auth_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/atgraph/atg/auth"
)

// A dev server with one key: the middleware authenticates the request and
// the handler reads the caller's identity; a request without a key gets the
// standard 401 body.
func Example() {
	ctx := context.Background()

	// Create a key; the store keeps only its digest. Print the key once to
	// hand it to the client (not done here, to keep the output stable).
	store := auth.NewMemoryStore()
	key, rec, err := store.Create(ctx, auth.CreateOptions{ClientID: "example-client", Environment: auth.Dev})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", auth.Redact(key), "for", rec.ClientID, "scopes", auth.FormatScopes(rec.Scopes))

	authn, err := auth.NewAuthenticator(store, auth.Dev)
	if err != nil {
		log.Fatal(err)
	}
	mw := &auth.Middleware{Authenticator: authn, Logger: slog.New(slog.DiscardHandler)}
	handler := mw.Wrap(auth.RequireScope(auth.ScopeRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.IdentityFrom(r.Context())
		fmt.Fprintf(w, "hello %s (%s)", id.ClientID, id.Environment)
	})))

	req := httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	rr := httptest.NewRecorder()
	handler.ServeHTTP(rr, req)
	fmt.Println(rr.Code, rr.Body.String())

	req = httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
	req.Header.Set("X-Request-ID", "req-1")
	rr = httptest.NewRecorder()
	handler.ServeHTTP(rr, req)
	fmt.Println(rr.Code, rr.Body.String())

	// Output:
	// created atg_dev_*** for example-client scopes read,write
	// 200 hello example-client (dev)
	// 401 {"error":{"code":"AUTHENTICATION_FAILED","message":"Invalid or missing API key","request_id":"req-1"}}
}

// ParseKey reports the first rule a key breaks.
func ExampleParseKey() {
	_, err := auth.ParseKey("atg_prod_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	fmt.Println(err)
	env, err := auth.ParseKey("atg_integration_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	fmt.Println(env, err)
	// Output:
	// invalid format: unsupported environment 'prod'; expected dev, integration or production
	// integration <nil>
}
