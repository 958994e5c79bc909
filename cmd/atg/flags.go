package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atgraph/atg"
)

// Output formats of --format.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatJSONL = "jsonl"
	formatCSV   = "csv"
	formatTSV   = "tsv"
)

// globals are the flags every command accepts, before or after its name.
type globals struct {
	remote, local, verbose bool
	envFile                string
	// envFileSet is whether --env-file was given: then the file must exist.
	envFileSet bool
	profile    string
	// secret is the API key once loaded, so that no message can reveal it.
	secret string
	// scanSource, when set, is what local-mode scans read ("atg scan").
	scanSource atg.SourceFactory
}

// bind declares the global flags on root, for every command.
func (g *globals) bind(root *cobra.Command) {
	f := root.PersistentFlags()
	f.BoolVar(&g.remote, "remote", false, "remote mode, whatever ATG_REMOTE_MODE says")
	f.BoolVar(&g.local, "local", false, "local mode, whatever ATG_REMOTE_MODE says")
	f.StringVar(&g.profile, "profile", "", "remote mode with the URL and key of this profile (default $ATG_PROFILE)")
	f.StringVar(&g.envFile, "env-file", ".env", "also read variables from `FILE` (the real environment wins); a file named here must exist")
	f.BoolVar(&g.verbose, "verbose", false, "log local mode's diagnostics to stderr")
}

// output is the --format (-o) and --no-headers flags of a command that
// prints results.
type output struct {
	format    string
	noHeaders bool
	allowed   []string
}

// tableOrJSON are the formats of commands that print one document.
var tableOrJSON = []string{formatTable, formatJSON}

// allFormats are the formats of commands that print rows.
var allFormats = []string{formatTable, formatJSON, formatJSONL, formatCSV, formatTSV}

// addOutputFlags declares --format (-o) on cmd, taking the allowed formats,
// and --no-headers when rows can be printed without them.
func addOutputFlags(cmd *cobra.Command, allowed []string) *output {
	o := &output{format: formatTable, allowed: allowed}
	cmd.Flags().StringVarP(&o.format, "format", "o", formatTable, "output `format`: "+strings.Join(allowed, ", "))
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(allowed, cobra.ShellCompDirectiveNoFileComp))
	if len(allowed) > 2 {
		cmd.Flags().BoolVar(&o.noHeaders, "no-headers", false, "table, csv, tsv: leave out the header line and the footer")
	}
	return o
}

// check validates the format for command cmd; ok is false when the
// command must exit with code.
func (o *output) check(e *env, cmd string) (code int, ok bool) {
	if !slices.Contains(o.allowed, o.format) {
		return usageError(e, cmd, fmt.Sprintf("--format %q: want %s", o.format, orList(o.allowed))), false
	}
	return exitOK, true
}

// orList writes "a, b or c".
func orList(ss []string) string {
	if len(ss) < 2 {
		return strings.Join(ss, "")
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " or " + ss[len(ss)-1]
}
