package azure

import (
	"encoding/json"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// Labels of the graph model (see the README's "Graph model" section).
const (
	// LabelBase is carried by every node a scan writes: nodes are keyed by
	// (tenant_id, id) under it, so two tenants never share a node.
	LabelBase             = "AzureNode"
	LabelTenant           = "Tenant"
	LabelSubscription     = "Subscription"
	LabelResourceGroup    = "ResourceGroup"
	LabelResource         = "Resource"
	LabelSubnet           = "Subnet"
	LabelUser             = "User"
	LabelGroup            = "Group"
	LabelServicePrincipal = "ServicePrincipal"
	// LabelPrincipal is carried by every User, Group and ServicePrincipal.
	LabelPrincipal = "Principal"
	// LabelScan marks the node a scan writes about itself.
	LabelScan = "Scan"
)

// Relationship types of the graph model.
const (
	RelContains      = "CONTAINS"
	RelUsesSubnet    = "USES_SUBNET"
	RelConnectedTo   = "CONNECTED_TO"
	RelSecuredBy     = "SECURED_BY"
	RelAttachedTo    = "ATTACHED_TO"
	RelHasPublicIP   = "HAS_PUBLIC_IP"
	RelUsesIdentity  = "USES_IDENTITY"
	RelHasRole       = "HAS_ROLE"
	RelConnectedToPE = "CONNECTED_TO_PE"
	RelReferences    = "REFERENCES"
	// RelHasScan links a Tenant to each of its Scan nodes.
	RelHasScan = "HAS_SCAN"
)

// Resource types (lower-cased, as Resource Graph returns them) the mapping
// draws typed relationships from.
const (
	TypeSubscription       = "microsoft.resources/subscriptions"
	TypeResourceGroup      = "microsoft.resources/subscriptions/resourcegroups"
	TypeVirtualMachine     = "microsoft.compute/virtualmachines"
	TypeNetworkInterface   = "microsoft.network/networkinterfaces"
	TypeVirtualNetwork     = "microsoft.network/virtualnetworks"
	TypeSubnet             = "microsoft.network/virtualnetworks/subnets"
	TypeDisk               = "microsoft.compute/disks"
	TypePrivateEndpoint    = "microsoft.network/privateendpoints"
	TypeUserIdentity       = "microsoft.managedidentity/userassignedidentities"
	TypeRoleAssignment     = "microsoft.authorization/roleassignments"
	TypeRoleDefinition     = "microsoft.authorization/roledefinitions"
	TypeNetworkSecGroup    = "microsoft.network/networksecuritygroups"
	TypePublicIPAddress    = "microsoft.network/publicipaddresses"
	TypeSQLServer          = "microsoft.sql/servers"
	TypeSQLDatabase        = "microsoft.sql/servers/databases"
	TypeStorageAccount     = "microsoft.storage/storageaccounts"
	TypeKeyVault           = "microsoft.keyvault/vaults"
	typeManagementGroup    = "microsoft.management/managementgroups"
	maxPropertiesJSONBytes = 64 << 10
)

// typeLabels gives the second label of well-known resource types; other
// types get one derived from the last segment of their type (see
// TypeLabel).
var typeLabels = map[string]string{
	TypeVirtualMachine:   "VirtualMachine",
	TypeNetworkInterface: "NetworkInterface",
	TypeVirtualNetwork:   "VirtualNetwork",
	TypeSubnet:           LabelSubnet,
	TypeDisk:             "Disk",
	TypePrivateEndpoint:  "PrivateEndpoint",
	TypeUserIdentity:     "ManagedIdentity",
	TypeNetworkSecGroup:  "NetworkSecurityGroup",
	TypePublicIPAddress:  "PublicIPAddress",
	TypeSQLServer:        "SqlServer",
	TypeSQLDatabase:      "SqlDatabase",
	TypeStorageAccount:   "StorageAccount",
	TypeKeyVault:         "KeyVault",
	"microsoft.compute/virtualmachinescalesets":            "VirtualMachineScaleSet",
	"microsoft.compute/snapshots":                          "Snapshot",
	"microsoft.network/loadbalancers":                      "LoadBalancer",
	"microsoft.network/applicationgateways":                "ApplicationGateway",
	"microsoft.network/routetables":                        "RouteTable",
	"microsoft.network/privatednszones":                    "PrivateDnsZone",
	"microsoft.network/networkwatchers":                    "NetworkWatcher",
	"microsoft.network/virtualnetworkgateways":             "VirtualNetworkGateway",
	"microsoft.network/azurefirewalls":                     "AzureFirewall",
	"microsoft.network/bastionhosts":                       "BastionHost",
	"microsoft.web/sites":                                  "WebApp",
	"microsoft.web/serverfarms":                            "AppServicePlan",
	"microsoft.containerservice/managedclusters":           "KubernetesCluster",
	"microsoft.containerregistry/registries":               "ContainerRegistry",
	"microsoft.documentdb/databaseaccounts":                "CosmosDbAccount",
	"microsoft.operationalinsights/workspaces":             "LogAnalyticsWorkspace",
	"microsoft.insights/components":                        "ApplicationInsights",
	"microsoft.automation/automationaccounts":              "AutomationAccount",
	"microsoft.dbforpostgresql/flexibleservers":            "PostgreSqlServer",
	"microsoft.dbformysql/flexibleservers":                 "MySqlServer",
	"microsoft.cache/redis":                                "RedisCache",
	"microsoft.servicebus/namespaces":                      "ServiceBusNamespace",
	"microsoft.eventhub/namespaces":                        "EventHubNamespace",
	"microsoft.apimanagement/service":                      "ApiManagementService",
	"microsoft.recoveryservices/vaults":                    "RecoveryServicesVault",
	"microsoft.compute/availabilitysets":                   "AvailabilitySet",
	"microsoft.network/networkinterfaces/ipconfigurations": "IpConfiguration",
}

// builtinRoles names well-known built-in role definitions (by GUID) for
// HAS_ROLE.role_name when the scan read no roleDefinitions row for them.
var builtinRoles = map[string]string{
	"8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
	"b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
	"acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
	"18d7d88d-d35e-4fb5-a5c3-7773c4a72d9d": "User Access Administrator",
	"f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
	"9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
	"4d97b98b-1d4f-4787-a291-c67834d212e7": "Network Contributor",
	"17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
	"ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
	"2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
	"00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
	"4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
	"b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
	"6d8ee4ec-f05a-4a1d-8b00-a9b17e38b437": "SQL DB Contributor",
	"9b7fa17d-e63e-47b0-bb0a-15c516ac86ec": "SQL Server Contributor",
	"f1a07417-d97a-45cb-824c-7a7467783830": "Managed Identity Operator",
}

// Node is one node the mapping produces. Its key is (tenant, ID).
type Node struct {
	// ID is the node's id: a lower-cased ARM id, a tenant GUID or a
	// principal's object id (lower-cased).
	ID string
	// Labels are the node's labels besides LabelBase, e.g. [Resource,
	// VirtualMachine].
	Labels []string
	// Properties are the node's properties (scalars and lists of
	// scalars only), without the stamps the writer adds.
	Properties map[string]any
	// Subscription is the GUID of the subscription the node belongs to
	// (its prune scope), "" for tenant-level nodes (the tenant, principals).
	Subscription string
	// ResourceGroup is the lower-cased name of the node's resource group,
	// "" when it has none.
	ResourceGroup string
}

// Relationship is one relationship the mapping produces. At most one
// relationship of a Type and Key exists between two nodes.
type Relationship struct {
	// Type is one of the Rel* constants.
	Type string
	// From and To are node ids.
	From, To string
	// Key tells apart relationships of one type between the same nodes:
	// the role definition id of HAS_ROLE, the path of REFERENCES, "" for
	// the others. It is also stored in Properties.
	Key string
	// Properties are the relationship's properties, without stamps.
	Properties map[string]any
	// Subscription is the GUID of the subscription whose read produced the
	// relationship (its prune scope).
	Subscription string
	// ResourceGroup is the resource group of the row that produced it, ""
	// for subscription-level rows.
	ResourceGroup string
}

// Mapper turns Resource Graph rows into nodes and relationships of one
// tenant, filtering out rows of other tenants, subscriptions, resource
// groups and unknown types (rows may be unprojected). It keeps no rows;
// RoleNames collects role definition names met in AuthorizationResources
// rows. The zero value is not usable: set TenantID.
type Mapper struct {
	// TenantID is the tenant scanned (compared case-insensitively with a
	// row's tenantId when the row has one).
	TenantID string
	// ResourceGroups, when not empty, keeps only resources, resource
	// groups and role assignments within these resource groups
	// (lower-cased names) of the scanned subscriptions.
	ResourceGroups map[string]bool
	// RoleNames maps role definition GUIDs to role names, filled from
	// roleDefinitions rows; RoleName also knows common built-in roles.
	RoleNames map[string]string
}

// Container is one subscription or resource group read from a
// ResourceContainers row.
type Container struct {
	// Subscription is the subscription GUID (lower-cased).
	Subscription string
	// Name is the subscription's display name or the group's name.
	Name string
	// IsSubscription tells a subscription from a resource group.
	IsSubscription bool
}

// ResourceContainer maps a ResourceContainers row: a subscription (Tenant
// -CONTAINS-> Subscription) or a resource group (Subscription -CONTAINS->
// ResourceGroup). ok is false for rows of other tenants, of resource
// groups filtered out, and of other types.
func (m *Mapper) ResourceContainer(row Row) (c Container, nodes []Node, rels []Relationship, ok bool) {
	if !m.sameTenant(row) {
		return c, nil, nil, false
	}
	id := strings.ToLower(str(row["id"]))
	typ := strings.ToLower(str(row["type"]))
	p := ParseID(id)
	switch {
	case typ == TypeSubscription || (typ == "" && p.Subscription != "" && p.ResourceGroup == "" && p.Provider == "" && id == "/subscriptions/"+p.Subscription):
		if p.Subscription == "" || id != "/subscriptions/"+p.Subscription {
			return c, nil, nil, false
		}
		name := str(row["name"])
		props := map[string]any{"name": name, "subscription_id": p.Subscription, "type": TypeSubscription}
		if state := str(dig(row, "properties", "state")); state != "" {
			props["state"] = state
		}
		setTags(props, row["tags"])
		c = Container{Subscription: p.Subscription, Name: name, IsSubscription: true}
		nodes = []Node{{ID: id, Labels: []string{LabelSubscription}, Properties: props, Subscription: p.Subscription}}
		rels = []Relationship{{Type: RelContains, From: m.tenantID(), To: id, Subscription: p.Subscription}}
		return c, nodes, rels, true
	case typ == TypeResourceGroup || typ == "microsoft.resources/resourcegroups" || (typ == "" && p.ResourceGroup != "" && p.Provider == "" && id == p.ResourceGroupID()):
		if p.ResourceGroup == "" || id != p.ResourceGroupID() || !m.groupWanted(p.ResourceGroup) {
			return c, nil, nil, false
		}
		name := str(row["name"])
		if name == "" {
			name = p.ResourceGroup
		}
		props := map[string]any{"name": name, "subscription_id": p.Subscription, "resource_group": p.ResourceGroup, "type": TypeResourceGroup}
		if loc := str(row["location"]); loc != "" {
			props["location"] = loc
		}
		if ps := str(dig(row, "properties", "provisioningState")); ps != "" {
			props["provisioning_state"] = ps
		}
		setTags(props, row["tags"])
		c = Container{Subscription: p.Subscription, Name: name}
		nodes = []Node{{ID: id, Labels: []string{LabelResourceGroup}, Properties: props, Subscription: p.Subscription, ResourceGroup: p.ResourceGroup}}
		rels = []Relationship{{Type: RelContains, From: "/subscriptions/" + p.Subscription, To: id, Subscription: p.Subscription, ResourceGroup: p.ResourceGroup}}
		return c, nodes, rels, true
	}
	return c, nil, nil, false
}

// Containers returns the Subscription and ResourceGroup nodes (and their
// CONTAINS) implied by a resource's id, for sources without
// ResourceContainers rows (`az resource list` inventories): the
// subscription when sub is true, the group when rg is true. Their names
// come from the id.
func (m *Mapper) Containers(id string, sub, rg bool) (nodes []Node, rels []Relationship) {
	p := ParseID(strings.ToLower(id))
	if p.Subscription == "" {
		return nil, nil
	}
	if sub {
		sid := "/subscriptions/" + p.Subscription
		nodes = append(nodes, Node{ID: sid, Labels: []string{LabelSubscription}, Subscription: p.Subscription,
			Properties: map[string]any{"name": p.Subscription, "subscription_id": p.Subscription, "type": TypeSubscription}})
		rels = append(rels, Relationship{Type: RelContains, From: m.tenantID(), To: sid, Subscription: p.Subscription})
	}
	if rg && p.ResourceGroup != "" {
		gid := p.ResourceGroupID()
		nodes = append(nodes, Node{ID: gid, Labels: []string{LabelResourceGroup}, Subscription: p.Subscription, ResourceGroup: p.ResourceGroup,
			Properties: map[string]any{"name": p.ResourceGroup, "subscription_id": p.Subscription, "resource_group": p.ResourceGroup, "type": TypeResourceGroup}})
		rels = append(rels, Relationship{Type: RelContains, From: "/subscriptions/" + p.Subscription, To: gid, Subscription: p.Subscription, ResourceGroup: p.ResourceGroup})
	}
	return nodes, rels
}

// TenantNode returns the Tenant node.
func (m *Mapper) TenantNode() Node {
	return Node{ID: m.tenantID(), Labels: []string{LabelTenant}, Properties: map[string]any{"tenant_id": m.tenantID()}}
}

func (m *Mapper) tenantID() string { return strings.ToLower(m.TenantID) }

// sameTenant reports whether a row without tenantId, or with this
// tenant's, belongs to the scan.
func (m *Mapper) sameTenant(row Row) bool {
	t := str(row["tenantId"])
	return t == "" || strings.EqualFold(t, m.TenantID)
}

func (m *Mapper) groupWanted(rg string) bool {
	return len(m.ResourceGroups) == 0 || m.ResourceGroups[rg]
}

// Resource maps a Resources row of subscription sub (a GUID, lower-cased):
// the resource's node (and its subnets' for a virtual network, and the
// ServicePrincipal of its system-assigned identity) and the relationships
// drawn from it. ok is false for rows of other tenants, subscriptions or
// resource groups, and for rows that are not resources.
func (m *Mapper) Resource(row Row, sub string) (nodes []Node, rels []Relationship, ok bool) {
	if !m.sameTenant(row) {
		return nil, nil, false
	}
	id := strings.ToLower(str(row["id"]))
	p := ParseID(id)
	if p.Subscription == "" || p.ResourceGroup == "" || p.Provider == "" || (sub != "" && p.Subscription != sub) {
		return nil, nil, false
	}
	if rs := strings.ToLower(str(row["subscriptionId"])); rs != "" && rs != p.Subscription {
		return nil, nil, false
	}
	if !m.groupWanted(p.ResourceGroup) {
		return nil, nil, false
	}
	typ := strings.ToLower(str(row["type"]))
	if typ == "" {
		typ = p.Type()
	}
	if typ == TypeRoleAssignment || typ == TypeRoleDefinition {
		return nil, nil, false
	}
	b := &builder{sub: p.Subscription, rg: p.ResourceGroup, from: id}
	node := Node{ID: id, Labels: resourceLabels(typ), Subscription: p.Subscription, ResourceGroup: p.ResourceGroup}
	props := map[string]any{"name": str(row["name"]), "type": typ, "subscription_id": p.Subscription, "resource_group": p.ResourceGroup}
	for k, f := range map[string]string{"location": "location", "kind": "kind"} {
		if v := str(row[f]); v != "" {
			props[k] = v
		}
	}
	if mb := strings.ToLower(str(row["managedBy"])); mb != "" {
		props["managed_by"] = mb
	}
	setSKU(props, row["sku"])
	setTags(props, row["tags"])
	rp, _ := row["properties"].(map[string]any)
	setProperties(props, rp)
	b.nodes = append(b.nodes, node)
	b.nodes[0].Properties = props

	// Parent -> child, or resource group -> top-level resource.
	if parent := p.Parent(); parent != "" {
		b.rel(RelContains, parent, id, "", nil)
	} else {
		b.rel(RelContains, p.ResourceGroupID(), id, "", nil)
	}
	b.identity(row["identity"])
	skip := ""

	switch typ {
	case TypeVirtualNetwork:
		subnets, _ := rp["subnets"].([]any)
		for _, s := range subnets {
			sm, _ := s.(map[string]any)
			sid := strings.ToLower(str(sm["id"]))
			if sid == "" || !strings.HasPrefix(sid, id+"/subnets/") {
				continue
			}
			sp, _ := sm["properties"].(map[string]any)
			sprops := map[string]any{"name": str(sm["name"]), "type": TypeSubnet, "subscription_id": p.Subscription, "resource_group": p.ResourceGroup}
			setProperties(sprops, sp)
			b.nodes = append(b.nodes, Node{ID: sid, Labels: []string{LabelResource, LabelSubnet}, Properties: sprops,
				Subscription: p.Subscription, ResourceGroup: p.ResourceGroup})
			b.rel(RelContains, id, sid, "", nil)
			if nsg := idAt(sp, "networkSecurityGroup", "id"); nsg != "" {
				b.rel(RelSecuredBy, sid, nsg, "", nil)
			}
			b.refs(sid, sp, "properties", "")
		}
		skip = "subnets"
	case TypeSubnet:
		if nsg := idAt(rp, "networkSecurityGroup", "id"); nsg != "" {
			b.rel(RelSecuredBy, id, nsg, "", nil)
		}
	case TypeNetworkInterface:
		vm := idAt(rp, "virtualMachine", "id")
		if nsg := idAt(rp, "networkSecurityGroup", "id"); nsg != "" {
			b.rel(RelSecuredBy, id, nsg, "", nil)
		}
		cfgs, _ := rp["ipConfigurations"].([]any)
		for _, c := range cfgs {
			cm, _ := c.(map[string]any)
			cp, _ := cm["properties"].(map[string]any)
			if s := idAt(cp, "subnet", "id"); s != "" {
				b.rel(RelConnectedTo, id, s, "", nil)
				if vm != "" {
					b.rel(RelUsesSubnet, vm, s, "", nil)
				}
			}
			if pip := idAt(cp, "publicIPAddress", "id"); pip != "" {
				b.rel(RelHasPublicIP, id, pip, "", nil)
			}
		}
	case TypeDisk:
		if mb := strings.ToLower(str(row["managedBy"])); mb != "" {
			b.rel(RelAttachedTo, id, mb, "", nil)
		}
	case TypePrivateEndpoint:
		for _, list := range []string{"privateLinkServiceConnections", "manualPrivateLinkServiceConnections"} {
			conns, _ := rp[list].([]any)
			for _, c := range conns {
				cm, _ := c.(map[string]any)
				if t := idAt(cm, "properties", "privateLinkServiceId"); t != "" {
					b.rel(RelConnectedToPE, id, t, "", nil)
				}
			}
		}
	case TypeUserIdentity:
		if pid := strings.ToLower(str(rp["principalId"])); pid != "" {
			b.principal(pid, LabelServicePrincipal)
			b.rel(RelUsesIdentity, id, pid, "", nil)
		}
	}
	if mb := strings.ToLower(str(row["managedBy"])); mb != "" && typ != TypeDisk {
		b.ref(id, mb, "managedBy")
	}
	b.refs(id, rp, "properties", skip)
	return b.nodes, b.rels, true
}

// RoleAssignment maps an AuthorizationResources row of subscription sub:
// a role assignment gives the principal's node (User, Group or
// ServicePrincipal) and HAS_ROLE to the node of its scope; a role
// definition row records its name in RoleNames. Other rows give nothing.
func (m *Mapper) RoleAssignment(row Row, sub string) (nodes []Node, rels []Relationship, ok bool) {
	if !m.sameTenant(row) {
		return nil, nil, false
	}
	typ := strings.ToLower(str(row["type"]))
	rp, _ := row["properties"].(map[string]any)
	switch typ {
	case TypeRoleDefinition:
		if name := str(rp["roleName"]); name != "" {
			if m.RoleNames == nil {
				m.RoleNames = make(map[string]string)
			}
			m.RoleNames[lastSegment(strings.ToLower(str(row["id"])))] = name
		}
		return nil, nil, false
	case TypeRoleAssignment:
	default:
		return nil, nil, false
	}
	scope := strings.ToLower(str(rp["scope"]))
	if scope == "" {
		if id := strings.ToLower(str(row["id"])); strings.Contains(id, "/providers/microsoft.authorization/roleassignments/") {
			scope = id[:strings.LastIndex(id, "/providers/microsoft.authorization/roleassignments/")]
		}
	}
	p := ParseID(scope)
	if p.Subscription == "" || (sub != "" && p.Subscription != sub) {
		return nil, nil, false // management group and tenant scopes have no scanned node
	}
	if len(m.ResourceGroups) > 0 && (p.ResourceGroup == "" || !m.ResourceGroups[p.ResourceGroup]) {
		return nil, nil, false
	}
	pid := strings.ToLower(str(rp["principalId"]))
	def := strings.ToLower(str(rp["roleDefinitionId"]))
	if pid == "" || def == "" {
		return nil, nil, false
	}
	b := &builder{sub: p.Subscription, rg: p.ResourceGroup}
	b.principal(pid, principalLabel(str(rp["principalType"])))
	props := map[string]any{"role_definition_id": def, "assignment_id": strings.ToLower(str(row["id"]))}
	if pt := str(rp["principalType"]); pt != "" {
		props["principal_type"] = pt
	}
	b.rel(RelHasRole, pid, scope, def, props)
	return b.nodes, b.rels, true
}

// RoleName returns the name of role definition id (an ARM id or GUID):
// from a roleDefinitions row read by the scan, else from the built-in
// roles the mapping knows, else "".
func (m *Mapper) RoleName(def string) string {
	g := lastSegment(strings.ToLower(def))
	if n, ok := m.RoleNames[g]; ok {
		return n
	}
	return builtinRoles[g]
}

func principalLabel(t string) string {
	switch strings.ToLower(t) {
	case "user":
		return LabelUser
	case "group", "foreigngroup":
		return LabelGroup
	default:
		return LabelServicePrincipal
	}
}

// builder collects a row's nodes and relationships.
type builder struct {
	sub   string
	rg    string
	from  string
	nodes []Node
	rels  []Relationship
	typed map[string]bool // from + "\x00" + to of typed relationships
}

// rel draws a typed relationship (once per type, ends and key).
func (b *builder) rel(typ, from, to, key string, props map[string]any) {
	if from == "" || to == "" || from == to {
		return
	}
	if b.typed == nil {
		b.typed = make(map[string]bool)
	}
	k := typ + "\x00" + from + "\x00" + to + "\x00" + key
	if b.typed[k] {
		return
	}
	b.typed[k] = true
	b.typed[from+"\x00"+to] = true
	b.rels = append(b.rels, Relationship{Type: typ, From: from, To: to, Key: key, Properties: props, Subscription: b.sub, ResourceGroup: b.rg})
}

// principal adds a principal's node. Its properties are the same from
// every row that names it (the links say the rest), so writing it again
// in one scan does not change its content hash.
func (b *builder) principal(id, label string) {
	props := map[string]any{"object_id": id, "principal_type": label}
	b.nodes = append(b.nodes, Node{ID: id, Labels: []string{LabelPrincipal, label}, Properties: props})
}

// identity draws USES_IDENTITY from the row's "identity" object.
func (b *builder) identity(v any) {
	idn, _ := v.(map[string]any)
	if idn == nil {
		return
	}
	t := strings.ToLower(str(idn["type"]))
	if pid := strings.ToLower(str(idn["principalId"])); pid != "" && strings.Contains(t, "systemassigned") {
		b.principal(pid, LabelServicePrincipal)
		b.rel(RelUsesIdentity, b.from, pid, "", nil)
	}
	uais, _ := idn["userAssignedIdentities"].(map[string]any)
	keys := make([]string, 0, len(uais))
	for k := range uais {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.rel(RelUsesIdentity, b.from, strings.ToLower(k), "", nil)
	}
}

// ref draws REFERENCES {path} from from to to unless a typed relationship
// already links them.
func (b *builder) ref(from, to, path string) {
	if from == to || b.typed[from+"\x00"+to] {
		return
	}
	b.rels = append(b.rels, Relationship{Type: RelReferences, From: from, To: to, Key: path,
		Properties: map[string]any{"path": path}, Subscription: b.sub, ResourceGroup: b.rg})
}

// refs walks v (found at path) for ARM ids and draws REFERENCES for each,
// leaving out v's top-level key skip; the writer keeps only those naming
// a scanned node.
func (b *builder) refs(from string, v any, path, skip string) {
	var walk func(v any, path string, top bool)
	walk = func(v any, path string, top bool) {
		switch x := v.(type) {
		case string:
			const prefix = "/subscriptions/"
			if len(x) > len(prefix) && strings.EqualFold(x[:len(prefix)], prefix) {
				b.ref(from, strings.TrimRight(strings.ToLower(x), "/"), path)
			}
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				if !(top && k == skip) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(x[k], path+"."+k, false)
			}
		case []any:
			for i, e := range x {
				walk(e, path+"["+strconv.Itoa(i)+"]", false)
			}
		}
	}
	walk(v, path, true)
}

// resourceLabels returns [Resource, <type label>].
func resourceLabels(typ string) []string {
	if l := TypeLabel(typ); l != "" && l != LabelResource {
		return []string{LabelResource, l}
	}
	return []string{LabelResource}
}

// TypeLabel returns the second label of a resource type (compared
// case-insensitively): a known name (Microsoft.Compute/virtualMachines ->
// VirtualMachine, .../virtualNetworks/subnets -> Subnet), else the last
// segment of the type with its first letter upper-cased and a trailing
// "s" dropped (microsoft.foo/widgets -> Widget), else "".
func TypeLabel(typ string) string {
	typ = strings.ToLower(typ)
	if l, ok := typeLabels[typ]; ok {
		return l
	}
	seg := lastSegment(typ)
	if strings.HasSuffix(seg, "s") && len(seg) > 1 {
		seg = seg[:len(seg)-1]
	}
	var sb strings.Builder
	for i, r := range seg {
		switch {
		case r >= 'a' && r <= 'z' && i == 0:
			sb.WriteRune(r - 'a' + 'A')
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9' && i > 0:
			sb.WriteRune(r)
		}
	}
	if sb.Len() == 0 || sb.Len() > 64 {
		return ""
	}
	return sb.String()
}

// ResourceID is a parsed, lower-cased ARM id.
type ResourceID struct {
	// ID is the whole id.
	ID string
	// Subscription is the subscription GUID, "" when the id has none.
	Subscription string
	// ResourceGroup is the resource group's name, "" when none.
	ResourceGroup string
	// Provider is the resource provider namespace of the last
	// /providers/ segment (microsoft.compute), "" when none.
	Provider string
	// Segments are the type/name pairs after Provider.
	Segments []string
	// base is the id up to and including the last /providers/<ns>.
	base string
}

// ParseID parses an ARM id (lower-case it first); unknown shapes give a
// ResourceID with only the fields found.
func ParseID(id string) ResourceID {
	r := ResourceID{ID: id}
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) >= 2 && parts[0] == "subscriptions" {
		r.Subscription = parts[1]
	}
	if len(parts) >= 4 && parts[2] == "resourcegroups" {
		r.ResourceGroup = parts[3]
	}
	if i := strings.LastIndex(id, "/providers/"); i >= 0 {
		rest := strings.Split(strings.Trim(id[i+len("/providers/"):], "/"), "/")
		if len(rest) >= 1 {
			r.Provider = rest[0]
			r.Segments = rest[1:]
			r.base = id[:i] + "/providers/" + rest[0]
		}
	}
	return r
}

// ResourceGroupID returns /subscriptions/<s>/resourcegroups/<rg>.
func (r ResourceID) ResourceGroupID() string {
	if r.ResourceGroup == "" {
		return ""
	}
	return "/subscriptions/" + r.Subscription + "/resourcegroups/" + r.ResourceGroup
}

// Type returns the resource type named by the id (microsoft.sql/servers/
// databases), "" when it names none.
func (r ResourceID) Type() string {
	if r.Provider == "" || len(r.Segments) < 2 {
		return ""
	}
	t := r.Provider
	for i := 0; i < len(r.Segments); i += 2 {
		t += "/" + r.Segments[i]
	}
	return t
}

// Parent returns the id of the parent resource of a child resource
// (a server's for a database, the resource's for an extension resource
// under .../providers/...), "" for a top-level resource.
func (r ResourceID) Parent() string {
	if len(r.Segments) >= 4 {
		return r.base + "/" + strings.Join(r.Segments[:len(r.Segments)-2], "/")
	}
	if len(r.Segments) == 2 {
		if i := strings.LastIndex(r.ID, "/providers/"); i >= 0 {
			if parent := r.ID[:i]; strings.Contains(parent, "/providers/") {
				return parent
			}
		}
	}
	return ""
}

func lastSegment(s string) string {
	s = strings.TrimRight(s, "/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// str returns v when it is a string (or a json.Number), else "".
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// dig follows keys through nested objects.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		if m == nil {
			return nil
		}
		v = m[k]
	}
	return v
}

// idAt returns the lower-cased ARM id at keys of v, "" when absent.
func idAt(v any, keys ...string) string {
	return strings.TrimRight(strings.ToLower(str(dig(v, keys...))), "/")
}

// setSKU flattens the sku object into sku_name, sku_tier, sku_capacity.
func setSKU(props map[string]any, v any) {
	sku, _ := v.(map[string]any)
	for k, f := range map[string]string{"sku_name": "name", "sku_tier": "tier", "sku_family": "family", "sku_size": "size"} {
		if s := str(sku[f]); s != "" {
			props[k] = s
		}
	}
	if c, ok := sku["capacity"].(json.Number); ok {
		if n, err := c.Int64(); err == nil {
			props["sku_capacity"] = n
		}
	} else if c, ok := sku["capacity"].(float64); ok {
		props["sku_capacity"] = int64(c)
	}
}

// setTags stores tags as a JSON object in "tags" and each tag as
// tag_<key> (the key lower-cased, characters other than letters, digits
// and '_' replaced by '_').
func setTags(props map[string]any, v any) {
	tags, _ := v.(map[string]any)
	if len(tags) == 0 {
		return
	}
	if b, err := json.Marshal(tags); err == nil {
		props["tags"] = string(b)
	}
	for k, val := range tags {
		s := str(val)
		if s == "" {
			if b, err := json.Marshal(val); err == nil {
				s = string(b)
			}
		}
		props["tag_"+sanitizeKey(k)] = s
	}
}

func sanitizeKey(k string) string {
	var sb strings.Builder
	for _, r := range strings.ToLower(k) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('_')
		}
	}
	s := sb.String()
	if len(s) > 56 {
		s = s[:56]
	}
	return s
}

// wellKnown are properties copied from a resource's properties object
// (when scalar) under snake_case names.
var wellKnown = map[string][]string{
	"provisioning_state":          {"provisioningState"},
	"vm_size":                     {"hardwareProfile", "vmSize"},
	"os_type":                     {"storageProfile", "osDisk", "osType"},
	"address_prefix":              {"addressPrefix"},
	"ip_address":                  {"ipAddress"},
	"public_ip_allocation_method": {"publicIPAllocationMethod"},
	"disk_size_gb":                {"diskSizeGB"},
	"disk_state":                  {"diskState"},
	"fqdn":                        {"fullyQualifiedDomainName"},
	"vault_uri":                   {"vaultUri"},
	"public_network_access":       {"publicNetworkAccess"},
	"principal_id":                {"principalId"},
	"client_id":                   {"clientId"},
	"mac_address":                 {"macAddress"},
	"state":                       {"state"},
}

// setProperties copies well-known scalars of a properties object and the
// whole object as JSON in "properties" (cut at 64 KiB).
func setProperties(props map[string]any, rp map[string]any) {
	if rp == nil {
		return
	}
	for k, path := range wellKnown {
		anyPath := make([]string, len(path))
		copy(anyPath, path)
		switch v := dig(rp, anyPath...).(type) {
		case string:
			props[k] = v
		case json.Number:
			if n, err := v.Int64(); err == nil {
				props[k] = n
			} else if f, err := v.Float64(); err == nil {
				props[k] = f
			}
		case float64:
			props[k] = v
		case bool:
			props[k] = v
		}
	}
	if ap, ok := dig(rp, "addressSpace", "addressPrefixes").([]any); ok {
		var list []string
		for _, a := range ap {
			if s := str(a); s != "" {
				list = append(list, s)
			}
		}
		if len(list) > 0 {
			props["address_prefixes"] = list
		}
	}
	if b, err := json.Marshal(rp); err == nil && len(b) <= maxPropertiesJSONBytes {
		props["properties"] = string(b)
	}
}

// Hash returns a content hash of labels and properties (map keys sorted),
// used to tell changed items from unchanged ones between scans.
func Hash(labels []string, props map[string]any) string {
	h := fnv.New64a()
	for _, l := range labels {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	b, _ := json.Marshal(props) // encoding/json sorts map keys
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 16)
}
