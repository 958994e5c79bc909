package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/atgraph/atg"
)

// runVersion implements "atg-server version".
func runVersion(_ context.Context, e *env, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "atg-server version: unexpected argument %q\n", args[0])
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "atg-server %s (%s, %s/%s)\n", atg.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
