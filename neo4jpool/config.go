package neo4jpool

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Default values applied by [Config.WithDefaults].
const (
	// DefaultMaxPoolSize is the pool size used when Config.MaxPoolSize is zero.
	DefaultMaxPoolSize = 50
	// DefaultConnectionTimeout bounds how long acquiring a connection may take.
	DefaultConnectionTimeout = 30 * time.Second
	// DefaultMaxTransactionRetryTime bounds the driver's own retries of managed transactions.
	DefaultMaxTransactionRetryTime = 30 * time.Second
)

// Config describes how to reach one Neo4j database for one environment.
//
// The zero value is not usable: URI, User and Password are required. Use
// [Config.WithDefaults] to fill MaxPoolSize, ConnectionTimeout and
// MaxTransactionRetryTime, and [Config.Validate] to check it. Formatting a
// Config with fmt (any verb), encoding/json or log/slog never reveals the
// password.
type Config struct {
	// URI is the Bolt address: bolt://, bolt+s://, bolt+ssc://, neo4j://,
	// neo4j+s:// or neo4j+ssc:// with a host. The neo4j schemes use routing
	// and may carry a routing context as a query string; the bolt schemes
	// may not (the driver refuses it).
	URI string
	// User is the user name to authenticate as (basic auth).
	User string
	// Password is the user's password. It is never printed or encoded.
	Password string `json:"-"`
	// Database names the database to use; empty means the server's default.
	Database string
	// MaxPoolSize is the maximum number of connections per server (>= 1).
	// Zero means DefaultMaxPoolSize.
	MaxPoolSize int
	// ConnectionTimeout bounds the time to acquire a pooled connection,
	// including dialling a new one (>= 1s). Zero means DefaultConnectionTimeout.
	ConnectionTimeout time.Duration
	// MaxTransactionRetryTime bounds how long the driver retries a managed
	// transaction that failed transiently, counted from the call's start;
	// it must not be negative. Zero means DefaultMaxTransactionRetryTime:
	// there is no setting that turns the driver's retries off. Once an
	// attempt has failed and the time is up, the call ends with a
	// *RetryTimeError wrapping the last real error (never with a bare
	// context.Canceled). It does not cut short the first wait for a
	// connection, which ConnectionTimeout bounds (when Options.DriverConfig
	// replaces the driver's logger, a refused dial is then seen only by the
	// driver's own, coarser, retry-time check).
	MaxTransactionRetryTime time.Duration
}

// ErrInvalidConfig is matched (with errors.Is) by every error returned by
// [Config.Validate].
var ErrInvalidConfig = errors.New("neo4jpool: invalid config")

// supportedSchemes lists the URI schemes the Neo4j Go driver accepts.
var supportedSchemes = map[string]bool{
	"bolt": true, "bolt+s": true, "bolt+ssc": true,
	"neo4j": true, "neo4j+s": true, "neo4j+ssc": true,
}

// WithDefaults returns a copy of c with zero-valued optional fields set to
// their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxPoolSize == 0 {
		c.MaxPoolSize = DefaultMaxPoolSize
	}
	if c.ConnectionTimeout == 0 {
		c.ConnectionTimeout = DefaultConnectionTimeout
	}
	if c.MaxTransactionRetryTime == 0 {
		c.MaxTransactionRetryTime = DefaultMaxTransactionRetryTime
	}
	return c
}

// Validate reports every problem with c in one error matching
// ErrInvalidConfig. It checks presence and ranges only; password strength
// policy belongs to whoever loads the configuration.
func (c Config) Validate() error {
	var problems []string
	switch {
	case c.URI == "":
		problems = append(problems, "neo4j URI is required")
	default:
		if err := ValidateURI(c.URI); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if c.User == "" {
		problems = append(problems, "neo4j user is required")
	}
	if c.Password == "" {
		problems = append(problems, "neo4j password is required")
	}
	if c.MaxPoolSize < 1 {
		problems = append(problems, fmt.Sprintf("max pool size must be at least 1, got %d", c.MaxPoolSize))
	}
	if c.ConnectionTimeout < time.Second {
		problems = append(problems, fmt.Sprintf("connection timeout must be at least 1 second, got %s", c.ConnectionTimeout))
	}
	if c.MaxTransactionRetryTime < 0 {
		problems = append(problems, fmt.Sprintf("max transaction retry time must not be negative, got %s", c.MaxTransactionRetryTime))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(problems, "; "))
}

// routingSchemes are the schemes whose URIs may carry a routing context
// (a query string); the driver refuses one on the others.
var routingSchemes = map[string]bool{"neo4j": true, "neo4j+s": true, "neo4j+ssc": true}

// ValidateURI checks the scheme and host of a Bolt URI, and that a query
// string (a routing context) appears only on a neo4j:// (routing) URI,
// without echoing any user information it may carry.
func ValidateURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("neo4j URI %q is not a valid URI", RedactURI(raw))
	}
	if !supportedSchemes[u.Scheme] {
		return fmt.Errorf("neo4j URI %q must use bolt://, bolt+s://, bolt+ssc://, neo4j://, neo4j+s:// or neo4j+ssc://", RedactURI(raw))
	}
	if u.Hostname() == "" {
		return fmt.Errorf("neo4j URI %q has no host", RedactURI(raw))
	}
	if u.RawQuery != "" && !routingSchemes[u.Scheme] {
		return fmt.Errorf("neo4j URI %q has a query string (a routing context), which only neo4j://, neo4j+s:// and neo4j+ssc:// URIs may carry", RedactURI(raw))
	}
	return nil
}

// RedactURI returns raw with any password in its user information replaced
// by "xxxxx". Unparsable input is returned as "[unparsable URI]".
func RedactURI(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URI]"
	}
	return u.Redacted()
}

// redacted is the printable form of Config: same fields, password masked.
type redacted struct {
	URI                     string `json:"uri"`
	User                    string `json:"user"`
	Password                string `json:"password"`
	Database                string `json:"database,omitempty"`
	MaxPoolSize             int    `json:"max_pool_size"`
	ConnectionTimeout       string `json:"connection_timeout"`
	MaxTransactionRetryTime string `json:"max_transaction_retry_time"`
}

func (c Config) redacted() redacted {
	pw := ""
	if c.Password != "" {
		pw = "[REDACTED]"
	}
	return redacted{
		URI: RedactURI(c.URI), User: c.User, Password: pw, Database: c.Database,
		MaxPoolSize: c.MaxPoolSize, ConnectionTimeout: c.ConnectionTimeout.String(),
		MaxTransactionRetryTime: c.MaxTransactionRetryTime.String(),
	}
}

// String returns a one-line description of c with the password redacted.
func (c Config) String() string {
	r := c.redacted()
	return fmt.Sprintf("neo4jpool.Config{URI:%s User:%s Password:%s Database:%s MaxPoolSize:%d ConnectionTimeout:%s MaxTransactionRetryTime:%s}",
		r.URI, r.User, r.Password, r.Database, r.MaxPoolSize, r.ConnectionTimeout, r.MaxTransactionRetryTime)
}

// GoString returns the same redacted form as String. fmt does not call it
// (Format takes precedence for every verb, %#v included); it is kept for
// callers that call GoString directly.
func (c Config) GoString() string { return c.String() }

// Format implements fmt.Formatter so that every verb, %#v included, prints
// the redacted form of String.
func (c Config) Format(f fmt.State, verb rune) {
	_, _ = f.Write([]byte(c.String()))
}

// MarshalJSON encodes c with the password redacted.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redacted()) }

// LogValue implements slog.LogValuer with the password redacted.
func (c Config) LogValue() slog.Value {
	r := c.redacted()
	return slog.GroupValue(
		slog.String("uri", r.URI), slog.String("user", r.User), slog.String("password", r.Password),
		slog.String("database", r.Database), slog.Int("max_pool_size", r.MaxPoolSize),
		slog.String("connection_timeout", r.ConnectionTimeout),
		slog.String("max_transaction_retry_time", r.MaxTransactionRetryTime),
	)
}
