package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
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
	cmd := exec.Command(serverBinary(t), "serve", "--env-file", "")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on") {
		t.Fatalf("first line %q, %v; stderr:\n%s", line, err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	url := "http://127.0.0.1:" + vars["ATG_SERVER_PORT"]
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	do := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			must(t, err)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, url+path, rd)
		req.Header.Set("Authorization", "Bearer "+key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := do("POST", "/api/v1/operations", map[string]any{"type": "scan"})
	if status != 202 {
		t.Fatalf("submit: %d %s", status, body)
	}
	var sub transport.Submitted
	must(t, json.Unmarshal(body, &sub))
	var op operations.Operation
	waitFor(t, "the scan to end", func() bool {
		_, body := do("GET", "/api/v1/operations/"+sub.OperationID, nil)
		must(t, json.Unmarshal(body, &op))
		return op.Status.Terminal()
	})
	if op.Status != operations.Completed {
		t.Fatalf("scan %s: %+v; stderr:\n%s", op.Status, op.Error, stderr.String())
	}
	var res azure.ScanResult
	must(t, json.Unmarshal(op.Result, &res))
	if res.TenantID != tenant || !res.Complete || len(res.Subscriptions) != 2 || res.Nodes.Added == 0 || res.Stats.APICalls == 0 {
		t.Errorf("result: %+v", res)
	}
	if n := neo4jtest.Count(t, d, s, "MATCH (:VirtualMachine {tenant_id: $t})-[:USES_SUBNET]->(:Subnet) RETURN count(*)", map[string]any{"t": tenant}); n == 0 {
		t.Error("no VirtualMachine -USES_SUBNET-> Subnet in the graph")
	}
	if strings.Contains(stderr.String(), fake.Token) {
		t.Error("the access token is in the server's log")
	}
}
