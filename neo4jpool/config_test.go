package neo4jpool_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/atgraph/atg/neo4jpool"
)

func validConfig() neo4jpool.Config {
	return neo4jpool.Config{URI: "bolt://neo4j-dev:7687", User: "neo4j", Password: "SecurePassword123!@#"}.WithDefaults()
}

// NC-10: defaults.
func TestConfigDefaults(t *testing.T) {
	c := neo4jpool.Config{}.WithDefaults()
	if c.MaxPoolSize != 50 || c.ConnectionTimeout != 30*time.Second || c.MaxTransactionRetryTime != 30*time.Second {
		t.Errorf("defaults: %v", c)
	}
	c = neo4jpool.Config{MaxPoolSize: 30, ConnectionTimeout: 5 * time.Second, MaxTransactionRetryTime: time.Second}.WithDefaults()
	if c.MaxPoolSize != 30 || c.ConnectionTimeout != 5*time.Second || c.MaxTransactionRetryTime != time.Second {
		t.Errorf("explicit values kept (NC-11): %v", c)
	}
}

// NC-5 .. NC-9 and URI rules.
func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*neo4jpool.Config)
		want string
	}{
		{"NC-5 empty uri", func(c *neo4jpool.Config) { c.URI = "" }, "uri"},
		{"NC-6 empty user", func(c *neo4jpool.Config) { c.User = "" }, "user"},
		{"NC-7 empty password", func(c *neo4jpool.Config) { c.Password = "" }, "password"},
		{"NC-8 pool size 0", func(c *neo4jpool.Config) { c.MaxPoolSize = 0 }, "pool size"},
		{"NC-9 timeout 0", func(c *neo4jpool.Config) { c.ConnectionTimeout = 0 }, "timeout"},
		{"NC-9 timeout 0.5s", func(c *neo4jpool.Config) { c.ConnectionTimeout = 500 * time.Millisecond }, "timeout"},
		{"negative retry time", func(c *neo4jpool.Config) { c.MaxTransactionRetryTime = -time.Second }, "retry time"},
		{"http scheme", func(c *neo4jpool.Config) { c.URI = "http://localhost:7474" }, "bolt://"},
		{"no host", func(c *neo4jpool.Config) { c.URI = "bolt://" }, "no host"},
		{"bolt query", func(c *neo4jpool.Config) { c.URI = "bolt://db:7687?region=x" }, "query string"},
		{"bolt+s query", func(c *neo4jpool.Config) { c.URI = "bolt+s://db?region=x" }, "query string"},
		{"bolt+ssc query", func(c *neo4jpool.Config) { c.URI = "bolt+ssc://db?region=x" }, "query string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if !errors.Is(err, neo4jpool.ErrInvalidConfig) {
				t.Fatalf("want ErrInvalidConfig, got %v", err)
			}
			if !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	for _, scheme := range []string{"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"} {
		c := validConfig()
		c.URI = scheme + "://db.example.com:7687"
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", scheme, err)
		}
	}
	for _, scheme := range []string{"neo4j", "neo4j+s", "neo4j+ssc"} {
		c := validConfig()
		c.URI = scheme + "://db.example.com:7687?region=eu"
		if err := c.Validate(); err != nil {
			t.Errorf("%s with a routing context: %v", scheme, err)
		}
	}
}

// The rule ValidateURI applies is the driver's: it refuses a query string
// on the bolt schemes when creating a driver (so Configure must refuse it
// first) and accepts one on the neo4j schemes.
func TestValidateURIQueryStringMatchesTheDriver(t *testing.T) {
	for _, scheme := range []string{"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"} {
		uri := scheme + "://127.0.0.1:1?region=x"
		d, driverErr := neo4j.NewDriverWithContext(uri, neo4j.BasicAuth("neo4j", testPassword, ""))
		if d != nil {
			_ = d.Close(t.Context())
		}
		var usage *neo4j.UsageError
		driverRefuses := errors.As(driverErr, &usage)
		if driverErr != nil && !driverRefuses {
			t.Fatalf("%s: unexpected driver error %v", uri, driverErr)
		}
		validateErr := neo4jpool.ValidateURI(uri)
		if driverRefuses != (validateErr != nil) {
			t.Errorf("%s: driver error %v, ValidateURI error %v", uri, driverErr, validateErr)
		}
		var m neo4jpool.Manager
		err := m.Configure(t.Context(), "dev", neo4jpool.Config{URI: uri, User: "neo4j", Password: testPassword})
		if driverRefuses != errors.Is(err, neo4jpool.ErrInvalidConfig) {
			t.Errorf("%s: Configure: %v", uri, err)
		}
		_ = m.CloseAll(t.Context())
	}
}

func TestConfigNeverPrintsPassword(t *testing.T) {
	c := validConfig()
	c.URI = "bolt://neo4j:UriSecret99@db:7687"
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("cfg", "config", c)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprintf("%s", c), "String": c.String(), "json": string(js), "slog": logBuf.String(),
		"ptr %v": fmt.Sprintf("%v", &c),
	}
	for name, out := range outputs {
		if strings.Contains(out, "SecurePassword123") || strings.Contains(out, "UriSecret99") {
			t.Errorf("%s leaks a secret: %s", name, out)
		}
		if !strings.Contains(out, "db") {
			t.Errorf("%s lost the host: %s", name, out)
		}
	}
}

func TestRedactURI(t *testing.T) {
	cases := map[string]string{
		"bolt://localhost:7687":             "bolt://localhost:7687",
		"neo4j+s://user:pw@host:7687/x?y=1": "neo4j+s://user:xxxxx@host:7687/x?y=1",
		"bolt://user@host":                  "bolt://user@host",
		"::not a uri":                       "[unparsable URI]",
	}
	for in, want := range cases {
		if got := neo4jpool.RedactURI(in); got != want {
			t.Errorf("RedactURI(%q) = %q, want %q", in, got, want)
		}
	}
}
