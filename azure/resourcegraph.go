package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resourcegraph/armresourcegraph"
)

// RequestError is a Resource Graph reply that is not retried (4xx other
// than 408 and 429) or that still failed after the retries.
type RequestError struct {
	// Status is the HTTP status; Code Resource Graph's error code.
	Status int
	Code   string
	// Table and Subscription name the read ("" for tenant-wide).
	Table        Table
	Subscription string
	// Hint says what to do (which credential variable to check on 401/403).
	Hint string
	// Retried is true when the error is the last of its retries
	// (ErrUnavailable); false when it was not retried (ErrRequest).
	Retried bool
	// Err is the cause (azcore's *ResponseError or a transport error).
	Err error
}

// Error names the read, the status and what to do; never a token.
func (e *RequestError) Error() string {
	scope := "the tenant"
	if e.Subscription != "" {
		scope = "subscription " + e.Subscription
	}
	msg := fmt.Sprintf("azure: reading %s of %s from Resource Graph", e.Table, scope)
	if e.Status != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Retried {
		msg += " (after retries)"
	}
	if e.Err != nil && e.Status == 0 {
		msg += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// Unwrap returns ErrRequest or ErrUnavailable, and the cause.
func (e *RequestError) Unwrap() []error {
	if e.Retried {
		return []error{ErrUnavailable, e.Err}
	}
	return []error{ErrRequest, e.Err}
}

// ResourceGraphSource is a [Source] over Azure Resource Graph. It is safe
// for concurrent use; its quota gate is shared by all its reads.
type ResourceGraphSource struct {
	cfg    Config
	method string
	client *armresourcegraph.Client

	total  counters
	perSub sync.Map // subscription (lower case; "" tenant-wide) -> *counters

	mu        sync.Mutex
	notBefore time.Time // the quota is spent until then
}

var _ Source = (*ResourceGraphSource)(nil)

// NewResourceGraphSource validates cfg, chooses its credential (see
// [Config]) and returns a Source over Resource Graph (a
// *ResourceGraphSource). No request is sent
// until Rows is iterated.
func NewResourceGraphSource(ctx context.Context, cfg Config) (Source, error) {
	s, err := newResourceGraphSource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newResourceGraphSource(ctx context.Context, cfg Config) (*ResourceGraphSource, error) {
	_ = ctx
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cc, err := cfg.cloudFor()
	if err != nil {
		return nil, err
	}
	cred, method, err := newCredential(cfg, cc)
	if err != nil {
		return nil, err
	}
	s := &ResourceGraphSource{cfg: cfg, method: method}
	opts := &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cc,
		// Retries are ours: they count throttling and never retry 4xx.
		Retry:            policy.RetryOptions{MaxRetries: -1},
		PerRetryPolicies: []policy.Policy{pagePolicy{s}},
	}}
	if cfg.HTTPClient != nil {
		opts.Transport = cfg.HTTPClient
	}
	client, err := armresourcegraph.NewClient(cred, opts)
	if err != nil {
		return nil, fmt.Errorf("azure: creating the Resource Graph client: %w", err)
	}
	s.client = client
	return s, nil
}

// Method names the credential method in use (a Method constant).
func (s *ResourceGraphSource) Method() string { return s.method }

// Stats reports the calls made so far.
func (s *ResourceGraphSource) Stats() Stats {
	return Stats{
		APICalls: s.total.apiCalls.Load(), Pages: s.total.pages.Load(),
		Throttled: s.total.throttled.Load(), ThrottledFor: time.Duration(s.total.throttledFor.Load()),
	}
}

// StatsFor reports the calls made for one subscription's reads (""
// for tenant-wide reads), so concurrent reads of several subscriptions
// each get their own figures.
func (s *ResourceGraphSource) StatsFor(subscription string) Stats {
	v, ok := s.perSub.Load(strings.ToLower(subscription))
	if !ok {
		return Stats{}
	}
	c := v.(*counters)
	return Stats{
		APICalls: c.apiCalls.Load(), Pages: c.pages.Load(),
		Throttled: c.throttled.Load(), ThrottledFor: time.Duration(c.throttledFor.Load()),
	}
}

// counters are one set of Stats figures.
type counters struct{ apiCalls, pages, throttled, throttledFor atomic.Int64 }

// countersFor returns the counters of subscription's reads.
func (s *ResourceGraphSource) countersFor(subscription string) *counters {
	key := strings.ToLower(subscription)
	if v, ok := s.perSub.Load(key); ok {
		return v.(*counters)
	}
	v, _ := s.perSub.LoadOrStore(key, &counters{})
	return v.(*counters)
}

// SubscriptionStats is implemented by Sources that count per
// subscription (ResourceGraphSource, Inventory).
type SubscriptionStats interface {
	// StatsFor reports the calls made for one subscription's reads ("":
	// tenant-wide reads).
	StatsFor(subscription string) Stats
}

var (
	_ SubscriptionStats = (*ResourceGraphSource)(nil)
	_ SubscriptionStats = (*Inventory)(nil)
)

// page is one Resource Graph reply, decoded with json.Number numbers.
type page struct {
	TotalRecords    int64
	Count           int64
	ResultTruncated string
	SkipToken       string
	Data            []Row
}

// decodePage reads a reply body in one pass, row by row: data in
// objectArray form, or in table form ({"columns":[{"name":..}],
// "rows":[[..]]}) should a server send that. Unknown keys are skipped.
func decodePage(r io.Reader) (*page, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	pg := &page{}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object (%v)", err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := k.(string)
		switch key {
		case "data":
			t, err := dec.Token()
			if err != nil {
				return nil, err
			}
			switch t {
			case json.Delim('['):
				for dec.More() {
					var row Row
					if err := dec.Decode(&row); err != nil {
						return nil, fmt.Errorf("row %d: %w", len(pg.Data), err)
					}
					pg.Data = append(pg.Data, row)
				}
				if _, err := dec.Token(); err != nil {
					return nil, err
				}
			case json.Delim('{'):
				if err := decodeTable(dec, pg); err != nil {
					return nil, err
				}
			case nil:
			default:
				return nil, errors.New(`"data" is neither an array nor a table`)
			}
		case "count", "totalRecords":
			var n json.Number
			if err := dec.Decode(&n); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			v, _ := n.Int64()
			if key == "count" {
				pg.Count = v
			} else {
				pg.TotalRecords = v
			}
		case "resultTruncated", "$skipToken", "skipToken", "skip_token":
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			str, _ := v.(string)
			if b, ok := v.(bool); ok && b {
				str = "true"
			}
			if key != "resultTruncated" {
				pg.SkipToken = str
			} else {
				pg.ResultTruncated = str
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return pg, nil
}

// decodeTable reads the rest of a table-form data object whose '{' was read.
func decodeTable(dec *json.Decoder, pg *page) error {
	var cols []struct {
		Name string `json:"name"`
	}
	var vals [][]any
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		switch k {
		case "columns":
			err = dec.Decode(&cols)
		case "rows":
			err = dec.Decode(&vals)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	for _, v := range vals {
		row := make(Row, len(cols))
		for i, c := range cols {
			if i < len(v) {
				row[c.Name] = v[i]
			}
		}
		pg.Data = append(pg.Data, row)
	}
	return nil
}

// holder carries one try's outcome from pagePolicy back to the caller.
type holder struct {
	page   *page
	header http.Header
	sub    *counters
}

type holderKey struct{}

// stubBody is what the SDK decodes after pagePolicy took the page: the
// rows are decoded once, by us, with json.Number numbers.
const stubBody = `{"count":0,"data":[],"resultTruncated":"false","totalRecords":0}`

// pagePolicy counts every HTTP request and decodes a 200 page itself.
type pagePolicy struct{ s *ResourceGraphSource }

func (p pagePolicy) Do(req *policy.Request) (*http.Response, error) {
	p.s.total.apiCalls.Add(1)
	h, _ := req.Raw().Context().Value(holderKey{}).(*holder)
	if h != nil && h.sub != nil {
		h.sub.apiCalls.Add(1)
	}
	resp, err := req.Next()
	if err != nil || h == nil {
		return resp, err
	}
	h.header = resp.Header
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	pg, err := decodePage(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("decoding a Resource Graph page: %w", err)
	}
	h.page = pg
	resp.Body = io.NopCloser(strings.NewReader(stubBody))
	resp.ContentLength = int64(len(stubBody))
	return resp, nil
}

// query is the KQL for table: it starts with the table name, as the
// caller filters and shapes rows anyway.
func query(table Table) string { return string(table) }

// Rows streams table's rows page by page for one subscription or the
// whole tenant. The next page is fetched while the caller consumes the
// current one, so memory holds at most two pages whatever the tenant's
// size. Rows of other subscriptions are dropped when subscription is set,
// whatever the endpoint returned. Stopping early cancels the page in
// flight.
func (s *ResourceGraphSource) Rows(ctx context.Context, table Table, subscription string) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		request := func(token string) armresourcegraph.QueryRequest {
			req := armresourcegraph.QueryRequest{
				Query: to.Ptr(query(table)),
				Options: &armresourcegraph.QueryRequestOptions{
					ResultFormat: to.Ptr(armresourcegraph.ResultFormatObjectArray),
					Top:          to.Ptr(int32(s.cfg.PageSize)),
				},
			}
			if token != "" {
				req.Options.SkipToken = to.Ptr(token)
			}
			if subscription != "" {
				req.Subscriptions = []*string{to.Ptr(subscription)}
			}
			return req
		}
		type result struct {
			pg  *page
			err error
		}
		fctx, cancel := context.WithCancel(ctx)
		var pending chan result
		start := func(token string) {
			pending = make(chan result, 1)
			go func(ch chan result) {
				pg, err := s.fetch(fctx, request(token), table, subscription)
				ch <- result{pg, err}
			}(pending)
		}
		defer func() {
			cancel()
			if pending != nil {
				<-pending // never leave a fetch running
			}
		}()
		seen := map[string]bool{}
		start("")
		for {
			r := <-pending
			pending = nil
			if r.err != nil {
				if ctx.Err() != nil {
					r.err = ctx.Err()
				}
				yield(nil, r.err)
				return
			}
			pg, next := r.pg, r.pg.SkipToken
			repeated := next != "" && seen[next]
			if next != "" && !repeated {
				seen[next] = true
				start(next)
			}
			for i, row := range pg.Data {
				pg.Data[i] = nil // let yielded rows go as soon as the caller drops them
				if subscription != "" {
					if sub, _ := row["subscriptionId"].(string); !strings.EqualFold(sub, subscription) {
						continue
					}
				}
				if !yield(row, nil) {
					return
				}
			}
			switch {
			case repeated:
				yield(nil, &RequestError{Table: table, Subscription: subscription, Err: errors.New("the same $skipToken came twice"), Hint: "Resource Graph paging did not advance"})
				return
			case next == "":
				if strings.EqualFold(pg.ResultTruncated, "true") {
					yield(nil, &RequestError{Table: table, Subscription: subscription, Err: ErrTruncated, Hint: "the result was truncated without a $skipToken"})
				}
				return
			}
		}
	}
}

// wait sleeps d (or until ctx ends), counting a throttled wait.
func (s *ResourceGraphSource) wait(ctx context.Context, c *counters, d time.Duration, throttle bool) error {
	if d <= 0 {
		return nil
	}
	if throttle {
		for _, c := range []*counters{&s.total, c} {
			c.throttled.Add(1)
			c.throttledFor.Add(int64(d))
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// gate waits until the quota reset announced by an earlier reply.
func (s *ResourceGraphSource) gate(ctx context.Context, c *counters) error {
	s.mu.Lock()
	d := time.Until(s.notBefore)
	s.mu.Unlock()
	return s.wait(ctx, c, min(d, s.cfg.MaxThrottleWait), true)
}

// noteQuota records x-ms-user-quota-remaining / -resets-after: with no
// quota left, no call goes out before the reset.
func (s *ResourceGraphSource) noteQuota(h http.Header) {
	if h == nil {
		return
	}
	rem, err := strconv.Atoi(strings.TrimSpace(h.Get("x-ms-user-quota-remaining")))
	if err != nil || rem > 0 {
		return
	}
	d, ok := parseResetsAfter(h.Get("x-ms-user-quota-resets-after"))
	if !ok {
		d = time.Second
	}
	s.mu.Lock()
	if t := time.Now().Add(d); t.After(s.notBefore) {
		s.notBefore = t
	}
	s.mu.Unlock()
}

// parseResetsAfter reads "hh:mm:ss" (fractions allowed).
func parseResetsAfter(v string) (time.Duration, bool) {
	parts := strings.Split(strings.TrimSpace(v), ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || sec < 0 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), true
}

// retryAfter reads Retry-After (seconds or an HTTP date).
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

func transientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// fetch sends one page request, waiting for the quota, waiting out 429s
// and retrying transient failures; 4xx are returned at once.
func (s *ResourceGraphSource) fetch(ctx context.Context, req armresourcegraph.QueryRequest, table Table, sub string) (*page, error) {
	c := s.countersFor(sub)
	retries, throttles := 0, 0
	delay := s.cfg.RetryDelay
	for {
		if err := s.gate(ctx, c); err != nil {
			return nil, err
		}
		h := &holder{sub: c}
		tctx, cancel := context.WithTimeout(context.WithValue(ctx, holderKey{}, h), s.cfg.TryTimeout)
		_, err := s.client.Resources(tctx, req, nil)
		cancel()
		s.noteQuota(h.header)
		if err == nil {
			if h.page == nil {
				return nil, &RequestError{Table: table, Subscription: sub, Err: errors.New("a reply without a page")}
			}
			s.total.pages.Add(1)
			c.pages.Add(1)
			return h.page, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var cerr *CredentialError
		if errors.As(err, &cerr) {
			return nil, err
		}
		var re *azcore.ResponseError
		status, code := 0, ""
		if errors.As(err, &re) {
			status, code = re.StatusCode, re.ErrorCode
		}
		switch {
		case status == http.StatusTooManyRequests:
			throttles++
			if throttles > s.cfg.MaxThrottles {
				return nil, &RequestError{Status: status, Code: code, Table: table, Subscription: sub, Retried: true, Err: err,
					Hint: fmt.Sprintf("still throttled after %d waits", throttles-1)}
			}
			d, ok := time.Duration(0), false
			if re.RawResponse != nil {
				d, ok = retryAfter(re.RawResponse.Header)
			}
			if !ok {
				d = delay
				delay = min(2*delay, 30*time.Second)
			}
			if err := s.wait(ctx, c, min(d, s.cfg.MaxThrottleWait), true); err != nil {
				return nil, err
			}
			continue
		case status != 0 && !transientStatus(status):
			return nil, &RequestError{Status: status, Code: code, Table: table, Subscription: sub, Err: err, Hint: s.hintFor(status)}
		}
		// A transient status, a timeout or a transport error.
		retries++
		if s.cfg.MaxRetries < 0 || retries > s.cfg.MaxRetries {
			return nil, &RequestError{Status: status, Code: code, Table: table, Subscription: sub, Retried: true, Err: err}
		}
		jitter := time.Duration(rand.Int64N(int64(delay)/4 + 1))
		if err := s.wait(ctx, c, delay+jitter, false); err != nil {
			return nil, err
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func (s *ResourceGraphSource) hintFor(status int) string {
	switch status {
	case http.StatusUnauthorized:
		switch s.method {
		case MethodStaticToken:
			return hintStatic
		case MethodManagedIdentity:
			return "the managed identity's token was refused; check ATG_TARGET_TENANT_ID and AZURE_CLIENT_ID"
		}
		return "the token was refused; check the tenant (ATG_TARGET_TENANT_ID) and the signed-in account"
	case http.StatusForbidden:
		return "the identity lacks read access: grant it Reader on the subscriptions (or the tenant root management group)"
	}
	return ""
}
