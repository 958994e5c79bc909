#!/usr/bin/env bash
# keep-fuzz-corpus.sh: copy the inputs `go test -fuzz` found interesting
# (kept in the Go build cache) into each package's testdata/fuzz/<Target>/,
# so the corpus is versioned and every `go test` run replays it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$(go env GOCACHE)/fuzz"
cd "$repo"
for pkg in $(go list ./...); do
	dir="$(go list -f '{{.Dir}}' "$pkg")"
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		src="$cache/$pkg/$target"
		[[ -d "$src" ]] || continue
		mkdir -p "$dir/testdata/fuzz/$target"
		cp -n "$src"/* "$dir/testdata/fuzz/$target/" 2>/dev/null || true
		echo "$pkg $target: $(ls "$dir/testdata/fuzz/$target" | wc -l) corpus entries"
	done
done
