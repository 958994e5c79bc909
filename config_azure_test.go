package atg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/azure/azuretest"
)

const azureTestToken = "eyJ0eXAiOiJKV1Qi.secret-token-body.sig"

func TestLoadServerConfigAzure(t *testing.T) {
	t.Parallel()
	got, err := LoadServerConfig(LoadOptions{Environ: serverEnv(
		"ATG_AZURE_CLOUD", "USGov", "ATG_AZURE_ARM_ENDPOINT", "https://arm.local:8443",
		"AZURE_ACCESS_TOKEN", " "+azureTestToken+" ", "AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555",
		"ATG_TARGET_TENANT_ID", "12345678-1234-1234-1234-123456789012", "ATG_USE_MANAGED_IDENTITY", "false",
		"AZURE_AUTHORITY_HOST", "https://login.local")})
	if err != nil {
		t.Fatal(err)
	}
	want := AzureConfig{Cloud: "usgov", ARMEndpoint: "https://arm.local:8443", AccessToken: azureTestToken,
		ClientID: "11111111-2222-3333-4444-555555555555", AuthorityHost: "https://login.local"}
	if got.Azure != want {
		t.Fatalf("Azure = %#v", got.Azure.view())
	}
	src := got.AzureSource("")
	if src.TenantID != "12345678-1234-1234-1234-123456789012" || !src.DisableManagedIdentity || src.AccessToken.Reveal() != azureTestToken ||
		src.Cloud != "usgov" || src.ARMEndpoint != want.ARMEndpoint || src.ClientID != want.ClientID || src.AuthorityHost != want.AuthorityHost {
		t.Fatalf("AzureSource = %+v", src)
	}
	if err := src.Validate(); err != nil {
		t.Fatal(err)
	}
	if got.AzureSource("87654321-1234-1234-1234-123456789012").TenantID != "87654321-1234-1234-1234-123456789012" {
		t.Fatal("the scan's tenant_id must beat ATG_TARGET_TENANT_ID")
	}
	def, err := LoadServerConfig(LoadOptions{Environ: serverEnv()})
	if err != nil || def.Azure != (AzureConfig{}) || def.AzureSource("t").DisableManagedIdentity {
		t.Fatalf("defaults: %v %+v", err, def.Azure.view())
	}
}

func TestAzureConfigInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, key, value string }{
		{"cloud", "ATG_AZURE_CLOUD", "mars"},
		{"plain http endpoint", "ATG_AZURE_ARM_ENDPOINT", "http://arm.local"},
		{"endpoint with user", "ATG_AZURE_ARM_ENDPOINT", "https://me:pw@arm.local"},
		{"bearer prefix", "AZURE_ACCESS_TOKEN", "Bearer " + azureTestToken},
		{"plain http authority", "AZURE_AUTHORITY_HOST", "http://login.local"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, load := range []func() error{
				func() error {
					_, err := LoadServerConfig(LoadOptions{Environ: serverEnv(tc.key, tc.value)})
					return err
				},
				func() error {
					_, err := LoadAzureSource(LoadOptions{Environ: map[string]string{tc.key: tc.value}}, "t")
					return err
				},
			} {
				err := load()
				var ce *ConfigError
				if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.key) {
					t.Fatalf("err %v, want a ConfigError naming %s", err, tc.key)
				}
				if strings.Contains(err.Error(), "secret-token-body") || strings.Contains(err.Error(), "pw@") {
					t.Fatalf("secret in error: %v", err)
				}
			}
		})
	}
}

// TestAzureAccessTokenRedactedEverywhere: no format of a ServerConfig or
// AzureConfig shows AZURE_ACCESS_TOKEN.
func TestAzureAccessTokenRedactedEverywhere(t *testing.T) {
	t.Parallel()
	server, err := LoadServerConfig(LoadOptions{Environ: serverEnv("AZURE_ACCESS_TOKEN", azureTestToken)})
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, v := range []any{server, server.Azure, server.AzureSource("t"), server.Azure.AccessToken} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(js))
		var text, jsonLog bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("cfg", "v", v)
		slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("cfg", "v", v)
		outs = append(outs, text.String(), jsonLog.String())
	}
	for _, out := range outs {
		if strings.Contains(out, "secret-token-body") {
			t.Fatalf("token printed: %s", out)
		}
	}
	js, _ := json.Marshal(server)
	if !strings.Contains(string(js), `"access_token":"[REDACTED]"`) {
		t.Fatalf("JSON does not say a token is set: %s", js)
	}
}

func TestLoadAzureSource(t *testing.T) {
	t.Parallel()
	cfg, err := LoadAzureSource(LoadOptions{Environ: map[string]string{
		"ATG_TARGET_TENANT_ID": "env-tenant", "ATG_AZURE_CLOUD": "china",
	}}, "")
	if err != nil || cfg.TenantID != "env-tenant" || cfg.Cloud != azure.CloudChina || cfg.DisableManagedIdentity {
		t.Fatalf("%+v %v", cfg, err)
	}
	cfg, err = LoadAzureSource(LoadOptions{Environ: map[string]string{"ATG_TARGET_TENANT_ID": "env-tenant", "ATG_USE_MANAGED_IDENTITY": "off"}}, "flag-tenant")
	if err != nil || cfg.TenantID != "flag-tenant" || !cfg.DisableManagedIdentity {
		t.Fatalf("%+v %v", cfg, err)
	}
	if _, err := LoadAzureSource(LoadOptions{Environ: map[string]string{"ATG_USE_MANAGED_IDENTITY": "maybe"}}, "t"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err %v", err)
	}
	cfg, _ = LoadAzureSource(LoadOptions{Environ: map[string]string{}}, "")
	if err := cfg.Validate(); !errors.Is(err, azure.ErrConfig) || !strings.Contains(err.Error(), "ATG_TARGET_TENANT_ID") {
		t.Fatalf("no tenant: %v", err)
	}
}

// TestAzureSourceFromServerEnvironment: the variables a deployment sets
// (ATG_AZURE_ARM_ENDPOINT, AZURE_ACCESS_TOKEN, ATG_TARGET_TENANT_ID) reach
// the fake Resource Graph through LoadServerConfig and AzureSource.
func TestAzureSourceFromServerEnvironment(t *testing.T) {
	t.Parallel()
	srv := azuretest.NewServer(t, azuretest.Options{Resources: 100})
	vars := serverEnv()
	maps.Copy(vars, srv.Env())
	cfg, err := LoadServerConfig(LoadOptions{Environ: vars})
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.AzureSource("")
	sc.HTTPClient = srv.Client() // SSL_CERT_FILE is covered by azure's TestSSLCertFile (it needs a fresh process)
	src, err := azure.Open(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range src.Rows(context.Background(), azure.TableResources, "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if want := srv.Tenant.Counts()[azuretest.TableResources]; n != want || src.Stats().APICalls != 1 {
		t.Fatalf("%d rows (want %d), stats %+v", n, want, src.Stats())
	}
}
