package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sethvargo/go-retry"

	"github.com/atgraph/atg/operations"
)

// Client defaults.
const (
	DefaultRequestTimeout = time.Hour
	DefaultMaxRetries     = 4
	DefaultRetryBaseDelay = 200 * time.Millisecond
	DefaultRetryMaxDelay  = 10 * time.Second
	// MaxRetryAfter caps how long a Retry-After header can make the client wait.
	MaxRetryAfter = time.Minute
)

// ClientOptions configure a Client. BaseURL and APIKey are required.
type ClientOptions struct {
	// BaseURL is the server's URL, e.g. https://atg.example.com (a trailing
	// slash is ignored).
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>". It never goes into
	// a URL, an error or a log line.
	APIKey string
	// UserAgent names the caller; it is prefixed to "atg-go/<version>".
	UserAgent string
	// Version is the library version in the User-Agent.
	Version string
	// RequestTimeout bounds one request (not event streams); 0 means 1 h.
	RequestTimeout time.Duration
	// MaxRetries is how many times a retryable request is retried; 0 means
	// DefaultMaxRetries, negative means never.
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay shape the exponential backoff (with
	// jitter) between retries; zero means 200 ms and 10 s.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// HTTPClient sends the requests; nil means a client with sane
	// transport timeouts. Its Timeout should be 0 (event streams are long).
	HTTPClient *http.Client
}

// Client calls the v1 API. It retries connection errors, 429 (honouring
// Retry-After), 502, 503 and 504 for GET and DELETE requests and for
// operation submits, which carry an automatically generated Idempotency-Key
// so a retry can never start a second operation. Errors from the server are
// *Error values (use errors.Is with ErrNotFound and friends).
type Client struct {
	opts ClientOptions
	base *url.URL
	http *http.Client
	ua   string
}

// NewClient checks opts and returns a Client. The base URL must be
// http(s)://host[:port][/path] without user information (credentials go in
// APIKey).
func NewClient(opts ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("transport: invalid base URL %q: want http(s)://host[:port] without user information", RedactURL(opts.BaseURL))
	}
	if opts.APIKey == "" {
		return nil, errors.New("transport: an API key is required")
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.RetryBaseDelay <= 0 {
		opts.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if opts.RetryMaxDelay <= 0 {
		opts.RetryMaxDelay = DefaultRetryMaxDelay
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 0
		tr.MaxIdleConnsPerHost = 16
		hc = &http.Client{Transport: tr}
	}
	ua := "atg-go/" + opts.Version
	if opts.Version == "" {
		ua = "atg-go"
	}
	if opts.UserAgent != "" {
		ua = opts.UserAgent + " " + ua
	}
	return &Client{opts: opts, base: u, http: hc, ua: ua}, nil
}

// RedactURL returns raw fit to print: user information, which may hold a
// password or a token, becomes "xxxxx", and an unparsable value becomes
// "[unparsable URL]" since it cannot be shown in part. Empty stays empty.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	return u.String()
}

// Close releases the client's idle connections. The client stays usable.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// BaseURL returns the server URL the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         any
	header       http.Header
	retry        bool
}

// do sends req, retrying when allowed, and decodes a 2xx JSON body into out.
func (c *Client) do(ctx context.Context, req request, out any) error {
	var payload []byte
	if req.body != nil {
		var err error
		if payload, err = json.Marshal(req.body); err != nil {
			return fmt.Errorf("transport: encode request: %w", err)
		}
	}
	attempt := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
		defer cancel()
		resp, err := c.send(ctx, req, payload)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return readError(resp)
		}
		if out == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
		dec := json.NewDecoder(resp.Body)
		dec.UseNumber() // 64-bit integers in rows and results stay exact
		if err := dec.Decode(out); err != nil {
			return fmt.Errorf("transport: decode %s %s response: %w", req.method, req.path, err)
		}
		return nil
	}
	if !req.retry {
		return attempt(ctx)
	}
	return c.withRetries(ctx, attempt)
}

// backoff is the client's backoff between retries: exponential from
// RetryBaseDelay, with 20 % jitter, at most RetryMaxDelay, without end.
func (c *Client) backoff() retry.Backoff {
	b := retry.NewExponential(c.opts.RetryBaseDelay)
	b = retry.WithJitterPercent(20, b)
	return retry.WithCappedDuration(c.opts.RetryMaxDelay, b)
}

// withRetries runs attempt, retrying what Retryable accepts up to
// MaxRetries times (none when it is negative) with the client's backoff,
// waiting at least a server's Retry-After.
func (c *Client) withRetries(ctx context.Context, attempt func(context.Context) error) error {
	if c.opts.MaxRetries < 0 {
		return attempt(ctx)
	}
	var hint time.Duration
	b := retry.WithMaxRetries(uint64(c.opts.MaxRetries), c.backoff())
	withHint := retry.BackoffFunc(func() (time.Duration, bool) {
		d, stop := b.Next()
		if hint > d {
			d = hint
		}
		hint = 0
		return d, stop
	})
	return retry.Do(ctx, withHint, func(ctx context.Context) error {
		err := attempt(ctx)
		if err == nil || !Retryable(err) || ctx.Err() != nil {
			return err
		}
		var ae *Error
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			hint = min(ae.RetryAfter, MaxRetryAfter)
		}
		return retry.RetryableError(err)
	})
}

// Retryable reports whether err is worth retrying for an idempotent
// request: a connection-level failure, or a 429, 502, 503 or 504 response.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNRESET)
}

func (c *Client) send(ctx context.Context, req request, payload []byte) (*http.Response, error) {
	u := *c.base
	u.Path = c.base.Path + req.path
	u.RawQuery = req.query.Encode()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("transport: build request: %w", err)
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	hr.Header.Set("Authorization", "Bearer "+c.opts.APIKey)
	hr.Header.Set("User-Agent", c.ua)
	if hr.Header.Get("Accept") == "" { // event streams ask for text/event-stream
		hr.Header.Set("Accept", "application/json")
	}
	if payload != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error repeats the URL (no secrets there) but not the key.
			return nil, fmt.Errorf("transport: %s %s: %w", req.method, req.path, ue.Err)
		}
		return nil, err
	}
	return resp, nil
}

// readError turns a non-2xx response into an *Error.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env struct {
		Error *Error `json:"error"`
	}
	e := &Error{}
	if json.Unmarshal(b, &env) == nil && env.Error != nil {
		e = env.Error
	} else {
		e.Code = codeForStatus(resp.StatusCode)
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200]
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	e.Status = resp.StatusCode
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get(HeaderRequestID)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}

// codeForStatus names the API code of a status, for replies that are not
// in the envelope (e.g. from a proxy).
func codeForStatus(status int) string {
	for _, code := range []string{CodeValidation, CodeAuthenticationFailed, CodeForbidden, CodeNotFound, CodeMethodNotAllowed,
		CodeNotCancellable, CodePayloadTooLarge, CodeUnsupportedMedia, CodeRateLimited, CodeUnavailable} {
		if statusOf(code) == status {
			return code
		}
	}
	if status == http.StatusBadGateway || status == http.StatusGatewayTimeout {
		return CodeUnavailable
	}
	return CodeInternal
}

// Health calls GET /api/v1/health (no authentication needed).
func (c *Client) Health(ctx context.Context) (*HealthResponse, error) {
	var out HealthResponse
	return &out, c.do(ctx, request{method: "GET", path: "/api/v1/health", retry: true}, &out)
}

// Status calls GET /api/v1/status.
func (c *Client) Status(ctx context.Context) (*StatusResponse, error) {
	var out StatusResponse
	return &out, c.do(ctx, request{method: "GET", path: "/api/v1/status", retry: true}, &out)
}

// Query calls POST /api/v1/query. It is not retried (a write may have
// happened).
func (c *Client) Query(ctx context.Context, q QueryRequest) (*QueryResponse, error) {
	var out QueryResponse
	return &out, c.do(ctx, request{method: "POST", path: "/api/v1/query", body: q}, &out)
}

// Submitted is the body of a 202 reply to POST /api/v1/operations.
type Submitted struct {
	OperationID string            `json:"operation_id"`
	Type        string            `json:"type"`
	Status      operations.Status `json:"status"`
	CreatedAt   time.Time         `json:"created_at"`
	Links       Links             `json:"links"`
}

// Submit calls POST /api/v1/operations with an Idempotency-Key (generated
// when key is empty) so that retries return the same operation.
func (c *Client) Submit(ctx context.Context, typ string, params any, key string) (*Submitted, error) {
	if key == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		key = "atg-go-" + hex.EncodeToString(b[:])
	}
	var raw json.RawMessage
	if params != nil {
		var err error
		if raw, err = json.Marshal(params); err != nil {
			return nil, fmt.Errorf("transport: encode params: %w", err)
		}
	}
	var out Submitted
	err := c.do(ctx, request{method: "POST", path: "/api/v1/operations", body: SubmitRequest{Type: typ, Params: raw},
		header: http.Header{HeaderIdempotencyKey: {key}}, retry: true}, &out)
	return &out, err
}

// Get calls GET /api/v1/operations/{id}.
func (c *Client) Get(ctx context.Context, id string) (*OperationView, error) {
	var out OperationView
	return &out, c.do(ctx, request{method: "GET", path: "/api/v1/operations/" + url.PathEscape(id), retry: true}, &out)
}

// ListOptions filter GET /api/v1/operations.
type ListOptions struct {
	// Status selects one status; empty means any.
	Status operations.Status
	// Type selects one operation type; empty means any.
	Type string
	// Limit is the page size, 1..MaxListLimit; 0 means 50.
	Limit int
	// Offset skips that many operations, newest first; 0..2147483647.
	Offset int
}

// List calls GET /api/v1/operations. Options out of range are the
// server's VALIDATION_ERROR, as with ListOperations.
func (c *Client) List(ctx context.Context, o ListOptions) (*ListResponse, error) {
	q := url.Values{}
	if o.Status != "" {
		q.Set("status", string(o.Status))
	}
	if o.Type != "" {
		q.Set("type", o.Type)
	}
	if o.Limit != 0 { // 0: the server's default; out of range: its VALIDATION_ERROR, as ListOperations says
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset != 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	var out ListResponse
	return &out, c.do(ctx, request{method: "GET", path: "/api/v1/operations", query: q, retry: true}, &out)
}

// Cancel calls DELETE /api/v1/operations/{id}. A retried cancel that finds
// the operation already cancelled reports success.
func (c *Client) Cancel(ctx context.Context, id string) (*OperationView, error) {
	var out OperationView
	err := c.do(ctx, request{method: "DELETE", path: "/api/v1/operations/" + url.PathEscape(id), retry: true}, &out)
	var ae *Error
	if errors.As(err, &ae) && ae.Code == CodeNotCancellable && ae.Details["status"] == string(operations.Cancelled) {
		got, gerr := c.Get(ctx, id)
		if gerr == nil {
			return got, nil
		}
	}
	return &out, err
}
