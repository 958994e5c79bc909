#!/usr/bin/env bash
# with-neo4j.sh CMD [ARGS...]: run CMD with a Neo4j to talk to.
#
# If NEO4J_URI is already set, CMD runs against that database unchanged.
# Otherwise the local Neo4j Community of scripts/neo4j.sh is started (if it is
# not running yet), its NEO4J_* variables are exported, and the instance is
# stopped again afterwards if this script was the one that started it.
# Either way ATG_REQUIRE_NEO4J=1 is set, so database tests fail instead of
# skipping.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Database tests fail instead of skipping when they cannot reach Neo4j.
export ATG_REQUIRE_NEO4J=1

if [[ -n "${NEO4J_URI:-}" ]]; then
	exec "$@"
fi

started=0
if ! "$here/neo4j.sh" status >/dev/null 2>&1; then
	"$here/neo4j.sh" start
	started=1
fi
cleanup() {
	if [[ "$started" == 1 ]]; then
		"$here/neo4j.sh" stop || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

eval "$("$here/neo4j.sh" env)"
"$@"
