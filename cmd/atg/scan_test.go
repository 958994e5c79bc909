package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/internal/neo4jtest"
)

// TestLocalScan runs "atg scan" in local mode on the azure fixture (under
// a fresh tenant id, read from ATG_TARGET_TENANT_ID), then a dry run with
// --no-prune: the second finds everything unchanged.
func TestLocalScan(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../azure/testdata/tenant.json")
	if err != nil {
		t.Fatal(err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	tenant := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	raw = bytes.ReplaceAll(raw, []byte("7d2c1f0e-5b7a-4c39-9e61-2f3b8a4d6c10"), []byte(tenant))
	src, err := azure.ReadMemorySource(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = neo4jtest.Query(ctx, d, s, "MATCH (n:AzureNode {tenant_id: $t}) DETACH DELETE n", map[string]any{"t": tenant})
	})
	vars := localVars(t)
	vars["ATG_TARGET_TENANT_ID"] = tenant
	c := newCLI(t, vars)
	c.opts = func(o *atg.ClientOptions) {
		o.ScanSource = func(context.Context, atg.ScanParams) (azure.Source, error) { return src, nil }
	}
	r := c.run("scan")
	var res atg.ScanResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != exitOK {
		t.Fatalf("scan (%v):\n%s", err, r)
	}
	if res.TenantID != tenant || !res.Complete || len(res.Subscriptions) != 2 || res.Nodes.Added == 0 {
		t.Errorf("scan: %+v\n%s", res, r)
	}
	if !strings.Contains(r.stderr, "(scan) submitted; local mode") || !strings.Contains(r.stderr, "progress 100.0% scan ") {
		t.Errorf("scan's progress:\n%s", r.stderr)
	}
	r = c.run("scan", "--dry-run", "--no-prune", "--subscription", "11111111-aaaa-4bbb-8ccc-000000000001")
	var dry atg.ScanResult
	if err := json.Unmarshal([]byte(r.stdout), &dry); err != nil || r.code != exitOK {
		t.Fatalf("dry run (%v):\n%s", err, r)
	}
	if !dry.DryRun || dry.Prune || len(dry.Subscriptions) != 1 || dry.Nodes.Added != 0 || dry.Nodes.Unchanged == 0 {
		t.Errorf("dry run:\n%s", r)
	}
	if r = c.run("scan", "--subscription", "prod"); r.code == exitOK || !strings.Contains(r.stderr, "subscriptions[0]") {
		t.Errorf("bad subscription:\n%s", r)
	}
}

// TestLocalScanFromFile scans the bundled `az resource list` sample with
// --from-file in local mode.
func TestLocalScanFromFile(t *testing.T) {
	t.Parallel()
	s := neo4jtest.Require(t)
	d := neo4jtest.Driver(t, s)
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	tenant := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = neo4jtest.Query(ctx, d, s, "MATCH (n:AzureNode {tenant_id: $t}) DETACH DELETE n", map[string]any{"t": tenant})
	})
	path := "../../azure/testdata/az-resource-list.json"
	c := newCLI(t, localVars(t))
	r := c.run("scan", "--tenant-id", tenant, "--from-file", path)
	var res atg.ScanResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != exitOK || !res.Complete || res.Nodes.Added < 4 {
		t.Fatalf("scan --from-file (%v):\n%s", err, r)
	}
}
