package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// The life of a key in a MemoryStore: create, authenticate, rotate with a
// grace period (both keys work until it ends), revoke. Now is fixed here
// to show expiry; leave it nil in real use.
func ExampleMemoryStore() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := &auth.MemoryStore{Now: func() time.Time { return now }}

	oldKey, rec, err := store.Create(ctx, auth.CreateOptions{ClientID: "alice", Environment: auth.Dev,
		Scopes: []auth.Scope{auth.ScopeRead}, TTL: 30 * 24 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created", auth.Redact(oldKey), rec.ClientID, auth.FormatScopes(rec.Scopes), "expires", rec.ExpiresAt.Format(time.DateOnly))

	who, err := store.Authenticate(ctx, oldKey)
	fmt.Println("authenticate:", who.ClientID, err)

	// Rotate: a new key for the same client; the old one works 24h more.
	newKey, newRec, err := store.Rotate(ctx, rec.ID, 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rotated: new key expires", newRec.ExpiresAt.Format(time.DateOnly))
	_, errOld := store.Authenticate(ctx, oldKey)
	_, errNew := store.Authenticate(ctx, newKey)
	fmt.Println("during the grace period: old", errOld, "new", errNew)

	now = now.Add(25 * time.Hour)
	_, errOld = store.Authenticate(ctx, oldKey)
	fmt.Println("after it:", errors.Is(errOld, auth.ErrExpired))

	if _, err := store.Revoke(ctx, newRec.ID); err != nil {
		log.Fatal(err)
	}
	_, errNew = store.Authenticate(ctx, newKey)
	fmt.Println("revoked:", errors.Is(errNew, auth.ErrRevoked))

	recs, _ := store.List(ctx)
	for _, r := range recs {
		fmt.Println(r.ClientID, r.Status(now))
	}
	// Output:
	// created atg_dev_*** alice read expires 2026-03-31
	// authenticate: alice <nil>
	// rotated: new key expires 2026-03-31
	// during the grace period: old <nil> new <nil>
	// after it: true
	// revoked: true
	// alice expired
	// alice revoked
}

// A FileStore keeps hashed key records in a JSON file (ATG_KEYS_FILE) that
// `atg-server keys` and running servers share; the key itself is never
// written. Any KeyStore can back an Authenticator.
func ExampleFileStore() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "atg-keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys.json")

	fs, err := auth.OpenFileStore(ctx, path, auth.FileStoreOptions{}) // a missing file is an empty store
	if err != nil {
		log.Fatal(err)
	}
	key, _, err := fs.Create(ctx, auth.CreateOptions{ClientID: "ci-pipeline", Environment: auth.Integration})
	if err != nil {
		log.Fatal(err)
	}
	if err := fs.Close(); err != nil {
		log.Fatal(err)
	}

	data, _ := os.ReadFile(path)
	fmt.Println("file holds the key:", strings.Contains(string(data), key))

	// Another process (a server) opens the same file.
	server, err := auth.OpenFileStore(ctx, path, auth.FileStoreOptions{FlushInterval: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close() // stops the flusher, writes pending last_used_at
	authn, err := auth.NewAuthenticator(server, auth.Integration)
	if err != nil {
		log.Fatal(err)
	}
	id, err := authn.Authenticate(ctx, key)
	fmt.Println(id.ClientID, id.Environment, auth.FormatScopes(id.Scopes), err)

	devKey, _ := auth.Generate(auth.Dev)
	_, err = authn.Authenticate(ctx, devKey)
	fmt.Println(errors.Is(err, auth.ErrWrongEnvironment))
	// Output:
	// file holds the key: false
	// ci-pipeline integration read,write <nil>
	// true
}
