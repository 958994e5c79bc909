// Command atg-server is the ATG server's command-line entry point.
//
// Usage:
//
//	atg-server <command> [arguments]
//
// Commands:
//
//	serve    serve the HTTP API (the default command)
//	check    validate the configuration and the Neo4j connection
//	keys     manage API keys in the keys file (create, list, revoke, rotate)
//	version  print the version
//
// Run "atg-server <command> -h" for a command's flags. Exit status: 0 on
// success, 1 when the command failed, 2 on a usage error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad command line or configuration
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command sees of its process; tests replace its parts.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// environ, when not nil, replaces the process environment for
	// configuration loading (tests).
	environ map[string]string
	// hup delivers SIGHUP (reload keys) to serve; nil means the process's.
	hup <-chan os.Signal
}

// command is a subcommand of atg-server. To add one, write its run function
// in its own file and list it in commands.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{name: "serve", summary: "serve the HTTP API (the default command)", run: runServe},
	{name: "check", summary: "validate the configuration and the Neo4j connection", run: runCheck},
	{name: "keys", summary: "manage API keys in the keys file (create, list, revoke, rotate)", run: runKeys},
	{name: "version", summary: "print the version", run: runVersion},
}

// run executes the command line args (without the program name) and
// returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, &env{stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now}, args)
}

func runEnv(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "-help" && args[0] != "--help" {
		return runServe(ctx, e, args) // serve is the default command
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "atg-server: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: atg-server <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "atg-server <command> -h" for a command's flags.`)
}
