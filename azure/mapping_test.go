package azure_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/atgraph/atg/azure"
)

const (
	fixtureTenant = "7d2c1f0e-5b7a-4c39-9e61-2f3b8a4d6c10"
	subA          = "11111111-aaaa-4bbb-8ccc-000000000001"
	subB          = "22222222-aaaa-4bbb-8ccc-000000000002"
)

func loadFixture(t *testing.T) *azure.MemorySource {
	t.Helper()
	f, err := os.Open("testdata/tenant.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := azure.ReadMemorySource(f)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// mapAll maps every table of src like a scan of subs does.
func mapAll(t *testing.T, m *azure.Mapper, src azure.Source, subs ...string) (map[string]azure.Node, []azure.Relationship) {
	t.Helper()
	ctx := context.Background()
	nodes := map[string]azure.Node{}
	var rels []azure.Relationship
	add := func(ns []azure.Node, rs []azure.Relationship) {
		for _, n := range ns {
			nodes[n.ID] = n
		}
		rels = append(rels, rs...)
	}
	n := m.TenantNode()
	nodes[n.ID] = n
	for row, err := range src.Rows(ctx, azure.TableResourceContainers, "") {
		if err != nil {
			t.Fatal(err)
		}
		if c, ns, rs, ok := m.ResourceContainer(row); ok && slices.Contains(subs, c.Subscription) {
			add(ns, rs)
		}
	}
	for _, s := range subs {
		for row, err := range src.Rows(ctx, azure.TableResources, s) {
			if err != nil {
				t.Fatal(err)
			}
			if ns, rs, ok := m.Resource(row, s); ok {
				add(ns, rs)
			}
		}
		for row, err := range src.Rows(ctx, azure.TableAuthorizationResources, s) {
			if err != nil {
				t.Fatal(err)
			}
			if ns, rs, ok := m.RoleAssignment(row, s); ok {
				add(ns, rs)
			}
		}
	}
	return nodes, rels
}

func arm(sub, rest string) string { return strings.ToLower("/subscriptions/" + sub + rest) }

func TestMappingRelationships(t *testing.T) {
	t.Parallel()
	m := &azure.Mapper{TenantID: strings.ToUpper(fixtureTenant)}
	nodes, rels := mapAll(t, m, loadFixture(t), subA, subB)

	vnet := arm(subA, "/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-hub")
	snapp, snpe := vnet+"/subnets/snet-app", vnet+"/subnets/snet-pe"
	nsg := arm(subA, "/resourceGroups/rg-net/providers/Microsoft.Network/networkSecurityGroups/nsg-app")
	nic := arm(subA, "/resourceGroups/rg-app/providers/Microsoft.Network/networkInterfaces/nic-vm1")
	pip := arm(subA, "/resourceGroups/rg-app/providers/Microsoft.Network/publicIPAddresses/pip-vm1")
	vm := arm(subA, "/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm1")
	disk := arm(subA, "/resourceGroups/rg-app/providers/Microsoft.Compute/disks/vm1-osdisk")
	uai := arm(subA, "/resourceGroups/rg-app/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-app")
	kv := arm(subA, "/resourceGroups/rg-app/providers/Microsoft.KeyVault/vaults/kv-app-prod")
	sql := arm(subA, "/resourceGroups/rg-app/providers/Microsoft.Sql/servers/sql-app-prod")
	pe := arm(subA, "/resourceGroups/rg-net/providers/Microsoft.Network/privateEndpoints/pe-kv")
	dst := arm(subB, "/resourceGroups/rg-dev/providers/Microsoft.Storage/storageAccounts/stdevshared")
	rgApp := arm(subA, "/resourceGroups/rg-app")
	tests := []struct {
		typ, from, to, key string
	}{
		{"CONTAINS", fixtureTenant, "/subscriptions/" + subA, ""},
		{"CONTAINS", "/subscriptions/" + subA, rgApp, ""},
		{"CONTAINS", rgApp, vm, ""},
		{"CONTAINS", vnet, snapp, ""},
		{"CONTAINS", sql, sql + "/databases/appdb", ""},
		{"USES_SUBNET", vm, snapp, ""},
		{"CONNECTED_TO", nic, snapp, ""},
		{"SECURED_BY", nic, nsg, ""},
		{"SECURED_BY", snapp, nsg, ""},
		{"ATTACHED_TO", disk, vm, ""},
		{"HAS_PUBLIC_IP", nic, pip, ""},
		{"USES_IDENTITY", vm, uai, ""},
		{"USES_IDENTITY", vm, "aaaaaaaa-0000-4000-8000-0000000000a1", ""},
		{"USES_IDENTITY", uai, "aaaaaaaa-0000-4000-8000-0000000000a2", ""},
		{"HAS_ROLE", "bbbbbbbb-0000-4000-8000-0000000000b1", "/subscriptions/" + subA, "/subscriptions/" + subA + "/providers/microsoft.authorization/roledefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"},
		{"HAS_ROLE", "aaaaaaaa-0000-4000-8000-0000000000a2", kv, "/subscriptions/" + subA + "/providers/microsoft.authorization/roledefinitions/4633458b-17de-408a-b874-0445c86b69e6"},
		{"CONNECTED_TO_PE", pe, kv, ""},
		{"REFERENCES", nic, vm, "properties.virtualMachine.id"},
		{"REFERENCES", vm, disk, "properties.storageProfile.osDisk.managedDisk.id"},
		{"REFERENCES", pe, snpe, "properties.subnet.id"},
		{"REFERENCES", dst, snapp, "properties.networkAcls.virtualNetworkRules[0].id"}, // across subscriptions
	}
	for _, tc := range tests {
		found := slices.ContainsFunc(rels, func(r azure.Relationship) bool {
			return r.Type == tc.typ && r.From == tc.from && r.To == tc.to && r.Key == tc.key
		})
		if !found {
			t.Errorf("missing %s %s -> %s (key %q)", tc.typ, tc.from, tc.to, tc.key)
		}
	}
	// Typed links are not repeated as REFERENCES.
	for _, r := range rels {
		if r.Type == "REFERENCES" && r.From == nic && r.To == snapp {
			t.Errorf("REFERENCES duplicates CONNECTED_TO: %+v", r)
		}
		if r.Type == "REFERENCES" && r.From == vnet {
			t.Errorf("a virtual network's subnets are walked as the subnets' own: %+v", r)
		}
		if r.From != strings.ToLower(r.From) || r.To != strings.ToLower(r.To) {
			t.Errorf("ids not lower-cased: %+v", r)
		}
	}
	labels := map[string][]string{
		vm:                                     {"Resource", "VirtualMachine"},
		snapp:                                  {"Resource", "Subnet"},
		sql + "/databases/appdb":               {"Resource", "SqlDatabase"},
		"bbbbbbbb-0000-4000-8000-0000000000b1": {"Principal", "User"},
		"bbbbbbbb-0000-4000-8000-0000000000b2": {"Principal", "Group"},
		"bbbbbbbb-0000-4000-8000-0000000000b3": {"Principal", "ServicePrincipal"},
		rgApp:                                  {"ResourceGroup"},
		"/subscriptions/" + subB:               {"Subscription"},
		fixtureTenant:                          {"Tenant"},
	}
	for id, want := range labels {
		n, ok := nodes[id]
		if !ok {
			t.Errorf("node %s missing", id)
			continue
		}
		if !slices.Equal(n.Labels, want) {
			t.Errorf("node %s labels %v, want %v", id, n.Labels, want)
		}
	}
	for id, n := range nodes {
		if strings.Contains(id, "33333333") || strings.Contains(id, "managementgroups") {
			t.Errorf("row of another tenant or scope mapped: %s", id)
		}
		if id != strings.ToLower(id) {
			t.Errorf("id not lower-cased: %s", id)
		}
		_ = n
	}
	if got := nodes[vm].Properties["vm_size"]; got != "Standard_D2s_v5" {
		t.Errorf("vm_size = %v", got)
	}
	if got := nodes[vm].Properties["tag_env"]; got != "prod" {
		t.Errorf("tag_env = %v", got)
	}
	if got := m.RoleName("/subscriptions/" + subB + "/providers/Microsoft.Authorization/roleDefinitions/dddddddd-0000-4000-8000-0000000000d1"); got != "Dev VM Operator" {
		t.Errorf("custom role name = %q", got)
	}
	if got := m.RoleName("8e3af657-a8ff-443c-a75c-2fe8c4bcb635"); got != "Owner" {
		t.Errorf("built-in role name = %q", got)
	}
}

func TestMappingFilters(t *testing.T) {
	t.Parallel()
	// Only subscription B is scanned, and only its rg-dev: rows of A (which
	// an unprojected source yields for B too) are left out.
	m := &azure.Mapper{TenantID: fixtureTenant, ResourceGroups: map[string]bool{"rg-dev": true}}
	nodes, rels := mapAll(t, m, loadFixture(t), subB)
	for id := range nodes {
		if strings.Contains(id, subA) {
			t.Errorf("node of another subscription: %s", id)
		}
	}
	for _, r := range rels {
		if r.Subscription != subB {
			t.Errorf("relationship owned by %q: %+v", r.Subscription, r)
		}
	}
	if _, ok := nodes[arm(subB, "/resourcegroups/rg-dev")]; !ok {
		t.Error("rg-dev missing")
	}
}

func TestTypeLabelAndParseID(t *testing.T) {
	t.Parallel()
	for typ, want := range map[string]string{
		"Microsoft.Compute/virtualMachines":         "VirtualMachine",
		"microsoft.network/virtualnetworks/subnets": "Subnet",
		"microsoft.foo/widgets":                     "Widget",
		"microsoft.insights/diagnosticsettings":     "Diagnosticsetting",
	} {
		if got := azure.TypeLabel(typ); got != want {
			t.Errorf("TypeLabel(%q) = %q, want %q", typ, got, want)
		}
	}
	for id, want := range map[string]string{
		"/subscriptions/s/resourcegroups/rg/providers/microsoft.sql/servers/a/databases/b":                                                    "/subscriptions/s/resourcegroups/rg/providers/microsoft.sql/servers/a",
		"/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm":                                                   "",
		"/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm/providers/microsoft.insights/diagnosticsettings/d": "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm",
	} {
		if got := azure.ParseID(id).Parent(); got != want {
			t.Errorf("Parent(%q) = %q, want %q", id, got, want)
		}
	}
}
