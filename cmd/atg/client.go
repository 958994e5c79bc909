package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/neo4jpool"
	"github.com/atgraph/atg/operations"
	"github.com/atgraph/atg/transport"
)

// closeTimeout bounds closing a client (local mode: cancelling operations
// and closing the Neo4j driver) and cancelling an operation after Ctrl-C.
const closeTimeout = 15 * time.Second

// session is an open client and where it points, for messages.
type session struct {
	*atg.Client
	// where is the server URL (remote), or the Neo4j URI without
	// credentials (local).
	where string
	// environment is local mode's environment.
	environment string
	// vars are the configuration variables read (.env file and
	// environment merged), e.g. for local defaults such as
	// ATG_TARGET_TENANT_ID.
	vars map[string]string
}

// modeError is a command that needs the other mode (exit 2).
type modeError struct{ msg string }

// Error implements error.
func (e *modeError) Error() string { return e.msg }

// configError is a configuration the client cannot be built from (exit 2).
type configError struct{ err error }

// Error implements error.
func (e *configError) Error() string { return e.err.Error() }

// Unwrap returns the configuration problem.
func (e *configError) Unwrap() error { return e.err }

// open loads the configuration and returns a client in the mode chosen by
// --remote, --local or ATG_REMOTE_MODE. needRemote refuses local mode with
// a *modeError that explains why.
func (g *globals) open(ctx context.Context, e *env, needRemote string) (*session, error) {
	if g.envFileSet && g.envFile != "" {
		// A file named on the command line must exist: a typo must not
		// fall back to local mode without a word.
		if _, err := os.Stat(g.envFile); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("--env-file %s: no such file", g.envFile)
			}
			return nil, &configError{err}
		}
	}
	opts := atg.LoadOptions{DotenvFile: g.envFile, Environ: e.environ}
	if g.remote || g.local {
		// The flag beats ATG_REMOTE_MODE wherever that is set.
		opts.Overrides = map[string]string{"ATG_REMOTE_MODE": fmt.Sprint(g.remote)}
	}
	name := g.profile
	if name == "" && !g.local {
		name = e.getenv("ATG_PROFILE")
	}
	if name != "" {
		if g.local {
			return nil, &configError{errProfileAndLocal}
		}
		url, key, err := loadProfile(ctx, e, name)
		if err != nil {
			return nil, &configError{err}
		}
		g.secret = key
		// A profile beats the environment, as a kubectl context does.
		opts.Overrides = map[string]string{"ATG_REMOTE_MODE": "true", "ATG_SERVICE_URL": url, "ATG_API_KEY": key}
	}
	// One read of the .env file and the environment serves both the client
	// and, in local mode, the Neo4j configuration.
	opts, err := opts.Resolve()
	if err != nil {
		return nil, &configError{err}
	}
	cfg, err := atg.LoadClientConfig(opts)
	if cfg.APIKey != "" {
		g.secret = cfg.APIKey
	}
	if err != nil {
		return nil, &configError{err}
	}
	if !cfg.RemoteMode && needRemote != "" {
		return nil, &modeError{needRemote}
	}
	co := atg.ClientOptions{Config: cfg, UserAgent: "atg-cli/" + atg.Version, ClientID: "local", Logger: g.logger(e)}
	s := &session{where: cfg.ServiceURL, vars: opts.Environ}
	if !cfg.RemoteMode {
		envName, n4j, err := atg.LoadLocalConfig(opts)
		if err != nil {
			return nil, &configError{fmt.Errorf("local mode: %w", err)}
		}
		co.Neo4j, co.Environment = n4j, envName
		s.where, s.environment = neo4jpool.RedactURI(n4j.URI), string(envName)
	}
	if g.scanSource != nil {
		co.ScanSource = g.scanSource
	}
	if e.clientOptions != nil {
		e.clientOptions(&co)
	}
	c, err := atg.NewClient(co)
	if err != nil {
		return nil, &configError{err}
	}
	s.Client = c
	if e.onClient != nil {
		if err := e.onClient(ctx, c); err != nil {
			s.close(ctx)
			return nil, err
		}
	}
	return s, nil
}

// close releases the client even after an interrupt: in local mode it
// cancels what still runs and closes the Neo4j driver.
func (s *session) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	_ = s.Close(ctx)
}

// mode names the session's mode and target for messages.
func (s *session) mode() string {
	if s.Remote() {
		return "remote mode, " + s.where
	}
	return "local mode, " + s.where + ", environment " + s.environment
}

// logger returns local mode's logger: silent unless --verbose.
func (g *globals) logger(e *env) *slog.Logger {
	if !g.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fail prints err as one line on stderr and returns its exit status.
// Cancelling ctx (Ctrl-C) makes any error an interruption.
func (g *globals) fail(ctx context.Context, e *env, s *session, err error) int {
	code := exitCode(err)
	msg := describe(err, s)
	if ctx.Err() != nil {
		code, msg = exitInterrupted, "interrupted"
	}
	g.printErr(e, msg)
	return code
}

// printErr prints "atg: msg" on stderr, with the API key masked should a
// message ever contain it.
func (g *globals) printErr(e *env, msg string) {
	if g.secret != "" {
		msg = strings.ReplaceAll(msg, g.secret, "atg_***")
	}
	msg = strings.TrimSpace(msg)
	if keepsLines(msg) {
		// The request ID, at the end, would follow the caret: it joins
		// the first line instead.
		if id := requestIDSuffix.FindString(msg); id != "" {
			first, rest, _ := strings.Cut(strings.TrimSuffix(msg, id), "\n")
			msg = first + id + "\n" + rest
		}
	} else {
		msg = strings.ReplaceAll(msg, "\n", " ")
	}
	fmt.Fprintf(e.stderr, "atg: %s\n", msg)
}

// caretLine matches the line of a Cypher syntax error that points at the
// mistake: spaces, then "^".
var caretLine = regexp.MustCompile(`(?m)^ *\^( |$)`)

// requestIDSuffix matches the request ID transport.Error appends.
var requestIDSuffix = regexp.MustCompile(` \[request_id=[^\]\n]*\]$`)

// keepsLines reports whether an error message is laid out in lines that
// must stay: Neo4j's syntax errors quote the query and put a caret under
// the mistake on the next line.
func keepsLines(msg string) bool {
	return strings.Contains(msg, "\n") && caretLine.MatchString(msg)
}

// exitCode maps an error to the documented exit status.
func exitCode(err error) int {
	var (
		ae *transport.Error
		oe *operations.Error
		me *modeError
		ce *configError
		ie *inputError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &me), errors.As(err, &ce), errors.As(err, &ie), errors.Is(err, atg.ErrInvalidConfig):
		return exitUsage
	case errors.As(err, &ae):
		switch {
		case ae.Code == transport.CodeAuthenticationFailed || ae.Code == transport.CodeForbidden ||
			ae.Status == 401 || ae.Status == 403:
			return exitAuth
		case ae.Code == transport.CodeNotFound:
			return exitNotFound
		case ae.Code == transport.CodeValidation:
			return exitUsage
		case ae.Code == transport.CodeUnavailable || ae.Code == transport.CodeRateLimited || ae.Temporary():
			return exitUnavailable
		}
		return exitFailure
	case errors.As(err, &oe):
		if oe.Code == operations.CodeCancelled {
			return exitCancelled
		}
		return exitFailure
	case transport.Retryable(err):
		return exitUnavailable // connection refused, reset, timed out
	}
	return exitFailure
}

// describe words err for the one line on stderr.
func describe(err error, s *session) string {
	var (
		ae *transport.Error
		me *modeError
	)
	switch {
	case errors.As(err, &me):
		return me.msg
	case errors.As(err, &ae):
		msg := ae.Error()
		switch {
		case ae.Code == transport.CodeAuthenticationFailed:
			msg += "; check ATG_API_KEY"
		case ae.Code == transport.CodeQuery && ae.Details["neo4j_code"] == "Neo.ClientError.Statement.AccessMode":
			msg += "; add --write to run a query that writes"
		case ae.Code == transport.CodeUnavailable && s != nil && !s.Remote():
			msg += "; is Neo4j running at " + s.where + "?"
		}
		return msg
	case transport.Retryable(err) && s != nil && s.Remote():
		return "cannot reach the server at " + s.where + ": " + strings.TrimPrefix(err.Error(), "transport: ")
	}
	return err.Error()
}

// inputError is unreadable or invalid input (exit 2).
type inputError struct{ err error }

// Error implements error.
func (e *inputError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *inputError) Unwrap() error { return e.err }

// readInput reads the named file, or stdin for "-".
func readInput(e *env, name string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if name == "-" {
		b, err = io.ReadAll(e.stdin)
		if err != nil {
			err = fmt.Errorf("read stdin: %w", err)
		}
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, &inputError{err}
	}
	return b, nil
}
