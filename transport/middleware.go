package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atgraph/atg/auth"
)

// HeaderRequestID carries the request ID in both directions.
const HeaderRequestID = "X-Request-ID"

type ctxKey int

const requestIDKey ctxKey = iota

// RequestIDFrom returns the request ID the request-ID middleware assigned.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// validRequestID accepts client IDs of 1..128 visible ASCII characters.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// withRequestID echoes a valid client X-Request-ID or generates one, sets it
// on the response before anything else runs and stores it in the context.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// statusRecorder remembers the status and size of a response and passes
// Flush, Hijack and ResponseController calls through.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := s.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijacking not supported")
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// httpMetrics are the HTTP server's Prometheus metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atg_http_requests_total", Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "atg_http_request_duration_seconds", Help: "Time to serve HTTP requests (event streams: until they end), by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "atg_http_requests_in_flight", Help: "HTTP requests being served, including open event streams.",
		}),
	}
}

func (m *httpMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.inFlight}
}

// observe wraps the routed handler: metrics by route pattern, one access-log
// line per request, and panic recovery into a 500 envelope.
func (a *API) observe(route string, next http.Handler) http.Handler {
	if route == "" {
		route = "unmatched"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		a.metrics.inFlight.Inc()
		defer func() {
			a.metrics.inFlight.Dec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.Error("handler panicked", "request_id", RequestIDFrom(r.Context()), "route", route,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					WriteError(rec, CodeInternal, "internal server error", nil)
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			a.metrics.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
			a.metrics.duration.WithLabelValues(route, r.Method).Observe(d.Seconds())
			attrs := []slog.Attr{slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.String("request_id", RequestIDFrom(r.Context())), slog.String("remote", r.RemoteAddr)}
			if id, ok := auth.IdentityFrom(r.Context()); ok {
				attrs = append(attrs, slog.String("client_id", id.ClientID))
			}
			a.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}

// dispatch serves a request with the mux when a route matches, and with
// the unmatched handler (404 or 405 in the envelope) otherwise.
func (a *API) dispatch(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	a.unmatched.ServeHTTP(w, r)
}

// notRouted turns the mux's plain-text 404 and 405 replies into the error
// envelope (keeping the Allow header).
func (a *API) notRouted(w http.ResponseWriter, r *http.Request) {
	h, _ := a.mux.Handler(r)
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		WriteError(w, CodeMethodNotAllowed, fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, probe.header.Get("Allow")), nil)
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		w.Header().Set("Location", probe.header.Get("Location"))
		w.WriteHeader(probe.status)
	default:
		WriteError(w, CodeNotFound, "no such route: "+r.Method+" "+r.URL.Path, nil)
	}
}

// headerProbe captures what the mux's fallback handlers write.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// DefaultMaxHeaderBytes is the default of Options.MaxHeaderBytes.
const DefaultMaxHeaderBytes = 64 << 10

// headerBytes is the size of r's request line and header fields as they
// were sent (near enough: the separators are counted as ": " and CRLF).
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	if r.Host != "" && r.Header.Get("Host") == "" {
		n += len("Host: ") + len(r.Host) + 2
	}
	return n
}

// checkRequest refuses, before anything else looks at them, requests whose
// request line and headers exceed Options.MaxHeaderBytes (431, in the error
// envelope: the http.Server's own limit, which answers in plain text, is
// set higher), requests whose path or query string does not decode to
// valid UTF-8 (400: ids and filters are text, and a lookup of a mangled id
// would otherwise fail in a confusing way), and requests that give a query
// parameter or a single-valued header twice (400: as with duplicate JSON
// keys, silently taking one of them would be a guess).
func (a *API) checkRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := headerBytes(r); n > a.opts.MaxHeaderBytes {
			w.Header().Set("Connection", "close")
			WriteError(w, CodeHeaderTooLarge, fmt.Sprintf("request line and headers are %d bytes, more than the %d-byte limit", n, a.opts.MaxHeaderBytes), nil)
			return
		}
		if !utf8.ValidString(r.URL.Path) {
			WriteError(w, CodeValidation, "request path is not valid UTF-8 once percent-decoded", map[string]any{"field": "path"})
			return
		}
		if r.URL.RawQuery != "" {
			q, err := url.ParseQuery(r.URL.RawQuery)
			if err != nil {
				WriteError(w, CodeValidation, "query string is malformed: "+queryErrorText(err), map[string]any{"field": "query"})
				return
			}
			for k, vs := range q {
				if len(vs) > 1 && utf8.ValidString(k) {
					WriteError(w, CodeValidation, fmt.Sprintf("query parameter %q is given %d times; give it once", k, len(vs)), map[string]any{"field": k})
					return
				}
				ok := utf8.ValidString(k)
				for _, v := range vs {
					ok = ok && utf8.ValidString(v)
				}
				if !ok {
					field := k
					if !utf8.ValidString(k) {
						field = "query"
					}
					WriteError(w, CodeValidation, "query string is not valid UTF-8 once percent-decoded", map[string]any{"field": field})
					return
				}
			}
		}
		for _, h := range singleHeaders {
			if n := len(r.Header.Values(h)); n > 1 {
				WriteError(w, CodeValidation, fmt.Sprintf("header %s is given %d times; give it once", h, n), map[string]any{"field": h})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// singleHeaders are the request headers the API reads one value of: sent
// more than once, which one counts would be a guess, so the request is
// refused (Authorization is the authenticator's own check).
var singleHeaders = []string{"Content-Type", HeaderIdempotencyKey, "Last-Event-ID", HeaderRequestID}

// queryErrorText is url.ParseQuery's error without the offending text,
// which may be anything.
func queryErrorText(err error) string {
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return "invalid percent-encoding"
	}
	return "invalid"
}
