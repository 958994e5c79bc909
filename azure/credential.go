package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Secret is a string that never prints: every fmt verb, JSON and slog show
// "[REDACTED]" (or "" when empty). Reveal returns the value.
type Secret string

const redacted = "[REDACTED]"

func (s Secret) show() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Reveal returns the secret's value. Use it only to send the secret.
func (s Secret) Reveal() string { return string(s) }

// String returns "[REDACTED]", or "" for an empty secret.
func (s Secret) String() string { return s.show() }

// GoString returns String's form quoted.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.show()) }

// Format prints the redacted form for every verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.show())
		return
	}
	_, _ = f.Write([]byte(s.show()))
}

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.show()) }

// MarshalText encodes the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.show()), nil }

// LogValue implements slog.LogValuer with the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.show()) }

// Clouds ATG_AZURE_CLOUD names.
const (
	// CloudPublic is Azure's public cloud (the default).
	CloudPublic = "public"
	// CloudUSGov is Azure Government.
	CloudUSGov = "usgov"
	// CloudChina is Azure operated by 21Vianet.
	CloudChina = "china"
)

// Credential methods, as a [CredentialError] names them.
const (
	// MethodStaticToken is AZURE_ACCESS_TOKEN used as a bearer token.
	MethodStaticToken = "static token (AZURE_ACCESS_TOKEN)"
	// MethodManagedIdentity is the managed identity (ATG_USE_MANAGED_IDENTITY=true).
	MethodManagedIdentity = "managed identity"
	// MethodDefaultChain is environment, workload identity then Azure CLI
	// (ATG_USE_MANAGED_IDENTITY=false).
	MethodDefaultChain = "environment, workload identity or Azure CLI credential"
	// MethodCustom is a caller-supplied Config.Credential.
	MethodCustom = "caller-supplied credential"
)

// Sentinel errors. Errors of this package wrap one of them.
var (
	// ErrConfig marks an invalid [Config].
	ErrConfig = errors.New("azure: invalid configuration")
	// ErrCredential marks a failure to get a token (see [CredentialError]).
	ErrCredential = errors.New("azure: no usable credential")
	// ErrRequest marks a Resource Graph request refused for good (4xx other
	// than 408/429); see [RequestError].
	ErrRequest = errors.New("azure: resource graph request refused")
	// ErrUnavailable marks a Resource Graph read that failed after its
	// retries (transient errors or throttling that did not end).
	ErrUnavailable = errors.New("azure: resource graph unavailable")
	// ErrTruncated marks a result Resource Graph truncated without a
	// $skipToken to page on.
	ErrTruncated = errors.New("azure: resource graph truncated the result")
)

// ConfigError is an invalid Config field.
type ConfigError struct {
	// Field is the Config field; Env the environment variable that sets it.
	Field, Env string
	// Reason says what is wrong.
	Reason string
}

// Error names the field, its variable and the rule.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("azure: invalid %s (%s): %s", e.Field, e.Env, e.Reason)
}

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// CredentialError is a failure to get a token. Its message names the
// method tried and what to set; it never holds a secret.
type CredentialError struct {
	// Method is one of the Method constants.
	Method string
	// Hint says which variables to set.
	Hint string
	// Err is the cause (azidentity's error; never contains a static token).
	Err error
}

// Error names the method, the cause and what to set.
func (e *CredentialError) Error() string {
	msg := "azure: getting a token with the " + e.Method + " failed"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap returns ErrCredential and the cause.
func (e *CredentialError) Unwrap() []error { return []error{ErrCredential, e.Err} }

// Config configures [NewResourceGraphSource]. The zero value plus a
// TenantID reads the public cloud with the managed identity.
type Config struct {
	// TenantID is the tenant to read (the scan's tenant_id, else
	// ATG_TARGET_TENANT_ID). Required.
	TenantID string
	// Cloud is ATG_AZURE_CLOUD: "public" (default), "usgov" or "china".
	Cloud string
	// ARMEndpoint (ATG_AZURE_ARM_ENDPOINT) is an https URL that replaces the
	// cloud's Resource Manager endpoint (Azure Stack, tests). TLS trust is
	// the system pool, so SSL_CERT_FILE applies. Default: the cloud's.
	ARMEndpoint string
	// AuthorityHost is the Microsoft Entra authority (an https URL).
	// Default: AZURE_AUTHORITY_HOST when set, else the cloud's.
	AuthorityHost string
	// AccessToken (AZURE_ACCESS_TOKEN) is a bearer token used as is; when
	// set, no other credential is tried. A secret: it never prints.
	AccessToken Secret
	// DisableManagedIdentity is ATG_USE_MANAGED_IDENTITY=false: use
	// azidentity's chain of environment, workload identity and Azure CLI
	// credentials instead of the managed identity. Default false.
	DisableManagedIdentity bool
	// ClientID (AZURE_CLIENT_ID) selects a user-assigned managed identity.
	// Default: the system-assigned one.
	ClientID string
	// Credential, when set, is used instead of the choice above.
	Credential azcore.TokenCredential `json:"-"`
	// HTTPClient sends every request (Resource Graph and token). Default:
	// azcore's client (system trust pool, TLS 1.2+).
	HTTPClient *http.Client `json:"-"`
	// PageSize is Resource Graph's $top, 1..1000 (default 1000).
	PageSize int
	// MaxRetries is how many times a transient failure (408, 500, 502,
	// 503, 504, a timeout, a broken connection) is retried per page
	// (default 5; negative: none).
	MaxRetries int
	// RetryDelay is the first backoff between retries, doubling up to 30 s
	// (default 1 s).
	RetryDelay time.Duration
	// MaxThrottleWait caps one wait for the quota or a 429's Retry-After
	// (default 5 min).
	MaxThrottleWait time.Duration
	// MaxThrottles caps the 429s waited out per page before the read fails
	// with ErrUnavailable (default 20).
	MaxThrottles int
	// TryTimeout bounds each HTTP request (default 2 min).
	TryTimeout time.Duration
}

// withDefaults returns c with defaults applied.
func (c Config) withDefaults() Config {
	if c.Cloud == "" {
		c.Cloud = CloudPublic
	}
	if c.AuthorityHost == "" {
		c.AuthorityHost = os.Getenv("AZURE_AUTHORITY_HOST")
	}
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.MaxThrottleWait <= 0 {
		c.MaxThrottleWait = 5 * time.Minute
	}
	if c.MaxThrottles <= 0 {
		c.MaxThrottles = 20
	}
	if c.TryTimeout <= 0 {
		c.TryTimeout = 2 * time.Minute
	}
	return c
}

func httpsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && strings.EqualFold(u.Scheme, "https") && u.Host != "" && u.User == nil
}

// Validate reports the first invalid field as a *ConfigError.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case strings.TrimSpace(c.TenantID) == "":
		return &ConfigError{"TenantID", "ATG_TARGET_TENANT_ID", "a tenant is required: pass tenant_id or set ATG_TARGET_TENANT_ID"}
	case strings.ContainsAny(c.TenantID, " /\\?#"):
		return &ConfigError{"TenantID", "ATG_TARGET_TENANT_ID", "not a tenant ID or domain"}
	}
	if _, err := cloudConfig(c.Cloud); err != nil {
		return err
	}
	if c.ARMEndpoint != "" && !httpsURL(c.ARMEndpoint) {
		return &ConfigError{"ARMEndpoint", "ATG_AZURE_ARM_ENDPOINT", "must be an https:// URL with a host and no user information"}
	}
	if c.AuthorityHost != "" && !httpsURL(c.AuthorityHost) {
		return &ConfigError{"AuthorityHost", "AZURE_AUTHORITY_HOST", "must be an https:// URL with a host"}
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		return &ConfigError{"PageSize", "", "must be 1..1000"}
	}
	if strings.ContainsAny(c.AccessToken.Reveal(), " \t\r\n") {
		return &ConfigError{"AccessToken", "AZURE_ACCESS_TOKEN", "must be a bare token (no spaces, no \"Bearer \" prefix)"}
	}
	return nil
}

// cloudConfig maps an ATG_AZURE_CLOUD name to azcore's configuration.
func cloudConfig(name string) (cloud.Configuration, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", CloudPublic:
		return cloud.AzurePublic, nil
	case CloudUSGov:
		return cloud.AzureGovernment, nil
	case CloudChina:
		return cloud.AzureChina, nil
	}
	return cloud.Configuration{}, &ConfigError{"Cloud", "ATG_AZURE_CLOUD", "must be public, usgov or china"}
}

// cloudFor is the cloud configuration c uses: its cloud, with the
// Resource Manager endpoint and authority host overridden when set. The
// maps are copied, never shared with azcore's globals.
func (c Config) cloudFor() (cloud.Configuration, error) {
	base, err := cloudConfig(c.Cloud)
	if err != nil {
		return base, err
	}
	out := cloud.Configuration{ActiveDirectoryAuthorityHost: base.ActiveDirectoryAuthorityHost, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}}
	for k, v := range base.Services {
		out.Services[k] = v
	}
	if c.ARMEndpoint != "" {
		rm := out.Services[cloud.ResourceManager]
		rm.Endpoint = strings.TrimRight(c.ARMEndpoint, "/")
		out.Services[cloud.ResourceManager] = rm
	}
	if c.AuthorityHost != "" {
		out.ActiveDirectoryAuthorityHost = strings.TrimRight(c.AuthorityHost, "/") + "/"
	}
	return out, nil
}

// staticToken is AZURE_ACCESS_TOKEN as a credential.
type staticToken struct{ token Secret }

// GetToken returns the token with a nominal expiry an hour away (it
// cannot be refreshed; Resource Graph's 401 tells when it expired).
func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: s.token.Reveal(), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// namedCredential wraps a credential's errors in a *CredentialError.
type namedCredential struct {
	inner  azcore.TokenCredential
	method string
	hint   string
}

// GetToken asks the inner credential, wrapping its error.
func (n namedCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := n.inner.GetToken(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return tk, ctx.Err()
		}
		return tk, &CredentialError{Method: n.method, Hint: n.hint, Err: err}
	}
	return tk, nil
}

const (
	hintManagedIdentity = "on Azure, enable a managed identity for this host (AZURE_CLIENT_ID selects a user-assigned one); " +
		"elsewhere set ATG_USE_MANAGED_IDENTITY=false and sign in with az login or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or set AZURE_ACCESS_TOKEN"
	hintChain = "run az login (--tenant <tenant>), or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH), " +
		"or AZURE_FEDERATED_TOKEN_FILE for workload identity, or AZURE_ACCESS_TOKEN; on Azure, ATG_USE_MANAGED_IDENTITY=true uses the managed identity"
	hintStatic = "AZURE_ACCESS_TOKEN must be a current Resource Manager token for the tenant; unset it to use another credential"
)

// newCredential chooses the credential c asks for: Credential, else a
// static AccessToken, else the managed identity, else the default chain
// without managed identity. Its errors are *CredentialError.
func newCredential(c Config, cc cloud.Configuration) (azcore.TokenCredential, string, error) {
	opts := policy.ClientOptions{Cloud: cc}
	if c.HTTPClient != nil {
		opts.Transport = c.HTTPClient
	}
	switch {
	case c.Credential != nil:
		return namedCredential{c.Credential, MethodCustom, ""}, MethodCustom, nil
	case c.AccessToken != "":
		return staticToken{c.AccessToken}, MethodStaticToken, nil
	case !c.DisableManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if imdsOnly() {
			// Off Azure, IMDS (169.254.169.254) never answers: fail in
			// seconds with the hint, not after azidentity's minute of retries.
			mo.ClientOptions.Retry = policy.RetryOptions{MaxRetries: 2, TryTimeout: 5 * time.Second, RetryDelay: time.Second, MaxRetryDelay: 2 * time.Second}
		}
		if c.ClientID != "" {
			mo.ID = azidentity.ClientID(c.ClientID)
		}
		cred, err := azidentity.NewManagedIdentityCredential(mo)
		if err != nil {
			return nil, MethodManagedIdentity, &CredentialError{Method: MethodManagedIdentity, Hint: hintManagedIdentity, Err: err}
		}
		return namedCredential{cred, MethodManagedIdentity, hintManagedIdentity}, MethodManagedIdentity, nil
	}
	// A non-standard authority (Azure Stack, ADFS, a test's fake) is not in
	// Microsoft's instance metadata: discovery must not be asked about it.
	base, _ := cloudConfig(c.Cloud)
	noDiscovery := !strings.EqualFold(cc.ActiveDirectoryAuthorityHost, base.ActiveDirectoryAuthorityHost)
	var chain []azcore.TokenCredential
	var why []string
	if env, err := azidentity.NewEnvironmentCredential(&azidentity.EnvironmentCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery}); err == nil {
		chain = append(chain, env)
	} else {
		why = append(why, "environment: "+err.Error())
	}
	if os.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "" {
		wi, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: opts, TenantID: os.Getenv("AZURE_TENANT_ID"), DisableInstanceDiscovery: noDiscovery})
		if err == nil {
			chain = append(chain, wi)
		} else {
			why = append(why, "workload identity: "+err.Error())
		}
	}
	cli, err := azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: c.TenantID})
	if err == nil {
		chain = append(chain, cli)
	} else {
		why = append(why, "Azure CLI: "+err.Error())
	}
	if len(chain) == 0 {
		return nil, MethodDefaultChain, &CredentialError{Method: MethodDefaultChain, Hint: hintChain, Err: errors.New(strings.Join(why, "; "))}
	}
	cred, err := azidentity.NewChainedTokenCredential(chain, nil)
	if err != nil {
		return nil, MethodDefaultChain, &CredentialError{Method: MethodDefaultChain, Hint: hintChain, Err: err}
	}
	return namedCredential{cred, MethodDefaultChain, hintChain}, MethodDefaultChain, nil
}

// imdsOnly reports whether no managed identity endpoint other than IMDS is
// configured (App Service, Service Fabric, Arc, Cloud Shell set one).
func imdsOnly() bool {
	for _, v := range []string{"IDENTITY_ENDPOINT", "MSI_ENDPOINT", "IMDS_ENDPOINT"} {
		if os.Getenv(v) != "" {
			return false
		}
	}
	return true
}
