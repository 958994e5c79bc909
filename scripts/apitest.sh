#!/usr/bin/env bash
# apitest.sh: schemathesis (from PyPI) against a running atg-server's
# /openapi.json with a valid key. Builds the server, starts it on a free port
# with a fresh keys file (rate limits off, so generated traffic is not 429'd),
# runs schemathesis, stops the server. Needs NEO4J_* in the environment
# (scripts/with-neo4j.sh provides them: `make apitest`).
#
#   APITEST_MAX_EXAMPLES  examples per operation and phase (default 150)
# Checks: all of them, as configured in scripts/apitest.toml.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.apitest-venv"
work="$(mktemp -d)"
server_pid=""
cleanup() {
	if [[ -n "$server_pid" ]]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

if [[ ! -x "$venv/bin/schemathesis" ]]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q "schemathesis==4.32.5"
fi

cd "$repo"
go build -o "$work/atg-server" ./cmd/atg-server
export ATG_KEYS_FILE="$work/keys.json"
key="$("$work/atg-server" keys create --env dev --client-id apitest --scopes read,write,admin 2>/dev/null)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export ATG_SERVER_HOST=127.0.0.1 ATG_SERVER_PORT="$port" ENVIRONMENT=dev ATG_RATE_LIMIT_RPM=0 \
	ATG_AUTH_FAILURES_PER_MINUTE=0 ATG_AUDIT_LOG="$work/audit.log" ATG_MAX_OPS_PER_KEY=0
"$work/atg-server" serve --env-file "" --log-level error >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:$port/livez" >/dev/null 2>&1 && break
	sleep 0.1
done

status=0
"$venv/bin/schemathesis" --config-file "$repo/scripts/apitest.toml" run "http://127.0.0.1:$port/openapi.json" \
	--header "Authorization: Bearer $key" \
	--max-examples "${APITEST_MAX_EXAMPLES:-150}" \
	--request-timeout 30 \
	--report ndjson --report-dir "$work/report" \
	--seed 1 || status=$?

# The server's own count of 5xx answers (its access log is not kept here).
fivexx="$(curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^atg_http_requests_total\{.*code="5[0-9][0-9]"' || true)"
if [[ -n "$fivexx" ]]; then
	echo "apitest: the server answered 5xx:" >&2
	echo "$fivexx" >&2
	status=1
fi
exit "$status"
