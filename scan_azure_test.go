package atg

import (
	"context"
	"testing"
	"time"

	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/azure/azuretest"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// TestScanFakeAzure scans a tenant generated and served by the fake Azure
// (TLS, static token, Resource Graph pages of 50 rows, a server that
// ignores the subscription filter) through Client.Scan into real Neo4j:
// every typed relationship appears, a rescan changes nothing, and a
// subscription whose read fails part-way keeps its data while the other
// is pruned.
func TestScanFakeAzure(t *testing.T) {
	t.Parallel()
	fake := azuretest.NewServer(t, azuretest.Options{Seed: time.Now().UnixNano(), Resources: 120, Subscriptions: 2, MaxPageSize: 50, IgnoreSubscriptions: true})
	tenant := fake.Tenant.ID
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = neo4jtest.Query(ctx, d, s, "MATCH (n:AzureNode {tenant_id: $t}) DETACH DELETE n", map[string]any{"t": tenant})
	})
	source := func(ctx context.Context, p ScanParams) (azure.Source, error) {
		return azure.NewResourceGraphSource(ctx, azure.Config{TenantID: p.TenantID, ARMEndpoint: fake.URL, AuthorityHost: fake.URL,
			AccessToken: azure.Secret(fake.Token), HTTPClient: fake.Client(), RetryDelay: time.Millisecond})
	}
	c, err := NewClient(ClientOptions{Neo4j: neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}, Logger: quietLog, ScanSource: source})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })

	first, err := c.Scan(t.Context(), ScanParams{TenantID: tenant})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Complete || len(first.Subscriptions) != 2 || first.Stats.APICalls == 0 || first.Stats.Pages < 3 {
		t.Fatalf("first scan: %+v", first)
	}
	p := map[string]any{"t": tenant}
	for _, typ := range []string{"CONTAINS", "USES_SUBNET", "CONNECTED_TO", "SECURED_BY", "ATTACHED_TO", "HAS_PUBLIC_IP", "USES_IDENTITY", "HAS_ROLE", "CONNECTED_TO_PE", "REFERENCES"} {
		if n := neo4jtest.Count(t, d, s, "MATCH (:AzureNode {tenant_id: $t})-[r:"+typ+"]->(:AzureNode {tenant_id: $t}) RETURN count(r)", p); n == 0 {
			t.Errorf("no %s relationship from the fake tenant", typ)
		}
	}
	again, err := c.Scan(t.Context(), ScanParams{TenantID: tenant})
	if err != nil {
		t.Fatal(err)
	}
	if again.Nodes.Added != 0 || again.Nodes.Changed != 0 || again.Nodes.Removed != 0 || again.Relationships.Removed != 0 {
		t.Errorf("rescan: nodes %+v, relationships %+v", again.Nodes, again.Relationships)
	}

	// The first subscription fails after 20 rows (every retry too).
	subA := fake.Tenant.Subscriptions[0]
	before := neo4jtest.Count(t, d, s, "MATCH (n:AzureNode {tenant_id: $t, subscription_id: $s}) RETURN count(n)", map[string]any{"t": tenant, "s": subA})
	fake.FailSubscription(subA, 20, 503)
	partial, err := c.Scan(t.Context(), ScanParams{TenantID: tenant})
	if err != nil {
		t.Fatalf("a partial read is not an error of the scan: %v", err)
	}
	for _, sr := range partial.Subscriptions {
		if sr.SubscriptionID == subA && (sr.Complete || sr.Pruned || sr.Error == "") {
			t.Errorf("failed subscription: %+v", sr)
		}
		if sr.SubscriptionID != subA && (!sr.Complete || !sr.Pruned) {
			t.Errorf("other subscription: %+v", sr)
		}
	}
	if after := neo4jtest.Count(t, d, s, "MATCH (n:AzureNode {tenant_id: $t, subscription_id: $s}) RETURN count(n)", map[string]any{"t": tenant, "s": subA}); after != before {
		t.Errorf("failed subscription has %d nodes, had %d", after, before)
	}
}
