package atg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
)

var (
	devKeyA         = "atg_dev_" + strings.Repeat("a", 64)
	devKeyB         = "atg_dev_" + strings.Repeat("b", 64)
	integrationKeyC = "atg_integration_" + strings.Repeat("c", 64)
	productionKey   = "atg_production_" + strings.Repeat("d", 64)
	goodPassword    = "SecurePassword123!@#"
)

// wantProblem asserts err is a configuration error that names varName and
// whose text contains each of the given fragments (case-insensitive).
func wantProblem(t *testing.T, err error, varName string, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error naming %s, got nil", varName)
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("error %v does not match ErrInvalidConfig", err)
	}
	var fe *FieldError
	found := false
	var ce *ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			if errors.As(p, &fe) && fe.Var == varName {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("error %q has no FieldError for %s", err, varName)
	}
	lower := strings.ToLower(err.Error())
	for _, f := range fragments {
		if !strings.Contains(lower, strings.ToLower(f)) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
}

func TestLoadClientConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want ClientConfig
	}{
		{"CC-1 remote from env", map[string]string{
			"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": "https://atg-dev.example.com",
			"ATG_API_KEY": devKeyA, "ATG_REQUEST_TIMEOUT": "1800",
		}, ClientConfig{RemoteMode: true, ServiceURL: "https://atg-dev.example.com", APIKey: devKeyA, RequestTimeout: 1800 * time.Second}},
		{"CC-2 empty environment is local mode", map[string]string{}, ClientConfig{RequestTimeout: 3600 * time.Second}},
		{"CC-6 timeout 7200", map[string]string{"ATG_REQUEST_TIMEOUT": "7200"}, ClientConfig{RequestTimeout: 7200 * time.Second}},
		{"CC-7 default timeout in remote mode", map[string]string{
			"ATG_REMOTE_MODE": "1", "ATG_SERVICE_URL": "http://localhost:8000", "ATG_API_KEY": devKeyA,
		}, ClientConfig{RemoteMode: true, ServiceURL: "http://localhost:8000", APIKey: devKeyA, RequestTimeout: 3600 * time.Second}},
		{"duration syntax", map[string]string{"ATG_REQUEST_TIMEOUT": "90s"}, ClientConfig{RequestTimeout: 90 * time.Second}},
		{"fractional seconds", map[string]string{"ATG_REQUEST_TIMEOUT": "0.5"}, ClientConfig{RequestTimeout: 500 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := LoadClientConfig(LoadOptions{Environ: tc.env})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientConfigRemoteModeBooleans(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"true", "True", "TRUE", "1", "yes", "YES", "on", "On"} {
		got, err := LoadClientConfig(LoadOptions{Environ: map[string]string{"ATG_REMOTE_MODE": v, "ATG_SERVICE_URL": "https://x.example", "ATG_API_KEY": "k"}})
		if err != nil || !got.RemoteMode {
			t.Errorf("ATG_REMOTE_MODE=%q: got %v, %v; want true", v, got.RemoteMode, err)
		}
	}
	for _, v := range []string{"false", "False", "FALSE", "0", "", "no", "off", " OFF "} {
		got, err := LoadClientConfig(LoadOptions{Environ: map[string]string{"ATG_REMOTE_MODE": v}})
		if err != nil || got.RemoteMode {
			t.Errorf("ATG_REMOTE_MODE=%q: got %v, %v; want false", v, got.RemoteMode, err)
		}
	}
	_, err := LoadClientConfig(LoadOptions{Environ: map[string]string{"ATG_REMOTE_MODE": "maybe"}})
	wantProblem(t, err, "ATG_REMOTE_MODE", "boolean", "maybe")
}

func TestClientConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		varName   string
		fragments []string
	}{
		{"CC-4 invalid URL", map[string]string{"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": "invalid-url", "ATG_API_KEY": devKeyA}, "ATG_SERVICE_URL", []string{"invalid url", "invalid-url"}},
		{"URL without host", map[string]string{"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": "https://", "ATG_API_KEY": devKeyA}, "ATG_SERVICE_URL", []string{"invalid url"}},
		{"ftp URL", map[string]string{"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": "ftp://host", "ATG_API_KEY": devKeyA}, "ATG_SERVICE_URL", []string{"invalid url"}},
		{"URL with credentials", map[string]string{"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": "https://bob:hunter2@atg.example.com", "ATG_API_KEY": devKeyA}, "ATG_SERVICE_URL", []string{"invalid url", "user information", "xxxxx@atg.example.com"}},
		{"URL with a token as user", map[string]string{"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": "https://tok3n-s3cret@atg.example.com", "ATG_API_KEY": devKeyA}, "ATG_SERVICE_URL", []string{"invalid url", "xxxxx@atg.example.com"}},
		{"CC-5 missing key", map[string]string{"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": "https://atg-dev.example.com"}, "ATG_API_KEY", []string{"api key"}},
		{"missing URL", map[string]string{"ATG_REMOTE_MODE": "true", "ATG_API_KEY": devKeyA}, "ATG_SERVICE_URL", []string{"required when remote mode"}},
		{"CC-C6 non-integer timeout", map[string]string{"ATG_REQUEST_TIMEOUT": "soon"}, "ATG_REQUEST_TIMEOUT", []string{"soon", "seconds"}},
		{"zero timeout", map[string]string{"ATG_REQUEST_TIMEOUT": "0"}, "ATG_REQUEST_TIMEOUT", []string{"positive"}},
		{"negative timeout", map[string]string{"ATG_REQUEST_TIMEOUT": "-5"}, "ATG_REQUEST_TIMEOUT", []string{"positive"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadClientConfig(LoadOptions{Environ: tc.env})
			wantProblem(t, err, tc.varName, tc.fragments...)
			for _, secret := range []string{"hunter2", "tok3n-s3cret", devKeyA} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestClientConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := LoadClientConfig(LoadOptions{Environ: map[string]string{"ATG_REMOTE_MODE": "true", "ATG_REQUEST_TIMEOUT": "0"}})
	for _, v := range []string{"ATG_SERVICE_URL", "ATG_API_KEY", "ATG_REQUEST_TIMEOUT"} {
		wantProblem(t, err, v)
	}
}

// TestLoadOptionsOverridesAndResolve checks the order file < environment <
// overrides, and that Resolve reads once: the file may go away after it.
func TestLoadOptionsOverridesAndResolve(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(file, []byte("ATG_REMOTE_MODE=true\nATG_SERVICE_URL=https://from-file.example\nATG_API_KEY="+devKeyA+"\nATG_REQUEST_TIMEOUT=60\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{"ATG_REQUEST_TIMEOUT": "120", "ATG_SERVICE_URL": "https://from-env.example"}
	overrides := map[string]string{"ATG_REMOTE_MODE": "false", "ATG_SERVICE_URL": "https://from-flag.example"}
	opts, err := LoadOptions{DotenvFile: file, Environ: environ, Overrides: overrides}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	got, err := LoadClientConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	want := ClientConfig{RemoteMode: false, ServiceURL: "https://from-flag.example", APIKey: devKeyA, RequestTimeout: 120 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("file < environment < overrides (-want +got):\n%s", diff)
	}
	if len(environ) != 2 || len(overrides) != 2 || environ["ATG_SERVICE_URL"] != "https://from-env.example" {
		t.Errorf("the caller's maps changed: %v %v", environ, overrides)
	}
	bad := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(bad, []byte("NOT A LINE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (LoadOptions{DotenvFile: bad}).Resolve(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Resolve of a malformed file: %v, want ErrInvalidConfig", err)
	}
}

func TestClientConfigDotenv(t *testing.T) {
	t.Parallel()
	file := filepath.Join("testdata", "dotenv", "client.env")
	t.Run("CC-8 from file", func(t *testing.T) {
		t.Parallel()
		got, err := LoadClientConfig(LoadOptions{DotenvFile: file, Environ: map[string]string{}})
		if err != nil {
			t.Fatal(err)
		}
		want := ClientConfig{RemoteMode: true, ServiceURL: "https://atg-dev.example.com", APIKey: devKeyA, RequestTimeout: 1800 * time.Second}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("CC-9 environment beats file", func(t *testing.T) {
		t.Parallel()
		got, err := LoadClientConfig(LoadOptions{DotenvFile: file, Environ: map[string]string{"ATG_SERVICE_URL": "https://atg-override.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		if got.ServiceURL != "https://atg-override.example.com" {
			t.Errorf("ServiceURL = %q, want the environment's value", got.ServiceURL)
		}
	})
	t.Run("CC-10 missing file gives defaults", func(t *testing.T) {
		t.Parallel()
		got, err := LoadClientConfig(LoadOptions{DotenvFile: filepath.Join(t.TempDir(), "nope.env"), Environ: map[string]string{}})
		if err != nil || got.RemoteMode || got.RequestTimeout != DefaultRequestTimeout {
			t.Errorf("got %v, %v; want defaults and no error", got, err)
		}
	})
	t.Run("CC-11 malformed file", func(t *testing.T) {
		t.Parallel()
		_, err := LoadClientConfig(LoadOptions{DotenvFile: filepath.Join("testdata", "dotenv", "malformed.env"), Environ: map[string]string{}})
		var de *DotenvError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "malformed") || de.Line != 2 {
			t.Errorf("got %v, want a malformed-line error for line 2", err)
		}
	})
}

// TestLoadingNeverMutatesProcessEnvironment is the test the original had to
// skip: loading a .env file must not leak its values into os.Environ.
func TestLoadingNeverMutatesProcessEnvironment(t *testing.T) {
	for _, k := range []string{"ATG_REMOTE_MODE", "ATG_SERVICE_URL", "ATG_API_KEY", "ATG_REQUEST_TIMEOUT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("ATG_SERVICE_URL", "https://from-process.example.com")
	before := os.Environ()
	got, err := LoadClientConfig(LoadOptions{DotenvFile: filepath.Join("testdata", "dotenv", "client.env")})
	if err != nil {
		t.Fatal(err)
	}
	if got.ServiceURL != "https://from-process.example.com" || !got.RemoteMode {
		t.Errorf("got %v: want process URL and file's remote mode", got)
	}
	if diff := cmp.Diff(before, os.Environ()); diff != "" {
		t.Errorf("process environment changed:\n%s", diff)
	}
	if _, set := os.LookupEnv("ATG_REMOTE_MODE"); set {
		t.Error("ATG_REMOTE_MODE leaked into the process environment")
	}
}

func TestClientConfigJSONRedaction(t *testing.T) {
	t.Parallel()
	cfg := ClientConfig{RemoteMode: true, ServiceURL: "https://atg-dev.example.com", APIKey: devKeyA, RequestTimeout: 1800 * time.Second}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"remote_mode": true, "service_url": "https://atg-dev.example.com", "api_key": "atg_dev_***", "request_timeout": 1800.0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CC-12 JSON mismatch (-want +got):\n%s", diff)
	}
	// No key: api_key is null.
	b, _ = json.Marshal(ClientConfig{RequestTimeout: time.Second})
	if !strings.Contains(string(b), `"api_key":null`) {
		t.Errorf("absent key should encode as null: %s", b)
	}
}

// serverEnv returns a valid dev server environment plus overrides.
func serverEnv(kv ...string) map[string]string {
	m := map[string]string{"NEO4J_PASSWORD": goodPassword}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestLoadServerConfig(t *testing.T) {
	t.Parallel()
	t.Run("SC-1 all set", func(t *testing.T) {
		t.Parallel()
		got, err := LoadServerConfig(LoadOptions{Environ: serverEnv(
			"ATG_SERVER_HOST", "0.0.0.0", "ATG_SERVER_PORT", "8443", "ATG_SERVER_WORKERS", "8",
			"ATG_API_KEYS", devKeyA+","+devKeyB, "ATG_TARGET_TENANT_ID", "12345678-1234-1234-1234-123456789012",
			"ATG_USE_MANAGED_IDENTITY", "true", "ATG_MAX_CONCURRENT_OPS", "5")})
		if err != nil {
			t.Fatal(err)
		}
		if got.Host != "0.0.0.0" || got.Port != 8443 || got.Workers != 8 || len(got.APIKeys) != 2 ||
			got.TargetTenantID != "12345678-1234-1234-1234-123456789012" || !got.UseManagedIdentity || got.MaxConcurrentOps != 5 {
			t.Errorf("got %+v", got.view())
		}
	})
	t.Run("SC-2 defaults", func(t *testing.T) {
		t.Parallel()
		got, err := LoadServerConfig(LoadOptions{Environ: serverEnv()})
		if err != nil {
			t.Fatal(err)
		}
		host, _ := os.Hostname() // the default replica id is <hostname>-<pid>
		want := ServerConfig{
			Host: "0.0.0.0", Port: 8000, Workers: 4, MaxConcurrentOps: 3, Environment: auth.Dev,
			UseManagedIdentity: true, MaxBodyBytes: 32 << 20, QueryMaxRows: 10000, QueryMaxBytes: 16 << 20, OperationStore: OperationStoreNeo4j,
			OperationRetention: 24 * time.Hour, ShutdownTimeout: 30 * time.Second,
			RateLimitRPM: 100, RateLimitBurst: 20, MaxOpsPerKey: 10, AuthFailuresPerMinute: 20,
			MaxRequestsPerKey: 32, BodyIdleTimeout: 30 * time.Second,
			ReplicaID: fmt.Sprintf("%s-%d", host, os.Getpid()), OperationLease: 30 * time.Second,
			Neo4j: neo4jpool.Config{URI: "bolt://localhost:7687", User: "neo4j", Password: goodPassword,
				MaxPoolSize: 50, ConnectionTimeout: 30 * time.Second, MaxTransactionRetryTime: 30 * time.Second},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("SC-3 key list in order", func(t *testing.T) {
		t.Parallel()
		got, err := LoadServerConfig(LoadOptions{Environ: serverEnv("ATG_API_KEYS", strings.Join([]string{devKeyA, devKeyB, integrationKeyC}, ","))})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{devKeyA, devKeyB, integrationKeyC}, got.APIKeys); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("SC-C4 list trimmed, empties dropped", func(t *testing.T) {
		t.Parallel()
		got, err := LoadServerConfig(LoadOptions{Environ: serverEnv("ATG_API_KEYS", " "+devKeyA+" , ,"+devKeyB+",")})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{devKeyA, devKeyB}, got.APIKeys); diff != "" {
			t.Error(diff)
		}
	})
	for _, tc := range []struct{ env, tenant string }{
		{"dev", "dev-tenant-12345678-1234-1234-1234-123456789012"},
		{"integration", "int-tenant-12345678-1234-1234-1234-123456789012"},
		{"integration", "int-12345678-1234-1234-1234-123456789012"},
		{"production", "12345678-1234-1234-1234-1234567890AB"},
	} {
		t.Run("SC-8/9 tenant "+tc.env+" "+tc.tenant, func(t *testing.T) {
			t.Parallel()
			e := serverEnv("ENVIRONMENT", tc.env, "ATG_TARGET_TENANT_ID", tc.tenant, "NEO4J_URI", "neo4j+s://db.example.com", "ATG_API_KEYS", productionKey,
				"ATG_TRUSTED_PROXIES", "10.0.0.0/8")
			if tc.env != "production" {
				e["ATG_API_KEYS"] = ""
			}
			got, err := LoadServerConfig(LoadOptions{Environ: e})
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Environment) != tc.env {
				t.Errorf("Environment = %q, want %q", got.Environment, tc.env)
			}
		})
	}
}

func TestServerConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		varName   string
		fragments []string
	}{
		{"SC-4 invalid tenant", serverEnv("ATG_TARGET_TENANT_ID", "invalid-tenant-id"), "ATG_TARGET_TENANT_ID", []string{"tenant", "uuid"}},
		{"SC-C2 prefixed tenant rejected in production", serverEnv("ENVIRONMENT", "production", "ATG_API_KEYS", productionKey, "NEO4J_URI", "bolt://db:7687",
			"ATG_TARGET_TENANT_ID", "dev-tenant-12345678-1234-1234-1234-123456789012"), "ATG_TARGET_TENANT_ID", []string{"tenant"}},
		{"SC-5 port -1", serverEnv("ATG_SERVER_PORT", "-1"), "ATG_SERVER_PORT", []string{"port"}},
		{"SC-5 port 0", serverEnv("ATG_SERVER_PORT", "0"), "ATG_SERVER_PORT", []string{"port"}},
		{"SC-5 port 65536", serverEnv("ATG_SERVER_PORT", "65536"), "ATG_SERVER_PORT", []string{"port"}},
		{"SC-5 port 99999", serverEnv("ATG_SERVER_PORT", "99999"), "ATG_SERVER_PORT", []string{"port", "99999"}},
		{"SC-C5 non-integer port", serverEnv("ATG_SERVER_PORT", "eighty"), "ATG_SERVER_PORT", []string{"integer", "eighty"}},
		{"SC-6 workers 0", serverEnv("ATG_SERVER_WORKERS", "0"), "ATG_SERVER_WORKERS", []string{"workers"}},
		{"max ops 0", serverEnv("ATG_MAX_CONCURRENT_OPS", "0"), "ATG_MAX_CONCURRENT_OPS", []string{"at least 1"}},
		{"max ops not a number", serverEnv("ATG_MAX_CONCURRENT_OPS", "3x"), "ATG_MAX_CONCURRENT_OPS", []string{"integer"}},
		{"SC-7 production needs keys", serverEnv("ENVIRONMENT", "production", "ATG_API_KEYS", "", "NEO4J_URI", "bolt://db:7687"), "ATG_API_KEYS", []string{"api key", "production"}},
		{"SC-10 production with a dev key", serverEnv("ENVIRONMENT", "production", "ATG_API_KEYS", devKeyA, "NEO4J_URI", "bolt://db:7687"), "ATG_API_KEYS[1]", []string{"environment mismatch", "atg_production_"}},
		{"unknown environment", serverEnv("ENVIRONMENT", "staging"), "ENVIRONMENT", []string{"staging", "dev, integration or production"}},
		{"malformed key in list", serverEnv("ATG_API_KEYS", devKeyA+",atg_dev_short"), "ATG_API_KEYS[2]", []string{"too short"}},
		{"managed identity not a boolean", serverEnv("ATG_USE_MANAGED_IDENTITY", "perhaps"), "ATG_USE_MANAGED_IDENTITY", []string{"boolean"}},
		{"body limit tiny", serverEnv("ATG_MAX_BODY_BYTES", "10"), "ATG_MAX_BODY_BYTES", []string{"1024"}},
		{"body limit garbage", serverEnv("ATG_MAX_BODY_BYTES", "lots"), "ATG_MAX_BODY_BYTES", []string{"byte count"}},
		{"body limit bad unit named whole", serverEnv("ATG_MAX_BODY_BYTES", "32XB"), "ATG_MAX_BODY_BYTES", []string{`"32XB"`, "byte count"}},
		{"body limit fraction named whole", serverEnv("ATG_MAX_BODY_BYTES", "1.5MiB"), "ATG_MAX_BODY_BYTES", []string{`"1.5MiB"`, "byte count"}},
		{"retention zero", serverEnv("ATG_OPERATION_RETENTION", "0s"), "ATG_OPERATION_RETENTION", []string{"positive"}},
		{"shutdown garbage", serverEnv("ATG_SHUTDOWN_TIMEOUT", "later"), "ATG_SHUTDOWN_TIMEOUT", []string{"duration"}},
		{"query rows zero", serverEnv("ATG_QUERY_MAX_ROWS", "0"), "ATG_QUERY_MAX_ROWS", []string{"at least 1"}},
		{"query bytes tiny", serverEnv("ATG_QUERY_MAX_BYTES", "1000"), "ATG_QUERY_MAX_BYTES", []string{"1024"}},
		{"query bytes zero", serverEnv("ATG_QUERY_MAX_BYTES", "0"), "ATG_QUERY_MAX_BYTES", []string{"1024"}},
		{"operation store unknown", serverEnv("ATG_OPERATION_STORE", "redis"), "ATG_OPERATION_STORE", []string{`"memory" or "neo4j"`}},
		{"operation namespace bad", serverEnv("ATG_OPERATION_NAMESPACE", "a b"), "ATG_OPERATION_NAMESPACE", []string{"letters"}},
		{"replica id bad", serverEnv("ATG_REPLICA_ID", "a/b"), "ATG_REPLICA_ID", []string{"letters"}},
		{"operation lease too short", serverEnv("ATG_OPERATION_LEASE", "500ms"), "ATG_OPERATION_LEASE", []string{"at least 1s"}},
		{"operation lease bad", serverEnv("ATG_OPERATION_LEASE", "soon"), "ATG_OPERATION_LEASE", nil},
		{"negative rate limit", serverEnv("ATG_RATE_LIMIT_RPM", "-1"), "ATG_RATE_LIMIT_RPM", []string{">= 0"}},
		{"zero burst", serverEnv("ATG_RATE_LIMIT_BURST", "0"), "ATG_RATE_LIMIT_BURST", []string{"at least 1"}},
		{"ops per key garbage", serverEnv("ATG_MAX_OPS_PER_KEY", "ten"), "ATG_MAX_OPS_PER_KEY", []string{"integer"}},
		{"requests per key negative", serverEnv("ATG_MAX_REQUESTS_PER_KEY", "-1"), "ATG_MAX_REQUESTS_PER_KEY", []string{">= 0"}},
		{"requests per key garbage", serverEnv("ATG_MAX_REQUESTS_PER_KEY", "many"), "ATG_MAX_REQUESTS_PER_KEY", []string{"integer"}},
		{"body idle zero", serverEnv("ATG_BODY_IDLE_TIMEOUT", "0"), "ATG_BODY_IDLE_TIMEOUT", []string{"positive"}},
		{"body idle negative", serverEnv("ATG_BODY_IDLE_TIMEOUT", "-5s"), "ATG_BODY_IDLE_TIMEOUT", []string{"positive"}},
		{"body idle garbage", serverEnv("ATG_BODY_IDLE_TIMEOUT", "soon"), "ATG_BODY_IDLE_TIMEOUT", []string{"duration"}},
		{"auth failures negative", serverEnv("ATG_AUTH_FAILURES_PER_MINUTE", "-3"), "ATG_AUTH_FAILURES_PER_MINUTE", []string{">= 0"}},
		{"cert without key", serverEnv("ATG_TLS_CERT_FILE", "/x.pem"), "ATG_TLS_CERT_FILE", []string{"together"}},
		{"bad CORS origin", serverEnv("ATG_CORS_ORIGINS", "https://ok.example, https://x.example/path"), "ATG_CORS_ORIGINS", []string{"scheme://host"}},
		{"CORS origin with a slash never matches", serverEnv("ATG_CORS_ORIGINS", "https://x.example/"), "ATG_CORS_ORIGINS", []string{"no path"}},
		{"bad proxies", serverEnv("ATG_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local"), "ATG_TRUSTED_PROXIES", []string{"CIDR"}},
		{"production over plain HTTP", serverEnv("ENVIRONMENT", "production", "ATG_API_KEYS", productionKey, "NEO4J_URI", "bolt://db:7687"), "ATG_TLS_CERT_FILE", []string{"plain HTTP"}},
		{"routing context on a bolt URI", serverEnv("NEO4J_URI", "bolt://db:7687?region=eu"), "NEO4J_URI", []string{"query string"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadServerConfig(LoadOptions{Environ: tc.env})
			wantProblem(t, err, tc.varName, tc.fragments...)
			for _, k := range []string{devKeyA, productionKey, goodPassword} {
				if strings.Contains(err.Error(), k) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

// TestServerConfigNamesABadEnvironmentOnce checks that an unknown
// ENVIRONMENT is one problem, and that the rules depending on the
// environment (keys, tenant, TLS) are not applied to a guess.
func TestServerConfigNamesABadEnvironmentOnce(t *testing.T) {
	t.Parallel()
	_, err := LoadServerConfig(LoadOptions{Environ: serverEnv("ENVIRONMENT", "Production", "ATG_API_KEYS", devKeyA, "ATG_SERVER_PORT", "0")})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *ConfigError", err)
	}
	var vars []string
	for _, p := range ce.Problems {
		var fe *FieldError
		if errors.As(p, &fe) {
			vars = append(vars, fe.Var)
		}
	}
	if diff := cmp.Diff([]string{"ATG_SERVER_PORT", "ENVIRONMENT"}, vars); diff != "" {
		t.Errorf("problems (-want +got):\n%s\n%v", diff, err)
	}
}

func TestServerConfigReportsEveryProblemTogether(t *testing.T) {
	t.Parallel()
	_, err := LoadServerConfig(LoadOptions{Environ: map[string]string{
		"ATG_SERVER_PORT": "0", "ATG_SERVER_WORKERS": "zero", "NEO4J_PASSWORD": "short", "NEO4J_DEV_POOL_SIZE": "0",
	}})
	for _, v := range []string{"ATG_SERVER_PORT", "ATG_SERVER_WORKERS", "NEO4J_PASSWORD", "NEO4J_DEV_POOL_SIZE"} {
		wantProblem(t, err, v)
	}
}

func TestServerConfigBodyBytesUnits(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]int64{"2048": 2048, "64KiB": 64 << 10, "8MiB": 8 << 20, "1GiB": 1 << 30, "16mb": 16 << 20} {
		got, err := LoadServerConfig(LoadOptions{Environ: serverEnv("ATG_MAX_BODY_BYTES", raw)})
		if err != nil || got.MaxBodyBytes != want {
			t.Errorf("ATG_MAX_BODY_BYTES=%s: got %d, %v; want %d", raw, got.MaxBodyBytes, err, want)
		}
	}
}

func TestLoadNeo4jConfig(t *testing.T) {
	t.Parallel()
	t.Run("NC-1 from env", func(t *testing.T) {
		t.Parallel()
		got, err := LoadNeo4jConfig(auth.Dev, LoadOptions{Environ: map[string]string{
			"NEO4J_URI": "bolt://neo4j-dev:7687", "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": goodPassword,
			"NEO4J_DEV_POOL_SIZE": "50", "NEO4J_INTEGRATION_POOL_SIZE": "30",
		}})
		if err != nil {
			t.Fatal(err)
		}
		want := neo4jpool.Config{URI: "bolt://neo4j-dev:7687", User: "neo4j", Password: goodPassword, MaxPoolSize: 50,
			ConnectionTimeout: 30 * time.Second, MaxTransactionRetryTime: 30 * time.Second}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Error(diff)
		}
	})
	for _, tc := range []struct {
		env  auth.Environment
		vars map[string]string
		want int
	}{
		{auth.Dev, map[string]string{"NEO4J_DEV_POOL_SIZE": "50"}, 50},
		{auth.Integration, map[string]string{"NEO4J_INTEGRATION_POOL_SIZE": "30"}, 30},
		{auth.Integration, map[string]string{"NEO4J_INTEGRATION_POOL_SIZE": "12", "NEO4J_DEV_POOL_SIZE": "99"}, 12},
		{auth.Dev, map[string]string{}, 50},
		{auth.Integration, map[string]string{}, 30},
		{auth.Production, map[string]string{}, 30},
		{auth.Production, map[string]string{"NEO4J_PRODUCTION_POOL_SIZE": "80"}, 80},
	} {
		t.Run(fmt.Sprintf("NC-3/4 pool %s %v", tc.env, tc.vars), func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"NEO4J_PASSWORD": goodPassword, "NEO4J_URI": "neo4j://db:7687"}
			for k, v := range tc.vars {
				vars[k] = v
			}
			got, err := LoadNeo4jConfig(tc.env, LoadOptions{Environ: vars})
			if err != nil || got.MaxPoolSize != tc.want {
				t.Errorf("got %d, %v; want %d", got.MaxPoolSize, err, tc.want)
			}
		})
	}
	for _, pw := range []string{"short", "onlylowercaseletters1234567", "ONLYUPPERCASELETTERS1234567", "NoDigitsHere!@#$", "NoSpecialChars123ABC", "Has Space Only 123abcDEF", "Tilde~Is~Not~Special1A"} {
		t.Run("NC-2 weak password "+pw, func(t *testing.T) {
			t.Parallel()
			_, err := LoadNeo4jConfig(auth.Dev, LoadOptions{Environ: map[string]string{"NEO4J_PASSWORD": pw}})
			wantProblem(t, err, "NEO4J_PASSWORD", "password")
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error %q echoes the password", err)
			}
		})
	}
	errCases := []struct {
		name      string
		env       auth.Environment
		vars      map[string]string
		varName   string
		fragments []string
	}{
		{"NC-5 URI required outside dev", auth.Integration, map[string]string{}, "NEO4J_URI", []string{"uri"}},
		{"bad scheme", auth.Dev, map[string]string{"NEO4J_URI": "http://localhost:7474"}, "NEO4J_URI", []string{"bolt://"}},
		{"no host", auth.Dev, map[string]string{"NEO4J_URI": "bolt://"}, "NEO4J_URI", []string{"host"}},
		{"NC-7 password required", auth.Dev, map[string]string{"NEO4J_PASSWORD": ""}, "NEO4J_PASSWORD", []string{"required"}},
		{"NC-8 pool size 0", auth.Dev, map[string]string{"NEO4J_DEV_POOL_SIZE": "0"}, "NEO4J_DEV_POOL_SIZE", []string{"pool size"}},
		{"pool size garbage", auth.Integration, map[string]string{"NEO4J_URI": "bolt://x", "NEO4J_INTEGRATION_POOL_SIZE": "many"}, "NEO4J_INTEGRATION_POOL_SIZE", []string{"integer"}},
		{"NC-9 timeout 0", auth.Dev, map[string]string{"NEO4J_CONNECTION_TIMEOUT": "0"}, "NEO4J_CONNECTION_TIMEOUT", []string{"timeout"}},
		{"NC-9 timeout 0.5", auth.Dev, map[string]string{"NEO4J_CONNECTION_TIMEOUT": "0.5"}, "NEO4J_CONNECTION_TIMEOUT", []string{"1 second"}},
		{"negative retry time", auth.Dev, map[string]string{"NEO4J_MAX_TRANSACTION_RETRY_TIME": "-1s"}, "NEO4J_MAX_TRANSACTION_RETRY_TIME", []string{"negative"}},
		{"zero retry time", auth.Dev, map[string]string{"NEO4J_MAX_TRANSACTION_RETRY_TIME": "0"}, "NEO4J_MAX_TRANSACTION_RETRY_TIME", []string{"positive"}},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"NEO4J_PASSWORD": goodPassword}
			for k, v := range tc.vars {
				vars[k] = v
			}
			_, err := LoadNeo4jConfig(tc.env, LoadOptions{Environ: vars})
			wantProblem(t, err, tc.varName, tc.fragments...)
		})
	}
	t.Run("NC-10 defaults and durations", func(t *testing.T) {
		t.Parallel()
		got, err := LoadNeo4jConfig(auth.Dev, LoadOptions{Environ: map[string]string{
			"NEO4J_PASSWORD": goodPassword, "NEO4J_CONNECTION_TIMEOUT": "45", "NEO4J_MAX_TRANSACTION_RETRY_TIME": "2m", "NEO4J_DATABASE": "graph",
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got.ConnectionTimeout != 45*time.Second || got.MaxTransactionRetryTime != 2*time.Minute || got.Database != "graph" || got.User != "neo4j" {
			t.Errorf("got %v", got)
		}
	})
	t.Run("unknown environment", func(t *testing.T) {
		t.Parallel()
		_, err := LoadNeo4jConfig("staging", LoadOptions{Environ: map[string]string{}})
		wantProblem(t, err, "ENVIRONMENT")
	})
}

// TestSecretsNeverPrinted formats every config type every way a program
// might and checks no secret appears.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	secretPW := "Sup3r-Secret-Passw0rd!"
	neo := neo4jpool.Config{URI: "bolt://neo4j:" + secretPW + "@db:7687", User: "neo4j", Password: secretPW, MaxPoolSize: 5, ConnectionTimeout: time.Second}
	client := ClientConfig{RemoteMode: true, ServiceURL: "https://bob:url-Passw0rd@atg.example.com", APIKey: devKeyA, RequestTimeout: time.Minute}
	server := ServerConfig{Host: "0.0.0.0", Port: 8000, Workers: 4, MaxConcurrentOps: 3, Environment: auth.Dev,
		APIKeys: []string{devKeyA, productionKey}, TargetTenantID: "12345678-1234-1234-1234-123456789012", Neo4j: neo}
	secrets := []string{secretPW, strings.Repeat("a", 64), strings.Repeat("d", 64), "1234-1234-1234", "url-Passw0rd"}
	values := map[string]any{"client": client, "server": server, "neo4j": neo, "*client": &client, "*server": &server,
		"slice": []any{client, server}, "nested": struct{ C ServerConfig }{server}}
	for name, v := range values {
		var outputs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%T %v"} {
			outputs = append(outputs, fmt.Sprintf(verb, v))
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: json: %v", name, err)
		}
		outputs = append(outputs, string(b))
		var jsonLog, textLog bytes.Buffer
		slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("cfg", "cfg", v)
		slog.New(slog.NewTextHandler(&textLog, nil)).Info("cfg", "cfg", v)
		outputs = append(outputs, jsonLog.String(), textLog.String())
		for i, out := range outputs {
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s: output %d leaks %q: %s", name, i, s, out)
				}
			}
		}
	}
	// The redacted forms are informative.
	if s := client.String(); !strings.Contains(s, "atg_dev_***") || !strings.Contains(s, "https://xxxxx@atg.example.com") {
		t.Errorf("client String() = %s, want atg_dev_***", s)
	}
	if s := server.String(); !strings.Contains(s, "atg_production_***") || !strings.Contains(s, "12345678-****-****-****-123456789012") || !strings.Contains(s, "[REDACTED]") {
		t.Errorf("server String() = %s", s)
	}
	if s := neo.String(); !strings.Contains(s, "[REDACTED]") || !strings.Contains(s, "xxxxx") {
		t.Errorf("neo4j String() = %s", s)
	}
}

func TestValidateBuiltByHand(t *testing.T) {
	t.Parallel()
	if err := (ClientConfig{RequestTimeout: time.Second}).Validate(); err != nil {
		t.Errorf("local client config: %v", err)
	}
	err := (ServerConfig{Environment: auth.Dev}).Validate()
	for _, v := range []string{"ATG_SERVER_PORT", "ATG_SERVER_WORKERS", "NEO4J_URI", "NEO4J_PASSWORD"} {
		wantProblem(t, err, v)
	}
}

func TestLoadLocalConfig(t *testing.T) {
	t.Parallel()
	e, cfg, err := LoadLocalConfig(LoadOptions{Environ: map[string]string{"ENVIRONMENT": "integration", "NEO4J_URI": "neo4j://db:7687",
		"NEO4J_PASSWORD": goodPassword, "NEO4J_INTEGRATION_POOL_SIZE": "7"}})
	if err != nil || e != auth.Integration || cfg.MaxPoolSize != 7 || cfg.URI != "neo4j://db:7687" {
		t.Errorf("got %s %v %v", e, cfg, err)
	}
	e, cfg, err = LoadLocalConfig(LoadOptions{Environ: map[string]string{"NEO4J_PASSWORD": goodPassword}})
	if err != nil || e != auth.Dev || cfg.URI != DefaultDevNeo4jURI {
		t.Errorf("defaults: %s %v %v", e, cfg, err)
	}
	_, _, err = LoadLocalConfig(LoadOptions{Environ: map[string]string{"ENVIRONMENT": "qa"}})
	wantProblem(t, err, "ENVIRONMENT", "qa")
}
