package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/atgraph/atg/auth"
)

// Event tokens let a browser's EventSource, which cannot send an
// Authorization header, follow one operation's events. A token is
// "<operation id>.<client id>.<unix expiry>.<HMAC-SHA256>" base64url-encoded,
// signed with a key generated at startup, valid for EventTokenTTL and for
// that one stream only. API keys never go into URLs.

// errBadEventToken is the audited reason of a refused event token.
var errBadEventToken = fmt.Errorf("%w: bad or expired event token", auth.ErrMalformed)

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
// when present, else by API key.
func (a *API) eventsAuth(next http.Handler) http.Handler {
	byKey := a.opts.Authenticate(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		if token == "" {
			byKey.ServeHTTP(w, r)
			return
		}
		clientID, ok := a.verifyEventToken(token, r.PathValue("id"), time.Now())
		if !ok {
			a.log.Warn("authentication failed", "reason", "bad_event_token", "request_id", RequestIDFrom(r.Context()), "remote", r.RemoteAddr)
			a.AuditAuthFailure(r, errBadEventToken)
			w.Header().Set("WWW-Authenticate", "Bearer")
			WriteError(w, CodeAuthenticationFailed, auth.MessageAuthenticationFailed, nil)
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
