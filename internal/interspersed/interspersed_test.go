package interspersed_test

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atgraph/atg/internal/interspersed"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		args       []string
		positional []string
		file       string
		verbose    bool
		err        string
	}{
		{name: "nothing", args: nil},
		{name: "flags only", args: []string{"--file", "k.json", "-v"}, file: "k.json", verbose: true},
		{name: "flags before", args: []string{"--file=k.json", "ID"}, positional: []string{"ID"}, file: "k.json"},
		{name: "flags after", args: []string{"ID", "--file", "k.json"}, positional: []string{"ID"}, file: "k.json"},
		{name: "flags between", args: []string{"a", "-v", "b", "--file", "f", "c"}, positional: []string{"a", "b", "c"}, file: "f", verbose: true},
		{name: "double dash ends flags", args: []string{"a", "--", "-v", "--file", "f"}, positional: []string{"a", "-v", "--file", "f"}},
		{name: "flags then double dash", args: []string{"-v", "--", "-x"}, positional: []string{"-x"}, verbose: true},
		{name: "lone dash is positional", args: []string{"-", "-v"}, positional: []string{"-"}, verbose: true},
		{name: "unknown flag after positional", args: []string{"ID", "--nope"}, err: "flag provided but not defined: -nope"},
		{name: "missing value", args: []string{"ID", "--file"}, err: "flag needs an argument: -file"},
		{name: "help", args: []string{"ID", "-h"}, err: flag.ErrHelp.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			file := fs.String("file", "", "")
			verbose := fs.Bool("v", false, "")
			positional, err := interspersed.Parse(fs, tc.args)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if tc.err == flag.ErrHelp.Error() && !errors.Is(err, flag.ErrHelp) {
					t.Errorf("err = %v, want flag.ErrHelp", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.positional, positional); diff != "" {
				t.Errorf("positional (-want +got):\n%s", diff)
			}
			if *file != tc.file || *verbose != tc.verbose {
				t.Errorf("file=%q verbose=%v, want %q %v", *file, *verbose, tc.file, tc.verbose)
			}
		})
	}
}
