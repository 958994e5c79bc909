package atg

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidConfig is matched (with errors.Is) by every configuration error:
// *ConfigError, *FieldError, *DotenvError and *SetupError.
var ErrInvalidConfig = errors.New("invalid configuration")

// SetupError is a Server that cannot start as configured for a reason the
// values alone do not show: a keys file or TLS certificate that cannot be
// read, an audit log that cannot be opened, or no usable API key outside
// dev. Server.Start and Server.Preflight return it.
type SetupError struct {
	// Err is the cause.
	Err error
}

// Error implements error with the cause's message.
func (e *SetupError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *SetupError) Unwrap() error { return e.Err }

// Is makes every SetupError match ErrInvalidConfig.
func (e *SetupError) Is(target error) bool { return target == ErrInvalidConfig }

// FieldError reports one invalid configuration value.
type FieldError struct {
	// Var is the environment variable, e.g. "ATG_SERVER_PORT".
	Var string
	// Value is the offending value as given, or a redacted form when the
	// variable holds a secret. Empty when the variable was missing.
	Value string
	// Rule says what the value must be.
	Rule string
}

// Error implements error: "ATG_SERVER_PORT=99999: port must be between 1 and 65535".
func (e *FieldError) Error() string {
	if e.Value == "" {
		return e.Var + ": " + e.Rule
	}
	return fmt.Sprintf("%s=%q: %s", e.Var, e.Value, e.Rule)
}

// Is makes every FieldError match ErrInvalidConfig.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidConfig }

// ConfigError gathers every problem found while loading or validating one
// configuration, so all of them can be fixed at once.
type ConfigError struct {
	// What names the configuration, e.g. "server" or "neo4j".
	What string
	// Problems lists each invalid value, in validation order.
	Problems []error
}

// Error implements error, listing every problem.
func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return fmt.Sprintf("invalid %s configuration: %s", e.What, strings.Join(msgs, "; "))
}

// Unwrap returns the individual problems, so errors.As finds a *FieldError.
func (e *ConfigError) Unwrap() []error { return e.Problems }

// Is makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// problems collects FieldErrors during validation.
type problems struct{ list []error }

func (p *problems) add(varName, value, rule string) {
	p.list = append(p.list, &FieldError{Var: varName, Value: value, Rule: rule})
}

// merge adds the problems of err: each of a *ConfigError's, or err itself.
func (p *problems) merge(err error) {
	var ce *ConfigError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		p.list = append(p.list, ce.Problems...)
	default:
		p.list = append(p.list, err)
	}
}

// environmentProblem is the problem of an ENVIRONMENT value other than dev,
// integration or production.
func environmentProblem(value string) *FieldError {
	return &FieldError{Var: "ENVIRONMENT", Value: value, Rule: "must be dev, integration or production"}
}

func (p *problems) err(what string) error {
	if len(p.list) == 0 {
		return nil
	}
	return &ConfigError{What: what, Problems: p.list}
}
