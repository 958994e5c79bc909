package azure_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// newTenantID returns a fresh tenant GUID, so tests sharing the database
// never see each other's nodes.
func newTenantID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// tenantFixture returns the fixture with its tenant id replaced by a fresh
// one, and that id.
func tenantFixture(t *testing.T) (*azure.MemorySource, string) {
	t.Helper()
	raw, err := os.ReadFile("testdata/tenant.json")
	if err != nil {
		t.Fatal(err)
	}
	tenant := newTenantID()
	raw = bytes.ReplaceAll(raw, []byte(fixtureTenant), []byte(tenant))
	src, err := azure.ReadMemorySource(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return src, tenant
}

type dbEnv struct {
	m *neo4jpool.Manager
	s neo4jtest.Settings
}

func realDB(t *testing.T, tenants ...*string) *dbEnv {
	t.Helper()
	s := neo4jtest.Require(t)
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := m.Configure(t.Context(), "dev", neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}); err != nil {
		t.Fatal(err)
	}
	d := neo4jtest.Driver(t, s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, tn := range tenants {
			if _, err := neo4jtest.Query(ctx, d, s, "MATCH (n:AzureNode {tenant_id: $t}) DETACH DELETE n", map[string]any{"t": *tn}); err != nil {
				t.Errorf("cleanup of tenant %s: %v", *tn, err)
			}
		}
		_ = m.CloseAll(ctx)
	})
	return &dbEnv{m: m, s: s}
}

func (e *dbEnv) count(t *testing.T, cypher string, params map[string]any) int64 {
	t.Helper()
	d := neo4jtest.Driver(t, e.s)
	return neo4jtest.Count(t, d, e.s, cypher, params)
}

func (e *dbEnv) scan(t *testing.T, src azure.Source, cfg azure.ScanConfig) *azure.ScanResult {
	t.Helper()
	sc := &azure.Scanner{Manager: e.m, Env: "dev", Source: src}
	res, err := sc.Scan(t.Context(), cfg)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return res
}

func TestScanWritesTheGraphModel(t *testing.T) {
	t.Parallel()
	src, tenant := tenantFixture(t)
	db := realDB(t, &tenant)
	res := db.scan(t, src, azure.ScanConfig{TenantID: tenant, Prune: true, ChunkSize: 7})
	if !res.Complete || len(res.Subscriptions) != 2 {
		t.Fatalf("result: complete %v, %d subscriptions", res.Complete, len(res.Subscriptions))
	}
	p := map[string]any{"t": tenant}
	nodes := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) WHERE NOT n:Scan RETURN count(n)", p)
	if nodes != res.Nodes.Added {
		t.Errorf("%d nodes in the database, result says %d added", nodes, res.Nodes.Added)
	}
	rels := db.count(t, "MATCH (:AzureNode {tenant_id: $t})-[r]->(:AzureNode {tenant_id: $t}) WHERE type(r) <> 'HAS_SCAN' RETURN count(r)", p)
	if rels != res.Relationships.Added || rels == 0 {
		t.Errorf("%d relationships in the database, result says %d added", rels, res.Relationships.Added)
	}
	vm := arm(subA, "/resourcegroups/rg-app/providers/microsoft.compute/virtualmachines/vm1")
	snapp := arm(subA, "/resourcegroups/rg-net/providers/microsoft.network/virtualnetworks/vnet-hub/subnets/snet-app")
	for _, q := range []struct{ name, cypher string }{
		{"CONTAINS tenant->sub->rg->vm", "MATCH (:Tenant {tenant_id: $t, id: $t})-[:CONTAINS]->(:Subscription)-[:CONTAINS]->(:ResourceGroup)-[:CONTAINS]->(v:VirtualMachine {tenant_id: $t, id: $vm}) RETURN count(v)"},
		{"CONTAINS vnet->subnet", "MATCH (:VirtualNetwork {tenant_id: $t})-[:CONTAINS]->(s:Subnet {tenant_id: $t, id: $snapp}) RETURN count(s)"},
		{"CONTAINS server->database", "MATCH (:SqlServer {tenant_id: $t})-[:CONTAINS]->(d:SqlDatabase {tenant_id: $t}) RETURN count(d)"},
		{"USES_SUBNET", "MATCH (:VirtualMachine {tenant_id: $t, id: $vm})-[:USES_SUBNET]->(s:Subnet {id: $snapp}) RETURN count(s)"},
		{"CONNECTED_TO", "MATCH (:NetworkInterface {tenant_id: $t})-[:CONNECTED_TO]->(s:Subnet {tenant_id: $t, id: $snapp}) RETURN count(s)"},
		{"SECURED_BY nic", "MATCH (:NetworkInterface {tenant_id: $t})-[:SECURED_BY]->(n:NetworkSecurityGroup) RETURN count(n)"},
		{"SECURED_BY subnet", "MATCH (:Subnet {tenant_id: $t, id: $snapp})-[:SECURED_BY]->(n:NetworkSecurityGroup) RETURN count(n)"},
		{"ATTACHED_TO", "MATCH (:Disk {tenant_id: $t})-[:ATTACHED_TO]->(v:VirtualMachine {id: $vm}) RETURN count(v)"},
		{"HAS_PUBLIC_IP", "MATCH (:NetworkInterface {tenant_id: $t})-[:HAS_PUBLIC_IP]->(p:PublicIPAddress {ip_address: '20.1.2.3'}) RETURN count(p)"},
		{"USES_IDENTITY uai", "MATCH (:VirtualMachine {tenant_id: $t, id: $vm})-[:USES_IDENTITY]->(m:ManagedIdentity) RETURN count(m)"},
		{"USES_IDENTITY system", "MATCH (:VirtualMachine {tenant_id: $t, id: $vm})-[:USES_IDENTITY]->(p:ServicePrincipal) RETURN count(p)"},
		{"HAS_ROLE user owner", "MATCH (:User {tenant_id: $t})-[r:HAS_ROLE {role_name: 'Owner'}]->(:Subscription) RETURN count(r)"},
		{"HAS_ROLE custom role", "MATCH (:Group {tenant_id: $t})-[r:HAS_ROLE {role_name: 'Dev VM Operator'}]->(:ResourceGroup) RETURN count(r)"},
		{"HAS_ROLE identity on vault", "MATCH (:ManagedIdentity {tenant_id: $t})-[:USES_IDENTITY]->(:ServicePrincipal)-[:HAS_ROLE]->(k:KeyVault) RETURN count(k)"},
		{"CONNECTED_TO_PE", "MATCH (:PrivateEndpoint {tenant_id: $t})-[:CONNECTED_TO_PE]->(k:KeyVault) RETURN count(k)"},
		{"REFERENCES across subscriptions", "MATCH (:StorageAccount {tenant_id: $t, subscription_id: '" + subB + "'})-[r:REFERENCES {path: 'properties.networkAcls.virtualNetworkRules[0].id'}]->(:Subnet {id: $snapp}) RETURN count(r)"},
		{"Scan node", "MATCH (:Tenant {tenant_id: $t})-[:HAS_SCAN]->(s:Scan {tenant_id: $t, complete: true}) WHERE s.nodes_added > 0 AND s.api_calls > 0 RETURN count(s)"},
	} {
		if n := db.count(t, q.cypher, map[string]any{"t": tenant, "vm": vm, "snapp": snapp}); n < 1 {
			t.Errorf("%s: no match", q.name)
		}
	}
	// Every node and relationship carries the stamps.
	if n := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) WHERE n.scan_id IS NULL OR n.first_seen IS NULL OR n.last_seen IS NULL RETURN count(n)", p); n != 0 {
		t.Errorf("%d nodes without stamps", n)
	}
	if n := db.count(t, "MATCH (:AzureNode {tenant_id: $t})-[r]->() WHERE r.tenant_id <> $t OR r.tenant_id IS NULL OR r.scan_id IS NULL OR r.first_seen IS NULL OR r.last_seen IS NULL RETURN count(r)", p); n != 0 {
		t.Errorf("%d relationships without stamps", n)
	}
	// Rows of another tenant were left out.
	if n := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) WHERE n.id CONTAINS '33333333' RETURN count(n)", p); n != 0 {
		t.Errorf("%d nodes of another tenant", n)
	}
}

// mutate returns a copy of src with f applied to every row of table.
func mutate(src *azure.MemorySource, table azure.Table, f func(azure.Row) azure.Row) *azure.MemorySource {
	out := &azure.MemorySource{Tables: map[azure.Table][]azure.Row{}}
	for tb, rows := range src.Tables {
		for _, r := range rows {
			if tb == table {
				if r = f(r); r == nil {
					continue
				}
			}
			out.Tables[tb] = append(out.Tables[tb], r)
		}
	}
	return out
}

func TestScanIncrementalDiffAndPrune(t *testing.T) {
	t.Parallel()
	src, tenant := tenantFixture(t)
	db := realDB(t, &tenant)
	first := db.scan(t, src, azure.ScanConfig{TenantID: tenant, Prune: true})

	again := db.scan(t, src, azure.ScanConfig{TenantID: tenant, Prune: true})
	if again.Nodes.Added != 0 || again.Nodes.Changed != 0 || again.Nodes.Removed != 0 || again.Nodes.Unchanged != first.Nodes.Added {
		t.Errorf("rescan nodes: %+v (first scan added %d)", again.Nodes, first.Nodes.Added)
	}
	if again.Relationships.Added != 0 || again.Relationships.Changed != 0 || again.Relationships.Removed != 0 || again.Relationships.Unchanged != first.Relationships.Added {
		t.Errorf("rescan relationships: %+v (first scan added %d)", again.Relationships, first.Relationships.Added)
	}

	// vm1 gets a new tag; the public IP is deleted.
	pip := "pip-vm1"
	changed := mutate(src, azure.TableResources, func(r azure.Row) azure.Row {
		switch r["name"] {
		case "vm1":
			c2 := map[string]any{}
			for k, v := range r {
				c2[k] = v
			}
			c2["tags"] = map[string]any{"env": "prod", "owner": "alice"}
			return c2
		case "vnet-hub": // loses its cost-center tag
			c2 := map[string]any{}
			for k, v := range r {
				c2[k] = v
			}
			c2["tags"] = map[string]any{"env": "prod"}
			return c2
		case pip:
			return nil
		}
		return r
	})
	third := db.scan(t, changed, azure.ScanConfig{TenantID: tenant, Prune: true})
	var a azure.SubscriptionResult
	for _, s := range third.Subscriptions {
		if s.SubscriptionID == subA {
			a = s
		}
	}
	if a.Nodes.Changed != 2 || a.Nodes.Removed != 1 || a.Nodes.Added != 0 {
		t.Errorf("subscription A nodes after a tag change and a deletion: %+v", a.Nodes)
	}
	// The NIC's HAS_PUBLIC_IP and the public IP's REFERENCES went with it.
	if a.Relationships.Removed < 2 {
		t.Errorf("subscription A relationships removed: %+v", a.Relationships)
	}
	if n := db.count(t, "MATCH (n:PublicIPAddress {tenant_id: $t}) RETURN count(n)", map[string]any{"t": tenant}); n != 0 {
		t.Errorf("pruned public IP still there (%d)", n)
	}
	if n := db.count(t, "MATCH (v:VirtualMachine {tenant_id: $t, name: 'vm1'}) WHERE v.tag_owner = 'alice' AND v.first_seen < v.last_seen RETURN count(v)", map[string]any{"t": tenant}); n != 1 {
		t.Errorf("vm1 not updated in place (first_seen kept, last_seen moved): %d", n)
	}
	if n := db.count(t, "MATCH (v:VirtualNetwork {tenant_id: $t, name: 'vnet-hub'}) WHERE v.tag_cost_center IS NULL AND NOT v.tags CONTAINS 'cost-center' RETURN count(v)", map[string]any{"t": tenant}); n != 1 {
		t.Error("a removed tag is still on the node")
	}
	if n := db.count(t, "MATCH (:Tenant {tenant_id: $t})-[:HAS_SCAN]->(s:Scan) RETURN count(s)", map[string]any{"t": tenant}); n != 3 {
		t.Errorf("%d Scan nodes, want 3", n)
	}
}

// failingSource fails the Rows of table for subscription sub after
// `after` rows.
type failingSource struct {
	azure.Source
	table azure.Table
	sub   string
	after int
}

var errInjected = errors.New("injected: 503 from Resource Graph")

func (f *failingSource) Rows(ctx context.Context, table azure.Table, sub string) iter.Seq2[azure.Row, error] {
	inner := f.Source.Rows(ctx, table, sub)
	if table != f.table || sub != f.sub {
		return inner
	}
	return func(yield func(azure.Row, error) bool) {
		i := 0
		for r, err := range inner {
			if i == f.after {
				yield(nil, errInjected)
				return
			}
			i++
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

func TestScanPruneOnlyCompletedSubscriptions(t *testing.T) {
	t.Parallel()
	src, tenant := tenantFixture(t)
	db := realDB(t, &tenant)
	first := db.scan(t, src, azure.ScanConfig{TenantID: tenant, Prune: true})
	p := map[string]any{"t": tenant, "a": subA, "b": subB}
	before := db.count(t, "MATCH (n:AzureNode {tenant_id: $t, subscription_id: $a}) RETURN count(n)", p)
	beforeB := db.count(t, "MATCH (n:AzureNode {tenant_id: $t, subscription_id: $b}) RETURN count(n)", p)

	// Subscription A's resources fail after 3 rows (the rows yielded are of
	// both subscriptions: the source ignores the subscription filter), and
	// B lost a resource: only B is pruned.
	gone := mutate(src, azure.TableResources, func(r azure.Row) azure.Row {
		if r["name"] == "stdevshared" {
			return nil
		}
		return r
	})
	res := db.scan(t, &failingSource{Source: gone, table: azure.TableResources, sub: subA, after: 3}, azure.ScanConfig{TenantID: tenant, Prune: true, ChunkSize: 2})
	if res.Complete {
		t.Error("result says complete")
	}
	for _, s := range res.Subscriptions {
		switch s.SubscriptionID {
		case subA:
			if s.Complete || s.Pruned || !strings.Contains(s.Error, "injected") || s.Nodes.Removed != 0 {
				t.Errorf("failed subscription: %+v", s)
			}
		case subB:
			if !s.Complete || !s.Pruned || s.Nodes.Removed != 1 {
				t.Errorf("completed subscription: %+v", s)
			}
		}
	}
	if after := db.count(t, "MATCH (n:AzureNode {tenant_id: $t, subscription_id: $a}) RETURN count(n)", p); after != before {
		t.Errorf("failed subscription A has %d nodes, had %d", after, before)
	}
	if after := db.count(t, "MATCH (n:AzureNode {tenant_id: $t, subscription_id: $b}) RETURN count(n)", p); after != beforeB-1 {
		t.Errorf("subscription B has %d nodes, want %d", after, beforeB-1)
	}
	// Principals are kept: the tenant-level prune needs a complete scan.
	if n := db.count(t, "MATCH (n:Principal {tenant_id: $t}) RETURN count(n)", p); n == 0 {
		t.Error("principals pruned after a partial scan")
	}
	_ = first
}

func TestScanTwoTenantsOneDatabase(t *testing.T) {
	t.Parallel()
	srcA, tenantA := tenantFixture(t)
	srcB, tenantB := tenantFixture(t) // the same ARM ids, another tenant
	db := realDB(t, &tenantA, &tenantB)
	db.scan(t, srcA, azure.ScanConfig{TenantID: tenantA, Prune: true})
	nA := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) RETURN count(n)", map[string]any{"t": tenantA})

	// Tenant B's scan sees nothing of A's, and its prune (of an empty
	// tenant listing) leaves A alone.
	empty := mutate(srcB, azure.TableResources, func(azure.Row) azure.Row { return nil })
	db.scan(t, srcB, azure.ScanConfig{TenantID: tenantB, Prune: true})
	res := db.scan(t, empty, azure.ScanConfig{TenantID: tenantB, Prune: true})
	if res.Nodes.Removed == 0 {
		t.Errorf("tenant B's resources not pruned: %+v", res.Nodes)
	}
	if got := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) RETURN count(n)", map[string]any{"t": tenantA}); got != nA {
		t.Errorf("tenant A has %d nodes after B's scans, had %d", got, nA)
	}
	if n := db.count(t, "MATCH (a:AzureNode {tenant_id: $a})-[r]-(b:AzureNode {tenant_id: $b}) RETURN count(r)", map[string]any{"a": tenantA, "b": tenantB}); n != 0 {
		t.Errorf("%d relationships between tenants", n)
	}
}

func TestScanDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	src, tenant := tenantFixture(t)
	db := realDB(t, &tenant)
	p := map[string]any{"t": tenant}
	dry := db.scan(t, src, azure.ScanConfig{TenantID: tenant, Prune: true, DryRun: true})
	if n := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) RETURN count(n)", p); n != 0 {
		t.Fatalf("dry run wrote %d nodes", n)
	}
	real := db.scan(t, src, azure.ScanConfig{TenantID: tenant, Prune: true})
	if dry.Nodes != real.Nodes || dry.Relationships != real.Relationships {
		t.Errorf("dry run diff %+v / %+v, the scan did %+v / %+v", dry.Nodes, dry.Relationships, real.Nodes, real.Relationships)
	}
	// After the scan, a dry run of a smaller tenant reports the removal.
	gone := mutate(src, azure.TableResources, func(r azure.Row) azure.Row {
		if r["name"] == "vm1-osdisk" {
			return nil
		}
		return r
	})
	before := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) RETURN count(n)", p)
	dry2 := db.scan(t, gone, azure.ScanConfig{TenantID: tenant, Prune: true, DryRun: true})
	if dry2.Nodes.Removed != 1 || dry2.Nodes.Added != 0 || dry2.Nodes.Changed != 0 {
		t.Errorf("dry run after a deletion: %+v", dry2.Nodes)
	}
	if after := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) RETURN count(n)", p); after != before {
		t.Errorf("dry run changed the node count: %d -> %d", before, after)
	}
	// prune: false keeps what was not seen.
	np := db.scan(t, gone, azure.ScanConfig{TenantID: tenant})
	if np.Nodes.Removed != 0 || db.count(t, "MATCH (n:Disk {tenant_id: $t, name: 'vm1-osdisk'}) RETURN count(n)", p) != 1 {
		t.Errorf("prune:false removed nodes: %+v", np.Nodes)
	}
}

// slowSource cancels ctx after n rows.
type cancellingSource struct {
	azure.Source
	cancel func()
	after  int
	seen   int
}

func (c *cancellingSource) Rows(ctx context.Context, table azure.Table, sub string) iter.Seq2[azure.Row, error] {
	inner := c.Source.Rows(ctx, table, sub)
	return func(yield func(azure.Row, error) bool) {
		for r, err := range inner {
			c.seen++
			if c.seen == c.after {
				c.cancel()
			}
			if ctx.Err() != nil {
				yield(nil, ctx.Err())
				return
			}
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

func TestScanCancelMidScan(t *testing.T) {
	t.Parallel()
	src, tenant := tenantFixture(t)
	db := realDB(t, &tenant)
	db.scan(t, src, azure.ScanConfig{TenantID: tenant, Prune: true})
	p := map[string]any{"t": tenant}
	before := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) RETURN count(n)", p)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	gone := mutate(src, azure.TableResources, func(r azure.Row) azure.Row {
		if r["subscriptionId"] == subB {
			return nil
		}
		return r
	})
	sc := &azure.Scanner{Manager: db.m, Env: "dev", Source: &cancellingSource{Source: gone, cancel: cancel, after: 12}}
	_, err := sc.Scan(ctx, azure.ScanConfig{TenantID: tenant, Prune: true, ChunkSize: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled scan: %v", err)
	}
	if after := db.count(t, "MATCH (n:AzureNode {tenant_id: $t}) RETURN count(n)", p); after != before {
		t.Errorf("a cancelled scan pruned: %d -> %d nodes", before, after)
	}
}

// TestScanResourceListInventory scans the bundled `az resource list`
// inventory, which has no ResourceContainers rows: subscriptions come
// from the resources' ids, and their Subscription and ResourceGroup nodes
// are implied by them.
func TestScanResourceListInventory(t *testing.T) {
	t.Parallel()
	tenant := newTenantID()
	db := realDB(t, &tenant)
	res := db.scan(t, azure.SampleInventory(), azure.ScanConfig{TenantID: tenant, Prune: true})
	if !res.Complete || len(res.Subscriptions) == 0 || res.Nodes.Added < 4 {
		t.Fatalf("result: %+v", res)
	}
	p := map[string]any{"t": tenant}
	if n := db.count(t, "MATCH (:Tenant {tenant_id: $t})-[:CONTAINS]->(:Subscription)-[:CONTAINS]->(:ResourceGroup)-[:CONTAINS]->(r:Resource) RETURN count(r)", p); n == 0 {
		t.Error("no Tenant -> Subscription -> ResourceGroup -> Resource path")
	}
	again := db.scan(t, azure.SampleInventory(), azure.ScanConfig{TenantID: tenant, Prune: true})
	if again.Nodes.Added != 0 || again.Nodes.Removed != 0 || again.Nodes.Changed != 0 {
		t.Errorf("rescan of the same inventory: %+v", again.Nodes)
	}
}
