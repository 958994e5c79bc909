package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
)

// InventoryTypeName is the name clients submit to run an inventory import.
const InventoryTypeName = "inventory"

// Labels of the nodes an inventory import writes, and the type of its relationships.
const (
	LabelTenant        = "Tenant"
	LabelSubscription  = "Subscription"
	LabelResourceGroup = "ResourceGroup"
	LabelResource      = "Resource"
	RelContains        = "CONTAINS"
)

// MaxInventoryBytes bounds an inventory file read through the "path"
// parameter (inline inventories are bounded by the server's body limit).
const MaxInventoryBytes = 256 << 20

// InventoryParams are the parameters of an inventory import:
//
//	{"tenant_id": "<uuid>", "inventory": [...az resource list -o json...]}
//	{"tenant_id": "<uuid>", "path": "contoso/resources.json"}
//
// plus the optional "label", "id_prefix" and "chunk_size". Everything is
// checked at submit, except the content of a file named by "path", which is
// read when the import runs.
type InventoryParams struct {
	// TenantID is the Entra ID tenant the inventory belongs to (a UUID,
	// required). `az resource list` does not print it: take it from
	// `az account show --query tenantId -o tsv`.
	TenantID string `json:"tenant_id"`
	// Inventory is the JSON array printed by `az resource list -o json`.
	Inventory json.RawMessage `json:"inventory,omitempty"`
	// Path names an inventory file inside InventoryOptions.InventoryDir (a
	// relative path that cannot leave that folder). Set Inventory or Path,
	// not both.
	Path string `json:"path,omitempty"`
	// Label, when set, is added to every node written (it must match
	// neo4jpool.IdentifierPattern), e.g. to tell one team's imports apart.
	Label string `json:"label,omitempty"`
	// IDPrefix is prepended to every node id (default none), so imports of
	// the same inventory can be kept apart, as the tests do.
	IDPrefix string `json:"id_prefix,omitempty"`
	// ChunkSize is the number of nodes or relationships per transaction;
	// 0 means InventoryOptions.ChunkSize.
	ChunkSize int `json:"chunk_size,omitempty"`
}

// AzureResource is one item of `az resource list -o json`. Only the fields a
// import uses are decoded; the others (properties, plan, extendedLocation,
// ...) are ignored.
type AzureResource struct {
	// ID is the ARM id, /subscriptions/<sub>/resourceGroups/<rg>/providers/
	// <namespace>/<type>/<name>[/<child type>/<child name>...]. Azure ids are
	// case-insensitive and the same resource group may appear in different
	// cases; an inventory import lowercases them to build node ids.
	ID string `json:"id"`
	// Name is the resource name ("server/database" for child resources).
	Name string `json:"name"`
	// Type is the resource type, e.g. Microsoft.Storage/storageAccounts.
	Type string `json:"type"`
	// Location is the Azure region, or "global".
	Location string `json:"location"`
	// ResourceGroup is the resource group's name as the CLI printed it.
	ResourceGroup string `json:"resourceGroup"`
	// Kind refines Type, e.g. StorageV2 or functionapp,linux.
	Kind string `json:"kind"`
	// ManagedBy is the id of the resource managing this one (a VM for its
	// disk), if any.
	ManagedBy string `json:"managedBy"`
	// ProvisioningState is e.g. Succeeded.
	ProvisioningState string `json:"provisioningState"`
	// CreatedTime and ChangedTime are RFC 3339 times.
	CreatedTime string `json:"createdTime"`
	// ChangedTime is when the resource last changed.
	ChangedTime string `json:"changedTime"`
	// SKU is the pricing tier, if any.
	SKU *AzureSKU `json:"sku"`
	// Identity is the managed identity, if any.
	Identity *AzureIdentity `json:"identity"`
	// Tags are the resource's tags (string values in Azure).
	Tags map[string]any `json:"tags"`
}

// AzureSKU is the "sku" object of a resource.
type AzureSKU struct {
	// Name is e.g. Standard_LRS.
	Name string `json:"name"`
	// Tier is e.g. Standard.
	Tier string `json:"tier"`
	// Capacity is the instance count, when the SKU has one.
	Capacity *int64 `json:"capacity"`
}

// AzureIdentity is the "identity" object of a resource.
type AzureIdentity struct {
	// Type is SystemAssigned, UserAssigned or both.
	Type string `json:"type"`
}

// InventoryOptions configure InventoryType.
type InventoryOptions struct {
	// InventoryDir enables the "path" parameter: paths are resolved inside
	// this folder and cannot leave it. Empty disables "path", so clients
	// must send the inventory inline (the safe default for a server).
	InventoryDir string
	// ChunkSize is the default number of items per transaction; 0 means
	// neo4jpool.DefaultChunkSize.
	ChunkSize int
}

// InventoryResult is the result of an inventory import.
type InventoryResult struct {
	// TenantID is the tenant imported (lowercased).
	TenantID string `json:"tenant_id"`
	// Subscriptions, ResourceGroups and Resources count the distinct
	// entities of the inventory (ids compared case-insensitively).
	Subscriptions  int `json:"subscriptions"`
	ResourceGroups int `json:"resource_groups"`
	Resources      int `json:"resources"`
	// Duplicates counts inventory items whose id appeared earlier.
	Duplicates int `json:"duplicates"`
	// ImportResult counts what was written: nodes, relationships, chunks,
	// and how many of them did not exist before.
	neo4jpool.ImportResult
}

// InventoryType returns the "inventory" operation type: it reads an Azure resource
// inventory (`az resource list -o json`) and MERGEs Tenant, Subscription,
// ResourceGroup and Resource nodes, linked Tenant-[:CONTAINS]->Subscription
// -[:CONTAINS]->ResourceGroup-[:CONTAINS]->Resource, into environment env of
// m, in chunks, reporting progress after each committed chunk. Importing the
// same inventory again changes nothing.
//
// Node ids are the lowercased ARM ids (/tenants/<id>, /subscriptions/<id>,
// /subscriptions/<id>/resourcegroups/<name>, the resource id), prefixed
// with InventoryParams.IDPrefix. Resource properties: name, type, location,
// kind, resource_group, subscription_id, azure_id (the id as Azure printed
// it), sku_name, sku_tier, sku_capacity, managed_by, identity_type,
// provisioning_state, created_time and changed_time (datetimes), and tags
// as a JSON object in a string (Neo4j properties cannot be maps), e.g.
// WHERE r.tags CONTAINS '"environment":"prod"'. An absent value removes the
// property, so a re-import leaves no stale values.
//
// Register it with a local client (atg.ClientOptions.Types) or a server
// (atg.Server.Types).
func InventoryType(m *neo4jpool.Manager, env string, opts InventoryOptions) operations.Type {
	return operations.Type{
		Name:        InventoryTypeName,
		Description: "MERGE an Azure resource inventory (az resource list -o json) as Tenant, Subscription, ResourceGroup and Resource nodes",
		Validate: func(params json.RawMessage) error {
			_, err := decodeInventory(params, opts, false)
			return err
		},
		Run: func(ctx context.Context, params json.RawMessage, r operations.Reporter) (any, error) {
			req, err := decodeInventory(params, opts, true)
			if err != nil {
				return nil, err
			}
			g, res := BuildGraph(req.tenantID, req.resources, req.params.Label, req.params.IDPrefix)
			nodes, rels := int64(len(g.Nodes)), int64(len(g.Relationships))
			r.Log("info", fmt.Sprintf("inventory of tenant %s: %d resources in %d resource groups of %d subscriptions (%d duplicate items)",
				res.TenantID, res.Resources, res.ResourceGroups, res.Subscriptions, res.Duplicates))
			r.Progress(operations.Progress{Phase: "read", Done: 0, Total: nodes + rels,
				Message: fmt.Sprintf("read %d resources; writing %d nodes and %d relationships", res.Resources, nodes, rels)})

			size := req.params.ChunkSize
			if size == 0 {
				size = opts.ChunkSize
			}
			im := neo4jpool.Importer{Manager: m, Env: env, ChunkSize: size}
			written, err := im.Import(ctx, g, func(p neo4jpool.ImportProgress) {
				done := int64(p.Done)
				if p.Phase == neo4jpool.PhaseRelationships {
					done += nodes
				}
				chunks := "chunks"
				if p.Chunks == 1 {
					chunks = "chunk"
				}
				r.Progress(operations.Progress{Phase: p.Phase, Done: done, Total: nodes + rels,
					Message: fmt.Sprintf("%s: %d of %d written (%d %s committed)", p.Phase, p.Done, p.Total, p.Chunks, chunks)})
			})
			res.ImportResult = written
			if err != nil {
				return nil, inventoryError(err)
			}
			return res, nil
		},
	}
}

// inventoryError describes an inventory import that stopped. Neo4j being unreachable is left
// to the engine's classification (SERVICE_UNAVAILABLE).
func inventoryError(err error) error {
	var ie *neo4jpool.ImportError
	if !errors.As(err, &ie) || neo4jpool.IsUnavailable(err) || errors.Is(err, context.Canceled) {
		return err
	}
	res := ie.Result
	details := map[string]any{"phase": ie.Phase, "nodes_committed": res.Nodes, "relationships_committed": res.Relationships}
	cause := ""
	var ne *neo4j.Neo4jError
	if errors.As(err, &ne) {
		details["neo4j_code"] = ne.Code
		cause = " (" + ne.Code + ")"
	}
	return &operations.Error{
		Code: "INVENTORY_FAILED",
		Message: fmt.Sprintf("import stopped in the %s phase%s after %d chunk(s) were committed (%d nodes, %d relationships); importing again is safe",
			ie.Phase, cause, res.Chunks, res.Nodes, res.Relationships),
		Details: details,
		Err:     err,
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// inventoryRequest is a decoded and checked import.
type inventoryRequest struct {
	params    InventoryParams
	tenantID  string
	resources []AzureResource // nil until loaded
}

// decodeInventory decodes and checks params. With load, an inventory named by
// path is read and checked too; without it (at submit) the file only has to
// exist.
func decodeInventory(raw json.RawMessage, opts InventoryOptions, load bool) (inventoryRequest, error) {
	var req inventoryRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req.params); err != nil {
		return req, &operations.ValidationError{Message: "params must be an object {tenant_id, inventory | path, label, id_prefix, chunk_size}: " +
			strings.TrimPrefix(err.Error(), "json: ")}
	}
	p := req.params
	switch {
	case p.TenantID == "":
		return req, &operations.ValidationError{Field: "tenant_id", Message: "required: the UUID of the tenant the inventory belongs to (az account show --query tenantId -o tsv)"}
	case !uuidPattern.MatchString(p.TenantID):
		return req, &operations.ValidationError{Field: "tenant_id", Message: fmt.Sprintf("%q is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", truncate(p.TenantID, 80))}
	}
	req.tenantID = strings.ToLower(p.TenantID)
	if p.Label != "" {
		if err := neo4jpool.ValidateIdentifier("label", p.Label); err != nil {
			return req, &operations.ValidationError{Field: "label", Message: strings.TrimPrefix(err.Error(), neo4jpool.ErrInvalidIdentifier.Error()+": ")}
		}
	}
	if len(p.IDPrefix) > 256 {
		return req, &operations.ValidationError{Field: "id_prefix", Message: "at most 256 bytes"}
	}
	if p.ChunkSize != 0 {
		if err := neo4jpool.ValidateChunkSize(p.ChunkSize); err != nil {
			return req, &operations.ValidationError{Field: "chunk_size", Message: strings.TrimPrefix(err.Error(), neo4jpool.ErrInvalidChunkSize.Error()+": ")}
		}
	}
	inline := len(bytes.TrimSpace(p.Inventory)) > 0 && !bytes.Equal(bytes.TrimSpace(p.Inventory), []byte("null"))
	switch {
	case inline && p.Path != "":
		return req, &operations.ValidationError{Field: "path", Message: "give inventory or path, not both"}
	case inline:
		res, err := parseInventory(p.Inventory, "inventory")
		req.resources = res
		return req, err
	case p.Path == "":
		return req, &operations.ValidationError{Field: "inventory", Message: "required: the JSON array of `az resource list -o json` (or path, where the server allows it)"}
	case opts.InventoryDir == "":
		return req, &operations.ValidationError{Field: "path", Message: "reading inventories from files is not enabled here; send the inventory inline"}
	case !filepath.IsLocal(p.Path):
		return req, &operations.ValidationError{Field: "path", Message: "must be a relative path inside the inventory folder"}
	}
	data, err := readInventoryFile(opts.InventoryDir, p.Path, load)
	if err != nil {
		return req, &operations.ValidationError{Field: "path", Message: err.Error()}
	}
	if load {
		req.resources, err = parseInventory(data, "path")
	}
	return req, err
}

// readInventoryFile opens name inside dir (it cannot escape dir, even
// through symbolic links) and, with read, returns its content.
func readInventoryFile(dir, name string, read bool) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, errors.New("the inventory folder is not available")
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot open %q in the inventory folder", name)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%q is not a regular file", name)
	}
	if !read {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxInventoryBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %q: %v", name, err)
	}
	if len(data) > MaxInventoryBytes {
		return nil, fmt.Errorf("%q is larger than %d bytes", name, MaxInventoryBytes)
	}
	return data, nil
}

// parseInventory decodes the output of `az resource list -o json` and checks
// every id; field names the parameter in errors.
func parseInventory(data []byte, field string) ([]AzureResource, error) {
	var items []AzureResource
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, &operations.ValidationError{Field: field, Message: "not the JSON array printed by `az resource list -o json`: " +
			strings.TrimPrefix(err.Error(), "json: ")}
	}
	for i, it := range items {
		id, err := ParseResourceID(it.ID)
		if err != nil {
			return nil, &operations.ValidationError{Field: fmt.Sprintf("%s[%d].id", field, i), Message: err.Error()}
		}
		if it.ResourceGroup != "" && !strings.EqualFold(it.ResourceGroup, id.ResourceGroup) {
			return nil, &operations.ValidationError{Field: fmt.Sprintf("%s[%d].resourceGroup", field, i),
				Message: fmt.Sprintf("%q does not match the resource group of the id (%q)", truncate(it.ResourceGroup, 90), id.ResourceGroup)}
		}
	}
	return items, nil
}

// ResourceID is a parsed ARM resource id.
type ResourceID struct {
	// SubscriptionID and ResourceGroup are as written in the id.
	SubscriptionID string
	// ResourceGroup is the resource group's name.
	ResourceGroup string
	// Type is <namespace>/<type>[/<child type>...].
	Type string
	// Name is <name>[/<child name>...].
	Name string
}

// ParseResourceID parses /subscriptions/<sub>/resourceGroups/<rg>/providers/
// <namespace>/<type>/<name>[/<child type>/<child name>...], matching the
// fixed segments case-insensitively as Azure does.
func ParseResourceID(id string) (ResourceID, error) {
	const shape = "/subscriptions/<subscription>/resourceGroups/<group>/providers/<namespace>/<type>/<name>"
	parts := strings.Split(id, "/")
	bad := func(why string) (ResourceID, error) {
		return ResourceID{}, fmt.Errorf("%q is not a resource id of the shape %s: %s", truncate(id, 200), shape, why)
	}
	switch {
	case id == "":
		return ResourceID{}, errors.New("required: the resource's ARM id " + shape)
	case len(parts) < 9 || parts[0] != "":
		return bad("too few segments")
	case !strings.EqualFold(parts[1], "subscriptions") || !strings.EqualFold(parts[3], "resourceGroups") || !strings.EqualFold(parts[5], "providers"):
		return bad("wrong fixed segments")
	case (len(parts)-7)%2 != 0:
		return bad("types and names do not pair up")
	}
	for _, s := range parts[1:] {
		if s == "" {
			return bad("empty segment")
		}
	}
	out := ResourceID{SubscriptionID: parts[2], ResourceGroup: parts[4]}
	types, names := []string{parts[6]}, []string(nil)
	for i := 7; i < len(parts); i += 2 {
		types = append(types, parts[i])
		names = append(names, parts[i+1])
	}
	out.Type, out.Name = strings.Join(types, "/"), strings.Join(names, "/")
	return out, nil
}

// BuildGraph turns an inventory into the graph an inventory import writes (nodes
// tenant first, then subscriptions, resource groups and resources in
// inventory order; each id once) and counts what it holds. A resource
// group's name is its first spelling in the inventory that is not all
// upper case, if there is one. label, when
// not empty, is added to every node; prefix is prepended to every node id.
// Items must have valid ids (see ParseResourceID); others are skipped.
func BuildGraph(tenantID string, items []AzureResource, label, prefix string) (neo4jpool.Graph, InventoryResult) {
	tenantID = strings.ToLower(tenantID)
	res := InventoryResult{TenantID: tenantID}
	labels := func(kind string) []string {
		if label == "" {
			return []string{kind}
		}
		return []string{kind, label}
	}
	var g neo4jpool.Graph
	seen := map[string]bool{}
	groupIndex := map[string]int{} // resource group node id -> index in groups
	var subs, groups, resources []neo4jpool.Node
	var subRels, groupRels, resRels []neo4jpool.Relationship

	tenantNode := prefix + "/tenants/" + tenantID
	g.Nodes = append(g.Nodes, neo4jpool.Node{ID: tenantNode, Labels: labels(LabelTenant),
		Properties: map[string]any{"name": tenantID, "tenant_id": tenantID}})

	for _, it := range items {
		id, err := ParseResourceID(it.ID)
		if err != nil {
			continue
		}
		sub := strings.ToLower(id.SubscriptionID)
		subNode := prefix + "/subscriptions/" + sub
		if !seen[subNode] {
			seen[subNode] = true
			subs = append(subs, neo4jpool.Node{ID: subNode, Labels: labels(LabelSubscription),
				Properties: map[string]any{"name": sub, "subscription_id": sub, "tenant_id": tenantID}})
			subRels = append(subRels, neo4jpool.Relationship{Type: RelContains, From: tenantNode, To: subNode})
		}
		rgNode := subNode + "/resourcegroups/" + strings.ToLower(id.ResourceGroup)
		rgName := it.ResourceGroup
		if rgName == "" {
			rgName = id.ResourceGroup
		}
		rgProps := func() map[string]any {
			return map[string]any{"name": rgName, "subscription_id": sub,
				"azure_id": "/subscriptions/" + id.SubscriptionID + "/resourceGroups/" + rgName}
		}
		if i, ok := groupIndex[rgNode]; !ok {
			groupIndex[rgNode] = len(groups)
			groups = append(groups, neo4jpool.Node{ID: rgNode, Labels: labels(LabelResourceGroup), Properties: rgProps()})
			groupRels = append(groupRels, neo4jpool.Relationship{Type: RelContains, From: subNode, To: rgNode})
		} else if name := groups[i].Properties["name"].(string); name == strings.ToUpper(name) && rgName != name {
			// Azure upper-cases the group in the ids of some resources
			// (virtual machines, disks): prefer a spelling that is not.
			groups[i].Properties = rgProps()
		}
		resNode := prefix + strings.ToLower(it.ID)
		if seen[resNode] {
			res.Duplicates++
			continue
		}
		seen[resNode] = true
		resources = append(resources, neo4jpool.Node{ID: resNode, Labels: labels(LabelResource), Properties: resourceProperties(it, id, sub)})
		resRels = append(resRels, neo4jpool.Relationship{Type: RelContains, From: rgNode, To: resNode})
	}
	res.Subscriptions, res.ResourceGroups, res.Resources = len(subs), len(groups), len(resources)
	g.Nodes = append(append(append(g.Nodes, subs...), groups...), resources...)
	g.Relationships = append(append(append(g.Relationships, subRels...), groupRels...), resRels...)
	return g, res
}

// resourceProperties are the properties of a Resource node. Absent values
// are nil, which removes a property left by an earlier import.
func resourceProperties(it AzureResource, id ResourceID, sub string) map[string]any {
	orNil := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	timeOrNil := func(s string) any {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil
		}
		// In UTC: a time whose offset matches the local zone parses into
		// time.Local, which the driver would send as the zone "Local".
		return t.UTC()
	}
	name, typ := it.Name, it.Type
	if name == "" {
		name = id.Name
	}
	if typ == "" {
		typ = id.Type
	}
	rg := it.ResourceGroup
	if rg == "" {
		rg = id.ResourceGroup
	}
	props := map[string]any{
		"name": name, "type": typ, "location": orNil(it.Location), "kind": orNil(it.Kind),
		"resource_group": rg, "subscription_id": sub, "azure_id": it.ID,
		"managed_by": orNil(it.ManagedBy), "provisioning_state": orNil(it.ProvisioningState),
		"created_time": timeOrNil(it.CreatedTime), "changed_time": timeOrNil(it.ChangedTime),
		"sku_name": nil, "sku_tier": nil, "sku_capacity": nil, "identity_type": nil, "tags": nil,
	}
	if it.SKU != nil {
		props["sku_name"], props["sku_tier"] = orNil(it.SKU.Name), orNil(it.SKU.Tier)
		if it.SKU.Capacity != nil {
			props["sku_capacity"] = *it.SKU.Capacity
		}
	}
	if it.Identity != nil {
		props["identity_type"] = orNil(it.Identity.Type)
	}
	if len(it.Tags) > 0 {
		// Map keys are encoded sorted, so the same tags give the same string.
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(it.Tags); err == nil {
			props["tags"] = strings.TrimSuffix(b.String(), "\n")
		}
	}
	return props
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
