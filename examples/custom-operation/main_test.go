package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// The bundled sample: 2 subscriptions, 4 resource groups, 42 resources.
const (
	sampleSubscriptions  = 2
	sampleResourceGroups = 4
	sampleResources      = 42
	sampleNodes          = 1 + sampleSubscriptions + sampleResourceGroups + sampleResources
	sampleRelationships  = sampleNodes - 1
)

func sample(t *testing.T) []AzureResource {
	t.Helper()
	items, err := parseInventory(sampleInventory, "inventory")
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func TestSampleIsAzResourceListOutput(t *testing.T) {
	var raw []map[string]any
	if err := json.Unmarshal(sampleInventory, &raw); err != nil {
		t.Fatal(err)
	}
	// The fields `az resource list -o json` prints for every item.
	want := []string{"changedTime", "createdTime", "extendedLocation", "id", "identity", "kind", "location", "managedBy",
		"name", "plan", "properties", "provisioningState", "resourceGroup", "sku", "tags", "type"}
	for i, item := range raw {
		var keys []string
		for k := range item {
			keys = append(keys, k)
		}
		if diff := cmp.Diff(want, keys, cmpSorted); diff != "" {
			t.Fatalf("item %d fields (-want +got):\n%s", i, diff)
		}
	}
	if len(raw) != sampleResources {
		t.Fatalf("%d items, want %d", len(raw), sampleResources)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string { return slices.Sorted(slices.Values(in)) })

func TestBuildGraph(t *testing.T) {
	g, res := BuildGraph(strings.ToUpper(SampleTenantID), sample(t), "Scanned", "p:")
	if err := neo4jpool.ValidateGraph(g); err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != sampleNodes || len(g.Relationships) != sampleRelationships {
		t.Fatalf("%d nodes, %d relationships", len(g.Nodes), len(g.Relationships))
	}
	want := InventoryResult{TenantID: SampleTenantID, Subscriptions: sampleSubscriptions, ResourceGroups: sampleResourceGroups, Resources: sampleResources}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	byID := map[string]neo4jpool.Node{}
	for _, n := range g.Nodes {
		if n.ID != strings.ToLower(n.ID) {
			t.Errorf("node id %q is not lowercased", n.ID)
		}
		if len(n.Labels) != 2 || n.Labels[1] != "Scanned" {
			t.Errorf("node %s labels %v", n.ID, n.Labels)
		}
		byID[n.ID] = n
	}
	if _, ok := byID["p:/tenants/"+SampleTenantID]; !ok {
		t.Error("no tenant node")
	}
	// The VM's id spells its group RG-APP-DEV, other resources rg-app-dev:
	// one group, named in the spelling that is not all upper case.
	rg := byID["p:/subscriptions/4f8a2c1e-7b6d-4a9f-8e3c-5d1b0a2f6e97/resourcegroups/rg-app-dev"]
	if rg.Properties["name"] != "rg-app-dev" {
		t.Errorf("resource group %+v", rg)
	}
	vm := byID["p:/subscriptions/4f8a2c1e-7b6d-4a9f-8e3c-5d1b0a2f6e97/resourcegroups/rg-app-dev/providers/microsoft.compute/virtualmachines/vm-build-01"]
	if vm.Properties["name"] != "vm-build-01" || vm.Properties["type"] != "Microsoft.Compute/virtualMachines" ||
		vm.Properties["identity_type"] != "SystemAssigned" || vm.Properties["location"] != "eastus" ||
		vm.Properties["tags"] != `{"environment":"dev","owner":"platform@contoso.example"}` {
		t.Errorf("vm properties %v", vm.Properties)
	}
	if ct, ok := vm.Properties["created_time"].(time.Time); !ok || ct.Location() != time.UTC {
		t.Errorf("created_time %#v", vm.Properties["created_time"])
	}

	// The same resource twice (in another case) is one node.
	items := sample(t)
	dup := items[0]
	dup.ID = strings.ToUpper(dup.ID)
	_, res = BuildGraph(SampleTenantID, append(items, dup), "", "")
	if res.Resources != sampleResources || res.Duplicates != 1 {
		t.Errorf("with a duplicate: %+v", res)
	}
}

func TestParseResourceID(t *testing.T) {
	got, err := ParseResourceID("/subscriptions/s1/resourcegroups/rg/providers/Microsoft.Sql/servers/db1/databases/orders")
	want := ResourceID{SubscriptionID: "s1", ResourceGroup: "rg", Type: "Microsoft.Sql/servers/databases", Name: "db1/orders"}
	if err != nil || got != want {
		t.Errorf("got %+v, %v", got, err)
	}
	for _, bad := range []string{
		"", "/subscriptions/s1", "/subscriptions/s1/resourceGroups/rg",
		"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites",
		"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/a/slots",
		"/subscriptions/s1/resourceGroups//providers/Microsoft.Web/sites/a",
		"/subs/s1/resourceGroups/rg/providers/Microsoft.Web/sites/a",
		"subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/a",
	} {
		if _, err := ParseResourceID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestValidateAtSubmit checks the parameters refused before anything runs.
func TestValidateAtSubmit(t *testing.T) {
	typ := InventoryType(nil, "dev", InventoryOptions{})
	withDir := InventoryType(nil, "dev", InventoryOptions{InventoryDir: "testdata"})
	inv := string(sampleInventory)
	cases := []struct {
		name, params, field string
		typ                 operations.Type
	}{
		{"missing tenant", `{"inventory":` + inv + `}`, "tenant_id", typ},
		{"bad tenant", `{"tenant_id":"not-a-uuid","inventory":[]}`, "tenant_id", typ},
		{"no inventory", `{"tenant_id":"` + SampleTenantID + `"}`, "inventory", typ},
		{"inventory not an array", `{"tenant_id":"` + SampleTenantID + `","inventory":{"value":[]}}`, "inventory", typ},
		{"bad resource id", `{"tenant_id":"` + SampleTenantID + `","inventory":[{"id":"/subscriptions/s"}]}`, "inventory[0].id", typ},
		{"group mismatch", `{"tenant_id":"` + SampleTenantID + `","inventory":[{"id":"/subscriptions/s/resourceGroups/a/providers/N/t/x","resourceGroup":"b"}]}`, "inventory[0].resourceGroup", typ},
		{"bad label", `{"tenant_id":"` + SampleTenantID + `","inventory":[],"label":"x) DETACH DELETE n //"}`, "label", typ},
		{"bad chunk size", `{"tenant_id":"` + SampleTenantID + `","inventory":[],"chunk_size":-1}`, "chunk_size", typ},
		{"path not enabled", `{"tenant_id":"` + SampleTenantID + `","path":"az-resource-list.json"}`, "path", typ},
		{"path and inventory", `{"tenant_id":"` + SampleTenantID + `","path":"az-resource-list.json","inventory":[]}`, "path", withDir},
		{"path escapes", `{"tenant_id":"` + SampleTenantID + `","path":"../main.go"}`, "path", withDir},
		{"path missing", `{"tenant_id":"` + SampleTenantID + `","path":"nope.json"}`, "path", withDir},
		{"unknown parameter", `{"tenant":"` + SampleTenantID + `","inventory":[]}`, "", typ},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.typ.Validate(json.RawMessage(c.params))
			var ve *operations.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("got %v, want a ValidationError on %q", err, c.field)
			}
		})
	}
	for _, ok := range []string{
		`{"tenant_id":"` + SampleTenantID + `","inventory":` + inv + `,"label":"Scanned","id_prefix":"x:","chunk_size":10}`,
		`{"tenant_id":"` + strings.ToUpper(SampleTenantID) + `","inventory":[]}`,
	} {
		if err := typ.Validate(json.RawMessage(ok)); err != nil {
			t.Errorf("%.80s: %v", ok, err)
		}
	}
	if err := withDir.Validate(json.RawMessage(`{"tenant_id":"` + SampleTenantID + `","path":"az-resource-list.json"}`)); err != nil {
		t.Errorf("path: %v", err)
	}
}

// dbEnv is the environment a run gets: the test database only.
func dbEnv(s neo4jtest.Settings) map[string]string {
	vars := s.Env()
	vars["ATG_AUDIT_LOG"] = "off"
	return vars
}

// graphState is every node and relationship carrying label, with element
// ids, so that a re-created node or relationship shows as a change.
func graphState(t *testing.T, s neo4jtest.Settings, label string) []any {
	t.Helper()
	d := neo4jtest.Driver(t, s)
	var out []any
	for _, q := range []string{
		"MATCH (n:" + label + ") RETURN elementId(n), n.id, labels(n), properties(n) ORDER BY n.id",
		"MATCH (a:" + label + ")-[r]->(b:" + label + ") RETURN elementId(r), type(r), a.id, b.id, properties(r) ORDER BY a.id, b.id",
	} {
		recs, err := neo4jtest.Query(context.Background(), d, s, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, r.Values)
		}
	}
	return out
}

func counts(t *testing.T, s neo4jtest.Settings, label string) map[string]int64 {
	t.Helper()
	d := neo4jtest.Driver(t, s)
	out := map[string]int64{}
	for _, kind := range []string{LabelTenant, LabelSubscription, LabelResourceGroup, LabelResource} {
		out[kind] = neo4jtest.Count(t, d, s, "MATCH (n:"+kind+":"+label+") RETURN count(n)", nil)
	}
	out["CONTAINS"] = neo4jtest.Count(t, d, s, "MATCH (:"+label+")-[r:CONTAINS]->(:"+label+") RETURN count(r)", nil)
	out["paths"] = neo4jtest.Count(t, d, s, "MATCH p = (:Tenant:"+label+")-[:CONTAINS]->(:Subscription:"+label+
		")-[:CONTAINS]->(:ResourceGroup:"+label+")-[:CONTAINS]->(:Resource:"+label+") RETURN count(p)", nil)
	return out
}

var wantCounts = map[string]int64{LabelTenant: 1, LabelSubscription: sampleSubscriptions, LabelResourceGroup: sampleResourceGroups,
	LabelResource: sampleResources, "CONTAINS": sampleRelationships, "paths": sampleResources}

// TestEmbeddedImportTwice imports the sample in-process twice: the counts match
// the sample, and the second import changes nothing.
func TestEmbeddedImportTwice(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"-env-file=", "-label", label, "-id-prefix", label + ":", "-chunk-size", "10"}

	var out, errOut bytes.Buffer
	if err := run(ctx, args, &out, &errOut, dbEnv(s)); err != nil {
		t.Fatalf("first import: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	for _, want := range []string{
		"(in this process)",
		"100.0%  relationships: 48 of 48 written",
		"nodes: 10 of 49 written (1 chunk committed)", // not "1 chunks"
		"tenant " + SampleTenantID + ": 2 subscriptions, 4 resource groups, 42 resources",
		"wrote 49 nodes (49 new) and 48 relationships (48 new) in 10 chunks",
		"4f8a2c1e-7b6d-4a9f-8e3c-5d1b0a2f6e97  rg-app-dev      10         eastus,eastus2",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "% "); n != 11 { // "read" + 10 chunks
		t.Errorf("%d progress lines, want 11:\n%s", n, out.String())
	}
	if diff := cmp.Diff(wantCounts, counts(t, s, label)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	before := graphState(t, s, label)

	out.Reset()
	if err := run(ctx, args, &out, &errOut, dbEnv(s)); err != nil {
		t.Fatalf("second import: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "wrote 49 nodes (0 new) and 48 relationships (0 new)") {
		t.Errorf("second import output:\n%s", out.String())
	}
	if diff := cmp.Diff(before, graphState(t, s, label)); diff != "" {
		t.Errorf("the second import changed the graph (-before +after):\n%s", diff)
	}

	// -cleanup deletes the tenant and everything it contains.
	out.Reset()
	if err := run(ctx, append(args, "-cleanup"), &out, &errOut, dbEnv(s)); err != nil {
		t.Fatalf("import -cleanup: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "deleted 49 nodes") {
		t.Errorf("-cleanup output:\n%s", out.String())
	}
	if n := neo4jtest.Count(t, neo4jtest.Driver(t, s), s, "MATCH (n:"+label+") RETURN count(n)", nil); n != 0 {
		t.Errorf("%d nodes left after -cleanup", n)
	}
}

// TestBadTenantRejectedAtSubmit: a bad or missing tenant_id is a validation
// error naming it, and nothing is written.
func TestBadTenantRejectedAtSubmit(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, tenant := range []string{"not-a-uuid", "d5b9c3a1-6e4f-4b2a-9c8d-7e1f0a3b5c2"} {
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"-env-file=", "-label", label, "-id-prefix", label + ":", "-tenant-id", tenant}, &out, &errOut, dbEnv(s))
		var te *transport.Error
		if !errors.As(err, &te) || !errors.Is(err, transport.ErrValidation) || te.Details["field"] != "params.tenant_id" ||
			!strings.Contains(err.Error(), "tenant_id") {
			t.Fatalf("tenant %q: got %v (%#v)", tenant, err, te)
		}
		if strings.Contains(out.String(), "submitted") {
			t.Errorf("tenant %q: the import was queued:\n%s", tenant, out.String())
		}
	}
	// The same through a local client, with the tenant missing.
	cfg, err := atg.LoadNeo4jConfig("dev", atg.LoadOptions{Environ: dbEnv(s)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := atg.NewClient(atg.ClientOptions{Neo4j: cfg, Types: []operations.Type{InventoryType(nil, "dev", InventoryOptions{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	_, err = c.Submit(ctx, InventoryTypeName, InventoryParams{Inventory: sampleInventory})
	if !errors.Is(err, transport.ErrValidation) || !strings.Contains(err.Error(), "tenant_id: required") {
		t.Fatalf("missing tenant_id: %v", err)
	}
	if n := neo4jtest.Count(t, neo4jtest.Driver(t, s), s, "MATCH (n:"+label+") RETURN count(n)", nil); n != 0 {
		t.Errorf("%d nodes written", n)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var (
	urlLine = regexp.MustCompile(`listening on (http://\S+)`)
	keyLine = regexp.MustCompile(`^atg_dev_[0-9a-f]{64}$`)
)

// TestServeAndRemote runs the example as a server, then imports through it
// from the example in remote mode (inline and by path), and checks that a
// bad tenant_id is refused by the server at submit.
func TestServeAndRemote(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	label := neo4jtest.Unique(t)
	neo4jtest.CleanupLabel(t, neo4jtest.Driver(t, s), s, label)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	serveCtx, stopServer := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	var logs syncBuffer
	served := make(chan error, 1)
	env := dbEnv(s)
	env["ATG_OPERATION_RETENTION"] = "1h"
	env["ATG_OPERATION_NAMESPACE"] = neo4jtest.OperationNamespace(t, neo4jtest.Driver(t, s), s) // not another test's replica
	go func() {
		err := run(serveCtx, []string{"-env-file=", "-mode", "serve", "-listen", "127.0.0.1:0", "-inventory-dir", "testdata"}, pw, &logs, env)
		pw.CloseWithError(err)
		served <- err
	}()
	var url, key string
	var serverOut syncBuffer
	lines := bufio.NewScanner(pr)
	for (url == "" || key == "") && lines.Scan() {
		line := lines.Text()
		fmt.Fprintln(&serverOut, line)
		if m := urlLine.FindStringSubmatch(line); m != nil {
			url = m[1]
		}
		if keyLine.MatchString(line) {
			key = line
		}
	}
	if url == "" || key == "" {
		t.Fatalf("no URL or key in the server's output:\n%s\nlogs:\n%s", serverOut.String(), logs.String())
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&serverOut, pr)
	}()
	remoteEnv := map[string]string{"ATG_SERVICE_URL": url, "ATG_API_KEY": key}

	var out bytes.Buffer
	args := []string{"-env-file=", "-mode", "remote", "-label", label, "-id-prefix", label + ":", "-chunk-size", "20"}
	if err := run(ctx, args, &out, io.Discard, remoteEnv); err != nil {
		t.Fatalf("remote import: %v\n%s\nserver logs:\n%s", err, out.String(), logs.String())
	}
	if !strings.Contains(out.String(), "(on the server)") || !strings.Contains(out.String(), "wrote 49 nodes (49 new) and 48 relationships (48 new) in 6 chunks") {
		t.Errorf("remote import output:\n%s", out.String())
	}
	if diff := cmp.Diff(wantCounts, counts(t, s, label)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}

	// By path: the server reads the file from its -inventory-dir.
	out.Reset()
	pathArgs := append(args[:len(args):len(args)], "-path", "az-resource-list.json", "-tenant-id", SampleTenantID)
	if err := run(ctx, pathArgs, &out, io.Discard, remoteEnv); err != nil {
		t.Fatalf("remote import by path: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "wrote 49 nodes (0 new) and 48 relationships (0 new)") {
		t.Errorf("import by path output:\n%s", out.String())
	}

	// A bad tenant: 400 VALIDATION_ERROR from the server, naming tenant_id.
	err := run(ctx, append(args[:len(args):len(args)], "-tenant-id", "42"), io.Discard, io.Discard, remoteEnv)
	var te *transport.Error
	if !errors.As(err, &te) || te.Status != 400 || te.Code != transport.CodeValidation || te.Details["field"] != "params.tenant_id" {
		t.Errorf("bad tenant through the server: %v", err)
	}

	stopServer()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop")
	}
	<-copied // the pipe is closed: everything the server printed is in serverOut
	if !strings.Contains(serverOut.String(), "server stopped") {
		t.Errorf("server output:\n%s", serverOut.String())
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-mode", "sideways"}, {"-nope"}, {"extra"}, {"-inventory", "a.json", "-path", "b.json"}} {
		var ue usageError
		if err := run(context.Background(), args, io.Discard, io.Discard, map[string]string{}); !errors.As(err, &ue) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}
