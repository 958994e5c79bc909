package atg

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// testServer starts a Server on a random port against the test Neo4j, with
// an audit log in a temporary folder, and returns it with a read+write key
// and an admin key.
func testServer(t *testing.T, mutate func(*Server)) (*Server, string, string) {
	t.Helper()
	s := neo4jtest.Require(t)
	ctx := context.Background()
	store := auth.NewMemoryStore()
	key, _, err := store.Create(ctx, auth.CreateOptions{ClientID: "tester", Environment: auth.Dev})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := store.Create(ctx, auth.CreateOptions{ClientID: "root", Environment: auth.Dev, Scopes: []auth.Scope{auth.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	db := neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}
	srv := startServer(t, db, store, func(srv *Server) {
		srv.Config.AuditLog = filepath.Join(t.TempDir(), "audit.log")
		if mutate != nil {
			mutate(srv)
		}
	})
	return srv, key, admin
}

// startServer starts a Server on a random port of 127.0.0.1 against db,
// with the keys of store and the audit log off, after mutate (if not nil)
// has changed it; it is shut down when t ends.
func startServer(t *testing.T, db neo4jpool.Config, store auth.KeyStore, mutate func(*Server)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{
		Config: ServerConfig{
			Host: "127.0.0.1", Port: 8000, Workers: 1, MaxConcurrentOps: 2, Environment: auth.Dev,
			MaxBodyBytes: DefaultMaxBodyBytes, QueryMaxRows: DefaultQueryMaxRows,
			OperationRetention: time.Hour, ShutdownTimeout: 10 * time.Second, AuditLog: "off",
			Neo4j: db.WithDefaults(),
		},
		Logger: quietLog, KeyStore: store, Listener: ln,
	}
	if mutate != nil {
		mutate(srv)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}

func call(t *testing.T, srv *Server, method, path, key string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// tenantGraph builds 1 tenant, subs subscriptions, rgs resource groups per
// subscription and res resources per group, with CONTAINS relationships.
// Every node also carries label so the test can count and clean up its own.
func tenantGraph(label string, subs, rgs, res int) ImportParams {
	var g ImportParams
	add := func(id, kind string) {
		g.Nodes = append(g.Nodes, neo4jpool.Node{ID: id, Labels: []string{kind, label}, Properties: map[string]any{"name": id}})
	}
	rel := func(from, to string) {
		g.Relationships = append(g.Relationships, neo4jpool.Relationship{Type: "CONTAINS", From: from, To: to})
	}
	tenant := label + "-tenant"
	add(tenant, "Tenant")
	for s := range subs {
		sub := fmt.Sprintf("%s-sub-%d", label, s)
		add(sub, "Subscription")
		rel(tenant, sub)
		for r := range rgs {
			rg := fmt.Sprintf("%s-rg-%d", sub, r)
			add(rg, "ResourceGroup")
			rel(sub, rg)
			for x := range res {
				id := fmt.Sprintf("%s-res-%d", rg, x)
				add(id, "Resource")
				rel(rg, id)
			}
		}
	}
	return g
}

func countQuery(t *testing.T, srv *Server, key, cypher string, params map[string]any) int64 {
	t.Helper()
	status, body := call(t, srv, "POST", "/api/v1/query", key, map[string]any{"query": cypher, "parameters": params})
	if status != 200 {
		t.Fatalf("count query: %d %s", status, body)
	}
	var qr transport.QueryResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&qr); err != nil {
		t.Fatal(err)
	}
	n, _ := qr.Rows[0][0].(json.Number).Int64()
	return n
}

// TestImportTenantGraphEndToEnd imports a generated tenant graph (1 tenant,
// 5 subscriptions, 50 resource groups, 5,000 resources) as an operation over
// HTTP, follows its events to the end and checks the graph with queries.
func TestImportTenantGraphEndToEnd(t *testing.T) {
	t.Parallel()
	srv, key, _ := testServer(t, nil)
	label := neo4jtest.Unique(t)
	s := neo4jtest.Require(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)

	g := tenantGraph(label, 5, 10, 100)
	g.ChunkSize = 500
	if len(g.Nodes) != 5056 || len(g.Relationships) != 5055 {
		t.Fatalf("graph has %d nodes, %d relationships", len(g.Nodes), len(g.Relationships))
	}
	status, body := call(t, srv, "POST", "/api/v1/operations", key, map[string]any{"type": "import", "params": g})
	if status != 202 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var sub struct {
		ID    string          `json:"operation_id"`
		Links transport.Links `json:"links"`
	}
	if err := json.Unmarshal(body, &sub); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL()+sub.Links.Events, nil) // by token
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := transport.NewSSEReader(resp.Body)
	var last float64
	progressEvents := 0
	var terminal transport.SSEEvent
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Event == "progress" {
			var p operations.ProgressData
			if err := json.Unmarshal(ev.Data, &p); err != nil {
				t.Fatal(err)
			}
			if p.Percent < last {
				t.Errorf("progress went back: %v after %v", p.Percent, last)
			}
			last = p.Percent
			progressEvents++
		}
		terminal = ev
	}
	if terminal.Event != "complete" || last != 100 || progressEvents != 22 {
		t.Fatalf("ended with %q %s after %d progress events (last %v%%)", terminal.Event, terminal.Data, progressEvents, last)
	}
	var done operations.TerminalData
	if err := json.Unmarshal(terminal.Data, &done); err != nil {
		t.Fatal(err)
	}
	var res neo4jpool.ImportResult
	if err := json.Unmarshal(done.Result, &res); err != nil {
		t.Fatal(err)
	}
	if res.Nodes != 5056 || res.Relationships != 5055 || res.Chunks != 22 {
		t.Errorf("result %+v", res)
	}
	if n := countQuery(t, srv, key, "MATCH (n:"+label+") RETURN count(n)", nil); n != 5056 {
		t.Errorf("nodes in Neo4j: %d", n)
	}
	if n := countQuery(t, srv, key, "MATCH (:"+label+")-[c:CONTAINS]->(:"+label+") RETURN count(c)", nil); n != 5055 {
		t.Errorf("CONTAINS relationships in Neo4j: %d", n)
	}
	if n := countQuery(t, srv, key, "MATCH (:Tenant:"+label+")-[:CONTAINS*3]->(r:Resource:"+label+") RETURN count(r)", nil); n != 5000 {
		t.Errorf("resources under the tenant: %d", n)
	}
}

func TestImportValidatedAtSubmit(t *testing.T) {
	t.Parallel()
	srv, key, _ := testServer(t, nil)
	for name, params := range map[string]string{
		"injection label":  `{"nodes":[{"id":"a","labels":["Resource` + "`" + `) DETACH DELETE n //"]}]}`,
		"bad chunk size":   `{"nodes":[],"chunk_size":-5}`,
		"unknown field":    `{"nodes":[],"edges":[]}`,
		"bad rel type":     `{"relationships":[{"type":"has space","from":"a","to":"b"}]}`,
		"nodes not a list": `{"nodes":{"id":"a"}}`,
	} {
		status, body := call(t, srv, "POST", "/api/v1/operations", key, map[string]any{"type": "import", "params": json.RawMessage(params)})
		if status != 400 || !strings.Contains(string(body), "VALIDATION_ERROR") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
}

// TestCancelStopsImport cancels a running import and checks that the node
// count stops growing.
func TestCancelStopsImport(t *testing.T) {
	t.Parallel()
	srv, key, _ := testServer(t, nil)
	label := neo4jtest.Unique(t)
	s := neo4jtest.Require(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)
	g := tenantGraph(label, 4, 10, 500) // 20,045 nodes
	g.ChunkSize = 100
	status, body := call(t, srv, "POST", "/api/v1/operations", key, map[string]any{"type": "import", "params": g})
	if status != 202 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var sub struct {
		ID string `json:"operation_id"`
	}
	_ = json.Unmarshal(body, &sub)
	deadline := time.Now().Add(30 * time.Second)
	for countQuery(t, srv, key, "MATCH (n:"+label+") RETURN count(n)", nil) < 500 {
		if time.Now().After(deadline) {
			t.Fatal("import made no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, body = call(t, srv, "DELETE", "/api/v1/operations/"+sub.ID, key, nil)
	if status != 200 || !strings.Contains(string(body), `"status":"cancelled"`) {
		t.Fatalf("cancel: %d %s", status, body)
	}
	time.Sleep(300 * time.Millisecond) // a chunk in flight may still commit
	after := countQuery(t, srv, key, "MATCH (n:"+label+") RETURN count(n)", nil)
	time.Sleep(time.Second)
	later := countQuery(t, srv, key, "MATCH (n:"+label+") RETURN count(n)", nil)
	if later != after || later >= int64(len(g.Nodes)) {
		t.Errorf("node count kept growing after cancel: %d then %d (of %d)", after, later, len(g.Nodes))
	}
	status, body = call(t, srv, "GET", "/api/v1/operations/"+sub.ID, key, nil)
	if status != 200 || !strings.Contains(string(body), `"status":"cancelled"`) {
		t.Errorf("after cancel: %s", body)
	}
}

func TestShutdownCancelsRunningOperations(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	srv, key, _ := testServer(t, func(s *Server) {
		s.Types = []operations.Type{{Name: "wait", Run: func(ctx context.Context, _ json.RawMessage, _ operations.Reporter) (any, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		}}}
	})
	status, body := call(t, srv, "POST", "/api/v1/operations", key, map[string]any{"type": "wait"})
	if status != 202 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var sub struct {
		ID string `json:"operation_id"`
	}
	_ = json.Unmarshal(body, &sub)
	<-started
	engine := srv.Engine()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	op, err := engine.Get(ctx, sub.ID)
	if err != nil || op.Status != operations.Cancelled || op.Error.Message != "server shutdown" {
		t.Errorf("after shutdown: %+v %v", op, err)
	}
	if err := srv.Shutdown(ctx); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

func TestDevServerGeneratesOneKeyAndOthersRefuseWithoutKeys(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	base := ServerConfig{Host: "127.0.0.1", Port: 8000, Workers: 1, MaxConcurrentOps: 1, Environment: auth.Dev,
		MaxBodyBytes: DefaultMaxBodyBytes, QueryMaxRows: 10, OperationRetention: time.Hour, ShutdownTimeout: time.Second,
		AuditLog: "off", Neo4j: neo4jpool.Config{URI: s.URI, User: s.User, Password: "Unused-Passw0rd!xx"}.WithDefaults()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dev := &Server{Config: base, Logger: quietLog, Listener: ln}
	if err := dev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer dev.Shutdown(context.Background())
	key := dev.DevKey()
	if _, err := auth.ParseKey(key); err != nil {
		t.Fatalf("dev key %q: %v", key, err)
	}
	if status, _ := call(t, dev, "GET", "/api/v1/status", key, nil); status != 200 {
		t.Errorf("dev key status %d", status)
	}
	if status, _ := call(t, dev, "GET", "/api/v1/status", "atg_dev_"+strings.Repeat("0", 64), nil); status != 401 {
		t.Errorf("other key status %d", status)
	}
	integ := base
	integ.Environment = auth.Integration
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	err := (&Server{Config: integ, Logger: quietLog, Listener: ln2}).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no usable integration API key") {
		t.Errorf("integration without keys: %v", err)
	}
}

// writeCert writes a fresh self-signed certificate for 127.0.0.1 with the
// given serial number to certFile and keyFile.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "atg test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSServesAndReloads serves HTTPS (TLS 1.2+) from certificate files
// and picks up a renewed certificate on Reload without a restart.
func TestTLSServesAndReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1001)
	srv, key, _ := testServer(t, func(s *Server) {
		s.Config.TLSCertFile, s.Config.TLSKeyFile = certFile, keyFile
	})
	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("URL %s", srv.URL())
	}
	serial := func(maxVersion uint16) (*big.Int, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion}}} //nolint:gosec // test of our own self-signed cert
		defer c.CloseIdleConnections()
		req, _ := http.NewRequest("GET", srv.URL()+"/api/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber, nil
	}
	if got, err := serial(0); err != nil || got.Int64() != 1001 {
		t.Fatalf("first certificate: %v %v", got, err)
	}
	if _, err := serial(tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
	writeCert(t, certFile, keyFile, 1002)
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := serial(0); err != nil || got.Int64() != 1002 {
		t.Errorf("after reload: %v %v", got, err)
	}
	// A broken file keeps the working certificate.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "ATG_TLS_CERT_FILE") {
		t.Errorf("reload of a broken certificate: %v", err)
	}
	if got, err := serial(0); err != nil || got.Int64() != 1002 {
		t.Errorf("after a failed reload: %v %v", got, err)
	}
	// Plain HTTP to the TLS port is refused.
	resp, err := http.Get("http://" + strings.TrimPrefix(srv.URL(), "https://") + "/livez")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS port")
		}
	}
}

// TestPreflightLeavesTheServerAsItWas checks that Preflight reports what
// Start would refuse, as a *SetupError matching ErrInvalidConfig, and
// changes nothing on the Server: a passing Preflight can be followed by
// Start.
func TestPreflightLeavesTheServerAsItWas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := ServerConfig{Host: "127.0.0.1", Port: 8000, Workers: 1, MaxConcurrentOps: 1, Environment: auth.Production,
		MaxBodyBytes: DefaultMaxBodyBytes, QueryMaxRows: DefaultQueryMaxRows, OperationRetention: time.Hour,
		ShutdownTimeout: time.Second, AuditLog: "off", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		KeysFile: filepath.Join(t.TempDir(), "keys.json"),
		Neo4j:    neo4jpool.Config{URI: "bolt://127.0.0.1:1", User: "neo4j", Password: "Unused-Passw0rd!xx"}.WithDefaults()}
	err := (&Server{Config: cfg, Logger: quietLog}).Preflight(ctx)
	var se *SetupError
	if !errors.As(err, &se) || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "no usable production API key") {
		t.Fatalf("production without keys: %v (%T), want a *SetupError matching ErrInvalidConfig", err, err)
	}

	cfg.Environment, cfg.KeysFile, cfg.TrustedProxies = auth.Dev, "", nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Config: cfg, Logger: quietLog, Listener: ln}
	if err := srv.Preflight(ctx); err != nil {
		t.Fatalf("dev without keys: %v", err)
	}
	if srv.DevKey() != "" || srv.URL() != "" || srv.Handler() != nil {
		t.Fatalf("Preflight changed the server: dev key %q, URL %q", srv.DevKey(), srv.URL())
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	if srv.DevKey() == "" || srv.URL() == "" {
		t.Errorf("Start after Preflight: dev key %q, URL %q", srv.DevKey(), srv.URL())
	}
}

// TestServerKeysFromEnvironmentAndFile checks a server whose keys come from
// ATG_API_KEYS and a keys file at once: keys of both authenticate, a key
// added to the file authenticates after Reload, a revoked one stops, and no
// dev key is generated.
func TestServerKeysFromEnvironmentAndFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	envKey, _, err := auth.NewMemoryStore().Create(ctx, auth.CreateOptions{ClientID: "x", Environment: auth.Dev})
	if err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	admin, err := auth.OpenFileStore(ctx, keysFile, auth.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	fileKey, fileRec, err := admin.Create(ctx, auth.CreateOptions{ClientID: "from-file", Environment: auth.Dev})
	if err != nil {
		t.Fatal(err)
	}
	unreachable := neo4jpool.Config{URI: "bolt://127.0.0.1:1", User: "neo4j", Password: "Unused-Passw0rd!xx"}
	srv := startServer(t, unreachable, nil, func(srv *Server) {
		srv.Config.APIKeys = []string{envKey}
		srv.Config.KeysFile = keysFile
	})
	if srv.DevKey() != "" {
		t.Errorf("generated a dev key although keys are configured")
	}
	status := func(key string) int {
		code, _ := call(t, srv, http.MethodGet, "/api/v1/status", key, nil)
		return code
	}
	if status(envKey) != http.StatusOK || status(fileKey) != http.StatusOK {
		t.Fatalf("ATG_API_KEYS key: %d, keys-file key: %d; want 200 and 200", status(envKey), status(fileKey))
	}
	newKey, _, err := admin.Create(ctx, auth.CreateOptions{ClientID: "added", Environment: auth.Dev})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Revoke(ctx, fileRec.ID); err != nil {
		t.Fatal(err)
	}
	if got := status(newKey); got != http.StatusUnauthorized {
		t.Errorf("key added to the file, before Reload: %d, want 401", got)
	}
	if err := srv.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if status(newKey) != http.StatusOK || status(fileKey) != http.StatusUnauthorized || status(envKey) != http.StatusOK {
		t.Errorf("after Reload: added %d (want 200), revoked %d (want 401), ATG_API_KEYS %d (want 200)",
			status(newKey), status(fileKey), status(envKey))
	}
}
