package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atgraph/atg/azure/azuretest"
)

func tokenRequests(srv *azuretest.Server, path string) []azuretest.Request {
	var out []azuretest.Request
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, path) {
			out = append(out, r)
		}
	}
	return out
}

func readOnce(t *testing.T, src Source) error {
	t.Helper()
	_, err := drain(src, TableResourceContainers, "")
	return err
}

// TestManagedIdentityAppService goes through azidentity's managed
// identity credential against the fake's App Service endpoint.
func TestManagedIdentityAppService(t *testing.T) {
	srv := azuretest.NewServer(t, azuretest.Options{})
	t.Setenv("IDENTITY_ENDPOINT", srv.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", srv.IdentityHeader)
	for _, clientID := range []string{"", "11111111-2222-3333-4444-555555555555"} {
		t.Run("client_id="+clientID, func(t *testing.T) {
			before := len(tokenRequests(srv, "/msi/token"))
			src := fakeSource(t, srv, func(c *Config) { c.AccessToken = ""; c.ClientID = clientID })
			if src.Method() != MethodManagedIdentity {
				t.Fatalf("method %q", src.Method())
			}
			if err := readOnce(t, src); err != nil {
				t.Fatal(err)
			}
			reqs := tokenRequests(srv, "/msi/token")
			if len(reqs) != before+1 || reqs[len(reqs)-1].ClientID != clientID || reqs[len(reqs)-1].Status != 200 {
				t.Fatalf("managed identity requests %+v, want one more with client_id %q", reqs, clientID)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		t.Setenv("IDENTITY_HEADER", "wrong")
		// A client ID no earlier subtest used: MSAL caches managed identity
		// tokens process-wide.
		src := fakeSource(t, srv, func(c *Config) { c.AccessToken = ""; c.ClientID = "99999999-2222-3333-4444-555555555555" })
		err := readOnce(t, src)
		var ce *CredentialError
		if !errors.Is(err, ErrCredential) || !errors.As(err, &ce) || ce.Method != MethodManagedIdentity ||
			!strings.Contains(err.Error(), "ATG_USE_MANAGED_IDENTITY=false") || !strings.Contains(err.Error(), "AZURE_CLIENT_ID") {
			t.Fatalf("err %v: want a CredentialError naming what to set", err)
		}
		if srv.Calls() > 2 {
			t.Fatalf("%d Resource Graph calls without a token", srv.Calls())
		}
	})
}

// TestClientSecretViaEnvironment goes through azidentity's environment
// credential (client secret) against the fake's Entra endpoints.
func TestClientSecretViaEnvironment(t *testing.T) {
	srv := azuretest.NewServer(t, azuretest.Options{})
	t.Setenv("AZURE_TENANT_ID", srv.Tenant.ID)
	t.Setenv("AZURE_CLIENT_ID", srv.ClientID)
	t.Setenv("AZURE_CLIENT_SECRET", srv.ClientSecret)
	mutate := func(c *Config) { c.AccessToken = ""; c.DisableManagedIdentity = true; c.AuthorityHost = srv.URL }
	src := fakeSource(t, srv, mutate)
	if src.Method() != MethodDefaultChain {
		t.Fatalf("method %q", src.Method())
	}
	if err := readOnce(t, src); err != nil {
		t.Fatal(err)
	}
	reqs := tokenRequests(srv, "/oauth2/v2.0/token")
	if len(reqs) != 1 || reqs[0].ClientID != srv.ClientID || reqs[0].Status != 200 || reqs[0].Path != "/"+srv.Tenant.ID+"/oauth2/v2.0/token" {
		t.Fatalf("token requests %+v", reqs)
	}
	if len(tokenRequests(srv, "/msi/token")) != 0 {
		t.Fatal("managed identity used with ATG_USE_MANAGED_IDENTITY=false")
	}

	const bad = "s3cret-that-must-not-leak"
	t.Setenv("AZURE_CLIENT_SECRET", bad)
	err := readOnce(t, fakeSource(t, srv, mutate))
	var ce *CredentialError
	if !errors.As(err, &ce) || ce.Method != MethodDefaultChain || !strings.Contains(err.Error(), "AZURE_CLIENT_SECRET") ||
		!strings.Contains(err.Error(), "az login") || strings.Contains(err.Error(), bad) {
		t.Fatalf("err %v: want a CredentialError naming what to set, without the secret", err)
	}
}

// TestStaticTokenWinsAndNeverPrints: AZURE_ACCESS_TOKEN is used as is (no
// token endpoint), and no format of the Config shows it.
func TestStaticTokenWinsAndNeverPrints(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{})
	src := fakeSource(t, srv, func(c *Config) { c.ClientID = "x" })
	if err := readOnce(t, src); err != nil || src.Method() != MethodStaticToken {
		t.Fatalf("err %v, method %q", err, src.Method())
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "token") {
			t.Fatalf("token endpoint called with a static token: %+v", r)
		}
	}
	cfg := Config{TenantID: "t", AccessToken: Secret(srv.Token)}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "cfg", cfg, "token", cfg.AccessToken)
	js, _ := json.Marshal(cfg)
	for _, out := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg.AccessToken),
		fmt.Sprintf("%q", cfg.AccessToken), fmt.Sprintf("%x", cfg.AccessToken), string(js), logged.String(),
	} {
		if strings.Contains(out, srv.Token) || strings.Contains(out, strings.TrimPrefix(srv.Token, "fake.")) {
			t.Fatalf("token printed: %s", out)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  Config
		env  string
	}{
		{"no tenant", Config{}, "ATG_TARGET_TENANT_ID"},
		{"bad cloud", Config{TenantID: "t", Cloud: "mars"}, "ATG_AZURE_CLOUD"},
		{"http endpoint", Config{TenantID: "t", ARMEndpoint: "http://arm.local"}, "ATG_AZURE_ARM_ENDPOINT"},
		{"endpoint with user", Config{TenantID: "t", ARMEndpoint: "https://u:p@arm.local"}, "ATG_AZURE_ARM_ENDPOINT"},
		{"bearer prefix", Config{TenantID: "t", AccessToken: "Bearer abc"}, "AZURE_ACCESS_TOKEN"},
		{"page size", Config{TenantID: "t", PageSize: 1001}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			var ce *ConfigError
			if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) || ce.Env != tc.env {
				t.Fatalf("err %v, want a ConfigError for %q", err, tc.env)
			}
			if _, err := NewResourceGraphSource(context.Background(), tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("constructor err %v", err)
			}
		})
	}
	if err := (Config{TenantID: "contoso.onmicrosoft.com", Cloud: "USGov", ARMEndpoint: "https://arm.local:8443/"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestClouds(t *testing.T) {
	t.Parallel()
	cases := []struct{ cloud, arm, authority, wantARM, wantAuth string }{
		{"", "", "", "https://management.azure.com", "https://login.microsoftonline.com/"},
		{"usgov", "", "", "https://management.usgovcloudapi.net", "https://login.microsoftonline.us/"},
		{"china", "", "", "https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn/"},
		{"public", "https://arm.example:8443/", "https://login.example", "https://arm.example:8443", "https://login.example/"},
	}
	for _, tc := range cases {
		cc, err := Config{Cloud: tc.cloud, ARMEndpoint: tc.arm, AuthorityHost: tc.authority}.cloudFor()
		if err != nil {
			t.Fatal(err)
		}
		rm := cc.Services["resourceManager"]
		if rm.Endpoint != tc.wantARM || cc.ActiveDirectoryAuthorityHost != tc.wantAuth || rm.Audience == "" {
			t.Fatalf("%s: %+v", tc.cloud, cc)
		}
	}
}

// TestSSLCertFile runs a child test process that trusts the fake only
// through SSL_CERT_FILE (no custom transport): ATG_AZURE_ARM_ENDPOINT
// plus the system pool.
func TestSSLCertFile(t *testing.T) {
	if os.Getenv("ATG_AZREAD_CHILD") != "" {
		t.Skip("child")
	}
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 50})
	cmd := exec.Command(os.Args[0], "-test.run", "^TestSSLCertFileChild$", "-test.v")
	cmd.Env = append(os.Environ(), "ATG_AZREAD_CHILD=1", "SSL_CERT_FILE="+srv.CAFile, "SSL_CERT_DIR=/nonexistent",
		"CHILD_ARM="+srv.URL, "CHILD_TOKEN="+srv.Token, "CHILD_TENANT="+srv.Tenant.ID)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS: TestSSLCertFileChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// Without SSL_CERT_FILE the system pool does not trust the fake.
	cmd = exec.Command(os.Args[0], "-test.run", "^TestSSLCertFileChild$", "-test.v")
	cmd.Env = append(os.Environ(), "ATG_AZREAD_CHILD=1", "SSL_CERT_DIR=/nonexistent", "CHILD_EXPECT_FAIL=1",
		"CHILD_ARM="+srv.URL, "CHILD_TOKEN="+srv.Token, "CHILD_TENANT="+srv.Tenant.ID)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child without SSL_CERT_FILE: %v\n%s", err, out)
	}
}

func TestSSLCertFileChild(t *testing.T) {
	if os.Getenv("ATG_AZREAD_CHILD") == "" {
		t.Skip("run by TestSSLCertFile")
	}
	src, err := NewResourceGraphSource(context.Background(), Config{
		TenantID: os.Getenv("CHILD_TENANT"), ARMEndpoint: os.Getenv("CHILD_ARM"),
		AccessToken: Secret(os.Getenv("CHILD_TOKEN")), MaxRetries: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := drain(src, TableResources, "")
	if os.Getenv("CHILD_EXPECT_FAIL") != "" {
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err %v, want a certificate error", err)
		}
		return
	}
	if err != nil || len(ids) == 0 {
		t.Fatalf("%d rows, err %v", len(ids), err)
	}
}

// TestAzureCLICredential: with ATG_USE_MANAGED_IDENTITY=false and no
// environment credential, `az login` is enough: the chain runs
// `az account get-access-token` (a stub on PATH here) for the tenant.
func TestAzureCLICredential(t *testing.T) {
	srv := azuretest.NewServer(t, azuretest.Options{})
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" > " + argsFile + "\n" +
		"printf '{\"accessToken\":\"%s\",\"expiresOn\":\"2099-01-01 00:00:00.000000\",\"expires_on\":4070908800,\"subscription\":\"x\",\"tenant\":\"%s\",\"tokenType\":\"Bearer\"}' " +
		srv.Token + " " + srv.Tenant.ID + "\n"
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, v := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE"} {
		t.Setenv(v, "")
	}
	src := fakeSource(t, srv, func(c *Config) { c.AccessToken = ""; c.DisableManagedIdentity = true })
	if err := readOnce(t, src); err != nil {
		t.Fatal(err)
	}
	args, err := os.ReadFile(argsFile)
	if err != nil || !strings.Contains(string(args), "account get-access-token") || !strings.Contains(string(args), "--tenant "+srv.Tenant.ID) {
		t.Fatalf("az called with %q (%v)", args, err)
	}
}

// TestWorkloadIdentityCredential: AZURE_FEDERATED_TOKEN_FILE's assertion
// is exchanged at the fake Entra token endpoint.
func TestWorkloadIdentityCredential(t *testing.T) {
	srv := azuretest.NewServer(t, azuretest.Options{})
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(srv.FederatedToken), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
	t.Setenv("AZURE_TENANT_ID", srv.Tenant.ID)
	t.Setenv("AZURE_CLIENT_ID", srv.ClientID)
	t.Setenv("AZURE_CLIENT_SECRET", "")
	src := fakeSource(t, srv, func(c *Config) { c.AccessToken = ""; c.DisableManagedIdentity = true; c.AuthorityHost = srv.URL })
	if err := readOnce(t, src); err != nil {
		t.Fatal(err)
	}
	if reqs := tokenRequests(srv, "/oauth2/v2.0/token"); len(reqs) != 1 || reqs[0].Status != 200 {
		t.Fatalf("token requests %+v", reqs)
	}
}
