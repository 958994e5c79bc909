package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update rewrites the golden files of testdata instead of comparing.
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestHelpGolden checks the help of atg-server and of keys create against
// testdata (go test -run TestHelpGolden -args -update rewrites them).
func TestHelpGolden(t *testing.T) {
	t.Parallel()
	for file, args := range map[string][]string{
		"help.golden":             {"help"},
		"keys-create-help.golden": {"keys", "create", "-h"},
		"keys-help.golden":        {"help", "keys"},
	} {
		code, stdout, stderr := newCLI(t, nil).run(args...)
		if code != exitOK || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
			continue
		}
		path := filepath.Join("testdata", file)
		if *update {
			if err := os.WriteFile(path, []byte(stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), stdout); diff != "" {
			t.Errorf("%v differs from %s (-want +got):\n%s", args, path, diff)
		}
	}
}
