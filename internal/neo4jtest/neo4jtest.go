// Package neo4jtest is test support for packages that need a real Neo4j.
//
// Tests call [Require] to get the connection settings from NEO4J_URI,
// NEO4J_USER and NEO4J_PASSWORD (and optionally NEO4J_DATABASE). When they
// are unset the test is skipped with a message saying how to start the
// local server; with ATG_REQUIRE_NEO4J=1 (set by `make test`) it fails
// instead, so a CI run can never pass by skipping.
//
// Many packages share the one Community database at once, so every test
// must write only data it can tell apart: [Unique] gives a per-test
// identifier usable as a label, relationship type or id prefix, and
// [CleanupLabel] deletes, when the test ends, exactly the nodes that carry
// such a label. Nothing else is ever deleted.
//
// [Proxy] is a TCP proxy a test controls, for fault injection (database
// down, up again, connections cut), never a fake of the database.
package neo4jtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// Environment variables read by Require.
const (
	EnvURI      = "NEO4J_URI"
	EnvUser     = "NEO4J_USER"
	EnvPassword = "NEO4J_PASSWORD"
	EnvDatabase = "NEO4J_DATABASE"
	// EnvRequire, when "1" (or "true"), makes Require fail instead of skip.
	EnvRequire = "ATG_REQUIRE_NEO4J"
)

// HowToStart is the hint printed when no Neo4j is configured.
const HowToStart = `no Neo4j configured (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD); start the local one with: ` +
	`scripts/neo4j.sh start && eval "$(scripts/neo4j.sh env)"`

// Settings are the connection settings of the test database.
type Settings struct {
	// URI is NEO4J_URI.
	URI string
	// User is NEO4J_USER (default "neo4j").
	User string
	// Password is NEO4J_PASSWORD.
	Password string
	// Database is empty for the server's default database.
	Database string
}

// String returns the settings without the password.
func (s Settings) String() string {
	return fmt.Sprintf("neo4jtest.Settings{URI:%s User:%s Database:%s}", s.URI, s.User, s.Database)
}

// Env returns the settings as the variables a configuration loader reads:
// NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD and NEO4J_DATABASE (empty for the
// server's default database). The map is new on every call, so callers may
// add their own variables to it.
func (s Settings) Env() map[string]string {
	return map[string]string{EnvURI: s.URI, EnvUser: s.User, EnvPassword: s.Password, EnvDatabase: s.Database}
}

// Address returns host:port of the URI (port 7687 when absent).
func (s Settings) Address() string {
	u, err := url.Parse(s.URI)
	if err != nil {
		return ""
	}
	if u.Port() == "" {
		return u.Hostname() + ":7687"
	}
	return u.Host
}

// Lookup returns the settings from the environment and whether NEO4J_URI
// and NEO4J_PASSWORD are set. NEO4J_USER defaults to "neo4j".
func Lookup() (Settings, bool) {
	s := Settings{
		URI:      os.Getenv(EnvURI),
		User:     os.Getenv(EnvUser),
		Password: os.Getenv(EnvPassword),
		Database: os.Getenv(EnvDatabase),
	}
	if s.User == "" {
		s.User = "neo4j"
	}
	return s, s.URI != "" && s.Password != ""
}

// Required reports whether ATG_REQUIRE_NEO4J asks for failing instead of
// skipping.
func Required() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(EnvRequire)))
	return v == "1" || v == "true" || v == "yes"
}

// Require returns the test database settings, or skips tb (fails it when
// ATG_REQUIRE_NEO4J=1) when none are configured.
func Require(tb testing.TB) Settings {
	tb.Helper()
	s, ok := Lookup()
	if ok {
		return s
	}
	if Required() {
		tb.Fatalf("%s=1 but %s", EnvRequire, HowToStart)
		return Settings{}
	}
	tb.Skip(HowToStart)
	return Settings{}
}

var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// Unique returns a fresh identifier for tb, such as "T3f9a1c2b_ImportTwice":
// it matches ^[A-Za-z_][A-Za-z0-9_]{0,63}$, so it is usable as a label,
// relationship type, constraint-name part or id prefix, and differs for
// every call, in every process.
func Unique(tb testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := nonIdent.ReplaceAllString(tb.Name(), "_")
	id := "T" + hex.EncodeToString(b[:]) + "_" + name
	if len(id) > 64 {
		id = id[:64]
	}
	return id
}

// Driver returns a bare driver for s, for assertions and cleanup outside
// the code under test; it is closed when tb ends.
func Driver(tb testing.TB, s Settings) neo4j.DriverWithContext {
	tb.Helper()
	d, err := neo4j.NewDriverWithContext(s.URI, neo4j.BasicAuth(s.User, s.Password, ""))
	if err != nil {
		tb.Fatalf("neo4jtest: driver for %s: %v", s, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return d
}

// Query runs cypher in an auto-commit transaction and returns all records.
func Query(ctx context.Context, d neo4j.DriverWithContext, s Settings, cypher string, params map[string]any) ([]*neo4j.Record, error) {
	session := d.NewSession(ctx, neo4j.SessionConfig{DatabaseName: s.Database})
	defer func() { _ = session.Close(context.WithoutCancel(ctx)) }()
	res, err := session.Run(ctx, cypher, params)
	if err != nil {
		return nil, err
	}
	return res.Collect(ctx)
}

// Count runs cypher, which must return one row with one integer column,
// and returns that integer; it fails tb on error.
func Count(tb testing.TB, d neo4j.DriverWithContext, s Settings, cypher string, params map[string]any) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := Query(ctx, d, s, cypher, params)
	if err != nil {
		tb.Fatalf("neo4jtest: count %q: %v", cypher, err)
	}
	if len(recs) != 1 || len(recs[0].Values) != 1 {
		tb.Fatalf("neo4jtest: count %q: want one value, got %d records", cypher, len(recs))
	}
	n, ok := recs[0].Values[0].(int64)
	if !ok {
		tb.Fatalf("neo4jtest: count %q: not an integer: %T", cypher, recs[0].Values[0])
	}
	return n
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// DeleteLabel detaches and deletes every node carrying label, in batches.
// label must be an identifier (as returned by Unique).
func DeleteLabel(ctx context.Context, d neo4j.DriverWithContext, s Settings, label string) error {
	if !identRE.MatchString(label) {
		return fmt.Errorf("neo4jtest: refusing to delete by label %q: not an identifier", label)
	}
	_, err := Query(ctx, d, s, "MATCH (n:`"+label+"`) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS", nil)
	return err
}

// CleanupLabel deletes, when tb ends, every node carrying label (which the
// test created: use Unique).
func CleanupLabel(tb testing.TB, d neo4j.DriverWithContext, s Settings, label string) {
	tb.Helper()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := DeleteLabel(ctx, d, s, label); err != nil {
			tb.Errorf("neo4jtest: cleanup of label %s: %v", label, err)
		}
	})
}

// DropConstraint drops the named constraint, if it exists, when tb ends.
// name must be an identifier.
func DropConstraint(tb testing.TB, d neo4j.DriverWithContext, s Settings, name string) {
	tb.Helper()
	if !identRE.MatchString(name) {
		tb.Fatalf("neo4jtest: constraint name %q is not an identifier", name)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := Query(ctx, d, s, "DROP CONSTRAINT `"+name+"` IF EXISTS", nil); err != nil {
			tb.Errorf("neo4jtest: drop constraint %s: %v", name, err)
		}
	})
}

// OperationNamespace returns a fresh operation-store namespace for tb (see
// Unique), for a server whose operations must not mix with other tests'
// (ATG_OPERATION_NAMESPACE), and deletes that namespace's operations and
// events when tb ends. The labels are the Neo4j operation store's
// (operations/neo4jstore, which this package cannot import: its tests use
// this one).
func OperationNamespace(tb testing.TB, d neo4j.DriverWithContext, s Settings) string {
	tb.Helper()
	ns := Unique(tb)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, label := range []string{"AtgOperationEvent", "AtgOperation"} {
			if _, err := Query(ctx, d, s, "MATCH (n:"+label+" {ns: $ns}) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS",
				map[string]any{"ns": ns}); err != nil {
				tb.Errorf("neo4jtest: cleanup of operation namespace %s: %v", ns, err)
			}
		}
	})
	return ns
}
