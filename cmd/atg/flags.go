package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/atgraph/atg"
	"github.com/atgraph/atg/internal/interspersed"
)

// Output formats of --format.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// globals are the flags every command accepts, before or after its name.
type globals struct {
	remote, local, verbose bool
	envFile                string
	format                 string
	// secret is the API key once loaded, so that no message can reveal it.
	secret string
	// scanSource, when set, is what local-mode scans read ("atg scan").
	scanSource atg.SourceFactory
}

// flagSet returns a flag set named name with the global flags bound to g
// (--format only when withFormat). It prints nothing itself: callers report
// parse errors in one line and print their own usage text on -h.
func (g *globals) flagSet(_ *env, name string, withFormat bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolVar(&g.remote, "remote", g.remote, "remote mode, whatever ATG_REMOTE_MODE says")
	fs.BoolVar(&g.local, "local", g.local, "local mode, whatever ATG_REMOTE_MODE says")
	fs.StringVar(&g.envFile, "env-file", g.envFile, "optional .env file")
	fs.BoolVar(&g.verbose, "verbose", g.verbose, "log local mode's diagnostics to stderr")
	if withFormat {
		fs.StringVar(&g.format, "format", g.format, "output format: table or json")
	}
	return fs
}

// check validates the global flags; ok is false when the command must
// exit with code.
func (g *globals) check(e *env, cmd string) (code int, ok bool) {
	if g.remote && g.local {
		return usageError(e, cmd, "--remote and --local exclude each other"), false
	}
	if g.format != formatTable && g.format != formatJSON {
		return usageError(e, cmd, fmt.Sprintf("--format %q: want table or json", g.format)), false
	}
	return exitOK, true
}

// isHelp reports whether a parse error is a request for help.
func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }

// parseCommand parses the arguments of command cmd with fs. Flags may come
// before, between and after positional arguments; "--" ends the flags. -h
// prints usage on stdout. It returns the positional arguments, or ok false
// with the exit status when parsing ended the command.
func parseCommand(e *env, g *globals, fs *flag.FlagSet, cmd, usage string, args []string) (positional []string, code int, ok bool) {
	positional, err := interspersed.Parse(fs, args)
	if err != nil {
		if isHelp(err) {
			fmt.Fprint(e.stdout, usage)
			return nil, exitOK, false
		}
		return nil, usageError(e, cmd, err.Error()), false
	}
	if code, ok := g.check(e, cmd); !ok {
		return nil, code, false
	}
	return positional, exitOK, true
}

// wantArgs checks the number of positional arguments of cmd; what names
// them in the message ("an operation ID").
func wantArgs(e *env, cmd string, positional []string, n int, what string) (int, bool) {
	switch {
	case len(positional) == n:
		return exitOK, true
	case n == 0:
		return usageError(e, cmd, fmt.Sprintf("unexpected argument %q", positional[0])), false
	case len(positional) < n:
		return usageError(e, cmd, "missing "+what), false
	}
	return usageError(e, cmd, fmt.Sprintf("expected %s, got %d arguments: %s", what, len(positional), strings.Join(quoteAll(positional), " "))), false
}

// quoteAll quotes each string for a message.
func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
