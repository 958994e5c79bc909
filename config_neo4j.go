package atg

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/atgraph/atg/auth"
	"github.com/atgraph/atg/neo4jpool"
)

// Neo4j defaults that depend on the environment.
const (
	// DefaultDevNeo4jURI is NEO4J_URI's default in dev; elsewhere it is required.
	DefaultDevNeo4jURI = "bolt://localhost:7687"
	// DefaultNeo4jUser is NEO4J_USER's default.
	DefaultNeo4jUser = "neo4j"
	// DefaultDevPoolSize is NEO4J_DEV_POOL_SIZE's default.
	DefaultDevPoolSize = 50
	// DefaultPoolSize is NEO4J_<ENV>_POOL_SIZE's default outside dev.
	DefaultPoolSize = 30
	// MinNeo4jPasswordLength is the shortest NEO4J_PASSWORD accepted.
	MinNeo4jPasswordLength = 16
	// Neo4jPasswordSpecials lists the characters that count as special in
	// NEO4J_PASSWORD.
	Neo4jPasswordSpecials = "!@#$%^&*()_+-=[]{}|;:,.<>?"
)

// PoolSizeVar returns the variable holding the pool size of environment e,
// e.g. NEO4J_DEV_POOL_SIZE.
func PoolSizeVar(e auth.Environment) string {
	return "NEO4J_" + strings.ToUpper(string(e)) + "_POOL_SIZE"
}

// LoadNeo4jConfig reads the Neo4j configuration of environment e from the
// environment (and optional .env file):
//
//   - NEO4J_URI: bolt://, bolt+s://, neo4j:// or neo4j+s:// (and +ssc);
//     default bolt://localhost:7687 in dev, required otherwise;
//   - NEO4J_USER: default neo4j;
//   - NEO4J_PASSWORD: required; at least 16 characters with an upper-case
//     letter, a lower-case letter, a digit and one of Neo4jPasswordSpecials;
//   - NEO4J_DATABASE: default empty, the server's default database;
//   - NEO4J_<ENV>_POOL_SIZE: >= 1; default 50 in dev, 30 otherwise;
//   - NEO4J_CONNECTION_TIMEOUT: seconds or a Go duration, >= 1s; default 30s;
//   - NEO4J_MAX_TRANSACTION_RETRY_TIME: likewise, > 0; default 30s.
func LoadNeo4jConfig(e auth.Environment, opts LoadOptions) (neo4jpool.Config, error) {
	if !e.Valid() {
		return neo4jpool.Config{}, &ConfigError{What: "neo4j", Problems: []error{environmentProblem(string(e))}}
	}
	vars, err := opts.lookup()
	if err != nil {
		return neo4jpool.Config{}, err
	}
	return loadNeo4j(vars, e)
}

// LoadLocalConfig reads what an embedded (local-mode) client needs: the
// environment (ENVIRONMENT: dev, integration or production; default dev)
// and its Neo4j configuration (see LoadNeo4jConfig), from the environment
// and optional .env file, the real environment winning.
func LoadLocalConfig(opts LoadOptions) (auth.Environment, neo4jpool.Config, error) {
	vars, err := opts.lookup()
	if err != nil {
		return "", neo4jpool.Config{}, err
	}
	e := DefaultEnvironment
	if s := strings.TrimSpace(vars["ENVIRONMENT"]); s != "" {
		if e = auth.Environment(s); !e.Valid() {
			return "", neo4jpool.Config{}, &ConfigError{What: "neo4j", Problems: []error{environmentProblem(s)}}
		}
	}
	cfg, err := loadNeo4j(vars, e)
	return e, cfg, err
}

func loadNeo4j(vars map[string]string, e auth.Environment) (neo4jpool.Config, error) {
	var p problems
	get := func(k string) string { return strings.TrimSpace(vars[k]) }
	cfg := neo4jpool.Config{
		URI:      get("NEO4J_URI"),
		User:     get("NEO4J_USER"),
		Password: vars["NEO4J_PASSWORD"], // not trimmed: spaces may be part of it
		Database: get("NEO4J_DATABASE"),
	}
	if cfg.URI == "" && e == auth.Dev {
		cfg.URI = DefaultDevNeo4jURI
	}
	if cfg.User == "" {
		cfg.User = DefaultNeo4jUser
	}
	poolDefault := DefaultPoolSize
	if e == auth.Dev {
		poolDefault = DefaultDevPoolSize
	}
	cfg.MaxPoolSize = parseInt(&p, PoolSizeVar(e), get(PoolSizeVar(e)), poolDefault)
	cfg.ConnectionTimeout = parseSeconds(&p, "NEO4J_CONNECTION_TIMEOUT", get("NEO4J_CONNECTION_TIMEOUT"), neo4jpool.DefaultConnectionTimeout)
	cfg.MaxTransactionRetryTime = parseSeconds(&p, "NEO4J_MAX_TRANSACTION_RETRY_TIME", get("NEO4J_MAX_TRANSACTION_RETRY_TIME"), neo4jpool.DefaultMaxTransactionRetryTime)
	if get("NEO4J_MAX_TRANSACTION_RETRY_TIME") != "" && cfg.MaxTransactionRetryTime == 0 {
		p.add("NEO4J_MAX_TRANSACTION_RETRY_TIME", "0", "must be positive (0 would silently mean the 30s default)")
	}
	p.merge(validateNeo4jAs(cfg, PoolSizeVar(e)))
	return cfg, p.err("neo4j")
}

// validateNeo4j checks a Neo4j configuration against the rules of
// LoadNeo4jConfig, naming the variables each field comes from.
func validateNeo4j(c neo4jpool.Config) error { return validateNeo4jAs(c, "NEO4J_<ENV>_POOL_SIZE") }

func validateNeo4jAs(c neo4jpool.Config, poolVar string) error {
	var p problems
	if c.URI == "" {
		p.add("NEO4J_URI", "", "neo4j URI is required (only LoadNeo4jConfig in dev defaults it to "+DefaultDevNeo4jURI+")")
	} else if err := neo4jpool.ValidateURI(c.URI); err != nil {
		p.add("NEO4J_URI", neo4jpool.RedactURI(c.URI), "must be bolt://, bolt+s://, bolt+ssc://, neo4j://, neo4j+s:// or neo4j+ssc:// with a host; only the neo4j schemes may carry a query string (a routing context)")
	}
	if c.User == "" {
		p.add("NEO4J_USER", "", "neo4j user is required")
	}
	if rule := neo4jPasswordProblem(c.Password); rule != "" {
		p.add("NEO4J_PASSWORD", "", rule)
	}
	if c.MaxPoolSize < 1 {
		p.add(poolVar, strconv.Itoa(c.MaxPoolSize), "max pool size must be at least 1")
	}
	if c.ConnectionTimeout < time.Second {
		p.add("NEO4J_CONNECTION_TIMEOUT", c.ConnectionTimeout.String(), "connection timeout must be at least 1 second")
	}
	if c.MaxTransactionRetryTime < 0 {
		p.add("NEO4J_MAX_TRANSACTION_RETRY_TIME", c.MaxTransactionRetryTime.String(), "must not be negative")
	}
	return p.err("neo4j")
}

// neo4jPasswordProblem returns why pw breaks the password policy, or "".
// The password itself never appears in the result.
func neo4jPasswordProblem(pw string) string {
	if pw == "" {
		return "neo4j password is required"
	}
	if n := len([]rune(pw)); n < MinNeo4jPasswordLength {
		return fmt.Sprintf("neo4j password must be at least %d characters, got %d", MinNeo4jPasswordLength, n)
	}
	var upper, lower, digit, special bool
	for _, r := range pw {
		switch {
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		case strings.ContainsRune(Neo4jPasswordSpecials, r):
			special = true
		}
	}
	if !upper || !lower || !digit || !special {
		return "neo4j password must contain an uppercase letter, a lowercase letter, a digit and a special character (one of " + Neo4jPasswordSpecials + ")"
	}
	return ""
}
