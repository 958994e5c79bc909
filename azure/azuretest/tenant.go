package azuretest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Table names as Resource Graph spells them.
const (
	TableResources              = "Resources"
	TableResourceContainers     = "ResourceContainers"
	TableAuthorizationResources = "AuthorizationResources"
)

// Per resource group ("block") the tenant holds blockResources resources:
// a virtual network (subnets "default" and "endpoints"), a network security
// group, a user-assigned identity, a storage account, a key vault, a SQL
// server with two databases, a private endpoint to the storage account, and
// vmsPerBlock virtual machines, each with a NIC and an OS disk; even-numbered
// VMs also have a public IP.
const (
	vmsPerBlock    = 4
	fixedResources = 9
	blockResources = fixedResources + vmsPerBlock*3 + vmsPerBlock/2
	// blockRoleAssignments role assignments per resource group.
	blockRoleAssignments = 4
	// subAuthRows rows of AuthorizationResources per subscription: three
	// built-in role definitions and an Owner assignment to a group.
	subAuthRows  = 4
	usersInPool  = 50
	groupsInPool = 10
)

// Built-in role definitions (their real GUIDs).
var roles = []struct{ id, name string }{
	{"acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"},
	{"b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"},
	{"8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"},
	{"4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User"},
}

var locations = []string{"eastus", "westeurope", "uksouth", "eastus2", "northeurope"}

// Tenant is a generated tenant, deterministic from its seed and size. It
// holds no rows: each row is built on demand from its index.
type Tenant struct {
	// ID is the tenant GUID.
	ID string
	// Seed is the generator's seed.
	Seed int64
	// Subscriptions are the subscription GUIDs, in order.
	Subscriptions []string
	// Blocks is the number of resource groups (each holds the same
	// pattern of resources; see [Tenant.Counts]).
	Blocks int
}

// NewTenant generates a tenant of at least size resources (rounded up to
// whole resource groups of 23 resources, so every reference resolves) over
// subscriptions subscriptions (at least 2). The same seed and size give the
// same tenant.
func NewTenant(seed int64, size, subscriptions int) *Tenant {
	if subscriptions < 2 {
		subscriptions = 2
	}
	blocks := (size + blockResources - 1) / blockResources
	if blocks < subscriptions {
		blocks = subscriptions
	}
	t := &Tenant{Seed: seed, Blocks: blocks}
	t.ID = t.guid("tenant", 0)
	for s := range subscriptions {
		t.Subscriptions = append(t.Subscriptions, t.guid("subscription", s))
	}
	return t
}

// Counts reports how many rows each table holds, tenant-wide.
func (t *Tenant) Counts() map[string]int {
	n := len(t.Subscriptions)
	return map[string]int{
		TableResources:              t.Blocks * blockResources,
		TableResourceContainers:     n + t.Blocks,
		TableAuthorizationResources: n*subAuthRows + t.Blocks*blockRoleAssignments,
	}
}

// CountsFor reports how many rows each table holds in one subscription.
func (t *Tenant) CountsFor(sub string) map[string]int {
	s := t.subIndex(sub)
	if s < 0 {
		return map[string]int{TableResources: 0, TableResourceContainers: 0, TableAuthorizationResources: 0}
	}
	b := t.blocksOf(s)
	return map[string]int{
		TableResources:              b * blockResources,
		TableResourceContainers:     1 + b,
		TableAuthorizationResources: subAuthRows + b*blockRoleAssignments,
	}
}

func (t *Tenant) subIndex(sub string) int {
	for i, s := range t.Subscriptions {
		if strings.EqualFold(s, sub) {
			return i
		}
	}
	return -1
}

// blocksOf is the number of blocks of subscription s (blocks go round-robin).
func (t *Tenant) blocksOf(s int) int {
	n := len(t.Subscriptions)
	return (t.Blocks - s + n - 1) / n
}

// Rows calls yield for rows [off, off+limit) of table over the
// subscriptions subs (indices into Subscriptions; nil means all), in a
// stable order, and returns the total number of rows in scope. It stops
// early when yield returns false.
func (t *Tenant) Rows(table string, subs []int, off, limit int, yield func(map[string]any) bool) int {
	inScope := make([]bool, len(t.Subscriptions))
	for _, s := range subs {
		inScope[s] = true
	}
	if subs == nil {
		for i := range inScope {
			inScope[i] = true
		}
	}
	// Units: per subscription (in order) a header of per-subscription
	// rows, then its blocks; each unit has a fixed row count.
	var perSub, perBlock int
	switch table {
	case TableResources:
		perSub, perBlock = 0, blockResources
	case TableResourceContainers:
		perSub, perBlock = 1, 1
	case TableAuthorizationResources:
		perSub, perBlock = subAuthRows, blockRoleAssignments
	default:
		return 0
	}
	n := len(t.Subscriptions)
	total := 0
	for s := range n {
		if inScope[s] {
			total += perSub + t.blocksOf(s)*perBlock
		}
	}
	pos, emitted := 0, 0
	// emit yields rows [max(off-pos,0), count) of a unit; false stops.
	emit := func(count int, row func(j int) map[string]any) bool {
		defer func() { pos += count }()
		if pos+count <= off {
			return true
		}
		for j := max(0, off-pos); j < count; j++ {
			if emitted >= limit {
				return false
			}
			emitted++
			if !yield(row(j)) {
				return false
			}
		}
		return emitted < limit
	}
	for s := range n {
		if !inScope[s] {
			continue
		}
		if !emit(perSub, func(j int) map[string]any { return t.subRow(table, s, j) }) {
			return total
		}
		for b := s; b < t.Blocks; b += n {
			if !emit(perBlock, func(j int) map[string]any { return t.blockRow(table, b, j) }) {
				return total
			}
		}
	}
	return total
}

func (t *Tenant) sum(kind string, i int) [sha256.Size]byte {
	var buf [64]byte
	binary.LittleEndian.PutUint64(buf[:8], uint64(t.Seed))
	binary.LittleEndian.PutUint64(buf[8:16], uint64(i))
	return sha256.Sum256(append(buf[:16], kind...))
}

func (t *Tenant) guid(kind string, i int) string {
	s := t.sum(kind, i)
	s[6] = s[6]&0x0f | 0x40
	s[8] = s[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], s[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], s[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], s[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], s[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], s[10:16])
	return string(out[:])
}

func (t *Tenant) pick(kind string, i, n int) int {
	s := t.sum(kind, i)
	return int(binary.BigEndian.Uint32(s[:4]) % uint32(n))
}

// pad5 is n as at least five decimal digits.
func pad5(n int) string {
	d := strconv.Itoa(n)
	if len(d) < 5 {
		d = "00000"[len(d):] + d
	}
	return d
}

// base is the column set every Resource Graph row has.
func (t *Tenant) base(id, name, typ, sub, rg, location string) map[string]any {
	return map[string]any{
		"id": id, "name": name, "type": typ, "tenantId": t.ID, "kind": "",
		"location": location, "resourceGroup": rg, "subscriptionId": sub,
		"managedBy": "", "sku": nil, "plan": nil, "properties": map[string]any{},
		"tags": map[string]any{}, "identity": nil, "zones": nil, "extendedLocation": nil,
	}
}

func (t *Tenant) subName(s int) string {
	return fmt.Sprintf("sub-%02d-%s", s, []string{"prod", "dev", "test", "shared"}[s%4])
}

// RGName is the name of block b's resource group.
func (t *Tenant) RGName(b int) string { return "rg-" + pad5(b) }

func (t *Tenant) rgID(b int) string {
	return "/subscriptions/" + t.Subscriptions[b%len(t.Subscriptions)] + "/resourceGroups/" + t.RGName(b)
}

// resID is the ARM id of a resource of block b. Real Azure is inconsistent
// about the case of resource group names in references; upper selects the
// upper-cased form some references use.
func (t *Tenant) resID(b int, provider, name string, upper bool) string {
	rg := t.RGName(b)
	if upper {
		rg = strings.ToUpper(rg)
	}
	return "/subscriptions/" + t.Subscriptions[b%len(t.Subscriptions)] + "/resourceGroups/" + rg + "/providers/" + provider + "/" + name
}

func num(v int) json.Number { return json.Number(fmt.Sprint(v)) }

func ref(id string) map[string]any { return map[string]any{"id": id} }

func (t *Tenant) subRow(table string, s, j int) map[string]any {
	sub := t.Subscriptions[s]
	switch table {
	case TableResourceContainers:
		r := t.base("/subscriptions/"+sub, t.subName(s), "microsoft.resources/subscriptions", sub, "", "")
		r["properties"] = map[string]any{
			"state": "Enabled",
			"subscriptionPolicies": map[string]any{
				"locationPlacementId": "Public_2014-09-01", "quotaId": "EnterpriseAgreement_2014-09-01", "spendingLimit": "Off",
			},
			"managementGroupAncestorsChain": []any{map[string]any{"displayName": "Tenant Root Group", "name": t.ID}},
		}
		r["tags"] = map[string]any{"costCenter": fmt.Sprint(1000 + s)}
		return r
	case TableAuthorizationResources:
		if j < 3 {
			role := roles[j]
			id := fmt.Sprintf("/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s", sub, role.id)
			r := t.base(id, role.id, "microsoft.authorization/roledefinitions", sub, "", "")
			r["properties"] = map[string]any{
				"roleName": role.name, "type": "BuiltInRole", "description": role.name + " role",
				"assignableScopes": []any{"/"},
				"permissions":      []any{map[string]any{"actions": []any{"*/read"}, "notActions": []any{}}},
			}
			return r
		}
		return t.roleAssignment(s, "/subscriptions/"+sub, "", 2, "Group", t.guid("group", s%groupsInPool), t.guid("ra-sub", s))
	}
	return nil
}

func (t *Tenant) roleAssignment(s int, scope, rg string, role int, ptype, principal, name string) map[string]any {
	sub := t.Subscriptions[s]
	id := scope + "/providers/Microsoft.Authorization/roleAssignments/" + name
	r := t.base(id, name, "microsoft.authorization/roleassignments", sub, rg, "")
	r["properties"] = map[string]any{
		"roleDefinitionId": fmt.Sprintf("/subscriptions/%s/providers/Microsoft.Authorization/roleDefinitions/%s", sub, roles[role].id),
		"principalId":      principal, "principalType": ptype, "scope": scope,
		"createdOn": "2025-01-15T10:00:00.0000000Z", "updatedOn": "2025-01-15T10:00:00.0000000Z",
		"createdBy": t.guid("user", 0), "updatedBy": t.guid("user", 0),
		"condition": nil, "conditionVersion": nil, "description": nil,
	}
	return r
}

// Names of block b's resources.
func (t *Tenant) names(b int) (vnet, nsg, uai, sa, kv, sql, pe string) {
	p, seed := pad5(b), strconv.Itoa(int(t.Seed&0xff))
	return "vnet-" + p, "nsg-" + p, "id-" + p, "st" + p + "x" + seed, "kv-" + p + "-" + seed, "sql-" + p + "-" + seed, "pe-st-" + p
}

// vmSlot maps a row index j >= fixedResources of a block to its VM and
// the kind of row (0 VM, 1 NIC, 2 disk, 3 public IP).
func vmSlot(j int) (vm, kind int) {
	j -= fixedResources
	for v := range vmsPerBlock {
		n := 3
		if v%2 == 0 {
			n = 4
		}
		if j < n {
			return v, j
		}
		j -= n
	}
	return -1, -1
}

func (t *Tenant) blockRow(table string, b, j int) map[string]any {
	s := b % len(t.Subscriptions)
	sub := t.Subscriptions[s]
	rg := t.RGName(b)
	loc := locations[t.pick("loc", b, len(locations))]
	switch table {
	case TableResourceContainers:
		r := t.base(t.rgID(b), rg, "microsoft.resources/subscriptions/resourcegroups", sub, rg, loc)
		r["properties"] = map[string]any{"provisioningState": "Succeeded"}
		r["tags"] = map[string]any{"env": []string{"prod", "dev", "test"}[b%3]}
		return r
	case TableAuthorizationResources:
		vnet, _, uai, sa, kv, _, _ := t.names(b)
		_ = vnet
		switch j {
		case 0:
			return t.roleAssignment(s, t.rgID(b), rg, 0, "User", t.guid("user", t.pick("u", b, usersInPool)), t.guid("ra0", b))
		case 1:
			return t.roleAssignment(s, t.resID(b, "Microsoft.Storage/storageAccounts", sa, false), rg, 1, "Group", t.guid("group", t.pick("g", b, groupsInPool)), t.guid("ra1", b))
		case 2:
			return t.roleAssignment(s, t.resID(b, "Microsoft.KeyVault/vaults", kv, false), rg, 3, "ServicePrincipal", t.guid("vm-principal", b*vmsPerBlock), t.guid("ra2", b))
		default:
			_ = uai
			return t.roleAssignment(s, t.rgID(b), rg, 0, "ServicePrincipal", t.guid("uai-principal", b), t.guid("ra3", b))
		}
	}
	vnetN, nsgN, uaiN, saN, kvN, sqlN, peN := t.names(b)
	vnetID := t.resID(b, "Microsoft.Network/virtualNetworks", vnetN, false)
	nsgID := t.resID(b, "Microsoft.Network/networkSecurityGroups", nsgN, false)
	uaiID := t.resID(b, "Microsoft.ManagedIdentity/userAssignedIdentities", uaiN, false)
	saID := t.resID(b, "Microsoft.Storage/storageAccounts", saN, false)
	kvID := t.resID(b, "Microsoft.KeyVault/vaults", kvN, false)
	sqlID := t.resID(b, "Microsoft.Sql/servers", sqlN, false)
	peID := t.resID(b, "Microsoft.Network/privateEndpoints", peN, false)
	subnetDefault := vnetID + "/subnets/default"
	subnetPE := vnetID + "/subnets/endpoints"
	vmName := func(v int) string { return "vm-" + pad5(b) + "-" + strconv.Itoa(v) }
	vmID := func(v int, upper bool) string {
		return t.resID(b, "Microsoft.Compute/virtualMachines", vmName(v), upper)
	}
	nicID := func(v int) string {
		return t.resID(b, "Microsoft.Network/networkInterfaces", vmName(v)+"-nic", false)
	}
	diskID := func(v int, upper bool) string {
		return t.resID(b, "Microsoft.Compute/disks", vmName(v)+"-osdisk", upper)
	}
	pipID := func(v int) string {
		return t.resID(b, "Microsoft.Network/publicIPAddresses", vmName(v)+"-pip", false)
	}
	tags := map[string]any{"env": []string{"prod", "dev", "test"}[b%3], "owner": fmt.Sprintf("team-%d", b%7)}
	row := func(id, name, typ string) map[string]any {
		r := t.base(id, name, typ, sub, rg, loc)
		r["tags"] = tags
		return r
	}
	octet := b % 250
	switch j {
	case 0:
		r := row(vnetID, vnetN, "microsoft.network/virtualnetworks")
		var ipcfgs []any
		for v := range vmsPerBlock {
			ipcfgs = append(ipcfgs, ref(nicID(v)+"/ipConfigurations/ipconfig1"))
		}
		r["properties"] = map[string]any{
			"provisioningState": "Succeeded", "resourceGuid": t.guid("vnet", b),
			"addressSpace":         map[string]any{"addressPrefixes": []any{fmt.Sprintf("10.%d.0.0/16", octet)}},
			"enableDdosProtection": false,
			"subnets": []any{
				map[string]any{
					"id": subnetDefault, "name": "default", "type": "Microsoft.Network/virtualNetworks/subnets",
					"etag": fmt.Sprintf("W/\"%s\"", t.guid("etag-sn", b)),
					"properties": map[string]any{
						"provisioningState": "Succeeded", "addressPrefix": fmt.Sprintf("10.%d.0.0/24", octet),
						"networkSecurityGroup": ref(nsgID), "ipConfigurations": ipcfgs,
						"privateEndpointNetworkPolicies": "Disabled",
					},
				},
				map[string]any{
					"id": subnetPE, "name": "endpoints", "type": "Microsoft.Network/virtualNetworks/subnets",
					"properties": map[string]any{
						"provisioningState": "Succeeded", "addressPrefix": fmt.Sprintf("10.%d.1.0/24", octet),
						"privateEndpoints": []any{ref(peID)},
					},
				},
			},
			"virtualNetworkPeerings": []any{},
		}
		return r
	case 1:
		r := row(nsgID, nsgN, "microsoft.network/networksecuritygroups")
		r["properties"] = map[string]any{
			"provisioningState": "Succeeded", "resourceGuid": t.guid("nsg", b),
			"securityRules": []any{map[string]any{
				"id": nsgID + "/securityRules/allow-ssh", "name": "allow-ssh", "type": "Microsoft.Network/networkSecurityGroups/securityRules",
				"properties": map[string]any{
					"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "22", "sourceAddressPrefix": "10.0.0.0/8",
					"destinationAddressPrefix": "*", "access": "Allow", "priority": num(100), "direction": "Inbound",
				},
			}},
			"subnets":           []any{ref(subnetDefault)},
			"networkInterfaces": []any{ref(nicID(0)), ref(nicID(2))},
		}
		return r
	case 2:
		r := row(uaiID, uaiN, "microsoft.managedidentity/userassignedidentities")
		r["properties"] = map[string]any{"tenantId": t.ID, "principalId": t.guid("uai-principal", b), "clientId": t.guid("uai-client", b)}
		return r
	case 3:
		r := row(saID, saN, "microsoft.storage/storageaccounts")
		r["kind"] = "StorageV2"
		r["sku"] = map[string]any{"name": "Standard_LRS", "tier": "Standard"}
		r["properties"] = map[string]any{
			"provisioningState": "Succeeded", "accessTier": "Hot", "supportsHttpsTrafficOnly": true,
			"minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": false,
			"primaryEndpoints": map[string]any{"blob": "https://" + saN + ".blob.core.windows.net/"},
			"privateEndpointConnections": []any{map[string]any{
				"id":   saID + "/privateEndpointConnections/" + peN,
				"name": peN, "type": "Microsoft.Storage/storageAccounts/privateEndpointConnections",
				"properties": map[string]any{
					"privateEndpoint":                   ref(peID),
					"privateLinkServiceConnectionState": map[string]any{"status": "Approved"},
				},
			}},
		}
		return r
	case 4:
		r := row(kvID, kvN, "microsoft.keyvault/vaults")
		r["properties"] = map[string]any{
			"tenantId": t.ID, "sku": map[string]any{"family": "A", "name": "standard"},
			"vaultUri": "https://" + kvN + ".vault.azure.net/", "enableRbacAuthorization": true,
			"enableSoftDelete": true, "softDeleteRetentionInDays": num(90), "accessPolicies": []any{},
		}
		return r
	case 5:
		r := row(sqlID, sqlN, "microsoft.sql/servers")
		r["kind"] = "v12.0"
		r["identity"] = map[string]any{"type": "SystemAssigned", "principalId": t.guid("sql-principal", b), "tenantId": t.ID}
		r["properties"] = map[string]any{
			"fullyQualifiedDomainName": sqlN + ".database.windows.net", "administratorLogin": "sqladmin",
			"version": "12.0", "state": "Ready", "publicNetworkAccess": "Disabled",
		}
		return r
	case 6, 7:
		db := fmt.Sprintf("db%d", j-5)
		r := row(sqlID+"/databases/"+db, db, "microsoft.sql/servers/databases")
		r["kind"] = "v12.0,user,vcore"
		r["managedBy"] = ""
		r["sku"] = map[string]any{"name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": num(2)}
		r["properties"] = map[string]any{
			"status": "Online", "collation": "SQL_Latin1_General_CP1_CI_AS", "maxSizeBytes": json.Number("34359738368"),
			"databaseId": t.guid("db", b*2+j), "zoneRedundant": false,
		}
		return r
	case 8:
		r := row(peID, peN, "microsoft.network/privateendpoints")
		r["properties"] = map[string]any{
			"provisioningState": "Succeeded", "subnet": ref(subnetPE),
			"privateLinkServiceConnections": []any{map[string]any{
				"id":   peID + "/privateLinkServiceConnections/" + peN,
				"name": peN, "type": "Microsoft.Network/privateEndpoints/privateLinkServiceConnections",
				"properties": map[string]any{
					"privateLinkServiceId": saID, "groupIds": []any{"blob"},
					"privateLinkServiceConnectionState": map[string]any{"status": "Approved", "description": "Auto-Approved"},
				},
			}},
			"manualPrivateLinkServiceConnections": []any{},
		}
		return r
	}
	v, kind := vmSlot(j)
	name := vmName(v)
	zone := fmt.Sprint(1 + v%3)
	switch kind {
	case 0:
		r := row(vmID(v, false), name, "microsoft.compute/virtualmachines")
		r["zones"] = []any{zone}
		switch v % 3 {
		case 0:
			r["identity"] = map[string]any{
				"type": "SystemAssigned, UserAssigned", "principalId": t.guid("vm-principal", b*vmsPerBlock+v), "tenantId": t.ID,
				"userAssignedIdentities": map[string]any{
					uaiID: map[string]any{"principalId": t.guid("uai-principal", b), "clientId": t.guid("uai-client", b)},
				},
			}
		case 1:
			r["identity"] = map[string]any{"type": "SystemAssigned", "principalId": t.guid("vm-principal", b*vmsPerBlock+v), "tenantId": t.ID}
		}
		r["properties"] = map[string]any{
			"vmId": t.guid("vmid", b*vmsPerBlock+v), "provisioningState": "Succeeded",
			"hardwareProfile": map[string]any{"vmSize": []string{"Standard_D2s_v3", "Standard_B2ms", "Standard_E4s_v5"}[v%3]},
			"storageProfile": map[string]any{
				"imageReference": map[string]any{"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
				"osDisk": map[string]any{
					"osType": "Linux", "name": name + "-osdisk", "createOption": "FromImage", "caching": "ReadWrite",
					"managedDisk": map[string]any{"id": diskID(v, false), "storageAccountType": "Premium_LRS"},
					"diskSizeGB":  num(128),
				},
				"dataDisks": []any{},
			},
			"osProfile": map[string]any{"computerName": name, "adminUsername": "azureuser"},
			"networkProfile": map[string]any{
				"networkInterfaces": []any{map[string]any{"id": nicID(v), "properties": map[string]any{"primary": true}}},
			},
			"diagnosticsProfile": map[string]any{"bootDiagnostics": map[string]any{"enabled": true}},
		}
		return r
	case 1:
		r := row(nicID(v), name+"-nic", "microsoft.network/networkinterfaces")
		ipcfg := map[string]any{
			"privateIPAddress": fmt.Sprintf("10.%d.0.%d", octet, 4+v), "privateIPAllocationMethod": "Dynamic",
			"subnet": ref(subnetDefault), "primary": true, "privateIPAddressVersion": "IPv4",
		}
		if v%2 == 0 {
			ipcfg["publicIPAddress"] = ref(pipID(v))
		}
		props := map[string]any{
			"provisioningState": "Succeeded", "macAddress": fmt.Sprintf("00-0D-3A-%02X-%02X-%02X", octet, b/250%256, v),
			"enableAcceleratedNetworking": v%2 == 0, "virtualMachine": ref(vmID(v, false)),
			"ipConfigurations": []any{map[string]any{
				"id": nicID(v) + "/ipConfigurations/ipconfig1", "name": "ipconfig1",
				"type": "Microsoft.Network/networkInterfaces/ipConfigurations", "properties": ipcfg,
			}},
		}
		if v%2 == 0 {
			props["networkSecurityGroup"] = ref(nsgID)
		}
		r["properties"] = props
		return r
	case 2:
		r := row(diskID(v, false), name+"-osdisk", "microsoft.compute/disks")
		r["managedBy"] = vmID(v, true)
		r["zones"] = []any{zone}
		r["sku"] = map[string]any{"name": "Premium_LRS", "tier": "Premium"}
		r["properties"] = map[string]any{
			"osType": "Linux", "diskSizeGB": num(128), "diskState": "Attached", "provisioningState": "Succeeded",
			"creationData": map[string]any{"createOption": "FromImage"}, "uniqueId": t.guid("disk", b*vmsPerBlock+v),
			"timeCreated": "2025-01-15T10:00:00.0000000Z",
		}
		return r
	default:
		r := row(pipID(v), name+"-pip", "microsoft.network/publicipaddresses")
		r["zones"] = []any{zone}
		r["sku"] = map[string]any{"name": "Standard", "tier": "Regional"}
		r["properties"] = map[string]any{
			"provisioningState": "Succeeded", "publicIPAddressVersion": "IPv4", "publicIPAllocationMethod": "Static",
			"ipAddress":       fmt.Sprintf("20.%d.%d.%d", b/65536%256, b/256%256, b%256),
			"ipConfiguration": ref(nicID(v) + "/ipConfigurations/ipconfig1"), "idleTimeoutInMinutes": num(4),
		}
		return r
	}
}

// VM names one generated virtual machine and what it links to.
type VM struct {
	// ID, NIC, OSDisk are ARM ids; PublicIP is "" for odd-numbered VMs.
	ID, NIC, OSDisk, PublicIP string
	// SecuredByNSG is true when the NIC names the NSG (even-numbered VMs).
	SecuredByNSG bool
	// PrincipalID is the system-assigned identity's object id ("" when
	// none); UserAssigned is true when the VM uses the block's identity.
	PrincipalID  string
	UserAssigned bool
}

// RoleAssignment is one generated role assignment.
type RoleAssignment struct {
	// ID is the assignment's ARM id; Scope the id it applies to.
	ID, Scope string
	// PrincipalID and PrincipalType ("User", "Group", "ServicePrincipal").
	PrincipalID, PrincipalType string
	// RoleDefinitionID and RoleName of the built-in role.
	RoleDefinitionID, RoleName string
}

// Block lists the ARM ids of resource group b's resources and the links a
// mapping should find between them (ids as the rows spell them; compare
// case-insensitively).
type Block struct {
	Subscription, ResourceGroup, ResourceGroupName string
	VNet                                           string
	// Subnets are "default" (VM NICs, secured by the NSG) and "endpoints"
	// (the private endpoint).
	Subnets [2]string
	NSG     string
	// Identity is the user-assigned identity; IdentityPrincipal its
	// object id.
	Identity, IdentityPrincipal string
	Storage, KeyVault           string
	// SQLServer has a system-assigned identity (SQLPrincipal) and the
	// two Databases.
	SQLServer, SQLPrincipal string
	Databases               [2]string
	// PrivateEndpoint connects to Storage (privateLinkServiceId).
	PrivateEndpoint string
	VMs             []VM
	RoleAssignments []RoleAssignment
}

// Block returns block (resource group) b's ids, 0 <= b < Blocks.
func (t *Tenant) Block(b int) Block {
	s := b % len(t.Subscriptions)
	vnetN, nsgN, uaiN, saN, kvN, sqlN, peN := t.names(b)
	out := Block{
		Subscription: "/subscriptions/" + t.Subscriptions[s], ResourceGroup: t.rgID(b), ResourceGroupName: t.RGName(b),
		VNet:     t.resID(b, "Microsoft.Network/virtualNetworks", vnetN, false),
		NSG:      t.resID(b, "Microsoft.Network/networkSecurityGroups", nsgN, false),
		Identity: t.resID(b, "Microsoft.ManagedIdentity/userAssignedIdentities", uaiN, false), IdentityPrincipal: t.guid("uai-principal", b),
		Storage:   t.resID(b, "Microsoft.Storage/storageAccounts", saN, false),
		KeyVault:  t.resID(b, "Microsoft.KeyVault/vaults", kvN, false),
		SQLServer: t.resID(b, "Microsoft.Sql/servers", sqlN, false), SQLPrincipal: t.guid("sql-principal", b),
		PrivateEndpoint: t.resID(b, "Microsoft.Network/privateEndpoints", peN, false),
	}
	out.Subnets = [2]string{out.VNet + "/subnets/default", out.VNet + "/subnets/endpoints"}
	out.Databases = [2]string{out.SQLServer + "/databases/db1", out.SQLServer + "/databases/db2"}
	for v := range vmsPerBlock {
		name := "vm-" + pad5(b) + "-" + strconv.Itoa(v)
		vm := VM{
			ID:           t.resID(b, "Microsoft.Compute/virtualMachines", name, false),
			NIC:          t.resID(b, "Microsoft.Network/networkInterfaces", name+"-nic", false),
			OSDisk:       t.resID(b, "Microsoft.Compute/disks", name+"-osdisk", false),
			SecuredByNSG: v%2 == 0, UserAssigned: v%3 == 0,
		}
		if v%2 == 0 {
			vm.PublicIP = t.resID(b, "Microsoft.Network/publicIPAddresses", name+"-pip", false)
		}
		if v%3 != 2 {
			vm.PrincipalID = t.guid("vm-principal", b*vmsPerBlock+v)
		}
		out.VMs = append(out.VMs, vm)
	}
	for j := range blockRoleAssignments {
		r := t.blockRow(TableAuthorizationResources, b, j)
		p := r["properties"].(map[string]any)
		def := p["roleDefinitionId"].(string)
		ra := RoleAssignment{ID: r["id"].(string), Scope: p["scope"].(string), PrincipalID: p["principalId"].(string),
			PrincipalType: p["principalType"].(string), RoleDefinitionID: def}
		for _, role := range roles {
			if strings.HasSuffix(def, role.id) {
				ra.RoleName = role.name
			}
		}
		out.RoleAssignments = append(out.RoleAssignments, ra)
	}
	return out
}
