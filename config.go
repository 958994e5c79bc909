package atg

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/caarlos0/env/v11"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// Defaults applied when a variable is unset or empty.
const (
	DefaultRequestTimeout     = 3600 * time.Second              // ATG_REQUEST_TIMEOUT
	DefaultServerHost         = "0.0.0.0"                       // ATG_SERVER_HOST
	DefaultServerPort         = 8000                            // ATG_SERVER_PORT
	DefaultServerWorkers      = 4                               // ATG_SERVER_WORKERS
	DefaultMaxConcurrentOps   = operations.DefaultMaxConcurrent // ATG_MAX_CONCURRENT_OPS (3)
	DefaultMaxBodyBytes       = transport.DefaultMaxBodyBytes   // ATG_MAX_BODY_BYTES (32 MiB)
	DefaultQueryMaxRows       = transport.DefaultQueryMaxRows   // ATG_QUERY_MAX_ROWS (10000)
	DefaultQueryMaxBytes      = transport.DefaultQueryMaxBytes  // ATG_QUERY_MAX_BYTES (16 MiB)
	DefaultOperationRetention = operations.DefaultRetention     // ATG_OPERATION_RETENTION (24h)
	DefaultOperationLease     = operations.DefaultLease         // ATG_OPERATION_LEASE (30s)
	DefaultShutdownTimeout    = 30 * time.Second                // ATG_SHUTDOWN_TIMEOUT
	DefaultEnvironment        = auth.Dev                        // ENVIRONMENT
	DefaultRateLimitRPM       = 100                             // ATG_RATE_LIMIT_RPM
	DefaultRateLimitBurst     = 20                              // ATG_RATE_LIMIT_BURST
	DefaultMaxOpsPerKey       = 10                              // ATG_MAX_OPS_PER_KEY
	DefaultMaxRequestsPerKey  = 32                              // ATG_MAX_REQUESTS_PER_KEY
	DefaultBodyIdleTimeout    = 30 * time.Second                // ATG_BODY_IDLE_TIMEOUT
	DefaultAuthFailuresPerMin = 20                              // ATG_AUTH_FAILURES_PER_MINUTE
)

// LoadOptions says where configuration values come from. The zero value reads
// the process environment only.
type LoadOptions struct {
	// DotenvFile is an optional .env file (see ReadDotenv). Variables in the
	// real environment win over the file. A missing file is not an error.
	DotenvFile string
	// Environ, when non-nil, replaces the process environment (tests,
	// embedding). It is never modified.
	Environ map[string]string
	// Overrides win over both the environment and the .env file, e.g.
	// values from command-line flags. It is never modified.
	Overrides map[string]string
}

// Resolve reads the .env file and the environment once and returns options
// holding the merged values (Overrides applied) in Environ and no file, so
// loading several configurations from them reads nothing again.
func (o LoadOptions) Resolve() (LoadOptions, error) {
	vars, err := o.lookup()
	if err != nil {
		return LoadOptions{}, err
	}
	return LoadOptions{Environ: vars}, nil
}

// lookup merges the .env file, the environment and the overrides, each
// winning over the one before. Neither the process environment nor the
// maps of o are modified.
func (o LoadOptions) lookup() (map[string]string, error) {
	vars := map[string]string{}
	if o.DotenvFile != "" {
		fromFile, err := ReadDotenv(o.DotenvFile)
		if err != nil {
			return nil, err
		}
		maps.Copy(vars, fromFile)
	}
	if o.Environ != nil {
		maps.Copy(vars, o.Environ)
	} else {
		for _, kv := range os.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
	}
	maps.Copy(vars, o.Overrides)
	return vars, nil
}

// ClientConfig configures a Client: local (embedded) or remote execution.
// Build one with LoadClientConfig or by hand followed by Validate.
// Formatting it (fmt, JSON, slog) shows the API key as "atg_dev_***".
type ClientConfig struct {
	// RemoteMode sends operations to an atg-server (ATG_REMOTE_MODE: true,
	// 1, yes, on / false, 0, no, off, any case; default false).
	RemoteMode bool
	// ServiceURL is the server's base URL, http or https with a host
	// (ATG_SERVICE_URL; required in remote mode).
	ServiceURL string
	// APIKey authenticates to the server (ATG_API_KEY; required in remote
	// mode). Its format is checked by the server, not here.
	APIKey string `json:"-"`
	// RequestTimeout bounds one HTTP request (ATG_REQUEST_TIMEOUT in seconds,
	// or a Go duration such as "90s"; > 0; default 3600 s).
	RequestTimeout time.Duration
}

type rawClientConfig struct {
	RemoteMode     string `env:"ATG_REMOTE_MODE"`
	ServiceURL     string `env:"ATG_SERVICE_URL"`
	APIKey         string `env:"ATG_API_KEY"`
	RequestTimeout string `env:"ATG_REQUEST_TIMEOUT"`
}

// LoadClientConfig reads a ClientConfig from the environment (and optional
// .env file), applies defaults and validates it. All invalid values are
// reported together in a *ConfigError.
func LoadClientConfig(opts LoadOptions) (ClientConfig, error) {
	vars, err := opts.lookup()
	if err != nil {
		return ClientConfig{}, err
	}
	var raw rawClientConfig
	if err := env.ParseWithOptions(&raw, env.Options{Environment: vars}); err != nil {
		return ClientConfig{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	var p problems
	cfg := ClientConfig{ServiceURL: strings.TrimSpace(raw.ServiceURL), APIKey: strings.TrimSpace(raw.APIKey)}
	cfg.RemoteMode = parseBool(&p, "ATG_REMOTE_MODE", raw.RemoteMode, false)
	cfg.RequestTimeout = parseSeconds(&p, "ATG_REQUEST_TIMEOUT", raw.RequestTimeout, DefaultRequestTimeout)
	if len(p.list) > 0 {
		return cfg, p.err("client")
	}
	return cfg, cfg.Validate()
}

// Validate checks c: in remote mode ServiceURL and APIKey are required and the
// URL must be http(s) with a host; RequestTimeout must be positive.
func (c ClientConfig) Validate() error {
	var p problems
	if c.RemoteMode {
		if c.ServiceURL == "" {
			p.add("ATG_SERVICE_URL", "", "required when remote mode is enabled")
		}
		if c.APIKey == "" {
			p.add("ATG_API_KEY", "", "API key is required when remote mode is enabled")
		}
	}
	if c.ServiceURL != "" && !validServiceURL(c.ServiceURL) {
		p.add("ATG_SERVICE_URL", transport.RedactURL(c.ServiceURL), "invalid URL format: must start with https:// or http://, name a host and carry no user information")
	}
	if c.RequestTimeout <= 0 {
		p.add("ATG_REQUEST_TIMEOUT", c.RequestTimeout.String(), "request timeout must be positive")
	}
	return p.err("client")
}

// validOrigin accepts "*" or an http(s) origin without path, query or user.
func validOrigin(s string) bool {
	if s == "*" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" // browsers send origins without a slash
}

func validServiceURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" && u.User == nil
}

// ServerConfig configures atg-server. Build one with LoadServerConfig or by
// hand followed by Validate. Formatting it (fmt, JSON, slog) never shows an
// API key or the Neo4j password.
type ServerConfig struct {
	// Host is the address to listen on (ATG_SERVER_HOST; default 0.0.0.0).
	Host string
	// Port is the TCP port to listen on (ATG_SERVER_PORT; 1..65535;
	// default 8000).
	Port int
	// Workers is the original's worker-process count (ATG_SERVER_WORKERS;
	// >= 1; default 4). One Go process serves every request, so this is
	// validated and reported, not used to fork.
	Workers int
	// MaxConcurrentOps is how many operations run at once; the rest wait as
	// queued (ATG_MAX_CONCURRENT_OPS; >= 1; default 3).
	MaxConcurrentOps int
	// Environment is dev, integration or production (ENVIRONMENT; default dev).
	Environment auth.Environment
	// APIKeys are plaintext keys accepted by the server (ATG_API_KEYS, a
	// comma list; items trimmed, empties dropped). Never printed.
	APIKeys []string `json:"-"`
	// KeysFile is a JSON file of hashed key records managed with
	// `atg-server keys` (ATG_KEYS_FILE; optional).
	KeysFile string
	// TargetTenantID is the tenant this server's graph describes
	// (ATG_TARGET_TENANT_ID; a UUID; in dev and integration also
	// "<prefix>-<uuid>"; optional).
	TargetTenantID string
	// UseManagedIdentity selects Azure managed identity for tenant access by
	// operations that need it (ATG_USE_MANAGED_IDENTITY; default true).
	UseManagedIdentity bool
	// MaxBodyBytes caps request bodies (ATG_MAX_BODY_BYTES; bytes, or with a
	// KiB/MiB/GiB suffix; >= 1 KiB; default 32 MiB).
	MaxBodyBytes int64
	// QueryMaxRows caps the rows a query returns before truncated is set
	// (ATG_QUERY_MAX_ROWS; >= 1; default 10000).
	QueryMaxRows int
	// QueryMaxBytes caps the bytes of rows (as JSON) a query returns before
	// truncated is set (ATG_QUERY_MAX_BYTES; bytes, or with a KiB/MiB/GiB
	// suffix; >= 1 KiB; default 16 MiB; 0 in a ServerConfig literal means
	// the default).
	QueryMaxBytes int64
	// OperationStore says where operations and their histories live
	// (ATG_OPERATION_STORE): "neo4j" (LoadServerConfig's default: nodes
	// labelled AtgOperation and AtgOperationEvent in the configured
	// database, kept across restarts and shared by the servers of one
	// OperationNamespace) or "memory" (lost at exit, this server's own).
	// "" in a ServerConfig literal means memory, for tests and embedding.
	OperationStore string
	// OperationNamespace separates this server's operations from those of
	// other servers on the same database (ATG_OPERATION_NAMESPACE; letters,
	// digits, '.', '_', '-', at most 64; default: the environment).
	// Servers with the same namespace on one database are replicas of one
	// service: they share one queue and answer for each other's
	// operations.
	OperationNamespace string
	// ReplicaID names this server among the replicas sharing a Neo4j
	// operation store (ATG_REPLICA_ID; letters, digits, '.', '_', '-', at
	// most 64; default <hostname>-<pid>). Unused with the memory store.
	ReplicaID string
	// OperationLease is how long a replica holds a running operation
	// without renewing it (renewals come every 250 ms); when a replica
	// dies, another takes its operations over this long after its last
	// renewal (ATG_OPERATION_LEASE; a Go duration or seconds; >= 1s;
	// default 30s).
	OperationLease time.Duration
	// OperationRetention is how long finished operations are kept
	// (ATG_OPERATION_RETENTION; a Go duration or seconds; > 0; default 24h).
	OperationRetention time.Duration
	// ShutdownTimeout bounds graceful shutdown (ATG_SHUTDOWN_TIMEOUT; > 0;
	// default 30s).
	ShutdownTimeout time.Duration
	// RateLimitRPM is how many requests a minute one API key may make
	// (ATG_RATE_LIMIT_RPM; >= 0, 0 turns the limit off; default 100).
	RateLimitRPM int
	// RateLimitBurst is how many requests a key may make at once before the
	// per-minute rate applies (ATG_RATE_LIMIT_BURST; >= 1; default 20).
	RateLimitBurst int
	// MaxOpsPerKey caps the operations one client may have queued or
	// running (ATG_MAX_OPS_PER_KEY; >= 0, 0 turns it off; default 10).
	MaxOpsPerKey int
	// MaxRequestsPerKey caps the requests one API key may have in flight at
	// once, open event streams included; past it the server answers 429
	// RATE_LIMITED with Retry-After (ATG_MAX_REQUESTS_PER_KEY; >= 0, 0 turns
	// it off; default 32).
	MaxRequestsPerKey int
	// BodyIdleTimeout bounds the wait for the next bytes of a request body;
	// a body that stalls longer is answered 408 REQUEST_TIMEOUT
	// (ATG_BODY_IDLE_TIMEOUT; a Go duration or seconds; > 0; default 30s).
	// Zero in a ServerConfig built by hand means the default.
	BodyIdleTimeout time.Duration
	// AuthFailuresPerMinute is how many failed authentications one remote
	// address may make a minute before it gets 429
	// (ATG_AUTH_FAILURES_PER_MINUTE; >= 0, 0 turns it off; default 20).
	AuthFailuresPerMinute int
	// TLSCertFile and TLSKeyFile, set together, make the server speak
	// HTTPS (TLS 1.2 or newer); both are re-read on SIGHUP
	// (ATG_TLS_CERT_FILE, ATG_TLS_KEY_FILE).
	TLSCertFile, TLSKeyFile string
	// TrustedProxies are the addresses and CIDR prefixes whose
	// X-Forwarded-For and X-Forwarded-Proto headers are believed
	// (ATG_TRUSTED_PROXIES, a comma list). In production without TLS, the
	// server accepts requests only from them, with X-Forwarded-Proto: https.
	TrustedProxies []netip.Prefix
	// CORSOrigins are the browser origins (scheme://host[:port], or "*")
	// whose pages may call the API (ATG_CORS_ORIGINS, a comma list; default
	// none).
	CORSOrigins []string
	// AuditLog is where the audit trail goes: "" or "stderr", "stdout",
	// "off", or a file path appended to (ATG_AUDIT_LOG; default stderr).
	AuditLog string
	// Neo4j is the database for Environment (NEO4J_* variables; see
	// LoadNeo4jConfig).
	Neo4j neo4jpool.Config
	// Azure is how scans read Azure (ATG_AZURE_CLOUD, ATG_AZURE_ARM_ENDPOINT,
	// AZURE_ACCESS_TOKEN, AZURE_CLIENT_ID; all optional). AzureSource turns
	// it into a scan's azure.Config.
	Azure AzureConfig
}

type rawServerConfig struct {
	Host               string `env:"ATG_SERVER_HOST"`
	Port               string `env:"ATG_SERVER_PORT"`
	Workers            string `env:"ATG_SERVER_WORKERS"`
	MaxConcurrentOps   string `env:"ATG_MAX_CONCURRENT_OPS"`
	Environment        string `env:"ENVIRONMENT"`
	APIKeys            string `env:"ATG_API_KEYS"`
	KeysFile           string `env:"ATG_KEYS_FILE"`
	TargetTenantID     string `env:"ATG_TARGET_TENANT_ID"`
	UseManagedIdentity string `env:"ATG_USE_MANAGED_IDENTITY"`
	MaxBodyBytes       string `env:"ATG_MAX_BODY_BYTES"`
	QueryMaxRows       string `env:"ATG_QUERY_MAX_ROWS"`
	QueryMaxBytes      string `env:"ATG_QUERY_MAX_BYTES"`
	OperationRetention string `env:"ATG_OPERATION_RETENTION"`
	OperationStore     string `env:"ATG_OPERATION_STORE"`
	OperationNamespace string `env:"ATG_OPERATION_NAMESPACE"`
	ReplicaID          string `env:"ATG_REPLICA_ID"`
	OperationLease     string `env:"ATG_OPERATION_LEASE"`
	ShutdownTimeout    string `env:"ATG_SHUTDOWN_TIMEOUT"`
	RateLimitRPM       string `env:"ATG_RATE_LIMIT_RPM"`
	RateLimitBurst     string `env:"ATG_RATE_LIMIT_BURST"`
	MaxOpsPerKey       string `env:"ATG_MAX_OPS_PER_KEY"`
	MaxRequestsPerKey  string `env:"ATG_MAX_REQUESTS_PER_KEY"`
	BodyIdleTimeout    string `env:"ATG_BODY_IDLE_TIMEOUT"`
	AuthFailures       string `env:"ATG_AUTH_FAILURES_PER_MINUTE"`
	TLSCertFile        string `env:"ATG_TLS_CERT_FILE"`
	TLSKeyFile         string `env:"ATG_TLS_KEY_FILE"`
	TrustedProxies     string `env:"ATG_TRUSTED_PROXIES"`
	AuditLog           string `env:"ATG_AUDIT_LOG"`
	CORSOrigins        string `env:"ATG_CORS_ORIGINS"`
	Azure              rawAzureConfig
}

// LoadServerConfig reads a ServerConfig, including the Neo4j configuration of
// its environment, from the environment (and optional .env file), applies
// defaults and validates it. All invalid values are reported together in a
// *ConfigError.
func LoadServerConfig(opts LoadOptions) (ServerConfig, error) {
	vars, err := opts.lookup()
	if err != nil {
		return ServerConfig{}, err
	}
	var raw rawServerConfig
	if err := env.ParseWithOptions(&raw, env.Options{Environment: vars}); err != nil {
		return ServerConfig{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	var p problems
	cfg := ServerConfig{
		Host:           strings.TrimSpace(raw.Host),
		KeysFile:       strings.TrimSpace(raw.KeysFile),
		TargetTenantID: strings.TrimSpace(raw.TargetTenantID),
		APIKeys:        splitList(raw.APIKeys),
	}
	if cfg.Host == "" {
		cfg.Host = DefaultServerHost
	}
	cfg.Port = parseInt(&p, "ATG_SERVER_PORT", raw.Port, DefaultServerPort)
	cfg.Workers = parseInt(&p, "ATG_SERVER_WORKERS", raw.Workers, DefaultServerWorkers)
	cfg.MaxConcurrentOps = parseInt(&p, "ATG_MAX_CONCURRENT_OPS", raw.MaxConcurrentOps, DefaultMaxConcurrentOps)
	cfg.UseManagedIdentity = parseBool(&p, "ATG_USE_MANAGED_IDENTITY", raw.UseManagedIdentity, true)
	cfg.MaxBodyBytes = parseBytes(&p, "ATG_MAX_BODY_BYTES", raw.MaxBodyBytes, DefaultMaxBodyBytes)
	cfg.QueryMaxRows = parseInt(&p, "ATG_QUERY_MAX_ROWS", raw.QueryMaxRows, DefaultQueryMaxRows)
	cfg.QueryMaxBytes = parseBytes(&p, "ATG_QUERY_MAX_BYTES", raw.QueryMaxBytes, DefaultQueryMaxBytes)
	if raw.QueryMaxBytes != "" && cfg.QueryMaxBytes == 0 {
		p.add("ATG_QUERY_MAX_BYTES", raw.QueryMaxBytes, "must be at least 1024 bytes")
	}
	cfg.OperationRetention = parseSeconds(&p, "ATG_OPERATION_RETENTION", raw.OperationRetention, DefaultOperationRetention)
	cfg.OperationStore = cmp.Or(strings.ToLower(strings.TrimSpace(raw.OperationStore)), OperationStoreNeo4j)
	cfg.OperationNamespace = strings.TrimSpace(raw.OperationNamespace)
	cfg.ReplicaID = strings.TrimSpace(raw.ReplicaID)
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = defaultReplicaID()
	}
	cfg.OperationLease = parseSeconds(&p, "ATG_OPERATION_LEASE", raw.OperationLease, DefaultOperationLease)
	cfg.ShutdownTimeout = parseSeconds(&p, "ATG_SHUTDOWN_TIMEOUT", raw.ShutdownTimeout, DefaultShutdownTimeout)
	cfg.RateLimitRPM = parseInt(&p, "ATG_RATE_LIMIT_RPM", raw.RateLimitRPM, DefaultRateLimitRPM)
	cfg.RateLimitBurst = parseInt(&p, "ATG_RATE_LIMIT_BURST", raw.RateLimitBurst, DefaultRateLimitBurst)
	cfg.MaxOpsPerKey = parseInt(&p, "ATG_MAX_OPS_PER_KEY", raw.MaxOpsPerKey, DefaultMaxOpsPerKey)
	cfg.MaxRequestsPerKey = parseInt(&p, "ATG_MAX_REQUESTS_PER_KEY", raw.MaxRequestsPerKey, DefaultMaxRequestsPerKey)
	cfg.BodyIdleTimeout = parseSeconds(&p, "ATG_BODY_IDLE_TIMEOUT", raw.BodyIdleTimeout, DefaultBodyIdleTimeout)
	if cfg.BodyIdleTimeout == 0 {
		p.add("ATG_BODY_IDLE_TIMEOUT", raw.BodyIdleTimeout, "must be positive")
	}
	cfg.AuthFailuresPerMinute = parseInt(&p, "ATG_AUTH_FAILURES_PER_MINUTE", raw.AuthFailures, DefaultAuthFailuresPerMin)
	cfg.TLSCertFile, cfg.TLSKeyFile = strings.TrimSpace(raw.TLSCertFile), strings.TrimSpace(raw.TLSKeyFile)
	cfg.AuditLog = strings.TrimSpace(raw.AuditLog)
	cfg.CORSOrigins = splitList(raw.CORSOrigins)
	cfg.Azure = raw.Azure.config()
	if tp, err := transport.ParseTrustedProxies(raw.TrustedProxies); err != nil {
		p.add("ATG_TRUSTED_PROXIES", raw.TrustedProxies, "must be a comma list of IP addresses and CIDR prefixes: "+err.Error())
	} else {
		cfg.TrustedProxies = tp
	}

	cfg.Environment = DefaultEnvironment
	if s := strings.TrimSpace(raw.Environment); s != "" {
		cfg.Environment = auth.Environment(s) // validated below with the other fields
	}
	if cfg.Environment.Valid() { // the Neo4j variables depend on it
		neo, err := loadNeo4j(vars, cfg.Environment)
		cfg.Neo4j = neo
		p.merge(err)
	}
	// The Neo4j part was validated as it loaded; now the server's fields
	// (range problems of the values that did parse, too).
	p.list = append(p.list, cfg.validateServer()...)
	if cfg.Environment == auth.Production && len(cfg.APIKeys) == 0 && cfg.KeysFile == "" {
		p.add("ATG_API_KEYS", "", "at least one API key is required in production (set ATG_API_KEYS or ATG_KEYS_FILE)")
	}
	return cfg, p.err("server")
}

// Validate checks every field of c, including the Neo4j configuration, and
// returns a *ConfigError listing all problems. Whether usable keys exist is
// checked by Server.Start (and, for the variables, by LoadServerConfig in
// production).
func (c ServerConfig) Validate() error {
	var p problems
	p.list = append(p.list, c.validateServer()...)
	p.merge(validateNeo4j(c.Neo4j))
	return p.err("server")
}

// validateServer returns the problems with the server-only fields: the
// original's checks first and in its order (port, workers, tenant), then
// ranges, TLS, CORS, and the production key environment.
func (c ServerConfig) validateServer() []error {
	var p problems
	if c.Port < 1 || c.Port > 65535 {
		p.add("ATG_SERVER_PORT", strconv.Itoa(c.Port), "port must be between 1 and 65535")
	}
	if c.Workers < 1 {
		p.add("ATG_SERVER_WORKERS", strconv.Itoa(c.Workers), "workers must be at least 1")
	}
	if c.MaxConcurrentOps < 1 {
		p.add("ATG_MAX_CONCURRENT_OPS", strconv.Itoa(c.MaxConcurrentOps), "must be at least 1")
	}
	if c.MaxBodyBytes < 1024 {
		p.add("ATG_MAX_BODY_BYTES", strconv.FormatInt(c.MaxBodyBytes, 10), "must be at least 1024 bytes")
	}
	if c.QueryMaxRows < 1 {
		p.add("ATG_QUERY_MAX_ROWS", strconv.Itoa(c.QueryMaxRows), "must be at least 1")
	}
	if c.QueryMaxBytes != 0 && c.QueryMaxBytes < 1024 { // 0 in a literal config: the default
		p.add("ATG_QUERY_MAX_BYTES", strconv.FormatInt(c.QueryMaxBytes, 10), "must be at least 1024 bytes")
	}
	switch c.OperationStore {
	case "", OperationStoreMemory, OperationStoreNeo4j:
	default:
		p.add("ATG_OPERATION_STORE", c.OperationStore, `must be "memory" or "neo4j"`)
	}
	if c.ReplicaID != "" && !namespacePattern.MatchString(c.ReplicaID) {
		p.add("ATG_REPLICA_ID", c.ReplicaID, "letters, digits, '.', '_' and '-', at most 64")
	}
	if c.OperationLease != 0 && c.OperationLease < time.Second {
		p.add("ATG_OPERATION_LEASE", c.OperationLease.String(), "must be at least 1s")
	}
	if c.OperationNamespace != "" && !namespacePattern.MatchString(c.OperationNamespace) {
		p.add("ATG_OPERATION_NAMESPACE", c.OperationNamespace, "letters, digits, '.', '_' and '-', at most 64")
	}
	if c.OperationRetention <= 0 {
		p.add("ATG_OPERATION_RETENTION", c.OperationRetention.String(), "must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		p.add("ATG_SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String(), "must be positive")
	}
	if c.RateLimitRPM < 0 {
		p.add("ATG_RATE_LIMIT_RPM", strconv.Itoa(c.RateLimitRPM), "must be >= 0 (0 turns the limit off)")
	}
	if c.RateLimitRPM > 0 && c.RateLimitBurst < 1 {
		p.add("ATG_RATE_LIMIT_BURST", strconv.Itoa(c.RateLimitBurst), "must be at least 1")
	}
	if c.MaxOpsPerKey < 0 {
		p.add("ATG_MAX_OPS_PER_KEY", strconv.Itoa(c.MaxOpsPerKey), "must be >= 0 (0 turns the limit off)")
	}
	if c.MaxRequestsPerKey < 0 {
		p.add("ATG_MAX_REQUESTS_PER_KEY", strconv.Itoa(c.MaxRequestsPerKey), "must be >= 0 (0 turns the limit off)")
	}
	if c.BodyIdleTimeout < 0 {
		p.add("ATG_BODY_IDLE_TIMEOUT", c.BodyIdleTimeout.String(), "must be positive")
	}
	if c.AuthFailuresPerMinute < 0 {
		p.add("ATG_AUTH_FAILURES_PER_MINUTE", strconv.Itoa(c.AuthFailuresPerMinute), "must be >= 0 (0 turns the limit off)")
	}
	for _, o := range c.CORSOrigins {
		if !validOrigin(o) {
			p.add("ATG_CORS_ORIGINS", o, `each origin must be scheme://host[:port] (http or https, no path) or "*"`)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		p.add("ATG_TLS_CERT_FILE", c.TLSCertFile, "ATG_TLS_CERT_FILE and ATG_TLS_KEY_FILE must be set together")
	}
	if !c.Environment.Valid() {
		p.list = append(p.list, environmentProblem(string(c.Environment)))
		return p.list // the remaining rules depend on the environment
	}
	if c.TargetTenantID != "" && !validTenantID(c.TargetTenantID, c.Environment) {
		rule := "invalid tenant ID format: must be a valid UUID"
		if c.Environment != auth.Production {
			rule += " or <prefix>-<uuid>"
		}
		p.add("ATG_TARGET_TENANT_ID", c.TargetTenantID, rule)
	}
	for i, k := range c.APIKeys {
		name := fmt.Sprintf("ATG_API_KEYS[%d]", i+1)
		keyEnv, err := auth.ParseKey(k)
		switch {
		case err != nil:
			p.add(name, "", err.Error())
		case c.Environment == auth.Production && keyEnv != auth.Production:
			p.add(name, auth.Redact(k), fmt.Sprintf("environment mismatch: a %s key cannot be used in production; expected prefix atg_production_", keyEnv))
		}
	}
	p.list = append(p.list, c.Azure.validate()...)
	if c.Environment == auth.Production && c.TLSCertFile == "" && len(c.TrustedProxies) == 0 {
		p.add("ATG_TLS_CERT_FILE", "", "production refuses plain HTTP: set ATG_TLS_CERT_FILE and ATG_TLS_KEY_FILE, or ATG_TRUSTED_PROXIES for a TLS-terminating proxy")
	}
	return p.list
}

var (
	uuidPattern         = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`
	tenantUUID          = regexp.MustCompile(`^` + uuidPattern + `$`)
	tenantPrefixedUUIDs = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*-` + uuidPattern + `$`)
	namespacePattern    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// The values of ServerConfig.OperationStore (ATG_OPERATION_STORE).
const (
	OperationStoreMemory = "memory"
	OperationStoreNeo4j  = "neo4j"
)

// validTenantID accepts a UUID; in dev and integration also "<prefix>-<uuid>".
func validTenantID(id string, e auth.Environment) bool {
	if tenantUUID.MatchString(id) {
		return true
	}
	return e != auth.Production && tenantPrefixedUUIDs.MatchString(id)
}

// splitList splits a comma list, trimming items and dropping empty ones.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseBool accepts true/1/yes/on and false/0/no/off in any case; empty
// means def.
func parseBool(p *problems, name, raw string, def bool) bool {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "":
		return def
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off":
		return false
	}
	p.add(name, raw, "must be a boolean: true, 1, yes, on, false, 0, no or off")
	return def
}

// parseInt parses a decimal integer; empty means def.
func parseInt(p *problems, name, raw string, def int) int {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		p.add(name, raw, "must be an integer")
		return def
	}
	return n
}

// parseSeconds accepts a number of seconds ("1800", "0.5") or a Go duration
// ("30m", "90s"); empty means def. Range checks are left to Validate.
func parseSeconds(p *problems, name, raw string, def time.Duration) time.Duration {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return def
	}
	if f, err := strconv.ParseFloat(raw, 64); err == nil {
		if f > float64(1<<62)/float64(time.Second) || f < -float64(1<<62)/float64(time.Second) {
			p.add(name, raw, "duration is out of range")
			return def
		}
		return time.Duration(f * float64(time.Second))
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		p.add(name, raw, `must be a number of seconds or a duration such as "30s" or "5m"`)
		return def
	}
	return d
}

// parseBytes accepts a byte count with an optional KiB, MiB or GiB suffix
// (also KB/MB/GB, read as binary units); empty means def.
func parseBytes(p *problems, name, raw string, def int64) int64 {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return def
	}
	mult, digits := int64(1), raw
	upper := strings.ToUpper(raw)
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(upper, s.suffix) {
			mult = s.mult
			digits = strings.TrimSpace(raw[:len(raw)-len(s.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > (1<<62)/mult {
		p.add(name, raw, "must be a byte count such as 33554432 or 32MiB")
		return def
	}
	return n * mult
}

// defaultReplicaID is <hostname>-<pid>, reduced to the characters
// ATG_REPLICA_ID allows.
func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "atg"
	}
	host = strings.Map(func(r rune) rune {
		if r < 128 && (r == '.' || r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '-'
	}, host)
	id := fmt.Sprintf("%s-%d", host, os.Getpid())
	if len(id) > 64 {
		id = id[len(id)-64:]
	}
	return id
}
