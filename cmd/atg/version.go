package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/atgraph/atg"
)

// versionUsage is the help of "atg version".
const versionUsage = `usage: atg version

Prints the version of atg.
`

// runVersion implements "atg version".
func runVersion(_ context.Context, e *env, g *globals, args []string) int {
	fs := g.flagSet(e, "version", false)
	pos, code, ok := parseCommand(e, g, fs, "version", versionUsage, args)
	if !ok {
		return code
	}
	if code, ok := wantArgs(e, "version", pos, 0, ""); !ok {
		return code
	}
	fmt.Fprintf(e.stdout, "atg %s (%s, %s/%s)\n", atg.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
