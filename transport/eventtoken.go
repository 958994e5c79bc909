package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/atgraph/atg/auth"
)

// Event tokens let a browser's EventSource, which cannot send an
// Authorization header, follow one operation's events. A token is
// base64url("<operation id>\n<client id>\n<unix expiry>") + "." +
// base64url(HMAC-SHA256 of that payload under a key generated at startup),
// both unpadded. It is valid for EventTokenTTL and for that one stream
// only. API keys never go into URLs.

// eventTokenKeyID is the KeyID of identities that come from event tokens.
const eventTokenKeyID = "event-token"

func (a *API) mintEventToken(opID, clientID string, expires time.Time) string {
	payload := opID + "\n" + clientID + "\n" + strconv.FormatInt(expires.Unix(), 10)
	mac := hmac.New(sha256.New, a.tokenKey)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// verifyEventToken returns the client ID the token was minted for if it is
// authentic, unexpired and for operation opID.
func (a *API) verifyEventToken(token, opID string, now time.Time) (string, bool) {
	p64, m64, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return "", false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sum, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil {
		return "", false
	}
	mac := hmac.New(sha256.New, a.tokenKey)
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return "", false
	}
	parts := strings.Split(string(payload), "\n")
	if len(parts) != 3 || parts[0] != opID {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || now.Unix() > exp {
		return "", false
	}
	return parts[1], true
}

// eventsAuth authenticates an events request by its token query parameter
// when present, else by API key with Options.Authenticate. A refused token
// (forged, expired or for another operation) fails like a bad key, through
// Options.Authenticate itself: the request goes on to it without its
// Authorization header, so the failure gets the same log line, failure hook
// (the audit record, Server.OnAuthFailure), WWW-Authenticate and 401, with
// the reason "missing credentials" (an event token is not an API key).
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
		clientID, ok := a.verifyEventToken(token, r.PathValue("id"), time.Now())
		if !ok {
			a.log.Info("event token refused", "request_id", RequestIDFrom(r.Context()), "path", r.URL.Path)
			r = r.Clone(r.Context())
			r.Header.Del("Authorization")
			refuse.ServeHTTP(w, r)
			return
		}
		// The token was minted for this operation's owner: the usual
		// visibility check lets the stream through, and nothing else.
		next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{
			KeyID: eventTokenKeyID, ClientID: clientID, Environment: auth.Environment(a.opts.Environment),
			Scopes: []auth.Scope{auth.ScopeRead},
		})))
	})
}
