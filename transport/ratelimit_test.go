package transport

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPerKeyRateLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{rpm: 60, burst: 5})
	var last *http.Response
	for i := 0; i < 5; i++ {
		last = f.do("GET", "/api/v1/status", "reader", nil)
		if last.StatusCode != 200 {
			t.Fatalf("request %d: %d", i+1, last.StatusCode)
		}
	}
	if last.Header.Get("X-RateLimit-Limit") != "5" || last.Header.Get("X-RateLimit-Remaining") != "0" || last.Header.Get("X-RateLimit-Policy") != "60;w=60" {
		t.Errorf("headers: limit %q remaining %q", last.Header.Get("X-RateLimit-Limit"), last.Header.Get("X-RateLimit-Remaining"))
	}
	reset, err := strconv.ParseInt(last.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil || reset < time.Now().Unix() || reset > time.Now().Add(10*time.Second).Unix() {
		t.Errorf("X-RateLimit-Reset %q", last.Header.Get("X-RateLimit-Reset"))
	}
	resp := f.do("GET", "/api/v1/status", "reader", nil)
	e := wantError(t, resp, 429, CodeRateLimited)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if ra < 1 || ra > 2 || !strings.Contains(e.Message, "rate limit") {
		t.Errorf("Retry-After %q, message %q", resp.Header.Get("Retry-After"), e.Message)
	}
	// Another key has its own bucket; unauthenticated routes are not limited.
	if resp := f.do("GET", "/api/v1/status", "writer", nil); resp.StatusCode != 200 {
		t.Errorf("other key: %d", resp.StatusCode)
	}
	for range 10 {
		if resp := f.do("GET", "/api/v1/health", "", nil); resp.StatusCode != 200 {
			t.Fatalf("health limited: %d", resp.StatusCode)
		}
	}
	// After a token's worth of time, one more request passes.
	time.Sleep(1100 * time.Millisecond)
	if resp := f.do("GET", "/api/v1/status", "reader", nil); resp.StatusCode != 200 {
		t.Errorf("after refill: %d", resp.StatusCode)
	}
}

func TestFailedAuthenticationIsLimitedPerAddress(t *testing.T) {
	t.Parallel()
	var auditBuf syncWriter
	f := newFixture(t, fixtureOpts{authFails: 3, audit: &auditBuf})
	bad := "atg_dev_" + strings.Repeat("0", 64)
	for i := 0; i < 3; i++ {
		resp := f.do("GET", "/api/v1/status", "", nil, "Authorization", "Bearer "+bad)
		wantError(t, resp, 401, CodeAuthenticationFailed)
	}
	// The address is now blocked, even with a valid key: no guessing at speed.
	resp := f.do("GET", "/api/v1/status", "reader", nil)
	wantError(t, resp, 429, CodeRateLimited)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	lines := strings.Split(strings.TrimSpace(auditBuf.String()), "\n")
	failures := 0
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("audit line %q", l)
		}
		if rec["event"] == "auth_failure" {
			failures++
			if rec["outcome"] != "denied" || rec["remote_addr"] != "127.0.0.1" || rec["request_id"] == "" {
				t.Errorf("audit record %v", rec)
			}
			if d, _ := rec["details"].(map[string]any); d["reason"] != "unknown_key" {
				t.Errorf("reason %v", rec["details"])
			}
		}
	}
	if failures != 3 || strings.Contains(auditBuf.String(), strings.Repeat("0", 64)) {
		t.Errorf("%d auth_failure records (or the key leaked):\n%s", failures, auditBuf.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestMaxActiveOperationsPerClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOpts{maxActive: 2})
	for i := 0; i < 2; i++ {
		if resp := f.do("POST", "/api/v1/operations", "writer", `{"type":"block"}`); resp.StatusCode != 202 {
			t.Fatalf("submit %d: %d", i, resp.StatusCode)
		}
	}
	resp := f.do("POST", "/api/v1/operations", "writer", `{"type":"block"}`)
	e := wantError(t, resp, 429, CodeRateLimited)
	if resp.Header.Get("Retry-After") == "" || !strings.Contains(e.Message, "at most 2") {
		t.Errorf("429: %+v", e)
	}
	if resp := f.do("POST", "/api/v1/operations", "other", `{"type":"echo"}`); resp.StatusCode != 202 {
		t.Errorf("another client: %d", resp.StatusCode)
	}
	close(f.release)
	deadline := time.Now().Add(5 * time.Second)
	for f.do("POST", "/api/v1/operations", "writer", `{"type":"echo"}`).StatusCode != 202 {
		if time.Now().After(deadline) {
			t.Fatal("slots never freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLimiterMemoryIsBounded drives 100,000 distinct keys and addresses
// through the limiters and checks that they keep a bounded number of
// buckets and that idle ones are forgotten.
func TestLimiterMemoryIsBounded(t *testing.T) {
	t.Parallel()
	s := newLimiterSet(100, 20, 10_000)
	now := time.Now()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 100_000 {
		s.take("key-"+strconv.Itoa(i), now)
		if _, blocked := s.blocked("10.0."+strconv.Itoa(i/256%256)+"."+strconv.Itoa(i%256), now); blocked {
			t.Fatal("a fresh address is blocked")
		}
	}
	if n := s.size(); n > 20_000 {
		t.Errorf("%d buckets held after 200,000 distinct keys (cap 2 x 10,000)", n)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 20<<20 {
		t.Errorf("heap grew %d MB", grown>>20)
	}
	// Two idle periods later everything is forgotten.
	later := now.Add(2*s.idle + time.Second)
	s.take("fresh", later)
	s.take("fresh2", later.Add(s.idle))
	if n := s.size(); n > 2 {
		t.Errorf("%d buckets after the idle periods", n)
	}
	// A remembered bucket keeps its state within the period.
	k := newLimiterSet(60, 2, 10)
	k.take("a", now)
	k.take("a", now)
	if d := k.take("a", now); d.allowed {
		t.Error("third request in the same instant allowed with burst 2")
	}
}

// TestLookupsDoNotEvictFailingAddresses: checking whether an address is
// blocked adds nothing, so the traffic of many other addresses cannot push
// out the bucket of one that keeps failing and so reset its count.
func TestLookupsDoNotEvictFailingAddresses(t *testing.T) {
	t.Parallel()
	s := newLimiterSet(3, 3, 10) // a generation rotates at 10 buckets
	now := time.Now()
	for range 3 {
		s.take("203.0.113.66", now)
	}
	if _, blocked := s.blocked("203.0.113.66", now); !blocked {
		t.Fatal("three failures with a burst of 3 did not block")
	}
	for i := range 1000 {
		if _, blocked := s.blocked("10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), now); blocked {
			t.Fatalf("address %d blocked without failures", i)
		}
	}
	if n := s.size(); n != 1 {
		t.Errorf("%d buckets after 1,000 lookups, want only the failing address's", n)
	}
	if _, blocked := s.blocked("203.0.113.66", now); !blocked {
		t.Error("lookups of other addresses unblocked the failing one")
	}
}

func TestClientAddrTrustsOnlyConfiguredProxies(t *testing.T) {
	t.Parallel()
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.7")
	if err != nil {
		t.Fatal(err)
	}
	a := &API{opts: Options{TrustedProxies: proxies}}
	for _, tc := range []struct{ remote, xff, want string }{
		{"203.0.113.9:5000", "1.2.3.4", "203.0.113.9"},                // not a proxy: header ignored
		{"10.1.2.3:5000", "1.2.3.4", "1.2.3.4"},                       // proxy: last hop
		{"10.1.2.3:5000", "6.6.6.6, 1.2.3.4, 192.168.1.7", "1.2.3.4"}, // skip trusted hops only
		{"[::ffff:10.1.2.3]:5000", "1.2.3.4", "1.2.3.4"},
		{"10.1.2.3:5000", "", "10.1.2.3"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := a.clientAddr(r); got != tc.want {
			t.Errorf("%s + %q: got %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Error("bad prefix accepted")
	}
}

func TestRequireHTTPS(t *testing.T) {
	t.Parallel()
	// The httptest client connects from 127.0.0.1: trusted in one fixture,
	// not in the other. /readyz answers 200 only with the database up.
	trusted := newFixture(t, fixtureOpts{https: true, proxies: "127.0.0.1"})
	direct := newFixture(t, fixtureOpts{db: true, https: true})
	wantError(t, trusted.do("GET", "/api/v1/status", "reader", nil), 403, CodeForbidden)
	if resp := trusted.do("GET", "/api/v1/status", "reader", nil, "X-Forwarded-Proto", "https"); resp.StatusCode != 200 {
		t.Errorf("trusted proxy with https: %d", resp.StatusCode)
	}
	wantError(t, trusted.do("GET", "/api/v1/status", "reader", nil, "X-Forwarded-Proto", "http"), 403, CodeForbidden)
	wantError(t, direct.do("GET", "/api/v1/status", "reader", nil, "X-Forwarded-Proto", "https"), 403, CodeForbidden)
	wantError(t, direct.do("GET", "/api/v1/health", "", nil), 403, CodeForbidden)
	for _, p := range []string{"/livez", "/readyz"} {
		if resp := direct.do("GET", p, "", nil); resp.StatusCode != 200 {
			t.Errorf("%s must stay reachable for probes: %d", p, resp.StatusCode)
		}
	}
	// Over TLS it is accepted.
	srv := httptest.NewUnstartedServer(direct.api)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+direct.keys["reader"])
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("over TLS: %d", resp.StatusCode)
	}
}

// selfSigned returns a certificate for 127.0.0.1 and localhost.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "atg test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestAuditTrailOfOperationsAndWrites(t *testing.T) {
	t.Parallel()
	var buf syncWriter
	f := newFixture(t, fixtureOpts{db: true, audit: &buf})
	sub := decode[Submitted](t, f.do("POST", "/api/v1/operations", "writer", `{"type":"block"}`, HeaderRequestID, "req-submit"))
	f.do("DELETE", sub.Links.Self, "writer", nil, HeaderRequestID, "req-cancel")
	f.do("POST", "/api/v1/query", "writer", `{"query":"RETURN 1 AS x","mode":"write"}`)
	f.do("POST", "/api/v1/query", "writer", `{"query":"RETURN 1 AS x"}`) // reads are not audited
	var events []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		must(t, json.Unmarshal([]byte(l), &rec))
		events = append(events, fmt.Sprint(rec["event"], "/", rec["outcome"], "/", rec["request_id"], "/", rec["client_id"]))
		if _, err := time.Parse(time.RFC3339Nano, rec["time"].(string)); err != nil || !strings.HasSuffix(rec["time"].(string), "Z") {
			t.Errorf("time %v", rec["time"])
		}
	}
	want := []string{"operation_submit/accepted/req-submit/writer", "operation_cancel/cancelled/req-cancel/writer"}
	if len(events) != 3 || events[0] != want[0] || events[1] != want[1] || !strings.HasPrefix(events[2], "query_write/ok/") {
		t.Errorf("audit events %v", events)
	}
	if strings.Contains(buf.String(), f.keys["writer"]) {
		t.Error("a key reached the audit log")
	}
}
