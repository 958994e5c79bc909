// Command atg-server is the ATG server's command-line entry point.
//
// Usage:
//
//	atg-server [command] [flags]
//
// Commands:
//
//	serve       serve the HTTP API (the default command)
//	check       validate the configuration and the Neo4j connection
//	keys        manage API keys in the keys file (create, list, revoke, rotate)
//	version     print the version (also --version)
//	completion  print a shell completion script (bash, zsh, fish, powershell)
//	help        show the help of a command ("atg-server help keys create")
//
// Run "atg-server <command> -h" for a command's flags. Exit status: 0 on
// success, 1 when the command failed, 2 on a usage error.
//
// The command line is built on github.com/spf13/cobra: flags may come
// before, between and after positional arguments, "--" ends them.
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
	"time"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg"
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

// run executes the command line args (without the program name) and
// returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(ctx, &env{stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now}, args)
}

// exitStatus is the error a command returns to end the process with that
// status after it has reported the problem itself.
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

// versionLine is what "atg-server version" and --version print.
func versionLine() string {
	return fmt.Sprintf("atg-server %s (%s, %s/%s)\n", atg.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// newRootCommand returns the atg-server command tree bound to ctx and e.
func newRootCommand(ctx context.Context, e *env) *cobra.Command {
	serve := newServeCommand(ctx, e)
	root := &cobra.Command{
		Use:   "atg-server [flags]",
		Short: "The ATG server: serves the HTTP API over the shared Neo4j graph",
		Long: `The ATG server: serves the HTTP API over the shared Neo4j graph, and
manages its API keys. With no command it serves (see "atg-server serve -h").`,
		Version:       atg.Version,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          serve.RunE, // serve is the default command
	}
	root.SetVersionTemplate(versionLine())
	// The default command takes serve's flags.
	root.Flags().AddFlagSet(serve.Flags())
	root.AddCommand(serve, newCheckCommand(ctx, e), newKeysCommand(ctx, e), newVersionCommand(e))
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{cmd, err} })
	// The Use lines spell out their flags.
	// cobra's completion and help commands, summarised in the style of the
	// others.
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "completion":
			c.Short = "print a shell completion script: completion bash|zsh|fish|powershell"
		case "help":
			c.Short = "show the help of a command: help keys create"
		}
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}

// usageError is a bad command line: reported with a pointer to the help,
// exit status 2.
type usageError struct {
	cmd *cobra.Command
	err error
}

// Error implements error.
func (u usageError) Error() string { return u.err.Error() }

// Unwrap returns the problem.
func (u usageError) Unwrap() error { return u.err }

// runEnv executes args with e and returns the exit status.
func runEnv(ctx context.Context, e *env, args []string) int {
	root := newRootCommand(ctx, e)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	// A usage error cobra found: unknown command or flag, bad value or
	// number of arguments.
	var ue usageError
	if errors.As(err, &ue) {
		cmd = ue.cmd
	}
	msg := err.Error()
	if cmd == nil || cmd == root && strings.HasPrefix(msg, "unknown command") {
		cmd = root
	}
	fmt.Fprintf(e.stderr, "%s: %s%s\n", cmd.CommandPath(), msg, singleDashHint(cmd, args))
	fmt.Fprintf(e.stderr, "Run %q for usage.\n", cmd.CommandPath()+" -h")
	return exitUsage
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

// noArgs refuses positional arguments with the message the commands have
// always given.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

// newVersionCommand returns "atg-server version".
func newVersionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version (also --version)",
		Long:  "Prints the version of atg-server, the Go version and the platform.",
		Args:  noArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprint(e.stdout, versionLine())
		},
	}
}
