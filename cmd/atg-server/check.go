package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/neo4jpool"
)

// checkLong is the help of "atg-server check".
const checkLong = `Validates the configuration (every bad variable is named), makes the checks
serve makes before it listens (keys file, usable API keys, TLS certificate
and key, audit log) and connects to Neo4j. Exit status: 0 when all are fine,
2 for an invalid configuration or setup, 1 when Neo4j cannot be reached or
refuses the credentials.`

// newCheckCommand returns "atg-server check".
func newCheckCommand(ctx context.Context, e *env) *cobra.Command {
	var (
		envFile string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check [--env-file .env] [--timeout 10s]",
		Short: "validate the configuration and the Neo4j connection",
		Long:  checkLong,
		Args:  noArgs,
	}
	cmd.RunE = runE(func(c *cobra.Command, _ []string) int {
		return runCheck(ctx, e, envFile, c.Flags().Changed("env-file"), timeout)
	})
	cmd.Flags().StringVar(&envFile, "env-file", ".env", envFileUsage)
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for Neo4j")
	return cmd
}

// runCheck implements "atg-server check".
func runCheck(ctx context.Context, e *env, envFile string, envFileNamed bool, timeout time.Duration) int {
	cfg, ok := loadConfig(e, envFile, envFileNamed)
	if !ok {
		return exitUsage
	}
	// Warnings (e.g. a key of another environment) go to stderr.
	warn := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := (&atg.Server{Config: cfg, Logger: warn}).Preflight(ctx); err != nil {
		fmt.Fprintf(e.stderr, "atg-server: %v\n", err)
		if errors.Is(err, atg.ErrInvalidConfig) {
			return exitUsage
		}
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "configuration: OK (environment %s, listen %s:%d, %d API key(s) from ATG_API_KEYS, keys file %q)\n",
		cfg.Environment, cfg.Host, cfg.Port, len(cfg.APIKeys), cfg.KeysFile)

	// The outcome is reported below; the pool logs only errors.
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	m := neo4jpool.NewManager(neo4jpool.Options{Logger: log})
	defer m.CloseAll(context.WithoutCancel(ctx))
	env := string(cfg.Environment)
	uri := neo4jpool.RedactURI(cfg.Neo4j.URI)
	if err := m.Configure(ctx, env, cfg.Neo4j); err != nil {
		fmt.Fprintf(e.stderr, "neo4j: %v\n", err)
		return exitFailure
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := m.WaitReady(wctx, env); err != nil {
		if neo4jpool.IsAuthError(err) {
			fmt.Fprintf(e.stderr, "neo4j: credentials rejected at %s (user %q): %v\n", uri, cfg.Neo4j.User, err)
		} else {
			fmt.Fprintf(e.stderr, "neo4j: not reachable at %s within %s: %v\n", uri, timeout, err)
		}
		return exitFailure
	}
	// WaitReady returned at its first healthy check, which LastHealth keeps
	// (a Manager of our own: no other check can have run since).
	h, ok := m.LastHealth(env)
	if !ok || !h.Healthy {
		fmt.Fprintf(e.stderr, "neo4j: no healthy check recorded for %s: %v\n", uri, h.Err)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "neo4j: OK (Neo4j %s %s at %s, database %q, %d ms)\n", h.ServerVersion, h.Edition,
		uri, h.Database, h.Latency.Milliseconds())
	return exitOK
}
