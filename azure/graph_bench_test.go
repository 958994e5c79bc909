package azure_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
)

// generateTenant returns a tenant of about n resources in 2 subscriptions
// of 5 resource groups each: per group a virtual network with 2 subnets,
// an NSG, a storage account and a key vault, then VMs with a NIC, an OS
// disk and (every other one) a public IP, a user-assigned identity per 10
// VMs, and role assignments (a user per subscription, a group per group,
// each identity on its group's vault).
func generateTenant(tenant string, n int) *azure.MemorySource {
	src := &azure.MemorySource{Tables: map[azure.Table][]azure.Row{}, FilterSubscriptions: true}
	add := func(t azure.Table, r azure.Row) { src.Tables[t] = append(src.Tables[t], r) }
	const subs, groups = 2, 5
	perGroup := max(1, n/(subs*groups))
	guid := func(kind, i, j int) string { return fmt.Sprintf("%08x-0000-4000-8000-%04x%08x", kind, i, j) }
	res := func(sub, rg, typ, name string, props map[string]any, extra map[string]any) azure.Row {
		r := azure.Row{"id": "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/" + typ + "/" + name, "name": name, "type": typ,
			"tenantId": tenant, "location": "westeurope", "resourceGroup": rg, "subscriptionId": sub, "properties": props,
			"tags": map[string]any{"env": "bench", "owner": "team-" + rg}}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	for s := range subs {
		sub := guid(1, s, 0)
		add(azure.TableResourceContainers, azure.Row{"id": "/subscriptions/" + sub, "name": fmt.Sprintf("sub-%d", s), "type": azure.TypeSubscription, "tenantId": tenant, "subscriptionId": sub})
		add(azure.TableAuthorizationResources, azure.Row{"id": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleAssignments/" + guid(2, s, 0),
			"type": azure.TypeRoleAssignment, "tenantId": tenant, "subscriptionId": sub, "properties": map[string]any{
				"principalId": guid(3, 0, 1), "principalType": "User", "scope": "/subscriptions/" + sub,
				"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"}})
		for g := range groups {
			rg := fmt.Sprintf("rg-%d", g)
			rgID := "/subscriptions/" + sub + "/resourceGroups/" + rg
			add(azure.TableResourceContainers, azure.Row{"id": rgID, "name": rg, "type": azure.TypeResourceGroup, "tenantId": tenant, "subscriptionId": sub, "location": "westeurope"})
			add(azure.TableAuthorizationResources, azure.Row{"id": rgID + "/providers/Microsoft.Authorization/roleAssignments/" + guid(2, s, g+1),
				"type": azure.TypeRoleAssignment, "tenantId": tenant, "subscriptionId": sub, "properties": map[string]any{
					"principalId": guid(4, s, g), "principalType": "Group", "scope": rgID,
					"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"}})
			base := rgID + "/providers/"
			vnet := base + "Microsoft.Network/virtualNetworks/vnet"
			nsg := base + "Microsoft.Network/networkSecurityGroups/nsg"
			kv := base + "Microsoft.KeyVault/vaults/kv-" + rg
			add(azure.TableResources, res(sub, rg, "Microsoft.Network/virtualNetworks", "vnet", map[string]any{
				"addressSpace": map[string]any{"addressPrefixes": []any{"10.0.0.0/16"}},
				"subnets": []any{
					map[string]any{"id": vnet + "/subnets/app", "name": "app", "properties": map[string]any{"addressPrefix": "10.0.1.0/24", "networkSecurityGroup": map[string]any{"id": nsg}}},
					map[string]any{"id": vnet + "/subnets/data", "name": "data", "properties": map[string]any{"addressPrefix": "10.0.2.0/24"}},
				}}, nil))
			add(azure.TableResources, res(sub, rg, "Microsoft.Network/networkSecurityGroups", "nsg", map[string]any{"securityRules": []any{}}, nil))
			add(azure.TableResources, res(sub, rg, "Microsoft.Storage/storageAccounts", "st"+strconv.Itoa(g), map[string]any{
				"networkAcls": map[string]any{"virtualNetworkRules": []any{map[string]any{"id": vnet + "/subnets/data"}}}}, map[string]any{"kind": "StorageV2", "sku": map[string]any{"name": "Standard_LRS"}}))
			add(azure.TableResources, res(sub, rg, "Microsoft.KeyVault/vaults", "kv-"+rg, map[string]any{"vaultUri": "https://kv.vault.azure.net/"}, nil))
			count := 4
			var uai string
			for v := 0; count < perGroup; v++ {
				name := fmt.Sprintf("vm%d", v)
				vm := base + "Microsoft.Compute/virtualMachines/" + name
				nic := base + "Microsoft.Network/networkInterfaces/" + name + "-nic"
				disk := base + "Microsoft.Compute/disks/" + name + "-os"
				if v%10 == 0 {
					uai = base + "Microsoft.ManagedIdentity/userAssignedIdentities/id" + strconv.Itoa(v)
					pid := guid(5, s*groups+g, v)
					add(azure.TableResources, res(sub, rg, "Microsoft.ManagedIdentity/userAssignedIdentities", "id"+strconv.Itoa(v), map[string]any{"principalId": pid}, nil))
					add(azure.TableAuthorizationResources, azure.Row{"id": kv + "/providers/Microsoft.Authorization/roleAssignments/" + guid(6, s*groups+g, v),
						"type": azure.TypeRoleAssignment, "tenantId": tenant, "subscriptionId": sub, "properties": map[string]any{
							"principalId": pid, "principalType": "ServicePrincipal", "scope": kv,
							"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"}})
					count++
				}
				ipcfg := map[string]any{"subnet": map[string]any{"id": vnet + "/subnets/app"}, "privateIPAddress": "10.0.1.4"}
				if v%2 == 0 {
					pip := base + "Microsoft.Network/publicIPAddresses/" + name + "-ip"
					ipcfg["publicIPAddress"] = map[string]any{"id": pip}
					add(azure.TableResources, res(sub, rg, "Microsoft.Network/publicIPAddresses", name+"-ip", map[string]any{"ipAddress": "20.0.0.1"}, nil))
					count++
				}
				add(azure.TableResources, res(sub, rg, "Microsoft.Network/networkInterfaces", name+"-nic", map[string]any{
					"virtualMachine": map[string]any{"id": vm}, "networkSecurityGroup": map[string]any{"id": nsg},
					"ipConfigurations": []any{map[string]any{"name": "ipconfig1", "properties": ipcfg}}}, nil))
				add(azure.TableResources, res(sub, rg, "Microsoft.Compute/virtualMachines", name, map[string]any{
					"hardwareProfile": map[string]any{"vmSize": "Standard_D2s_v5"},
					"storageProfile":  map[string]any{"osDisk": map[string]any{"managedDisk": map[string]any{"id": disk}}},
					"networkProfile":  map[string]any{"networkInterfaces": []any{map[string]any{"id": nic}}}},
					map[string]any{"identity": map[string]any{"type": "SystemAssigned, UserAssigned", "principalId": guid(7, s*groups+g, v),
						"userAssignedIdentities": map[string]any{uai: map[string]any{}}}}))
				add(azure.TableResources, res(sub, rg, "Microsoft.Compute/disks", name+"-os", map[string]any{"diskSizeGB": 64}, map[string]any{"managedBy": vm}))
				count += 3
			}
		}
	}
	return src
}

// mappedGraph maps src like a scan and returns the same nodes and
// relationships as an import document, every node also labelled label.
func mappedGraph(tenant string, src azure.Source, label string) neo4jpool.Graph {
	m := &azure.Mapper{TenantID: tenant}
	var g neo4jpool.Graph
	seen := map[string]bool{}
	addN := func(ns []azure.Node) {
		for _, n := range ns {
			if !seen[n.ID] {
				seen[n.ID] = true
				g.Nodes = append(g.Nodes, neo4jpool.Node{ID: n.ID, Labels: append(append([]string{}, n.Labels...), label), Properties: n.Properties})
			}
		}
	}
	var rels []azure.Relationship
	ctx := context.Background()
	addN([]azure.Node{m.TenantNode()})
	var subs []string
	for row := range src.Rows(ctx, azure.TableResourceContainers, "") {
		if c, ns, rs, ok := m.ResourceContainer(row); ok {
			if c.IsSubscription {
				subs = append(subs, c.Subscription)
			}
			addN(ns)
			rels = append(rels, rs...)
		}
	}
	for _, s := range subs {
		for row := range src.Rows(ctx, azure.TableResources, s) {
			if ns, rs, ok := m.Resource(row, s); ok {
				addN(ns)
				rels = append(rels, rs...)
			}
		}
		for row := range src.Rows(ctx, azure.TableAuthorizationResources, s) {
			if ns, rs, ok := m.RoleAssignment(row, s); ok {
				addN(ns)
				rels = append(rels, rs...)
			}
		}
	}
	for _, r := range rels {
		if seen[r.From] && seen[r.To] {
			g.Relationships = append(g.Relationships, neo4jpool.Relationship{Type: r.Type, From: r.From, To: r.To, Properties: r.Properties})
		}
	}
	return g
}

// BenchmarkScanVsImport scans a generated tenant (ATG_SCAN_BENCH_RESOURCES
// resources, default 10,000) into Neo4j and imports the same nodes and
// relationships with the Importer, in the same run, and reports the
// scan's rate (nodes + relationships written per second, reading,
// mapping, diff and prune included) as a ratio of the importer's. Both
// first run once on a small tenant, so that neither pays for planning its
// statements. Everything written is deleted afterwards.
func BenchmarkScanVsImport(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("ATG_SCAN_BENCH_RESOURCES")); err == nil && v > 0 {
		n = v
	}
	s := neo4jtest.Require(b)
	ctx := context.Background()
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() { _ = m.CloseAll(context.Background()) })
	if err := m.Configure(ctx, "bench", neo4jpool.Config{URI: s.URI, User: s.User, Password: s.Password, Database: s.Database}); err != nil {
		b.Fatal(err)
	}
	d := neo4jtest.Driver(b, s)
	var tenants []string
	b.Cleanup(func() {
		for _, t := range tenants {
			for {
				recs, err := neo4jtest.Query(context.Background(), d, s, "MATCH (n:AzureNode {tenant_id: $t}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS c", map[string]any{"t": t})
				if err != nil || len(recs) == 0 || recs[0].Values[0].(int64) == 0 {
					break
				}
			}
		}
	})
	im := &neo4jpool.Importer{Manager: m, Env: "bench"}
	// importOnce imports a fresh copy of the generated tenant; scanOnce
	// scans another. Each returns the items written and the time taken.
	importOnce := func(size int) (int64, time.Duration) {
		tenant := newTenantID()
		src := generateTenant(tenant, size)
		label := neo4jtest.Unique(b)
		neo4jtest.CleanupLabel(b, d, s, label)
		g := mappedGraph(tenant, src, label)
		start := time.Now()
		ir, err := im.Import(ctx, g, nil)
		if err != nil {
			b.Fatal(err)
		}
		return int64(ir.Nodes + ir.Relationships), time.Since(start)
	}
	scanOnce := func(size int) (int64, time.Duration, *azure.ScanResult) {
		tenant := newTenantID()
		tenants = append(tenants, tenant)
		src := generateTenant(tenant, size)
		start := time.Now()
		last := ""
		sc := &azure.Scanner{Manager: m, Env: "bench", Source: src, Progress: func(p azure.ScanProgress) {
			if os.Getenv("ATG_SCAN_BENCH_PHASES") != "" && p.Phase != last {
				last = p.Phase
				b.Logf("%6dms %s", time.Since(start).Milliseconds(), p.Phase)
			}
		}}
		res, err := sc.Scan(ctx, azure.ScanConfig{TenantID: tenant, Prune: true})
		if err != nil {
			b.Fatal(err)
		}
		return res.Nodes.Added + res.Relationships.Added, time.Since(start), res
	}
	// run measures import, scan, scan, import (so that a store growing
	// during the run favours neither) and returns the rates.
	run := func(size int) (scanRate, importRate float64) {
		var si, ii int64
		var sd, id time.Duration
		var res *azure.ScanResult
		for k := range 4 {
			if k == 0 || k == 3 {
				n, t := importOnce(size)
				ii, id = ii+n, id+t
			} else {
				n, t, r := scanOnce(size)
				si, sd, res = si+n, sd+t, r
			}
		}
		if si != ii {
			b.Fatalf("the scans wrote %d items, the imports %d", si, ii)
		}
		scanRate, importRate = float64(si)/sd.Seconds(), float64(ii)/id.Seconds()
		b.Logf("%d resources: %d nodes + %d relationships per run; import %.2fs (%.0f items/s), scan %.2fs (%.0f items/s) for two runs each; %.2f API calls per 1,000 resources; ratio %.2f",
			size, res.Nodes.Added, res.Relationships.Added, id.Seconds(), importRate, sd.Seconds(), scanRate,
			float64(res.Stats.APICalls)*1000/float64(size), scanRate/importRate)
		return scanRate, importRate
	}
	run(200) // warm-up: plans for every statement of both
	for b.Loop() {
		scanRate, importRate := run(n)
		b.ReportMetric(scanRate, "scan-items/s")
		b.ReportMetric(importRate, "import-items/s")
		b.ReportMetric(scanRate/importRate, "scan/import")
	}
}
