package transport

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/atgraph/atg/auth"
)

// limiterSet holds one token bucket per key (an API key ID or a remote
// address) with bounded memory: buckets live in two generations that rotate
// every idle period (or early, when the current one reaches maxEntries), so
// a bucket unused for two periods is forgotten. A forgotten bucket was full
// again anyway when the period is at least the time to refill a burst, which
// newLimiterSet ensures; only an early rotation under a flood of new keys can
// forget a bucket that was not yet full.
type limiterSet struct {
	limit      rate.Limit
	burst      int
	idle       time.Duration
	maxEntries int

	mu       sync.Mutex
	cur, old map[string]*rate.Limiter
	rotated  time.Time
}

// newLimiterSet returns buckets of perMinute tokens a minute holding at
// most burst tokens.
func newLimiterSet(perMinute, burst, maxEntries int) *limiterSet {
	limit := rate.Limit(float64(perMinute) / 60)
	refill := time.Duration(float64(burst) / float64(limit) * float64(time.Second))
	return &limiterSet{
		limit: limit, burst: burst, idle: max(refill, time.Minute), maxEntries: maxEntries,
		cur: map[string]*rate.Limiter{}, old: map[string]*rate.Limiter{},
	}
}

// get returns key's bucket, creating a full one if needed.
func (s *limiterSet) get(key string, now time.Time) *rate.Limiter {
	if s.rotated.IsZero() {
		s.rotated = now
	}
	if now.Sub(s.rotated) >= s.idle || len(s.cur) >= s.maxEntries {
		s.old, s.cur, s.rotated = s.cur, make(map[string]*rate.Limiter, len(s.cur)/2), now
	}
	if l, ok := s.cur[key]; ok {
		return l
	}
	l, ok := s.old[key]
	if ok {
		delete(s.old, key)
	} else {
		l = rate.NewLimiter(s.limit, s.burst)
	}
	s.cur[key] = l
	return l
}

// decision is the outcome of one rate-limit check.
type decision struct {
	allowed    bool
	remaining  int
	retryAfter time.Duration // when not allowed: until a token is available
	reset      time.Time     // when the bucket is full again
}

// take consumes one token of key's bucket if one is available.
func (s *limiterSet) take(key string, now time.Time) decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.get(key, now)
	ok := l.AllowN(now, 1)
	return s.state(l, ok, now)
}

// blocked reports whether key's bucket is empty, without consuming. It only
// looks: a key without a bucket is not blocked and gets none, so lookups
// never push other keys' buckets out of the set.
func (s *limiterSet) blocked(key string, now time.Time) (decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.cur[key]
	if !ok {
		l, ok = s.old[key]
	}
	if !ok {
		return decision{allowed: true}, false
	}
	d := s.state(l, l.TokensAt(now) >= 1, now)
	return d, !d.allowed
}

func (s *limiterSet) state(l *rate.Limiter, allowed bool, now time.Time) decision {
	tokens := l.TokensAt(now)
	d := decision{allowed: allowed, remaining: max(int(math.Floor(tokens)), 0)}
	missing := float64(s.burst) - tokens
	d.reset = now.Add(time.Duration(missing / float64(s.limit) * float64(time.Second)))
	if !allowed {
		d.retryAfter = time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second))
	}
	return d
}

// size returns how many buckets are held (for tests).
func (s *limiterSet) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cur) + len(s.old)
}

// maxLimiterEntries bounds each generation of a limiterSet.
const maxLimiterEntries = 50_000

// rateLimitKeys limits authenticated requests per API key, setting on every
// response X-RateLimit-Limit (the bucket's size, RateLimitBurst),
// X-RateLimit-Remaining (requests left in it now) and X-RateLimit-Reset
// (Unix time when it is full again) and X-RateLimit-Policy ("100;w=60":
// the refill, RateLimitRPM requests a 60-second window), and answering 429 RATE_LIMITED with Retry-After when the bucket is empty.
func (a *API) rateLimitKeys(next http.Handler) http.Handler {
	if a.keyLimits == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := auth.IdentityFrom(r.Context())
		d := a.keyLimits.take(limiterKey(id), time.Now())
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(a.keyLimits.burst))
		h.Set("X-RateLimit-Policy", a.ratePolicy)
		h.Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(d.reset.Unix(), 10))
		if !d.allowed {
			writeAPIError(w, &Error{Code: CodeRateLimited, RetryAfter: d.retryAfter,
				Message: fmt.Sprintf("rate limit exceeded: %d requests per minute per API key; retry in %s", a.opts.RateLimitRPM, ceilSeconds(d.retryAfter))})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitAuthFailures refuses requests from a remote address that failed
// authentication too often (429 with Retry-After, before the key is even
// looked at) and counts each 401 the wrapped handler answers against it.
// Only failures give an address a bucket: successful requests add nothing.
func (a *API) limitAuthFailures(next http.Handler) http.Handler {
	if a.failLimits == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := a.clientAddr(r)
		if d, blocked := a.failLimits.blocked(addr, time.Now()); blocked {
			a.log.Warn("authentication attempts rate-limited", "remote", addr, "request_id", RequestIDFrom(r.Context()))
			writeAPIError(w, &Error{Code: CodeRateLimited, RetryAfter: d.retryAfter,
				Message: fmt.Sprintf("too many failed authentication attempts from this address; retry in %s", ceilSeconds(d.retryAfter))})
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusUnauthorized {
			a.failLimits.take(addr, time.Now())
		}
	})
}

func ceilSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds()))) + " s"
}

// clientAddr is the caller's IP: the connection's remote address, or, when
// that is a trusted proxy, the last address in X-Forwarded-For that is not
// a trusted proxy.
func (a *API) clientAddr(r *http.Request) string {
	host := remoteHost(r)
	if !a.trustedProxy(host) {
		return host
	}
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		if !a.trustedProxy(hops[i]) {
			return hops[i]
		}
	}
	return host
}
