package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg"
)

// serveLong is the help of "atg-server serve".
const serveLong = `Serves the HTTP API as configured by the ATG_*, ENVIRONMENT and NEO4J_*
variables (the real environment wins over the .env file). In dev with no
key configured it prints a fresh dev API key once. SIGHUP reloads
ATG_KEYS_FILE and the TLS certificate; SIGINT or SIGTERM shut down
gracefully within ATG_SHUTDOWN_TIMEOUT.`

// serveFlags are serve's flags.
type serveFlags struct {
	envFile string
	// envFileSet is whether --env-file was given: then the file must exist.
	envFileSet bool
	logFormat  string
	logLevel   string
}

// newServeCommand returns "atg-server serve".
func newServeCommand(ctx context.Context, e *env) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve [--env-file .env] [--log-format text|json] [--log-level info]",
		Short: "serve the HTTP API (the default command)",
		Long:  serveLong,
		Args:  noArgs,
	}
	cmd.RunE = runE(func(c *cobra.Command, _ []string) int {
		f.envFileSet = c.Flags().Changed("env-file")
		return runServe(ctx, e, f)
	})
	cmd.Flags().StringVar(&f.envFile, "env-file", ".env", envFileUsage)
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func (f *serveFlags) logger(e *env) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", f.logFormat)
}

// envFileUsage is the help of --env-file.
const envFileUsage = ".env file to read too (the real environment wins); .env may be missing, a file named here must exist"

// loadConfig loads and validates the server configuration, printing every
// problem on its own line. A file named with --env-file (named) must
// exist: a typo must not start a server with the defaults.
func loadConfig(e *env, envFile string, named bool) (atg.ServerConfig, bool) {
	if named && envFile != "" {
		if _, err := os.Stat(envFile); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(e.stderr, "atg-server: --env-file %s: no such file\n", envFile)
			} else {
				fmt.Fprintf(e.stderr, "atg-server: --env-file: %v\n", err)
			}
			return atg.ServerConfig{}, false
		}
	}
	cfg, err := atg.LoadServerConfig(atg.LoadOptions{DotenvFile: envFile, Environ: e.environ})
	if err != nil {
		var ce *atg.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintf(e.stderr, "atg-server: invalid %s configuration:\n", ce.What)
			for _, p := range ce.Problems {
				fmt.Fprintf(e.stderr, "  %v\n", p)
			}
		} else {
			fmt.Fprintf(e.stderr, "atg-server: %v\n", err)
		}
		return cfg, false
	}
	return cfg, true
}

// runServe implements "atg-server serve" (also the default command).
func runServe(ctx context.Context, e *env, f *serveFlags) int {
	log, err := f.logger(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "atg-server serve: %v\n", err)
		return exitUsage
	}
	cfg, ok := loadConfig(e, f.envFile, f.envFileSet)
	if !ok {
		return exitUsage
	}
	log.Info("configuration loaded", "config", cfg)

	srv := &atg.Server{Config: cfg, Logger: log}
	if err := srv.Start(ctx); err != nil {
		fmt.Fprintf(e.stderr, "atg-server: %v\n", err)
		if errors.Is(err, atg.ErrInvalidConfig) {
			return exitUsage // keys, TLS files or audit log: fix the configuration
		}
		return exitFailure
	}
	fmt.Fprint(e.stdout, readyMessage(srv.URL(), string(cfg.Environment), srv.DevKey()))

	hup := e.hup
	if hup == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		defer signal.Stop(ch)
		hup = ch
	}
	served := make(chan error, 1)
	go func() { served <- srv.Wait() }()
	for {
		select {
		case <-hup:
			if err := srv.Reload(ctx); err != nil {
				log.Error("SIGHUP: reload failed; what failed keeps its previous state", "err", err)
			} else {
				log.Info("SIGHUP: keys file and TLS certificate reloaded")
			}
		case err := <-served:
			log.Error("server stopped serving", "err", err)
			_ = srv.Shutdown(context.Background())
			return exitFailure
		case <-ctx.Done():
			log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				log.Error("shutdown incomplete", "err", err)
				return exitFailure
			}
			log.Info("stopped")
			return exitOK
		}
	}
}

// readyMessage is what serve prints on stdout once it listens: the URL
// and, when it generated one, the dev key and the next steps, set apart
// from the log lines on stderr.
func readyMessage(url, environment, devKey string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "atg-server %s listening on %s (environment %s)\n", atg.Version, url, environment)
	if devKey == "" {
		return b.String()
	}
	const rule = "------------------------------------------------------------------------\n"
	b.WriteString("\n" + rule)
	b.WriteString("No API key configured: generated a dev key, valid until this process exits (shown once):\n\n")
	fmt.Fprintf(&b, "  export KEY=%s\n\n", devKey)
	b.WriteString("Next:\n")
	fmt.Fprintf(&b, "  curl -H \"Authorization: Bearer $KEY\" %s/api/v1/status\n", url)
	fmt.Fprintf(&b, "  ATG_REMOTE_MODE=true ATG_SERVICE_URL=%s ATG_API_KEY=$KEY bin/atg status\n", url)
	b.WriteString(rule)
	return b.String()
}
