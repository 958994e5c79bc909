package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/azure/azuretest"
	"github.com/atgraph/atg/internal/neo4jtest"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// TestBinaryScanFakeAzure runs the atg-server binary with only what a
// deployment sets (ATG_TARGET_TENANT_ID, AZURE_ACCESS_TOKEN,
// ATG_AZURE_ARM_ENDPOINT, SSL_CERT_FILE for the fake's certificate) and
// submits {"type":"scan"} without parameters: the server reads the fake
// tenant through Resource Graph and writes it into Neo4j.
func TestBinaryScanFakeAzure(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	fake := azuretest.NewServer(t, azuretest.Options{Seed: time.Now().UnixNano(), Resources: 60, Subscriptions: 2})
	tenant := fake.Tenant.ID
	d := neo4jtest.Driver(t, s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = neo4jtest.Query(ctx, d, s, "MATCH (n:AzureNode {tenant_id: $t}) DETACH DELETE n", map[string]any{"t": tenant})
	})
	vars := serverVars(t)
	key, err := auth.Generate(auth.Dev)
	must(t, err)
	vars["ATG_API_KEYS"] = key
	vars["ATG_AUDIT_LOG"] = "off"
	vars["ATG_RATE_LIMIT_RPM"] = "0"
	for k, v := range fake.Env() {
		vars[k] = v
	}
	srv := startServerProcess(t, vars, key, "serve", "--env-file", "")
	status, body := srv.do(t, "POST", "/api/v1/operations", map[string]any{"type": "scan"})
	if status != 202 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var sub transport.Submitted
	must(t, json.Unmarshal(body, &sub))
	var op operations.Operation
	waitFor(t, "the scan to end", func() bool {
		_, body := srv.do(t, "GET", "/api/v1/operations/"+sub.OperationID, nil)
		must(t, json.Unmarshal(body, &op))
		return op.Status.Terminal()
	})
	if op.Status != operations.Completed {
		t.Fatalf("scan %s: %+v; stderr:\n%s", op.Status, op.Error, srv.stderr.String())
	}
	var res azure.ScanResult
	must(t, json.Unmarshal(op.Result, &res))
	if res.TenantID != tenant || !res.Complete || len(res.Subscriptions) != 2 || res.Nodes.Added == 0 || res.Stats.APICalls == 0 {
		t.Errorf("result: %+v", res)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (:VirtualMachine {tenant_id: $t})-[:USES_SUBNET]->(:Subnet) RETURN count(*)", map[string]any{"t": tenant}); n == 0 {
		t.Error("no VirtualMachine -USES_SUBNET-> Subnet in the graph")
	}
	if strings.Contains(srv.stderr.String(), fake.Token) {
		t.Error("the access token is in the server's log")
	}
}
