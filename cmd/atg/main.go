// Command atg is the ATG client: it queries the shared graph and runs
// operations such as graph imports, either in this process against Neo4j
// (local mode) or on an atg-server (remote mode).
//
// Usage:
//
//	atg [global flags] <command> [arguments]
//
// Commands:
//
//	status   show the server's (remote) or the database's (local) status
//	query    run a Cypher query and print its rows
//	import   import a graph document as an "import" operation, with progress
//	ops      list, show, cancel or watch a server's operations
//	version  print the version
//	help     show the help, or a command's ("atg help query")
//
// Global flags may come before or after the command: --remote or --local
// choose the mode (otherwise ATG_REMOTE_MODE decides), --env-file names a
// .env file (default .env; a missing file is fine; the real environment
// wins), --format table|json chooses the output of status, query and ops
// list|get|cancel, and --verbose logs local mode's diagnostics to stderr.
//
// Remote mode needs ATG_SERVICE_URL and ATG_API_KEY (ATG_REQUEST_TIMEOUT
// bounds each request). Local mode runs operations in this process against
// the Neo4j of ENVIRONMENT (dev, integration or production; default dev)
// configured by NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD and NEO4J_DATABASE.
//
// Exit status:
//
//	0    success
//	1    failure: the operation failed, the query failed, or the server erred
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
// Errors are one line on stderr starting with "atg: "; the API key is never
// printed. Progress goes to stderr (a progress bar on a terminal, plain
// "progress ..." lines otherwise); results go to stdout.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

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
	// configuration loading (tests).
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

// command is a subcommand of atg. To add one, write its run function in
// its own file and list it in commands.
type command struct {
	name    string
	summary string
	usage   string
	run     func(ctx context.Context, e *env, g *globals, args []string) int
}

// commands lists the subcommands in the order the help shows them. It is
// filled in init to break the initialization cycle through runHelp.
var commands []command

// init fills commands.
func init() {
	commands = []command{
		{name: "status", summary: "show the server's (remote) or the database's (local) status", usage: statusUsage, run: runStatus},
		{name: "query", summary: "run a Cypher query: query CYPHER|- [--param k=v]... [--write]", usage: queryUsage, run: runQuery},
		{name: "import", summary: "import a graph document with progress: import FILE|- [--chunk-size N]", usage: importUsage, run: runImport},
		{name: "scan", summary: "scan an Azure tenant into the graph with progress: scan [--tenant-id ID] [--dry-run]", usage: scanUsage, run: runScan},
		{name: "ops", summary: "manage a server's operations: ops list|get|cancel|watch", usage: opsUsage, run: runOps},
		{name: "version", summary: "print the version", usage: versionUsage, run: runVersion},
		{name: "help", summary: "show this help, or a command's: help COMMAND", run: runHelp},
	}
	mainUsage = usageHead + commandList(commands) + usageTail
	for i := range commands {
		if commands[i].name == "help" {
			commands[i].usage = mainUsage // "atg help help" shows the main help
		}
	}
}

// commandList returns the "commands:" lines of the help, one per entry of
// cmds, in their order, the summaries aligned.
func commandList(cmds []command) string {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	return b.String()
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

// runEnv parses the global flags and runs the command named in args.
func runEnv(ctx context.Context, e *env, args []string) int {
	if e.isTerminal == nil {
		e.isTerminal = func(io.Writer) bool { return false }
	}
	g := &globals{envFile: ".env", format: formatTable}
	fs := g.flagSet(e, "atg", true)
	if err := fs.Parse(args); err != nil {
		if isHelp(err) {
			fmt.Fprint(e.stdout, mainUsage)
			return exitOK
		}
		return usageError(e, "", err.Error())
	}
	if code, ok := g.check(e, ""); !ok {
		return code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(e.stderr, mainUsage)
		return exitUsage
	}
	name := rest[0]
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, e, g, rest[1:])
		}
	}
	return usageError(e, "", fmt.Sprintf("unknown command %q", name))
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

// mainUsage is the help of atg ("atg help"): usageHead, the commands
// listed from the commands table, then usageTail. init builds it.
var mainUsage string

// usageHead is the help up to the list of commands.
const usageHead = `usage: atg [global flags] <command> [arguments]

The ATG client: query the shared graph and run operations, in this process
against Neo4j (local mode) or on an atg-server (remote mode).

commands:
`

// usageTail is the help after the list of commands.
const usageTail = `
global flags (before or after the command):
  --remote          remote mode, whatever ATG_REMOTE_MODE says
  --local           local mode, whatever ATG_REMOTE_MODE says
  --env-file FILE   also read variables from FILE (default .env; a missing
                    file is fine; the real environment wins)
  --format FORMAT   table (default) or json: output of status, query and
                    ops list|get|cancel
  --verbose         log local mode's diagnostics to stderr

configuration (environment or .env file):
  ATG_REMOTE_MODE      true/false (default false): remote or local mode
  ATG_SERVICE_URL      the server's URL (remote mode)
  ATG_API_KEY          the API key (remote mode); never printed
  ATG_REQUEST_TIMEOUT  seconds per request (default 3600)
  ENVIRONMENT          dev (default), integration or production (local mode)
  NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE   (local mode)

In local mode operations run inside this process: Ctrl-C cancels them,
and "atg ops" has nothing to manage. In remote mode they run on the
server: Ctrl-C during "atg import" detaches and leaves the operation
running (follow it with "atg ops watch ID") unless --cancel-on-interrupt.

exit status:
  0    success
  1    failure: the operation failed, the query failed, or the server erred
  2    usage or configuration error, unreadable or invalid input, or a
       request the server rejected as invalid (400)
  3    authentication or authorization failed (401, 403)
  4    not found (404, e.g. an unknown operation ID)
  5    service unavailable: server or database unreachable (connection
       refused, timeout, 429, 502, 503, 504, database down, or an
       operation that failed because the database was unavailable)
  6    the operation was cancelled
  130  interrupted (Ctrl-C); a remote import or a watch detaches, leaving
       the operation running

Run "atg <command> -h" for a command's flags.
`

// runHelp implements "atg help [COMMAND]".
func runHelp(_ context.Context, e *env, _ *globals, args []string) int {
	switch len(args) {
	case 0:
		fmt.Fprint(e.stdout, mainUsage)
		return exitOK
	case 1:
		for _, c := range commands {
			if c.name == args[0] {
				fmt.Fprint(e.stdout, c.usage)
				return exitOK
			}
		}
		return usageError(e, "help", fmt.Sprintf("unknown command %q", args[0]))
	}
	return usageError(e, "help", "expected at most one command name")
}
