package azuretest

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// Options configure [NewServer]. Zero values take the documented defaults.
type Options struct {
	// Seed makes the generated tenant deterministic (default 0).
	Seed int64
	// Resources is the tenant's size in Resources rows, rounded up to whole
	// resource groups of 23 (default 200).
	Resources int
	// Subscriptions is the number of subscriptions (default and minimum 2).
	Subscriptions int
	// MaxPageSize caps the rows per page whatever $top asks (default 1000,
	// Resource Graph's own cap).
	MaxPageSize int
	// ClientID and ClientSecret are the app registration the token
	// endpoint accepts for client credentials (defaults
	// "00000000-0000-0000-0000-0000000000c1" and "fake-client-secret").
	ClientID, ClientSecret string
	// IdentityHeader is the secret the managed identity endpoint expects in
	// X-IDENTITY-HEADER (default "fake-identity-header").
	IdentityHeader string
	// FederatedToken is the client assertion the token endpoint accepts
	// for workload identity (AZURE_FEDERATED_TOKEN_FILE's content; default
	// "fake-federated-token").
	FederatedToken string
	// IgnoreSubscriptions makes Resource Graph answer every query
	// tenant-wide, whatever subscriptions the request names (a worst case a
	// client must survive by filtering on its own side).
	IgnoreSubscriptions bool
	// Quota is Resource Graph's per-user quota: queries allowed per
	// QuotaWindow (real Azure: about 15 per 5 s). 0 means unlimited (the
	// headers then always report 14 left). A call past the quota gets 429
	// with Retry-After; every reply reports x-ms-user-quota-remaining and
	// x-ms-user-quota-resets-after.
	Quota int
	// QuotaWindow is the quota's window (default 5 s).
	QuotaWindow time.Duration
}

// Request is one logged request to the fake.
type Request struct {
	// Time is when the request arrived.
	Time time.Time
	// Method and Path are the request's.
	Method, Path string
	// Status is the reply's status code.
	Status int
	// Query, Table, Subscriptions, Top, Skip and SkipToken are the Resource
	// Graph request's (empty for token requests).
	Query, Table  string
	Subscriptions []string
	Top, Skip     int
	SkipToken     string
	// Rows is the number of rows in the reply.
	Rows int
	// ClientID is the client_id of a token request, if any.
	ClientID string
}

// Server is a fake Azure over TLS: Microsoft Entra and Resource Graph on
// one host. Close it when done.
type Server struct {
	// URL is the base https URL (Resource Manager endpoint and authority
	// host both).
	URL string
	// Tenant is the generated tenant the server answers with.
	Tenant *Tenant
	// Token is a bearer token the server accepts (as AZURE_ACCESS_TOKEN).
	Token string
	// ClientID and ClientSecret are the accepted client credentials;
	// FederatedToken the accepted workload identity assertion.
	ClientID, ClientSecret, FederatedToken string
	// IdentityEndpoint and IdentityHeader are the managed identity
	// endpoint (for IDENTITY_ENDPOINT) and its secret (IDENTITY_HEADER).
	IdentityEndpoint, IdentityHeader string
	// CAFile is a PEM file of the server's certificate, usable as
	// SSL_CERT_FILE.
	CAFile string

	srv        *httptest.Server
	maxPage    int
	ignoreSubs bool
	quota      int
	window     time.Duration
	winStart   time.Time
	winUsed    int
	mu         sync.Mutex
	tokens     map[string]bool
	calls      int // Resource Graph calls
	log        []Request
	failOn     map[int]fault
	subFails   map[string]subFault
}

type fault struct {
	status     int
	retryAfter string        // 429's Retry-After, if any
	quotaReset time.Duration // > 0: a 200 with quota remaining 0
	quota      bool
	delay      time.Duration // > 0: answer normally after this delay
}

type subFault struct {
	afterRows int
	status    int
}

// NewServer starts a fake Azure over TLS with a generated tenant and
// registers its Close with t.Cleanup.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Resources == 0 {
		opts.Resources = 200
	}
	if opts.MaxPageSize <= 0 || opts.MaxPageSize > 1000 {
		opts.MaxPageSize = 1000
	}
	if opts.QuotaWindow <= 0 {
		opts.QuotaWindow = 5 * time.Second
	}
	if opts.ClientID == "" {
		opts.ClientID = "00000000-0000-0000-0000-0000000000c1"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "fake-client-secret"
	}
	if opts.FederatedToken == "" {
		opts.FederatedToken = "fake-federated-token"
	}
	if opts.IdentityHeader == "" {
		opts.IdentityHeader = "fake-identity-header"
	}
	s := &Server{
		Tenant:   NewTenant(opts.Seed, opts.Resources, opts.Subscriptions),
		ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, FederatedToken: opts.FederatedToken, IdentityHeader: opts.IdentityHeader,
		maxPage: opts.MaxPageSize, ignoreSubs: opts.IgnoreSubscriptions, quota: opts.Quota, window: opts.QuotaWindow, tokens: map[string]bool{},
		failOn: map[int]fault{}, subFails: map[string]subFault{},
	}
	s.Token = s.issue()
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.IdentityEndpoint = s.URL + "/msi/token"
	cert := s.srv.Certificate()
	s.CAFile = filepath.Join(t.TempDir(), "fake-azure-ca.pem")
	if err := os.WriteFile(s.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// CertPool is a pool trusting only the server's certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// Client is an *http.Client trusting the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// FailCall makes Resource Graph call n (1-based, counting every call)
// answer status with an ARM error body.
func (s *Server) FailCall(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOn[n] = fault{status: status}
}

// ThrottleCall makes Resource Graph call n answer 429 with Retry-After
// set to retryAfter (seconds, as Resource Graph sends it).
func (s *Server) ThrottleCall(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOn[n] = fault{status: http.StatusTooManyRequests, retryAfter: strconv.Itoa(int(retryAfter.Round(time.Second) / time.Second))}
}

// ExhaustQuotaOnCall makes Resource Graph call n succeed with
// x-ms-user-quota-remaining 0 and x-ms-user-quota-resets-after resetsAfter
// (hh:mm:ss): a client should wait that long before its next call.
func (s *Server) ExhaustQuotaOnCall(n int, resetsAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOn[n] = fault{status: http.StatusOK, quota: true, quotaReset: resetsAfter}
}

// SlowCall makes Resource Graph call n wait d (or until the client
// gives up) before answering normally.
func (s *Server) SlowCall(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOn[n] = fault{status: http.StatusOK, delay: d}
}

// FailSubscription makes every request scoped to subscription sub fail
// with status once it asks for rows at or past offset afterRows: the
// subscription's read fails part-way, every retry included.
func (s *Server) FailSubscription(sub string, afterRows, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subFails[strings.ToLower(sub)] = subFault{afterRows: afterRows, status: status}
}

// Calls is the number of Resource Graph calls received (failed ones too).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Requests is a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

func (s *Server) issue() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := "fake." + hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = true
	s.mu.Unlock()
	return tok
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	s.log = append(s.log, r)
	s.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.EqualFold(p, "/providers/Microsoft.ResourceGraph/resources"):
		s.resources(w, r)
	case r.Method == http.MethodGet && p == "/msi/token":
		s.managedIdentity(w, r)
	case r.Method == http.MethodGet && p == "/common/discovery/instance":
		s.instanceDiscovery(w, r)
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/v2.0/.well-known/openid-configuration"):
		s.openIDConfiguration(w, r)
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/oauth2/v2.0/token"):
		s.tokenEndpoint(w, r)
	default:
		s.record(Request{Time: time.Now(), Method: r.Method, Path: p, Status: http.StatusNotFound})
		armError(w, http.StatusNotFound, "NotFound", "no such endpoint in the fake Azure: "+r.Method+" "+p)
	}
}

func (s *Server) host() string { return strings.TrimPrefix(s.URL, "https://") }

func (s *Server) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	s.record(Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Status: http.StatusOK})
	h := s.host()
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": fmt.Sprintf("https://%s/%s/v2.0/.well-known/openid-configuration", h, s.Tenant.ID),
		"api-version":               "1.1",
		"metadata":                  []any{map[string]any{"preferred_network": h, "preferred_cache": h, "aliases": []any{h}}},
	})
}

func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	s.record(Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Status: http.StatusOK})
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/v2.0/.well-known/openid-configuration")
	authority := s.URL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        authority + "/oauth2/v2.0/token",
		"authorization_endpoint":                authority + "/oauth2/v2.0/authorize",
		"issuer":                                authority + "/v2.0",
		"token_endpoint_auth_methods_supported": []any{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              authority + "/discovery/v2.0/keys",
		"response_types_supported":              []any{"code", "id_token", "code id_token", "id_token token"},
		"tenant_region_scope":                   "NA",
	})
}

// tokenEndpoint is /{tenant}/oauth2/v2.0/token for the client credentials
// grant with a client secret or a client assertion (workload identity).
func (s *Server) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	rec := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, ClientID: r.PostForm.Get("client_id")}
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		rec.Status = http.StatusBadRequest
		writeJSON(w, rec.Status, map[string]any{"error": "unsupported_grant_type", "error_description": "AADSTS70003: the fake supports client_credentials only"})
	case !strings.EqualFold(tenant, s.Tenant.ID):
		rec.Status = http.StatusBadRequest
		writeJSON(w, rec.Status, map[string]any{"error": "invalid_request", "error_description": "AADSTS90002: Tenant '" + tenant + "' not found."})
	case r.PostForm.Get("client_id") != s.ClientID ||
		(r.PostForm.Get("client_secret") != s.ClientSecret &&
			!(r.PostForm.Get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" &&
				r.PostForm.Get("client_assertion") == s.FederatedToken)):
		rec.Status = http.StatusUnauthorized
		writeJSON(w, rec.Status, map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
	default:
		rec.Status = http.StatusOK
		writeJSON(w, rec.Status, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": s.issue()})
	}
	s.record(rec)
}

// managedIdentity is the App Service managed identity endpoint
// (api-version 2019-08-01).
func (s *Server) managedIdentity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rec := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, ClientID: q.Get("client_id")}
	switch {
	case r.Header.Get("X-IDENTITY-HEADER") != s.IdentityHeader:
		rec.Status = http.StatusUnauthorized
		writeJSON(w, rec.Status, map[string]any{"statusCode": 401, "message": "Unauthorized: bad X-IDENTITY-HEADER"})
	case q.Get("api-version") != "2019-08-01" || q.Get("resource") == "":
		rec.Status = http.StatusBadRequest
		writeJSON(w, rec.Status, map[string]any{"statusCode": 400, "message": "api-version 2019-08-01 and resource are required"})
	default:
		rec.Status = http.StatusOK
		writeJSON(w, rec.Status, map[string]any{
			"access_token": s.issue(), "expires_on": strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10),
			"resource": q.Get("resource"), "token_type": "Bearer", "client_id": q.Get("client_id"),
		})
	}
	s.record(rec)
}

// queryRequest is Resource Graph's documented request body.
type queryRequest struct {
	Subscriptions    []string `json:"subscriptions"`
	ManagementGroups []string `json:"managementGroups"`
	Query            string   `json:"query"`
	Options          *struct {
		ResultFormat string  `json:"resultFormat"`
		Top          *int    `json:"$top"`
		Skip         *int    `json:"$skip"`
		SkipToken    *string `json:"$skipToken"`
	} `json:"options"`
}

// skipToken is the fake's continuation token (opaque to clients).
type skipToken struct {
	Offset int    `json:"o"`
	Size   int    `json:"n"`
	Query  string `json:"q"`
}

func tableOf(query string) string {
	q := strings.TrimLeftFunc(query, unicode.IsSpace)
	end := strings.IndexFunc(q, func(r rune) bool { return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') })
	if end < 0 {
		end = len(q)
	}
	for _, t := range []string{TableResources, TableResourceContainers, TableAuthorizationResources} {
		if strings.EqualFold(q[:end], t) {
			return t
		}
	}
	return ""
}

func (s *Server) resources(w http.ResponseWriter, r *http.Request) {
	rec := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path}
	defer func() { s.record(rec) }()
	s.mu.Lock()
	s.calls++
	n := s.calls
	f, hasFault := s.failOn[n]
	s.mu.Unlock()
	fail := func(status int, code, msg string) {
		rec.Status = status
		armError(w, status, code, msg)
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	valid := ok && s.tokens[tok]
	s.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+s.URL+`/`+s.Tenant.ID+`", error="invalid_token", error_description="The access token is invalid."`)
		fail(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return
	}
	remaining, reset := "14", "00:00:05"
	if s.quota > 0 {
		s.mu.Lock()
		now := time.Now()
		if now.Sub(s.winStart) >= s.window {
			s.winStart, s.winUsed = now, 0
		}
		s.winUsed++
		left, until := s.quota-s.winUsed, s.winStart.Add(s.window).Sub(now)
		s.mu.Unlock()
		reset = hms(until)
		remaining = strconv.Itoa(max(left, 0))
		if left < 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((until+time.Second-1)/time.Second)))
			w.Header().Set("x-ms-user-quota-remaining", "0")
			w.Header().Set("x-ms-user-quota-resets-after", reset)
			fail(http.StatusTooManyRequests, "RateLimiting", "Please provide below info when asking for support: ... The request was throttled: user quota exceeded.")
			return
		}
	}
	if r.URL.Query().Get("api-version") == "" {
		fail(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	var req queryRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "+err.Error())
		return
	}
	rec.Query, rec.Subscriptions = req.Query, req.Subscriptions
	rec.Table = tableOf(req.Query)
	if hasFault && f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			rec.Status = 499
			return
		}
	}
	if hasFault && f.status != http.StatusOK {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.Header().Set("x-ms-user-quota-remaining", "0")
		w.Header().Set("x-ms-user-quota-resets-after", "00:00:01")
		code := "ServiceUnavailable"
		if f.status == http.StatusTooManyRequests {
			code = "RateLimiting"
		}
		fail(f.status, code, "injected fault")
		return
	}
	if rec.Table == "" {
		fail(http.StatusBadRequest, "BadRequest", "Please provide below info when asking for support: ... Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying. (InvalidQuery: table not found)")
		return
	}
	var subs []int
	if len(req.Subscriptions) > 0 && !s.ignoreSubs {
		subs = []int{}
		for _, sub := range req.Subscriptions {
			i := s.Tenant.subIndex(sub)
			if i < 0 {
				fail(http.StatusBadRequest, "BadRequest", "subscription not found or not accessible: "+sub)
				return
			}
			subs = append(subs, i)
		}
	}
	size, off := 100, 0
	if o := req.Options; o != nil {
		if o.ResultFormat != "" && !strings.EqualFold(o.ResultFormat, "objectArray") && !strings.EqualFold(o.ResultFormat, "table") {
			fail(http.StatusBadRequest, "BadRequest", "invalid resultFormat")
			return
		}
		if o.ResultFormat != "" && strings.EqualFold(o.ResultFormat, "table") {
			fail(http.StatusBadRequest, "BadRequest", "the fake serves resultFormat objectArray only")
			return
		}
		if o.SkipToken != nil && *o.SkipToken != "" {
			rec.SkipToken = *o.SkipToken
			raw, err := base64.RawURLEncoding.DecodeString(*o.SkipToken)
			var st skipToken
			if err != nil || json.Unmarshal(raw, &st) != nil || st.Query != req.Query {
				fail(http.StatusBadRequest, "BadRequest", "invalid $skipToken (it must come with the same query and scopes)")
				return
			}
			off, size = st.Offset, st.Size
		}
		if o.Top != nil {
			if *o.Top < 1 || *o.Top > 1000 {
				fail(http.StatusBadRequest, "BadRequest", "$top must be between 1 and 1000")
				return
			}
			size = *o.Top
			rec.Top = *o.Top
		}
		if o.Skip != nil {
			if *o.Skip < 0 {
				fail(http.StatusBadRequest, "BadRequest", "$skip must not be negative")
				return
			}
			off = *o.Skip
			rec.Skip = *o.Skip
		}
	}
	size = min(size, s.maxPage)
	for _, sub := range req.Subscriptions {
		sf, ok := s.subFails[strings.ToLower(sub)]
		if ok && off+size > sf.afterRows {
			fail(sf.status, "InternalServerError", "injected failure for subscription "+sub)
			return
		}
	}
	var body bytes.Buffer
	body.WriteString(`{"data":[`)
	count := 0
	enc := json.NewEncoder(&body)
	var encErr error
	total := s.Tenant.Rows(rec.Table, subs, off, size, func(row map[string]any) bool {
		if count > 0 {
			body.WriteByte(',')
		}
		count++
		if err := enc.Encode(row); err != nil {
			encErr = err
			return false
		}
		return true
	})
	if encErr != nil {
		fail(http.StatusInternalServerError, "InternalServerError", encErr.Error())
		return
	}
	fmt.Fprintf(&body, `],"count":%d,"totalRecords":%d,"resultTruncated":"false","facets":[]`, count, total)
	if off+count < total {
		raw, _ := json.Marshal(skipToken{Offset: off + count, Size: size, Query: req.Query})
		fmt.Fprintf(&body, `,"$skipToken":%q`, base64.RawURLEncoding.EncodeToString(raw))
	}
	body.WriteString("}")
	if hasFault && f.quota {
		remaining = "0"
		reset = hms(f.quotaReset)
	}
	w.Header().Set("x-ms-user-quota-remaining", remaining)
	w.Header().Set("x-ms-user-quota-resets-after", reset)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	rec.Status, rec.Rows = http.StatusOK, count
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body.Bytes())
}

// hms formats d as Resource Graph's hh:mm:ss, rounding up to the second.
func hms(d time.Duration) string {
	d = (d + time.Second - 1).Truncate(time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// Env is the environment that points atg-server or atg at this fake with
// the static token: ATG_AZURE_ARM_ENDPOINT, AZURE_ACCESS_TOKEN,
// SSL_CERT_FILE (the server's certificate), ATG_TARGET_TENANT_ID and
// AZURE_AUTHORITY_HOST.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"ATG_AZURE_ARM_ENDPOINT": s.URL, "AZURE_ACCESS_TOKEN": s.Token, "SSL_CERT_FILE": s.CAFile,
		"ATG_TARGET_TENANT_ID": s.Tenant.ID, "AZURE_AUTHORITY_HOST": s.URL,
	}
}
