package atg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"

	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

const scanFixtureTenant = "7d2c1f0e-5b7a-4c39-9e61-2f3b8a4d6c10"

func newScanTenant() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// fixtureSource returns the azure test fixture under a fresh tenant id,
// and that id; the tenant's nodes are deleted when t ends.
func fixtureSource(t *testing.T) (SourceFactory, string) {
	t.Helper()
	raw, err := os.ReadFile("azure/testdata/tenant.json")
	if err != nil {
		t.Fatal(err)
	}
	tenant := newScanTenant()
	raw = bytes.ReplaceAll(raw, []byte(scanFixtureTenant), []byte(tenant))
	src, err := azure.ReadMemorySource(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := neo4jtest.Query(ctx, d, s, "MATCH (n:AzureNode {tenant_id: $t}) DETACH DELETE n", map[string]any{"t": tenant}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return func(_ context.Context, p ScanParams) (azure.Source, error) {
		if p.TenantID != tenant {
			return nil, fmt.Errorf("scan of tenant %s, the fixture is %s", p.TenantID, tenant)
		}
		return src, nil
	}, tenant
}

func TestDecodeScanParams(t *testing.T) {
	t.Parallel()
	const tn = "7d2c1f0e-5b7a-4c39-9e61-2f3b8a4d6c10"
	tests := []struct {
		name, params, env, def string
		field                  string // "" for valid
		check                  func(ScanParams) bool
	}{
		{name: "tenant param", params: `{"tenant_id":"7D2C1F0E-5B7A-4C39-9E61-2F3B8A4D6C10"}`, env: "dev", check: func(p ScanParams) bool { return p.TenantID == tn && p.Prune == nil }},
		{name: "default tenant", params: `{}`, env: "dev", def: tn, check: func(p ScanParams) bool { return p.TenantID == tn }},
		{name: "empty body", params: ``, env: "dev", def: tn, check: func(p ScanParams) bool { return p.TenantID == tn }},
		{name: "all fields", params: `{"tenant_id":"` + tn + `","subscriptions":["11111111-AAAA-4bbb-8ccc-000000000001"],"resource_groups":["RG-App"],"prune":false,"dry_run":true,"chunk_size":500.0}`, env: "dev",
			check: func(p ScanParams) bool {
				return p.Subscriptions[0] == "11111111-aaaa-4bbb-8ccc-000000000001" && p.ResourceGroups[0] == "rg-app" && !*p.Prune && p.DryRun && p.ChunkSize == 500
			}},
		{name: "prefixed tenant in dev", params: `{"tenant_id":"contoso-` + tn + `"}`, env: "dev", check: func(p ScanParams) bool { return p.TenantID == "contoso-"+tn }},
		{name: "prefixed tenant in production", params: `{"tenant_id":"contoso-` + tn + `"}`, env: "production", field: "tenant_id"},
		{name: "bad default tenant names the variable", params: `{}`, env: "dev", def: "not-a-tenant", field: "ATG_TARGET_TENANT_ID"},
		{name: "bad tenant", params: `{"tenant_id":"contoso"}`, env: "dev", field: "tenant_id"},
		{name: "bad subscription", params: `{"tenant_id":"` + tn + `","subscriptions":["prod"]}`, env: "dev", field: "subscriptions[0]"},
		{name: "bad resource group", params: `{"tenant_id":"` + tn + `","resource_groups":["rg."]}`, env: "dev", field: "resource_groups[0]"},
		{name: "bad chunk size", params: `{"tenant_id":"` + tn + `","chunk_size":1.5}`, env: "dev", field: "chunk_size"},
		{name: "unknown field", params: `{"tenant_id":"` + tn + `","tenant":"x"}`, env: "dev", field: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := decodeScanParams(json.RawMessage(tc.params), tc.env, tc.def)
			if tc.check != nil {
				if err != nil || !tc.check(p) {
					t.Fatalf("got %+v, %v", p, err)
				}
				return
			}
			var ve *operations.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("error %v, want a ValidationError on %q", err, tc.field)
			}
		})
	}
}

func TestDecodeScanParamsNoTenant(t *testing.T) {
	t.Setenv("ATG_TARGET_TENANT_ID", "")
	_, err := decodeScanParams(json.RawMessage(`{}`), "dev", "")
	var ve *operations.ValidationError
	if !errors.As(err, &ve) || ve.Field != "tenant_id" || !strings.Contains(ve.Message, "ATG_TARGET_TENANT_ID") {
		t.Fatalf("error %v", err)
	}
	t.Setenv("ATG_TARGET_TENANT_ID", "7d2c1f0e-5b7a-4c39-9e61-2f3b8a4d6c10")
	if p, err := decodeScanParams(json.RawMessage(`{}`), "dev", ""); err != nil || p.TenantID == "" {
		t.Fatalf("from the environment: %+v, %v", p, err)
	}
}

// TestClientScanLocalAndRemote scans the fixture through Client.Scan in
// both modes: the remote server and the local client have the same Source
// factory injected.
func TestClientScanLocalAndRemote(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	for _, remote := range []bool{false, true} {
		t.Run(fmt.Sprintf("remote=%v", remote), func(t *testing.T) {
			t.Parallel()
			source, tenant := fixtureSource(t)
			var c *Client
			var err error
			if remote {
				srv, key, _ := testServer(t, func(srv *Server) { srv.ScanSource = source })
				c, err = NewClient(ClientOptions{Config: ClientConfig{RemoteMode: true, ServiceURL: srv.URL(), APIKey: key}})
			} else {
				c, err = NewClient(ClientOptions{Neo4j: neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database},
					Logger: quietLog, ScanSource: source})
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			var mu sync.Mutex
			phases := map[string]bool{}
			res, err := c.ScanWithProgress(t.Context(), ScanParams{TenantID: tenant, ChunkSize: 5}, func(p operations.Progress) {
				mu.Lock()
				phases[p.Phase] = true
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Complete || len(res.Subscriptions) != 2 || res.Nodes.Added == 0 || res.Relationships.Added == 0 || !res.Prune {
				t.Errorf("result: %+v", res)
			}
			mu.Lock()
			for _, ph := range []string{"subscriptions", "resources", "nodes", "edges", "prune"} {
				if !phases[ph] {
					t.Errorf("no %q progress (got %v)", ph, phases)
				}
			}
			mu.Unlock()
			again, err := c.Scan(t.Context(), ScanParams{TenantID: tenant, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if again.Nodes.Added != 0 || again.Nodes.Unchanged != res.Nodes.Added || !again.DryRun {
				t.Errorf("dry rescan: %+v", again.Nodes)
			}
		})
	}
}

func TestScanNotConfigured(t *testing.T) {
	t.Parallel()
	local, remote := bothClients(t)
	// A local client given no ScanSource cannot read Azure (the CLI gives
	// it one; a server reads Resource Graph with its own credentials).
	_, err := local.Scan(t.Context(), ScanParams{TenantID: newScanTenant()})
	var oe *operations.Error
	if !errors.As(err, &oe) || oe.Code != "SCAN_FAILED" || !strings.Contains(oe.Message, "Azure reading not configured") {
		t.Errorf("local: %v", err)
	}
	for _, c := range []*Client{local, remote} {
		// No tenant at all is refused at submit.
		_, err = c.Submit(t.Context(), ScanTypeName, map[string]any{"subscriptions": []string{"x"}})
		if err == nil || !strings.Contains(err.Error(), "subscriptions[0]") && !strings.Contains(err.Error(), "tenant") {
			t.Errorf("remote=%v: submit without a tenant: %v", c.Remote(), err)
		}
	}
}

// TestScanCancelledOperation cancels a scan operation while its Source is
// blocked mid-read: the operation ends CANCELLED and nothing is pruned.
func TestScanCancelledOperation(t *testing.T) {
	t.Parallel()
	source, tenant := fixtureSource(t)
	s := neo4jtest.Require(t)
	started := make(chan struct{})
	var once sync.Once
	blocking := func(ctx context.Context, p ScanParams) (azure.Source, error) {
		src, err := source(ctx, p)
		if err != nil {
			return nil, err
		}
		return &blockingSource{Source: src, after: 5, started: func() { once.Do(func() { close(started) }) }}, nil
	}
	c, err := NewClient(ClientOptions{Neo4j: neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}, Logger: quietLog, ScanSource: blocking})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	sub, err := c.Submit(t.Context(), ScanTypeName, ScanParams{TenantID: tenant})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if _, err := c.Cancel(t.Context(), sub.OperationID); err != nil {
		t.Fatal(err)
	}
	_, err = c.Wait(t.Context(), sub.OperationID, nil)
	var oe *operations.Error
	if !errors.As(err, &oe) || oe.Code != operations.CodeCancelled {
		t.Fatalf("cancelled scan: %v", err)
	}
	d := neo4jtest.Driver(t, s)
	if n := neo4jtest.Count(t, d, s, "MATCH (n:Scan {tenant_id: $t}) RETURN count(n)", map[string]any{"t": tenant}); n != 0 {
		t.Errorf("a cancelled scan recorded %d Scan nodes", n)
	}
}

// blockingSource blocks in Rows after `after` rows until ctx ends.
type blockingSource struct {
	azure.Source
	after   int
	n       int
	started func()
}

func (b *blockingSource) Rows(ctx context.Context, table azure.Table, sub string) iter.Seq2[azure.Row, error] {
	inner := b.Source.Rows(ctx, table, sub)
	return func(yield func(azure.Row, error) bool) {
		for r, err := range inner {
			b.n++
			if b.n == b.after {
				b.started()
				<-ctx.Done()
				yield(nil, ctx.Err())
				return
			}
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}
