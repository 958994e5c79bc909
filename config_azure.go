package atg

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/atgraph/atg/azure"
	"github.com/atgraph/atg/transport"
)

// AzureConfig is how a scan reads Azure: the cloud, an optional Resource
// Manager endpoint and authority, an optional static token and a
// user-assigned managed identity. (azidentity's own variables, such as
// AZURE_CLIENT_SECRET, are read from the process environment, not a .env
// file.) The tenant (ATG_TARGET_TENANT_ID) and the choice of managed
// identity (ATG_USE_MANAGED_IDENTITY) are ServerConfig fields. Every field
// is empty when its variable is unset. Formatting it (fmt, JSON, slog)
// never shows the token.
type AzureConfig struct {
	// Cloud is ATG_AZURE_CLOUD: public, usgov or china ("" means public).
	Cloud string
	// ARMEndpoint is ATG_AZURE_ARM_ENDPOINT: an https URL replacing the
	// cloud's Resource Manager endpoint (Azure Stack, tests). TLS trust is
	// the system pool, so SSL_CERT_FILE applies. Default: the cloud's.
	ARMEndpoint string
	// AccessToken is AZURE_ACCESS_TOKEN: a bearer token used as is, before
	// any other credential. A secret: redacted in every format.
	AccessToken azure.Secret
	// ClientID is AZURE_CLIENT_ID: the client ID of a user-assigned managed
	// identity (also read by azidentity's environment credential).
	ClientID string
	// AuthorityHost is AZURE_AUTHORITY_HOST: an https URL replacing the
	// cloud's Microsoft Entra authority. Default: the cloud's.
	AuthorityHost string
}

type rawAzureConfig struct {
	Cloud       string `env:"ATG_AZURE_CLOUD"`
	ARMEndpoint string `env:"ATG_AZURE_ARM_ENDPOINT"`
	AccessToken string `env:"AZURE_ACCESS_TOKEN"`
	ClientID    string `env:"AZURE_CLIENT_ID"`
	Authority   string `env:"AZURE_AUTHORITY_HOST"`
}

func (r rawAzureConfig) config() AzureConfig {
	return AzureConfig{
		Cloud: strings.ToLower(strings.TrimSpace(r.Cloud)), ARMEndpoint: strings.TrimSpace(r.ARMEndpoint),
		AccessToken: azure.Secret(strings.TrimSpace(r.AccessToken)), ClientID: strings.TrimSpace(r.ClientID),
		AuthorityHost: strings.TrimSpace(r.Authority),
	}
}

// validate returns the problems with c's fields.
func (c AzureConfig) validate() []error {
	var p problems
	switch c.Cloud {
	case "", azure.CloudPublic, azure.CloudUSGov, azure.CloudChina:
	default:
		p.add("ATG_AZURE_CLOUD", c.Cloud, "must be public, usgov or china")
	}
	if c.ARMEndpoint != "" {
		u, err := url.Parse(c.ARMEndpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			p.add("ATG_AZURE_ARM_ENDPOINT", transport.RedactURL(c.ARMEndpoint), "must be an https:// URL with a host and no user information")
		}
	}
	if c.AuthorityHost != "" {
		u, err := url.Parse(c.AuthorityHost)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			p.add("AZURE_AUTHORITY_HOST", transport.RedactURL(c.AuthorityHost), "must be an https:// URL with a host and no user information")
		}
	}
	if strings.ContainsAny(c.AccessToken.Reveal(), " \t\r\n") {
		p.add("AZURE_ACCESS_TOKEN", c.AccessToken.String(), `must be a bare token (no spaces, no "Bearer " prefix)`)
	}
	return p.list
}

// Validate checks c and returns a *ConfigError listing all problems.
func (c AzureConfig) Validate() error {
	p := problems{list: c.validate()}
	return p.err("azure")
}

// Source is the azure.Config of a scan of tenantID with managed identity
// on or off, for [azure.NewResourceGraphSource].
func (c AzureConfig) Source(tenantID string, useManagedIdentity bool) azure.Config {
	return azure.Config{
		TenantID: tenantID, Cloud: c.Cloud, ARMEndpoint: c.ARMEndpoint, AccessToken: c.AccessToken,
		ClientID: c.ClientID, AuthorityHost: c.AuthorityHost, DisableManagedIdentity: !useManagedIdentity,
	}
}

// AzureSource is the azure.Config of a scan on this server: tenantID, or
// TargetTenantID when it is empty (azure.Config.Validate refuses neither),
// with UseManagedIdentity and the Azure variables.
func (c ServerConfig) AzureSource(tenantID string) azure.Config {
	if strings.TrimSpace(tenantID) == "" {
		tenantID = c.TargetTenantID
	}
	return c.Azure.Source(tenantID, c.UseManagedIdentity)
}

type azureView struct {
	Cloud       string `json:"cloud,omitempty"`
	ARMEndpoint string `json:"arm_endpoint,omitempty"`
	AccessToken string `json:"access_token,omitempty"`
	ClientID    string `json:"client_id,omitempty"`
	Authority   string `json:"authority_host,omitempty"`
}

func (c AzureConfig) view() azureView {
	return azureView{Cloud: c.Cloud, ARMEndpoint: transport.RedactURL(c.ARMEndpoint), AccessToken: c.AccessToken.String(), ClientID: c.ClientID,
		Authority: transport.RedactURL(c.AuthorityHost)}
}

// String returns c with the access token redacted.
func (c AzureConfig) String() string { return fmt.Sprintf("atg.AzureConfig%+v", c.view()) }

// GoString returns String's redacted form.
func (c AzureConfig) GoString() string { return c.String() }

// Format implements fmt.Formatter: every verb prints the redacted form.
func (c AzureConfig) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// MarshalJSON encodes c with the access token redacted.
func (c AzureConfig) MarshalJSON() ([]byte, error) { return json.Marshal(c.view()) }

// LogValue implements slog.LogValuer with the access token redacted.
func (c AzureConfig) LogValue() slog.Value {
	v := c.view()
	return slog.GroupValue(slog.String("cloud", v.Cloud), slog.String("arm_endpoint", v.ARMEndpoint),
		slog.String("access_token", v.AccessToken), slog.String("client_id", v.ClientID),
		slog.String("authority_host", v.Authority))
}

// LoadAzureSource reads what a local-mode scan needs to reach Azure, from
// the environment and optional .env file: the tenant (tenantID, else
// ATG_TARGET_TENANT_ID), ATG_USE_MANAGED_IDENTITY (default true; false uses
// environment credentials, workload identity or az login) and the
// AzureConfig variables. All problems come back together in a
// *ConfigError; a missing tenant is left to azure.Config.Validate.
func LoadAzureSource(opts LoadOptions, tenantID string) (azure.Config, error) {
	vars, err := opts.lookup()
	if err != nil {
		return azure.Config{}, err
	}
	var p problems
	raw := rawAzureConfig{
		Cloud: vars["ATG_AZURE_CLOUD"], ARMEndpoint: vars["ATG_AZURE_ARM_ENDPOINT"],
		AccessToken: vars["AZURE_ACCESS_TOKEN"], ClientID: vars["AZURE_CLIENT_ID"], Authority: vars["AZURE_AUTHORITY_HOST"],
	}
	c := raw.config()
	p.list = append(p.list, c.validate()...)
	useMI := parseBool(&p, "ATG_USE_MANAGED_IDENTITY", vars["ATG_USE_MANAGED_IDENTITY"], true)
	if strings.TrimSpace(tenantID) == "" {
		tenantID = strings.TrimSpace(vars["ATG_TARGET_TENANT_ID"])
	}
	return c.Source(tenantID, useMI), p.err("azure")
}
