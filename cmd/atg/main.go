// Command atg is the ATG client: it queries the shared graph and runs
// operations such as graph imports, either in this process against Neo4j
// (local mode) or on an atg-server (remote mode).
//
// Usage:
//
//	atg [global flags] <command> [arguments] [flags]
//
// Commands:
//
//	status      show the server's (remote) or the database's (local) status
//	query       run a Cypher query and print its rows
//	import      import a graph document as an "import" operation, with progress
//	ops         list, show, cancel, watch or wait for a server's operations
//	version     print the version (also --version)
//	completion  print a shell completion script (bash, zsh, fish, powershell)
//	help        show the help, or a command's ("atg help ops list")
//
// The command line is built on github.com/spf13/cobra: flags may come
// before, between and after positional arguments, and "--" ends them.
// Global flags: --remote or --local choose the mode (otherwise
// ATG_REMOTE_MODE decides), --profile NAME takes the server URL and key
// from a named profile (see "atg help"), --env-file names a .env file
// (default .env, which may be missing; a file named explicitly must
// exist; the real environment wins), and --verbose logs local mode's
// diagnostics to stderr. status, query and ops list|get|cancel take
// --format (-o); query and ops list also print csv, tsv and jsonl, with
// --no-headers.
//
// Remote mode needs ATG_SERVICE_URL and ATG_API_KEY (ATG_REQUEST_TIMEOUT
// bounds each request). Local mode runs operations in this process against
// the Neo4j of ENVIRONMENT (dev, integration or production; default dev)
// configured by NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD and NEO4J_DATABASE.
//
// Exit status:
//
//	0    success
//	1    failure: the operation failed, the query failed (QUERY_ERROR,
//	     400: Neo4j refused it), import --strict skipped relationships, a
//	     wait timed out, or the server erred (409, 413, 500, ...)
//	2    usage or configuration error, unreadable or invalid input, or a
//	     request the server rejected as invalid (400 VALIDATION_ERROR)
//	3    authentication or authorization failed (401, 403)
//	4    not found (404, e.g. an unknown operation ID)
//	5    service unavailable: the server or database cannot be reached
//	     (connection refused, timeout, 429, 502, 503, 504, database down,
//	     or an operation that failed because the database was unavailable)
//	6    the operation was cancelled
//	130  interrupted (Ctrl-C or SIGTERM); a remote import or a watch detaches
//	     and leaves the operation running
//
// Errors are one line on stderr starting with "atg: " (a Cypher syntax
// error keeps its lines, so that its caret points at the mistake); the API
// key is never printed. Progress goes to stderr (a progress bar on a
// terminal, plain "progress ..." lines otherwise); results go to stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/atgraph/atg"
)

// Exit statuses; see the package documentation.
const (
	exitOK          = 0
	exitFailure     = 1   // the command ran and failed
	exitUsage       = 2   // bad command line, configuration or input
	exitAuth        = 3   // 401 or 403
	exitNotFound    = 4   // 404
	exitUnavailable = 5   // server or database unreachable or overloaded
	exitCancelled   = 6   // the operation ended cancelled
	exitInterrupted = 130 // Ctrl-C: 128 + SIGINT, as shells report it
)

// main wires signals to run and exits with its status.
func main() {
	// The first SIGINT or SIGTERM cancels ctx, which every command treats
	// as an interrupt; stop then restores the default handling, so a second
	// Ctrl-C ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command sees of its process; tests replace its parts.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// environ, when not nil, replaces the process environment for
	// configuration loading and profiles (tests).
	environ map[string]string
	// isTerminal reports whether w is a terminal (then import and watch
	// draw a progress bar instead of printing progress lines).
	isTerminal func(w io.Writer) bool
	// clientOptions, when not nil, adjusts the options of the client a
	// command creates (tests: extra operation types in local mode).
	clientOptions func(*atg.ClientOptions)
	// onClient, when not nil, is called with the client before the command
	// uses it (tests: occupy local mode's operation slots).
	onClient func(context.Context, *atg.Client) error
}

// getenv reads a variable of e's environment.
func (e *env) getenv(k string) string {
	if e.environ != nil {
		return e.environ[k]
	}
	return os.Getenv(k)
}

// run executes the command line args (without the program name) with the
// process's stdin and environment and returns the exit status. Cancelling
// ctx is an interrupt (Ctrl-C).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, &env{stdin: os.Stdin, stdout: stdout, stderr: stderr, isTerminal: isTerminal}, args)
}

// isTerminal reports whether w is an *os.File attached to a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// init keeps the commands in the order they are added: the help lists
// the everyday ones first.
func init() { cobra.EnableCommandSorting = false }

// exitStatus is the error a command returns to end the process with that
// status once it has reported the problem itself.
type exitStatus int

// Error implements error.
func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// runE adapts a command's run function, which reports its own errors and
// returns an exit status, to cobra.
func runE(f func(cmd *cobra.Command, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if code := f(cmd, args); code != exitOK {
			return exitStatus(code)
		}
		return nil
	}
}

// runEnv executes args and returns the exit status.
func runEnv(ctx context.Context, e *env, args []string) int {
	if e.isTerminal == nil {
		e.isTerminal = func(io.Writer) bool { return false }
	}
	g := &globals{envFile: ".env"}
	root := newRootCommand(ctx, e, g)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	// A usage error cobra found: an unknown flag, a bad flag value, a
	// wrong number of arguments.
	if cmd == nil {
		cmd = root
	}
	return usageError(e, commandName(cmd), err.Error()+singleDashHint(cmd, args))
}

// singleDashHint returns "; flags take two dashes: --name" when args
// hold a long flag of cmd spelt with one dash ("-file"), which the
// standard flag package accepted and pflag reads as shorthands; else "".
func singleDashHint(cmd *cobra.Command, args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") || len(name) < 2 {
			continue
		}
		if cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil {
			return "; flags take two dashes: --" + name
		}
	}
	return ""
}

// commandName is cmd's path without "atg" ("ops list"; "" for atg).
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(strings.TrimPrefix(cmd.CommandPath(), "atg"), " ")
}

// usageError prints one line naming the problem and where the help is, and
// returns exitUsage. cmd is the command's name ("" for atg itself).
func usageError(e *env, cmd, msg string) int {
	help := `"atg help"`
	prefix := "atg: "
	if cmd != "" {
		help = `"atg ` + cmd + ` -h"`
		prefix = "atg " + cmd + ": "
	}
	fmt.Fprintf(e.stderr, "%s%s (see %s)\n", prefix, strings.TrimSuffix(msg, "\n"), help)
	return exitUsage
}

// versionLine is what "atg version" and "atg --version" print.
func versionLine() string {
	return fmt.Sprintf("atg %s (%s, %s/%s)\n", atg.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// rootLong is the description at the top of "atg help".
const rootLong = `The ATG client: query the shared graph and run operations, in this process
against Neo4j (local mode) or on an atg-server (remote mode).`

// helpTail is the part of "atg help" after cobra's lists of commands and
// flags: configuration, modes and exit statuses.
const helpTail = `
Configuration (environment or .env file):
  ATG_REMOTE_MODE      true/false (default false): remote or local mode
  ATG_SERVICE_URL      the server's URL (remote mode)
  ATG_API_KEY          the API key (remote mode); never printed
  ATG_REQUEST_TIMEOUT  seconds per request (default 3600)
  ATG_PROFILE          the profile to use when --profile is not given
  ENVIRONMENT          dev (default), integration or production (local mode)
  NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE   (local mode)

Profiles: --profile NAME reads $XDG_CONFIG_HOME/atg/profiles.json (or
~/.config/atg/profiles.json; ATG_PROFILES_FILE names another file):
  {"profiles": {"prod": {"url": "https://atg.example.com",
                         "key_file": "~/.config/atg/prod.key"},
                "dev":  {"url": "http://127.0.0.1:8000",
                         "key_command": "pass show atg/dev"}}}
A profile means remote mode with that URL and key, whatever the
environment says.

In local mode operations run inside this process: Ctrl-C cancels them,
and "atg ops" has nothing to manage. In remote mode they run on the
server: Ctrl-C during "atg import" detaches and leaves the operation
running (follow it with "atg ops watch ID") unless --cancel-on-interrupt.

Exit status:
  0    success
  1    failure: the operation failed, the query failed (QUERY_ERROR, 400:
       Neo4j refused it), import --strict skipped relationships, a wait
       timed out, or the server erred (409, 413, 500, ...)
  2    usage or configuration error, unreadable or invalid input, or a
       request the server rejected as invalid (400 VALIDATION_ERROR)
  3    authentication or authorization failed (401, 403)
  4    not found (404, e.g. an unknown operation ID)
  5    service unavailable: server or database unreachable (connection
       refused, timeout, 429, 502, 503, 504, database down, or an
       operation that failed because the database was unavailable)
  6    the operation was cancelled
  130  interrupted (Ctrl-C); a remote import or a watch detaches, leaving
       the operation running
`

// newRootCommand returns the atg command tree bound to ctx, e and g.
func newRootCommand(ctx context.Context, e *env, g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "atg [global flags] <command> [arguments] [flags]",
		Short:         "The ATG client",
		Long:          rootLong,
		Version:       atg.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return errors.New(msg)
		},
		// atg alone prints its help on stderr and exits 2.
		RunE: runE(func(cmd *cobra.Command, _ []string) int {
			cmd.SetOut(e.stderr)
			_ = cmd.Help()
			return exitUsage
		}),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.envFileSet = cmd.Flags().Changed("env-file")
			if g.remote && g.local {
				return errors.New("--remote and --local exclude each other")
			}
			return nil
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate(versionLine())
	g.bind(root)
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]...",
		Short: "show this help, or a command's: help ops list",
		Long:  `Shows the help of atg, or of the command named ("atg help ops list").`,
		RunE: runE(func(_ *cobra.Command, args []string) int {
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usageError(e, "help", fmt.Sprintf("unknown command %q", strings.Join(args, " ")))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			_ = cmd.Help()
			return exitOK
		}),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			cmd, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	})
	root.AddCommand(
		newStatusCommand(ctx, e, g),
		newQueryCommand(ctx, e, g),
		newImportCommand(ctx, e, g),
		newScanCommand(ctx, e, g),
		newOpsCommand(ctx, e, g),
		&cobra.Command{
			Use:   "version",
			Short: "print the version (also --version)",
			Long:  "Prints the version of atg, the Go version and the platform.",
			Args:  noArgs,
			Run:   func(*cobra.Command, []string) { fmt.Fprint(e.stdout, versionLine()) },
		},
	)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.SetUsageTemplate(root.UsageTemplate() + "{{if not .HasParent}}" + helpTail + "{{end}}")
	// cobra's completion command, summarised in the style of the others.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "print a shell completion script: completion bash|zsh|fish|powershell"
		}
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true // the Use lines spell out their flags
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// noArgs refuses positional arguments.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

// exactArgs wants n positional arguments; what names them in the message
// ("an operation ID").
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) == n:
			return nil
		case n == 0:
			return fmt.Errorf("unexpected argument %q", args[0])
		case len(args) < n:
			return errors.New("missing " + what)
		}
		return fmt.Errorf("expected %s, got %d arguments: %s", what, len(args), strings.Join(quoteAll(args), " "))
	}
}

// quoteAll quotes each string for a message.
func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
