package transport

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atgraph/atg/auth"
)

// Event tokens let a browser's EventSource, which cannot send an
// Authorization header, follow one operation's events. A token is
// base64url("<operation id>\n<owner client id>\n<minting key id>\n<unix expiry>")
// + "." + base64url(HMAC-SHA256 of that payload under a key generated at
// startup), both unpadded. It is valid for EventTokenTTL, for that one
// stream only, and only while the key that minted it still authenticates
// (Options.CheckKey): revoking or expiring the key (and, for a keys file,
// reloading it) ends the token, and any stream open with it within
// EventTokenRecheck. API keys never go into URLs.
//
// A token is not single-use, on purpose: EventSource reconnects with the
// same URL (resuming with Last-Event-ID) whenever a stream breaks, and the
// server itself ends streams of lagging watchers so that they resume; a
// single-use token would turn every such reconnect into a permanent 401.
// Instead, one token holds at most one open stream: opening a second ends
// the first, so a replayed token cannot multiply connections.

// DefaultEventTokenRecheck is the default of Options.EventTokenRecheck.
const DefaultEventTokenRecheck = 5 * time.Second

func (a *API) mintEventToken(opID, clientID, keyID string, expires time.Time) string {
	payload := opID + "\n" + clientID + "\n" + keyID + "\n" + strconv.FormatInt(expires.Unix(), 10)
	mac := hmac.New(sha256.New, a.tokenKey)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// eventToken is what a verified token says.
type eventToken struct {
	clientID, keyID string
	mac             string // the signature, which names the token
}

// verifyEventToken returns what the token says if it is authentic,
// unexpired and for operation opID.
func (a *API) verifyEventToken(token, opID string, now time.Time) (eventToken, bool) {
	p64, m64, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return eventToken{}, false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sum, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil {
		return eventToken{}, false
	}
	mac := hmac.New(sha256.New, a.tokenKey)
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return eventToken{}, false
	}
	parts := strings.Split(string(payload), "\n")
	if len(parts) != 4 || parts[0] != opID || parts[2] == "" {
		return eventToken{}, false
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || now.Unix() > exp {
		return eventToken{}, false
	}
	return eventToken{clientID: parts[1], keyID: parts[2], mac: m64}, true
}

// checkTokenKey reports whether the key that minted tok still
// authenticates and may follow the owner's operation (it is the owner's
// key or an admin key), with the reason when not.
func (a *API) checkTokenKey(ctx context.Context, tok eventToken) (string, bool) {
	if a.opts.CheckKey == nil {
		return "", true
	}
	id, err := a.opts.CheckKey(ctx, tok.keyID)
	switch {
	case err != nil:
		return auth.FailureReason(err), false
	case !id.Has(auth.ScopeRead):
		return "scope", false
	case id.ClientID != tok.clientID && !id.Has(auth.ScopeAdmin):
		return "client", false
	}
	return "", true
}

// tokenStreams holds the one open stream of each event token.
type tokenStreams struct {
	mu   sync.Mutex
	open map[string]*tokenStream
}

type tokenStream struct{ cancel context.CancelFunc }

// claim makes s the stream of token mac, ending the one it replaces.
func (t *tokenStreams) claim(mac string, s *tokenStream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.open[mac]; old != nil {
		old.cancel()
	}
	t.open[mac] = s
}

// release forgets s, unless a newer stream has replaced it.
func (t *tokenStreams) release(mac string, s *tokenStream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open[mac] == s {
		delete(t.open, mac)
	}
}

// eventsAuth authenticates an events request by its token query parameter
// when present, else by API key with Options.Authenticate. A refused token
// (forged, expired, for another operation, or minted by a key that no
// longer authenticates) fails like a bad key, through Options.Authenticate
// itself: the request goes on to it without its Authorization header, so
// the failure gets the same log line, failure hook (the audit record,
// Server.OnAuthFailure), WWW-Authenticate and 401, with the reason
// "missing credentials" (an event token is not an API key). An accepted
// token's stream replaces any earlier stream of the same token and ends
// when its key stops authenticating.
func (a *API) eventsAuth(next http.Handler) http.Handler {
	byKey := a.opts.Authenticate(next)
	// An authenticator that let a request without credentials through
	// would reach this handler, which refuses it anyway.
	refuse := a.opts.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		WriteError(w, CodeAuthenticationFailed, auth.MessageAuthenticationFailed, nil)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		if token == "" {
			byKey.ServeHTTP(w, r)
			return
		}
		tok, ok := a.verifyEventToken(token, r.PathValue("id"), time.Now())
		reason := "invalid"
		if ok {
			reason, ok = a.checkTokenKey(r.Context(), tok)
		}
		if !ok {
			attrs := []any{"request_id", RequestIDFrom(r.Context()), "path", r.URL.Path, "reason", reason}
			if tok.keyID != "" {
				attrs = append(attrs, "key_id", tok.keyID)
			}
			a.log.Info("event token refused", attrs...)
			r = r.Clone(r.Context())
			r.Header.Del("Authorization")
			refuse.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		s := &tokenStream{cancel: cancel}
		a.tokenStreams.claim(tok.mac, s)
		defer a.tokenStreams.release(tok.mac, s)
		if a.opts.CheckKey != nil {
			go a.watchTokenKey(ctx, cancel, tok)
		}
		// The token was minted for this operation's owner: the usual
		// visibility check lets the stream through, and nothing else.
		next.ServeHTTP(w, r.WithContext(auth.WithIdentity(ctx, auth.Identity{
			KeyID: tok.keyID, ClientID: tok.clientID, Environment: auth.Environment(a.opts.Environment),
			Scopes: []auth.Scope{auth.ScopeRead},
		})))
	})
}

// watchTokenKey ends a token's stream (cancel) once the key that minted it
// stops authenticating, checking every EventTokenRecheck until ctx ends.
func (a *API) watchTokenKey(ctx context.Context, cancel context.CancelFunc, tok eventToken) {
	t := time.NewTicker(a.opts.EventTokenRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if reason, ok := a.checkTokenKey(ctx, tok); !ok && ctx.Err() == nil {
				a.log.Info("event stream ended: its token's key no longer authenticates", "key_id", tok.keyID, "reason", reason)
				cancel()
				return
			}
		}
	}
}
