package neo4jpool

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrUnknownEnvironment is matched (with errors.Is) by the error returned when
// an operation names an environment that was never passed to
// [Manager.Configure].
var ErrUnknownEnvironment = errors.New("neo4jpool: environment not configured")

// EnvError is returned by [Manager] operations that reach the database. It
// names the environment, the operation and the URI (with any password
// redacted) and wraps the cause, so errors.Is and errors.As reach the driver's
// errors (for example *neo4j.Neo4jError or *neo4j.ConnectivityError).
type EnvError struct {
	// Env is the environment name.
	Env string
	// URI is the configured URI with any password replaced (see RedactURI).
	URI string
	// Op says what failed, for example "connect" or "write transaction".
	Op string
	// Err is the cause.
	Err error
}

// Error implements error. It never contains the password.
func (e *EnvError) Error() string {
	return fmt.Sprintf("neo4jpool: environment %q (%s): %s: %v", e.Env, e.URI, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *EnvError) Unwrap() error { return e.Err }

// unknownEnvError names the missing environment and the configured ones.
type unknownEnvError struct {
	env   string
	known []string
}

func (e *unknownEnvError) Error() string {
	known := "none configured"
	if len(e.known) > 0 {
		known = "configured: " + strings.Join(e.known, ", ")
	}
	return fmt.Sprintf("neo4jpool: environment %q is not configured (%s)", e.env, known)
}

// Is makes errors.Is(err, ErrUnknownEnvironment) true.
func (e *unknownEnvError) Is(target error) bool { return target == ErrUnknownEnvironment }

// errEnvClosed reports use of an environment after Close. It matches
// net.ErrClosed, like tsnet.Server after Close.
func errEnvClosed(env string) error {
	return fmt.Errorf("neo4jpool: environment %q is closed: %w", env, net.ErrClosed)
}

// errManagerClosed reports use of the manager after CloseAll. It matches
// net.ErrClosed.
func errManagerClosed() error {
	return fmt.Errorf("neo4jpool: manager is closed: %w", net.ErrClosed)
}

// isClosedErr reports whether err reports a closed manager or environment.
func isClosedErr(err error) bool { return errors.Is(err, net.ErrClosed) }
