#!/usr/bin/env bash
# Local Neo4j Community 5.26 (LTS) for ATG tests and development.
#
#   scripts/neo4j.sh start     start (or find running) and wait until Bolt answers a query
#   scripts/neo4j.sh stop      stop the server started from this folder (idempotent)
#   scripts/neo4j.sh restart   stop, then start
#   scripts/neo4j.sh status    exit 0 if running and answering an authenticated query
#   scripts/neo4j.sh env       print the NEO4J_* exports:  eval "$(scripts/neo4j.sh env)"
#
# No Docker and no distribution archive: the Neo4j jars come from Maven Central
# (scripts/neo4j/pom.xml, resolved once with Maven and cached), and the server runs
# as `java -cp 'lib/*' org.neo4j.server.CommunityEntryPoint` with a generated
# neo4j.conf. Needs Java 17 or 21, bash, and Maven for the first download only.
# Bolt listens on 127.0.0.1 only, HTTP/HTTPS are off, usage reporting is off,
# auth is on with a fixed test password (user neo4j, see `env`).
#
# Environment (all optional):
#   ATG_NEO4J_DIR            instance folder: conf/, data/, logs/, run/neo4j.pid
#                            (default <repo>/.neo4j). Use another folder and port
#                            for a second, independent instance (fault tests).
#   ATG_NEO4J_BOLT_PORT      Bolt port on 127.0.0.1 (default: the port the instance folder
#                            was last started on, else 7687); `status`, `env` and `stop`
#                            without it use the folder's port
#   ATG_NEO4J_JARS           jar cache shared by all instances (default <repo>/.neo4j/jars)
#   ATG_NEO4J_VERSION        Neo4j version from Maven Central (default 5.26.30)
#   ATG_NEO4J_HEAP           max JVM heap (default 1g; initial heap is 512m or less)
#   ATG_NEO4J_PAGECACHE      page cache size (default 256m)
#   ATG_NEO4J_START_TIMEOUT  seconds `start` waits for Bolt to answer (default 120)
#   JAVA_HOME                Java to use (default: java on PATH)
#
# Logs: $ATG_NEO4J_DIR/logs/neo4j.log (server), debug.log (details), console.log (JVM output).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "$script_dir/.." && pwd -P)"

version="${ATG_NEO4J_VERSION:-5.26.30}"
bolt_port="${ATG_NEO4J_BOLT_PORT:-}"
heap="${ATG_NEO4J_HEAP:-1g}"
pagecache="${ATG_NEO4J_PAGECACHE:-256m}"
start_timeout="${ATG_NEO4J_START_TIMEOUT:-120}"
# Fixed test password (>= 16 chars, upper, lower, digit, symbol). It is set
# before the very first start of an instance folder; to change it, stop and
# delete "$ATG_NEO4J_DIR/data".
user="neo4j"
password='Atg-Local-Test-2026!'

mkdir -p "${ATG_NEO4J_DIR:-$repo_root/.neo4j}" "${ATG_NEO4J_JARS:-$repo_root/.neo4j/jars}"
home="$(cd "${ATG_NEO4J_DIR:-$repo_root/.neo4j}" && pwd -P)"
jars_root="$(cd "${ATG_NEO4J_JARS:-$repo_root/.neo4j/jars}" && pwd -P)"
dist="$jars_root/neo4j-$version"
lib="$dist/lib"
check_classes="$dist/check"
conf_dir="$home/conf"
logs_dir="$home/logs"
run_dir="$home/run"
pid_file="$run_dir/neo4j.pid"
# The instance folder remembers the port it was started on.
port_file="$home/bolt-port"
remembered_port=""
if [[ -f "$port_file" ]]; then
	remembered_port="$(tr -dc '0-9' <"$port_file")"
fi
bolt_port="${bolt_port:-${remembered_port:-7687}}"
bolt_uri="bolt://127.0.0.1:$bolt_port"

die() {
	echo "neo4j.sh: $*" >&2
	exit 1
}

case "$bolt_port" in
'' | *[!0-9]*) die "ATG_NEO4J_BOLT_PORT must be a port number, got '$bolt_port'" ;;
esac
case "$start_timeout" in
'' | *[!0-9]*) die "ATG_NEO4J_START_TIMEOUT must be a number of seconds, got '$start_timeout'" ;;
esac

# Sets $java and $javac (Java 17 or 21, a JDK: javac compiles scripts/neo4j/Check.java).
find_java() {
	if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
		java="$JAVA_HOME/bin/java"
	elif command -v java >/dev/null 2>&1; then
		java="$(command -v java)"
	else
		die "java not found: install a JDK 17 or 21, or set JAVA_HOME"
	fi
	if [[ -x "$(dirname "$java")/javac" ]]; then
		javac="$(dirname "$java")/javac"
	elif command -v javac >/dev/null 2>&1; then
		javac="$(command -v javac)"
	else
		die "javac not found next to $java: install a JDK (not only a JRE) 17 or 21"
	fi
	local line major
	line="$("$java" -version 2>&1 | head -n 1)"
	major="$(sed -E 's/^[^"]*"([0-9]+)(\.[0-9]+)*.*$/\1/' <<<"$line")"
	case "$major" in
	17 | 21) ;;
	'' | *[!0-9]*) die "cannot read the Java version from: $line" ;;
	*)
		if ((major < 17)); then
			die "Neo4j $version needs Java 17 or 21, found: $line"
		fi
		echo "neo4j.sh: warning: Neo4j $version supports Java 17 and 21, found: $line" >&2
		;;
	esac
}

# with_lock FILE CMD...: run CMD holding an exclusive lock on FILE (when flock exists).
with_lock() {
	local file="$1"
	shift
	if command -v flock >/dev/null 2>&1; then
		(
			flock -x 9
			"$@"
		) 9>"$file"
	else
		"$@"
	fi
}

# Resolve the jars once into $lib; later starts reuse them without Maven.
download_jars_locked() {
	if [[ -f "$dist/.complete" ]]; then
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is needed to download Neo4j $version the first time"
	echo "neo4j.sh: downloading Neo4j $version jars from Maven Central into $lib (first start only)..." >&2
	local tmp
	tmp="$(mktemp -d "$jars_root/.download.XXXXXX")"
	if ! mvn -B -q -f "$script_dir/neo4j/pom.xml" dependency:copy-dependencies \
		"-Dneo4j.version=$version" "-DoutputDirectory=$tmp/lib" >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2
		rm -rf "$tmp"
		die "Maven could not resolve org.neo4j:neo4j:$version"
	fi
	ls "$tmp/lib"/neo4j-java-driver-*.jar >/dev/null 2>&1 ||
		die "the resolved jars lack neo4j-java-driver (needed by the readiness check)"
	rm -rf "$dist"
	mkdir -p "$dist"
	mv "$tmp/lib" "$lib"
	rm -rf "$tmp"
	touch "$dist/.complete"
}

compile_check_locked() {
	if [[ -f "$check_classes/Check.class" && "$check_classes/Check.class" -nt "$script_dir/neo4j/Check.java" ]]; then
		return 0
	fi
	local tmp
	tmp="$(mktemp -d "$dist/.check.XXXXXX")"
	chmod 755 "$tmp"
	"$javac" -nowarn -cp "$lib/*" -d "$tmp" "$script_dir/neo4j/Check.java"
	rm -rf "$check_classes"
	mv "$tmp" "$check_classes"
}

prepare_dist() {
	with_lock "$jars_root/.lock" download_jars_locked
	with_lock "$jars_root/.lock" compile_check_locked
}

# check [--wait SECONDS] [--pid PID]: does Bolt answer an authenticated query?
check() {
	NEO4J_URI="$bolt_uri" NEO4J_USER="$user" NEO4J_PASSWORD="$password" \
		"$java" -Xmx64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
		-cp "$check_classes:$lib/*" Check "$@"
}

# Prints the pid of the server running from $home, if any; removes a stale pid file.
running_pid() {
	local pid cmdline
	[[ -f "$pid_file" ]] || return 1
	pid="$(cat "$pid_file" 2>/dev/null || true)"
	if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		if [[ -r "/proc/$pid/cmdline" ]]; then
			cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
			if [[ "$cmdline" == *"CommunityEntryPoint --home-dir=$home "* ]]; then
				echo "$pid"
				return 0
			fi
		else
			echo "$pid"
			return 0
		fi
	fi
	rm -f "$pid_file"
	return 1
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$bolt_port") 2>/dev/null
}

write_conf() {
	mkdir -p "$conf_dir"
	cat >"$conf_dir/neo4j.conf.tmp" <<EOF
# Generated by scripts/neo4j.sh on every start; edits are overwritten.
# Directories are relative to the home folder $home.
server.directories.data=data
server.directories.logs=logs
server.directories.run=run
server.directories.plugins=plugins
server.directories.import=import

# Network: Bolt on 127.0.0.1 only, no HTTP/HTTPS. The advertised address is what
# neo4j:// (routing) clients are sent back in the routing table.
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.bolt.enabled=true
server.bolt.listen_address=127.0.0.1:$bolt_port
server.bolt.advertised_address=127.0.0.1:$bolt_port
server.bolt.tls_level=DISABLED
server.http.enabled=false
server.https.enabled=false

# Security: auth on; no lockout after failed logins, so tests of wrong
# credentials cannot lock out the user the other tests share.
dbms.security.auth_enabled=true
dbms.security.auth_max_failed_attempts=0

# No usage reporting (no network calls).
dbms.usage_report.enabled=false

# Memory (the JVM heap is set by scripts/neo4j.sh on the java command line).
server.memory.pagecache.size=$pagecache

# Disk: no 256 MiB preallocated transaction log files, keep few of them.
db.tx_log.preallocate=false
db.tx_log.rotation.size=64M
db.tx_log.rotation.retention_policy=2 files

# Query log: only queries slower than the threshold.
db.logs.query.enabled=INFO
db.logs.query.threshold=500ms

# Faster shutdown of the Bolt server (default waits ~10 s for idle connections).
internal.server.bolt.connection_shutdown_wait_time=1s
internal.dbms.bolt.netty_server_shutdown_quiet_period=0
internal.dbms.bolt.netty_server_shutdown_timeout=2
EOF
	mv "$conf_dir/neo4j.conf.tmp" "$conf_dir/neo4j.conf"
}

# The initial password must be in data/dbms/auth.ini before the first start.
set_initial_password() {
	if [[ -d "$home/data/databases/system" || -f "$home/data/dbms/auth.ini" ]]; then
		return 0
	fi
	echo "neo4j.sh: setting the initial password of user $user" >&2
	NEO4J_HOME="$home" NEO4J_CONF="$conf_dir" "$java" -Xmx256m -XX:+UseSerialGC \
		-Djava.io.tmpdir="$run_dir/tmp" -Djna.tmpdir="$run_dir/tmp" \
		-cp "$lib/*" org.neo4j.cli.AdminTool dbms set-initial-password "$password" \
		>>"$logs_dir/admin.log" 2>&1 ||
		die "set-initial-password failed, see $logs_dir/admin.log"
}

show_failure() {
	echo "neo4j.sh: Neo4j did not come up; logs are in $logs_dir" >&2
	if [[ -s "$logs_dir/console.log" ]]; then
		echo "---- JVM output of this start ($logs_dir/console.log)" >&2
		# Only the lines after the last start marker, at most 40.
		awk '/^==== .* start$/ { n = 0 } { line[n++] = $0 } END { for (i = (n > 40 ? n - 40 : 0); i < n; i++) print line[i] }' \
			"$logs_dir/console.log" >&2
	fi
	if [[ -s "$logs_dir/neo4j.log" ]]; then
		echo "---- last lines of $logs_dir/neo4j.log" >&2
		tail -n 15 "$logs_dir/neo4j.log" >&2
	fi
	echo "---- details: $logs_dir/debug.log" >&2
}

start_locked() {
	local pid rc xms
	if pid="$(running_pid)"; then
		rc=0
		check --wait "$start_timeout" --pid "$pid" || rc=$?
		if ((rc == 0)); then
			echo "neo4j.sh: already running (pid $pid) at $bolt_uri"
			return 0
		fi
		show_failure
		if [[ -n "$remembered_port" && "$remembered_port" != "$bolt_port" ]]; then
			die "the server running from $home (pid $pid) listens on port $remembered_port, not $bolt_port; stop it first ($0 stop), or use another ATG_NEO4J_DIR for a second instance"
		fi
		die "a server is running from $home (pid $pid) but does not answer at $bolt_uri; try: $0 stop"
	fi
	if port_in_use; then
		die "port $bolt_port on 127.0.0.1 is in use by another process; set ATG_NEO4J_BOLT_PORT (and ATG_NEO4J_DIR) for another port, or stop it; or use that database: set NEO4J_URI=$bolt_uri, NEO4J_USER and NEO4J_PASSWORD to its credentials"
	fi
	prepare_dist
	mkdir -p "$logs_dir" "$run_dir/tmp"
	write_conf
	set_initial_password

	# Initial heap: 512m, or the max heap when that is smaller.
	xms="512m"
	if [[ "$heap" =~ ^([0-9]+)[mM]$ ]] && ((BASH_REMATCH[1] < 512)); then
		xms="$heap"
	fi
	local jvm_opts=(
		"-Xms$xms" "-Xmx$heap"
		-XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -XX:+ExitOnOutOfMemoryError
		-XX:+UnlockExperimentalVMOptions -XX:+TrustFinalNonStaticFields -XX:+DisableExplicitGC
		-Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true
		-Djdk.tls.ephemeralDHKeySize=2048 -Djdk.tls.rejectClientInitiatedRenegotiation=true
		--add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
		--add-opens=java.base/sun.nio.ch=ALL-UNNAMED --enable-native-access=ALL-UNNAMED
		-Dlog4j2.disable.jmx=true -Dlog4j.layout.jsonTemplate.maxStringLength=32768
		-Dfile.encoding=UTF-8 "-Djava.io.tmpdir=$run_dir/tmp" "-Djna.tmpdir=$run_dir/tmp"
	)
	echo "neo4j.sh: starting Neo4j $version at $bolt_uri (home $home)" >&2
	echo "==== $(date -u '+%Y-%m-%dT%H:%M:%SZ') start" >>"$logs_dir/console.log"
	# The lock's fd 9 is closed for the server so it does not hold the lock.
	nohup "$java" "${jvm_opts[@]}" -cp "$lib/*" org.neo4j.server.CommunityEntryPoint \
		"--home-dir=$home" "--config-dir=$conf_dir" \
		</dev/null >>"$logs_dir/console.log" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$pid_file"
	echo "$bolt_port" >"$port_file"

	rc=0
	check --wait "$start_timeout" --pid "$pid" || rc=$?
	if ((rc != 0)); then
		show_failure
		if ((rc == 3)); then
			echo "neo4j.sh: the data in $home/data has another password; stop and delete $home/data to reset it" >&2
		fi
		stop_locked >/dev/null 2>&1 || true
		die "start failed (see $logs_dir)"
	fi
	echo "neo4j.sh: Neo4j $version is running (pid $pid) at $bolt_uri; logs in $logs_dir"
}

stop_locked() {
	local pid i
	if ! pid="$(running_pid)"; then
		echo "neo4j.sh: not running (home $home)"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "neo4j.sh: pid $pid did not stop within 60 s, killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$pid_file"
	echo "neo4j.sh: stopped (pid $pid)"
}

status() {
	local pid rc=0
	if ! pid="$(running_pid)"; then
		echo "neo4j.sh: not running (home $home)"
		return 3
	fi
	if [[ ! -f "$check_classes/Check.class" ]]; then
		prepare_dist
	fi
	check --wait 0 --pid "$pid" || rc=$?
	if ((rc != 0)); then
		echo "neo4j.sh: running (pid $pid) but not answering at $bolt_uri; logs in $logs_dir"
		return 1
	fi
	echo "neo4j.sh: running (pid $pid) and answering at $bolt_uri"
}

print_env() {
	# The password has no single quote, so single quotes make it eval-safe.
	echo "export NEO4J_URI=$bolt_uri NEO4J_USER=$user NEO4J_PASSWORD='$password'"
}

java=""
javac=""
mkdir -p "$run_dir"
case "${1:-}" in
start | restart | status) find_java ;;
esac
case "${1:-}" in
start) with_lock "$run_dir/.lock" start_locked ;;
stop) with_lock "$run_dir/.lock" stop_locked ;;
restart)
	with_lock "$run_dir/.lock" stop_locked
	with_lock "$run_dir/.lock" start_locked
	;;
status) status ;;
env) print_env ;;
*)
	echo "usage: $0 start|stop|restart|status|env" >&2
	exit 2
	;;
esac
