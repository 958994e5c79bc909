package main

import (
	"context"
	"fmt"
	"time"

	"github.com/atgraph/atg/neo4jpool"
)

const checkUsage = `usage: atg-server check [--env-file .env] [--timeout 10s]

Validates the configuration (every bad variable is named) and connects to
Neo4j. Exit status: 0 when both are fine, 2 for an invalid configuration,
1 when Neo4j cannot be reached or refuses the credentials.
`

// runCheck implements "atg-server check".
func runCheck(ctx context.Context, e *env, args []string) int {
	f := newServeFlags(e, "check", checkUsage)
	timeout := f.fs.Duration("timeout", 10*time.Second, "how long to wait for Neo4j")
	if code, ok := f.parse(args); !ok {
		return code
	}
	cfg, ok := loadConfig(e, f.envFile)
	if !ok {
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "configuration: OK (environment %s, listen %s:%d, %d API key(s) from ATG_API_KEYS, keys file %q)\n",
		cfg.Environment, cfg.Host, cfg.Port, len(cfg.APIKeys), cfg.KeysFile)

	log, _ := (&serveFlags{logLevel: "error", logFormat: "text"}).logger(&env{stderr: e.stderr})
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: log})
	defer m.CloseAll(context.WithoutCancel(ctx))
	env := string(cfg.Environment)
	if err := m.Configure(ctx, env, cfg.Neo4j); err != nil {
		fmt.Fprintf(e.stderr, "neo4j: %v\n", err)
		return exitFailure
	}
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := m.WaitReady(wctx, env); err != nil {
		fmt.Fprintf(e.stderr, "neo4j: not reachable at %s within %s: %v\n", neo4jpool.RedactURI(cfg.Neo4j.URI), *timeout, err)
		return exitFailure
	}
	h := m.Check(ctx, env)
	if !h.Healthy {
		fmt.Fprintf(e.stderr, "neo4j: %v\n", h.Err)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "neo4j: OK (Neo4j %s %s at %s, database %q, %d ms)\n", h.ServerVersion, h.Edition,
		neo4jpool.RedactURI(cfg.Neo4j.URI), h.Database, h.Latency.Milliseconds())
	return exitOK
}
