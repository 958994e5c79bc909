package atg

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/transport"
)

// Every config type prints through one redacted view, whatever the verb
// (%v, %+v, %#v, %s, %d, ...), encoding/json or log/slog is used.

// redactKey shows an API key as "atg_dev_***"; an empty key stays empty.
func redactKey(k string) string {
	if k == "" {
		return ""
	}
	return auth.Redact(k)
}

// redactTenant shows a tenant ID as "12345678-****-****-****-123456789012",
// or "***" when it is shorter than 20 characters.
func redactTenant(id string) string {
	switch {
	case id == "":
		return ""
	case len(id) < 20:
		return "***"
	}
	return id[:8] + "-****-****-****-" + id[len(id)-12:]
}

type clientView struct {
	RemoteMode     bool    `json:"remote_mode"`
	ServiceURL     *string `json:"service_url"`
	APIKey         *string `json:"api_key"`
	RequestTimeout float64 `json:"request_timeout"`
}

func (c ClientConfig) view() clientView {
	v := clientView{RemoteMode: c.RemoteMode, RequestTimeout: c.RequestTimeout.Seconds()}
	if u := transport.RedactURL(c.ServiceURL); u != "" {
		v.ServiceURL = &u
	}
	if k := redactKey(c.APIKey); k != "" {
		v.APIKey = &k
	}
	return v
}

// String returns c with the API key and any user information in the
// service URL redacted.
func (c ClientConfig) String() string {
	return fmt.Sprintf("atg.ClientConfig{RemoteMode:%t ServiceURL:%s APIKey:%s RequestTimeout:%s}",
		c.RemoteMode, transport.RedactURL(c.ServiceURL), redactKey(c.APIKey), c.RequestTimeout)
}

// GoString returns String's redacted form. (fmt prints every verb, %#v
// included, through Format.)
func (c ClientConfig) GoString() string { return c.String() }

// Format implements fmt.Formatter: every verb prints the redacted form.
func (c ClientConfig) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// MarshalJSON encodes c with the API key and the service URL's user
// information redacted, and request_timeout in seconds.
func (c ClientConfig) MarshalJSON() ([]byte, error) { return json.Marshal(c.view()) }

// LogValue implements slog.LogValuer with the API key and the service
// URL's user information redacted.
func (c ClientConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("remote_mode", c.RemoteMode),
		slog.String("service_url", transport.RedactURL(c.ServiceURL)),
		slog.String("api_key", redactKey(c.APIKey)),
		slog.Duration("request_timeout", c.RequestTimeout),
	)
}

type serverView struct {
	Host               string           `json:"host"`
	Port               int              `json:"port"`
	Workers            int              `json:"workers"`
	MaxConcurrentOps   int              `json:"max_concurrent_ops"`
	Environment        auth.Environment `json:"environment"`
	APIKeys            []string         `json:"api_keys"`
	KeysFile           string           `json:"keys_file,omitempty"`
	TargetTenantID     string           `json:"target_tenant_id,omitempty"`
	UseManagedIdentity bool             `json:"use_managed_identity"`
	MaxBodyBytes       int64            `json:"max_body_bytes"`
	QueryMaxRows       int              `json:"query_max_rows"`
	QueryMaxBytes      int64            `json:"query_max_bytes"`
	OperationRetention string           `json:"operation_retention"`
	OperationStore     string           `json:"operation_store"`
	OperationNamespace string           `json:"operation_namespace,omitempty"`
	ReplicaID          string           `json:"replica_id,omitempty"`
	OperationLease     string           `json:"operation_lease,omitempty"`
	ShutdownTimeout    string           `json:"shutdown_timeout"`
	RateLimitRPM       int              `json:"rate_limit_rpm"`
	RateLimitBurst     int              `json:"rate_limit_burst"`
	MaxOpsPerKey       int              `json:"max_ops_per_key"`
	MaxRequestsPerKey  int              `json:"max_requests_per_key"`
	BodyIdleTimeout    string           `json:"body_idle_timeout"`
	AuthFailuresPerMin int              `json:"auth_failures_per_minute"`
	TLS                bool             `json:"tls"`
	TrustedProxies     []string         `json:"trusted_proxies,omitempty"`
	AuditLog           string           `json:"audit_log,omitempty"`
	CORSOrigins        []string         `json:"cors_origins,omitempty"`
	Neo4j              neo4jpool.Config `json:"neo4j"`
	Azure              azureView        `json:"azure"`
}

func (c ServerConfig) view() serverView {
	keys := make([]string, len(c.APIKeys))
	for i, k := range c.APIKeys {
		keys[i] = redactKey(k)
	}
	var proxies []string
	for _, p := range c.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	return serverView{
		Host: c.Host, Port: c.Port, Workers: c.Workers, MaxConcurrentOps: c.MaxConcurrentOps,
		Environment: c.Environment, APIKeys: keys, KeysFile: c.KeysFile,
		TargetTenantID: redactTenant(c.TargetTenantID), UseManagedIdentity: c.UseManagedIdentity,
		MaxBodyBytes: c.MaxBodyBytes, QueryMaxRows: c.QueryMaxRows, QueryMaxBytes: c.QueryMaxBytes,
		OperationRetention: c.OperationRetention.String(), ShutdownTimeout: c.ShutdownTimeout.String(),
		OperationStore: cmp.Or(c.OperationStore, OperationStoreMemory), OperationNamespace: c.OperationNamespace,
		ReplicaID: c.ReplicaID, OperationLease: c.OperationLease.String(),
		RateLimitRPM: c.RateLimitRPM, RateLimitBurst: c.RateLimitBurst, MaxOpsPerKey: c.MaxOpsPerKey,
		MaxRequestsPerKey: c.MaxRequestsPerKey, BodyIdleTimeout: c.BodyIdleTimeout.String(),
		AuthFailuresPerMin: c.AuthFailuresPerMinute, TLS: c.TLSCertFile != "", TrustedProxies: proxies, AuditLog: c.AuditLog,
		CORSOrigins: c.CORSOrigins,
		Neo4j:       c.Neo4j,
		Azure:       c.Azure.view(),
	}
}

// String returns c with API keys, the tenant ID and the Neo4j password
// redacted.
func (c ServerConfig) String() string {
	return fmt.Sprintf("atg.ServerConfig%+v", c.view())
}

// GoString returns String's redacted form. (fmt prints every verb, %#v
// included, through Format.)
func (c ServerConfig) GoString() string { return c.String() }

// Format implements fmt.Formatter: every verb prints the redacted form.
func (c ServerConfig) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// MarshalJSON encodes c with secrets redacted.
func (c ServerConfig) MarshalJSON() ([]byte, error) { return json.Marshal(c.view()) }

// LogValue implements slog.LogValuer with secrets redacted.
func (c ServerConfig) LogValue() slog.Value {
	v := c.view()
	return slog.GroupValue(
		slog.String("host", v.Host), slog.Int("port", v.Port), slog.Int("workers", v.Workers),
		slog.Int("max_concurrent_ops", v.MaxConcurrentOps), slog.String("environment", string(v.Environment)),
		slog.Any("api_keys", v.APIKeys), slog.String("keys_file", v.KeysFile),
		slog.String("target_tenant_id", v.TargetTenantID), slog.Bool("use_managed_identity", v.UseManagedIdentity),
		slog.Int64("max_body_bytes", v.MaxBodyBytes), slog.Int("query_max_rows", v.QueryMaxRows),
		slog.Int64("query_max_bytes", v.QueryMaxBytes),
		slog.String("operation_retention", v.OperationRetention), slog.String("shutdown_timeout", v.ShutdownTimeout),
		slog.String("operation_store", v.OperationStore), slog.String("operation_namespace", v.OperationNamespace),
		slog.String("replica_id", v.ReplicaID), slog.String("operation_lease", v.OperationLease),
		slog.Int("rate_limit_rpm", v.RateLimitRPM), slog.Int("rate_limit_burst", v.RateLimitBurst),
		slog.Int("max_ops_per_key", v.MaxOpsPerKey), slog.Int("auth_failures_per_minute", v.AuthFailuresPerMin),
		slog.Bool("tls", v.TLS), slog.Any("trusted_proxies", v.TrustedProxies), slog.String("audit_log", v.AuditLog),
		slog.Any("cors_origins", v.CORSOrigins),
		slog.Any("neo4j", c.Neo4j),
		slog.Any("azure", c.Azure),
	)
}
