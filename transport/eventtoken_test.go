package transport

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// tokenKeyID is the key ID inside an event token (the test reads it to
// mint variants).
func tokenKeyID(t *testing.T, f *fixture, token, opID string) string {
	t.Helper()
	tok, ok := f.api.verifyEventToken(token, opID, time.Now())
	if !ok {
		t.Fatalf("token %q does not verify", token)
	}
	return tok.keyID
}

// openStream opens an event stream and reads its first bytes (the retry
// line), so that the stream is known to be open; the caller reads on.
func openStream(t *testing.T, f *fixture, path string) *http.Response {
	t.Helper()
	resp := f.do("GET", path, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d %s", resp.StatusCode, readBody(resp))
	}
	t.Cleanup(func() { resp.Body.Close() })
	buf := make([]byte, len("retry: 2000\n\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatalf("stream start: %v", err)
	}
	return resp
}

// endsWithin reports whether the stream's body ends (EOF or error) within d.
func endsWithin(resp *http.Response, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		resp.Body.Close()
		<-done
		return false
	}
}

// TestEventTokenDiesWithItsKey: an event token carries the key that minted
// it; revoking that key refuses the token at once and ends the stream open
// with it within EventTokenRecheck; and one token holds one stream at a
// time (a replay replaces the earlier stream rather than adding one).
func TestEventTokenDiesWithItsKey(t *testing.T) {
	t.Parallel()
	const recheck = 100 * time.Millisecond
	f := newFixture(t, fixtureOpts{tokenRecheck: recheck, heartbeat: time.Hour})
	t.Cleanup(func() { close(f.release) })
	op := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"block"}`))
	if !strings.Contains(op.Links.Events, "?token=") {
		t.Fatalf("no token in %q", op.Links.Events)
	}

	first := openStream(t, f, op.Links.Events)
	second := openStream(t, f, op.Links.Events)
	if !endsWithin(first, 5*time.Second) {
		t.Error("a second stream with the same token left the first one open")
	}

	// Tokens minted by the admin for the writer's operation work too, and
	// carry the admin's key.
	viaAdmin := decode[OperationView](t, f.do("GET", op.Links.Self, "admin", nil))
	adminStream := openStream(t, f, viaAdmin.Links.Events)

	token := strings.TrimPrefix(op.Links.Events, op.Links.Self+"/events?token=")
	if _, err := f.store.Revoke(context.Background(), tokenKeyID(t, f, token, op.OperationID)); err != nil {
		t.Fatal(err)
	}
	if !endsWithin(second, 5*time.Second) {
		t.Error("the stream stayed open after its token's key was revoked")
	}
	wantError(t, f.do("GET", op.Links.Events, "", nil), 401, CodeAuthenticationFailed)
	if endsWithin(adminStream, 3*recheck) {
		t.Error("revoking the writer's key ended the admin's token stream")
	}
}

// TestEventTokenPayloadNamesItsKey: a token whose key field was emptied or
// changed fails its signature; and one well signed but naming an unknown key
// is refused.
func TestEventTokenPayloadNamesItsKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{})
	op := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"echo"}`))
	token := strings.TrimPrefix(op.Links.Events, op.Links.Self+"/events?token=")
	p64, sig, _ := strings.Cut(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(p64)
	must(t, err)
	parts := strings.Split(string(payload), "\n")
	if len(parts) != 4 || parts[2] == "" {
		t.Fatalf("payload %q", payload)
	}
	parts[2] = "key_000000000000"
	forged := base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\n"))) + "." + sig
	wantError(t, f.do("GET", op.Links.Self+"/events?token="+forged, "", nil), 401, CodeAuthenticationFailed)
	signed := f.api.mintEventToken(op.OperationID, "writer", "key_000000000000", time.Now().Add(time.Minute))
	wantError(t, f.do("GET", op.Links.Self+"/events?token="+signed, "", nil), 401, CodeAuthenticationFailed)
}
