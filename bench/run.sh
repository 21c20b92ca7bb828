#!/usr/bin/env bash
# Side-by-side benchmark, in one run: the Docker engine directly, mtswarm in front of it, and nginx in front of
# the same engine (a keep-alive reverse proxy: what a plain forwarding path costs at best).
#
#   bench/run.sh            full run (about 5 minutes on 2 cores)
#   bench/run.sh --quick    smoke run: wrk -d 1s, one round, fewer `docker run`s, a 20 MB log
#
# Sides (every one reached by the client over loopback TCP, since wrk speaks TCP only):
#   direct    the engine itself, tcp://$BENCH_ENGINE_TCP
#   mtswarm   vanilla mtswarm (SWARM_MULTI_TENANT=false, one engine) at its default log level (info: one
#             access log line per request)
#   nginx     Debian's nginx (installed with apt-get if missing), configured by this script in its own prefix:
#             one worker, `proxy_http_version 1.1`, upstream keepalive, `proxy_buffering off`, access log on
#             (nginx's default, as mtswarm logs each request too)
#   tenant    mtswarm with multi-tenancy on and a token file (tenant "bench"): authentication, scoping, the
#             answer rewritten
# mtswarm, the tenant's mtswarm and nginx all reach the engine over its unix socket ($BENCH_GATEWAY_ENGINE), as
# mtswarm runs by default; direct is the engine's TCP listener.
#
# Measures, sides alternated round by round:
#   1. for GET /containers/{id}/json (a tenant's container, inspected by every side), GET /containers/json?all=1,
#      the same list filtered to the tenant's label (the tenant side asks for its plain list, which mtswarm
#      filters so), and GET /_ping:
#      median and p99 latency at 1 connection (wrk -c 1 --latency), requests/s at $BENCH_CONNECTIONS (8)
#      connections, and the proxy's CPU time per request over that run (utime+stime from /proc/PID/stat, of
#      every process of the proxy, divided by the requests wrk made), with the engine's alongside;
#   2. a logs stream: GET /containers/{id}/logs?stdout=1 of a container that wrote $BENCH_LOG_MB MB of 100-byte
#      lines, read with curl into /dev/null: MB/s and the proxy's CPU ms per MB;
#   3. wall time of `docker run --rm busybox:latest true`, direct and through mtswarm, runs interleaved.
# Prints the table and the goals of issue 15 and writes them, with the details, to bench/results.md (the part
# above the line "<!-- end of run -->"; what follows it, the profile and the history, is kept).
#
# Needs the test bed's default engine (scripts/testbed.sh up): tcp://127.0.0.1:23750 and
# unix:///var/run/docker.sock are the same engine. Everything the script creates on the engine carries the label
# mtswarm-bench.run=<run id> (the tenant's container also mtswarm.tenant=bench), and only those are removed at
# the end; the proxies it starts are stopped by their pids.
#
# Environment (defaults in brackets):
#   BENCH_DURATION [2s]  BENCH_CONNECTIONS [8]  BENCH_THREADS [2]  BENCH_ROUNDS [3]   wrk settings (median shown)
#   BENCH_CONTAINERS [100]  BENCH_RUNS [10]  BENCH_LOG_MB [200]  BENCH_LOG_ROUNDS [1]
#   BENCH_ENGINE_TCP [127.0.0.1:23750]  the engine, for wrk and the direct docker CLI
#   BENCH_GATEWAY_ENGINE [unix:///var/run/docker.sock]  the same engine, for mtswarm and nginx
#   BENCH_IMAGE [busybox:latest]  BENCH_DOCKER [/usr/local/bin/docker]  BENCH_NO_BUILD [unset]
#   BENCH_MTSWARM_THREADS [1]: mtswarm's serving threads (--threads), one as nginx runs one worker
#   BENCH_MTSWARM_ENV [unset]: extra VAR=VALUE words for every mtswarm (e.g. SWARM_THREADS=2)
#   BENCH_RESULTS [bench/results.md]  BENCH_KEEP_WORK [0]: keep the work dir (wrk output, logs, nginx.conf)
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release/mtswarm

QUICK=0
for arg in "$@"; do
	case $arg in
	--quick) QUICK=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		printf 'bench: unknown argument %q (try --help)\n' "$arg" >&2
		exit 2
		;;
	esac
done

if ((QUICK)); then
	DURATION=${BENCH_DURATION:-1s} ROUNDS=${BENCH_ROUNDS:-1} RUNS=${BENCH_RUNS:-3}
	LOG_MB=${BENCH_LOG_MB:-20} LOG_ROUNDS=${BENCH_LOG_ROUNDS:-1}
else
	# Three short rounds a side rather than two long ones: on a shared machine the background load drifts,
	# finer alternation spreads it over the sides, and the median of three drops one disturbed round.
	DURATION=${BENCH_DURATION:-2s} ROUNDS=${BENCH_ROUNDS:-3} RUNS=${BENCH_RUNS:-10}
	LOG_MB=${BENCH_LOG_MB:-200} LOG_ROUNDS=${BENCH_LOG_ROUNDS:-1}
fi
CONNECTIONS=${BENCH_CONNECTIONS:-8}
THREADS=${BENCH_THREADS:-2}
NCONTAINERS=${BENCH_CONTAINERS:-100}
ENGINE_TCP=${BENCH_ENGINE_TCP:-127.0.0.1:23750}
GATEWAY_ENGINE=${BENCH_GATEWAY_ENGINE:-unix:///var/run/docker.sock}
IMAGE=${BENCH_IMAGE:-busybox:latest}
DOCKER=${BENCH_DOCKER:-/usr/local/bin/docker}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results.md}
# The same work as nginx's one worker: one serving thread (on 2 cores shared with wrk and dockerd, a second one
# costs more CPU per request than it gains; see bench/results.md).
read -r -a MTSWARM_ENV <<<"SWARM_THREADS=${BENCH_MTSWARM_THREADS:-1} ${BENCH_MTSWARM_ENV:-}"
API=/v1.41
RUN_ID=$(date +%s)-$$
LABELS=(--label mtswarm-bench=1 --label "mtswarm-bench.run=$RUN_ID")
case $GATEWAY_ENGINE in
unix://*) ENGINE_SOCK=${GATEWAY_ENGINE#unix://} ;;
*)
	printf 'bench: BENCH_GATEWAY_ENGINE must be a unix:// socket (nginx and mtswarm reach the engine alike)\n' >&2
	exit 2
	;;
esac

# The caller's client settings must not leak into the docker CLI calls: every call says -H and --config.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION DOCKER_CUSTOM_HEADERS
export DOCKER_CLI_HINTS=false

log() { printf 'bench: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------------------------------------
# Cleanup: proxies we started (by pid), containers we created (by run label), the work dir.

WORK=$(mktemp -d /tmp/mtswarm-bench.XXXXXX)
KEEP_WORK=${BENCH_KEEP_WORK:-0}
cleanup() {
	local rc=$? pid name ids
	trap - EXIT INT TERM
	if [ -s "$WORK/gateways" ]; then
		while read -r name pid; do
			if kill -0 "$pid" 2>/dev/null; then
				kill -TERM "$pid" 2>/dev/null || true
				for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done <"$WORK/gateways"
	fi
	ids=$(engine_docker ps -aq --filter "label=mtswarm-bench.run=$RUN_ID" 2>/dev/null) || true
	if [ -n "$ids" ]; then
		log "removing $(wc -w <<<"$ids") benchmark containers"
		# shellcheck disable=SC2086 # ids are whitespace-separated container ids
		engine_docker rm -f $ids >/dev/null 2>&1 || log "could not remove some containers labelled mtswarm-bench.run=$RUN_ID"
	fi
	rm -f "$WORK/mtswarm"
	if ((rc != 0)) && [ -e "$WORK/gateways" ]; then
		log "failed (exit $rc); logs and wrk output kept in $WORK"
	elif ((rc == 0 && KEEP_WORK)); then
		log "work files kept in $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------------
# Preconditions

engine_docker() { "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$ENGINE_TCP" "$@"; }
mkdir -p "$WORK/cfg-engine"
echo '{}' >"$WORK/cfg-engine/config.json"

apt_install() { # package: Debian's, when its command is missing
	log "$1 is missing: installing Debian's $1"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$1" >"$WORK/apt-$1.log" 2>&1 ||
		die "could not install $1 (apt-get install -y --no-install-recommends $1); see $WORK/apt-$1.log"
}
[ -x "$DOCKER" ] || die "no docker CLI at $DOCKER (set BENCH_DOCKER)"
command -v wrk >/dev/null || apt_install wrk
# Debian's package does not start its service here (no init); if it does elsewhere, ours is another process.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in curl awk python3; do command -v "$tool" >/dev/null || die "$tool is missing"; done
if [ "$(curl -s -m 5 "http://$ENGINE_TCP/_ping" || true)" != OK ]; then
	die "no Docker engine answers on tcp://$ENGINE_TCP; start the test bed first: scripts/testbed.sh up"
fi
[ -S "$ENGINE_SOCK" ] || die "no engine socket at $ENGINE_SOCK"
ENGINE_VERSION=$(engine_docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') ||
	die "docker version against tcp://$ENGINE_TCP failed"
engine_docker image inspect "$IMAGE" >/dev/null 2>&1 ||
	die "the engine has no image $IMAGE; scripts/testbed.sh up imports it"

# Build mtswarm when the binary is missing or older than its sources.
if [ -z "${BENCH_NO_BUILD:-}" ]; then
	if [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN" -print -quit)" ]; then
		log "building mtswarm (cargo build --release; may wait for the build lock)"
		(cd "$ROOT" && cargo build --release) >"$WORK/build.log" 2>&1 ||
			die "cargo build --release failed (see $WORK/build.log: $(grep -m1 '^error' "$WORK/build.log" || true));" \
				"BENCH_NO_BUILD=1 benchmarks the binary that is there"
	fi
fi
[ -x "$BIN" ] || die "no mtswarm binary at $BIN"
# Others build in the same checkout: run a copy, so that every gateway of this run is the same binary.
BIN_BUILT=$(date -u -r "$BIN" '+%F %T UTC')
cp "$BIN" "$WORK/mtswarm"
BIN=$WORK/mtswarm

# ---------------------------------------------------------------------------------------------------------
# Proxies

# start_gateway NAME [VAR=VALUE]... [-- ARG...]
# Starts `mtswarm manage -H tcp://127.0.0.1:0 ARG... $GATEWAY_ENGINE` with the given environment, waits for
# its "listening on" line and prints its address HOST:PORT. Logs go to $WORK/NAME.log; the pid is recorded
# in $WORK/gateways (cleanup stops it) and $WORK/NAME.pid.
start_gateway() {
	local name=$1 envs=("${MTSWARM_ENV[@]}") args=() pid addr deadline
	shift
	while (($#)); do
		if [ "$1" = -- ]; then
			shift
			args=("$@")
			break
		fi
		envs+=("$1")
		shift
	done
	(cd "$WORK" && exec env "${envs[@]}" "$BIN" manage -H tcp://127.0.0.1:0 "${args[@]}" "$GATEWAY_ENGINE") \
		</dev/null >"$WORK/$name.out" 2>"$WORK/$name.log" &
	pid=$!
	echo "$name $pid" >>"$WORK/gateways"
	echo "$pid" >"$WORK/$name.pid"
	deadline=$((SECONDS + 30))
	until addr=$(sed -n 's|^mtswarm: listening on tcp://||p' "$WORK/$name.out" | head -n1) && [ -n "$addr" ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$WORK/$name.log" >&2 || true
			die "mtswarm ($name) exited during start-up; log: $WORK/$name.log"
		fi
		((SECONDS < deadline)) || die "mtswarm ($name) did not say 'listening on' within 30s; log: $WORK/$name.log"
		sleep 0.05
	done
	echo "$addr"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_nginx: a keep-alive reverse proxy to the engine's unix socket, in its own prefix under $WORK/nginx
# (conf, pid, logs, temp dirs), master and one worker. Prints its address.
start_nginx() {
	local dir=$WORK/nginx port pid deadline
	mkdir -p "$dir/logs" "$dir/tmp"
	port=$(free_port)
	cat >"$dir/nginx.conf" <<EOF
# Written by bench/run.sh; not for production.
daemon off;
master_process on;
worker_processes 1;
# The engine's socket is root's (and the docker group's).
user root;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    upstream engine {
        server unix:$ENGINE_SOCK;
        keepalive 64;
        keepalive_requests 100000;
    }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 0;
        location / {
            proxy_pass http://engine;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host api.moby.localhost;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
        }
    }
}
EOF
	"$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" >"$WORK/nginx-t.log" 2>&1 ||
		die "nginx -t refused the configuration: $(cat "$WORK/nginx-t.log")"
	"$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" </dev/null >"$WORK/nginx.out" 2>&1 &
	pid=$!
	echo "nginx $pid" >>"$WORK/gateways"
	echo "$pid" >"$WORK/nginx.pid"
	deadline=$((SECONDS + 10))
	until [ "$(curl -s -m 2 "http://127.0.0.1:$port/_ping" || true)" = OK ]; do
		kill -0 "$pid" 2>/dev/null || die "nginx exited during start-up: $(tail -n5 "$WORK/nginx.out" "$dir/logs/error.log")"
		((SECONDS < deadline)) || die "nginx did not answer /_ping within 10s: $(tail -n5 "$dir/logs/error.log")"
		sleep 0.05
	done
	echo "127.0.0.1:$port"
}

# A side is one way of reaching the engine: an address, a label, the extra HTTP headers its clients send (HDRS,
# one "Name: value" a line, for wrk and curl, and written to the side's docker config.json as HttpHeaders), and
# the pid of the proxy whose CPU time is reported (empty for the engine itself; its children count too).
declare -A ADDR LABEL HDRS PID
# add_side NAME LABEL ADDR PIDFILE [HEADER]...
add_side() {
	local name=$1 headers=("${@:5}") h v json=
	ADDR[$name]=$3 LABEL[$name]=$2 PID[$name]=
	[ -z "$4" ] || PID[$name]=$(cat "$4")
	HDRS[$name]=$(printf '%s\n' "${headers[@]}")
	mkdir -p "$WORK/cfg-$name"
	for h in "${headers[@]}"; do
		v=${h#*:}
		json+=${json:+,}$(printf '"%s": "%s"' "${h%%:*}" "${v# }")
	done
	printf '{"HttpHeaders": {%s}}\n' "$json" >"$WORK/cfg-$name/config.json"
}
side_docker() {
	local side=$1
	shift
	"$DOCKER" --config "$WORK/cfg-$side" -H "tcp://${ADDR[$side]}" "$@"
}
side_headers() { # as curl/wrk arguments
	local h
	while IFS= read -r h; do [ -z "$h" ] || printf -- '-H\n%s\n' "$h"; done <<<"${HDRS[$1]}"
}
# CPU time (user+system, in clock ticks) of process $1 and its children (a pid; empty: prints nothing).
cpu_ticks() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 0
	local p t=0 st
	for p in "$1" $(cat "/proc/$1/task/"*/children 2>/dev/null); do
		# A child may end between the listing and the read.
		st=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + $(sed 's/.*) //' <<<"$st" | awk '{print $12 + $13}')))
	done
	echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)
# The engine's dockerd, for its CPU time per request (empty if ss cannot tell).
ENGINE_PID=$(ss -Hltnp "sport = :${ENGINE_TCP##*:}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || true

log "starting mtswarm (target/release/mtswarm, built $BIN_BUILT) and nginx ($("$NGINX" -v 2>&1 | sed 's/.*: //'))"
GW_PLAIN=$(start_gateway mtswarm SWARM_MULTI_TENANT=false)
TOKEN=$(cd "$WORK" && "$BIN" tokens add --tenant bench --file "$WORK/tokens.json" 2>"$WORK/tokens.err") ||
	die "mtswarm tokens add failed: $(cat "$WORK/tokens.err")"
GW_TENANT=$(start_gateway tenant SWARM_TOKENS_FILE="$WORK/tokens.json")
NGINX_ADDR=$(start_nginx)

add_side direct "direct" "$ENGINE_TCP" ""
add_side mtswarm "mtswarm" "$GW_PLAIN" "$WORK/mtswarm.pid"
add_side nginx "nginx" "$NGINX_ADDR" "$WORK/nginx.pid"
add_side tenant "mtswarm, tenant" "$GW_TENANT" "$WORK/tenant.pid" "X-Auth-Token: $TOKEN" "X-Auth-TenantId: bench"
PROXIES=(mtswarm nginx tenant)

# ---------------------------------------------------------------------------------------------------------
# Results: RES[key,metric,side]; DETAILS collects lines for the markdown details.

declare -A RES
DETAILS=()
detail() { DETAILS+=("$*"); }
mean() { awk '{s += $1; n++} END {if (n) printf "%.6g\n", s / n}'; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else if (NR) printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_BEFORE%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
	log "WARNING: load average $LOAD_BEFORE on $(nproc) CPUs before the run: the numbers will be noisy"
fi

log "creating $NCONTAINERS containers labelled mtswarm-bench.run=$RUN_ID, and one of tenant bench"
seq "$NCONTAINERS" | xargs -P 8 -I{} "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$ENGINE_TCP" \
	create -q "${LABELS[@]}" --name "mtswarm-bench-$RUN_ID-{}" "$IMAGE" true >"$WORK/created" 2>"$WORK/create.err" ||
	die "docker create failed: $(head -n3 "$WORK/create.err")"
TCID=$(side_docker tenant create -q "${LABELS[@]}" --name "bench-$RUN_ID" "$IMAGE" true 2>"$WORK/create.err") ||
	die "docker create through the tenant's mtswarm failed: $(head -n3 "$WORK/create.err")"
TOTAL_CONTAINERS=$(engine_docker ps -aq | wc -l)

# ---------------------------------------------------------------------------------------------------------
# 1. Requests: latency at one connection, rate and CPU at CONNECTIONS

TENANT_FILTER=$(python3 -c 'import json, urllib.parse; print(urllib.parse.quote(json.dumps({"label": ["mtswarm.tenant=bench"]})))')
METRICS=(inspect list tlist ping)
declare -A M_NAME=(
	[inspect]="GET /containers/{id}/json"
	[list]="GET /containers/json?all=1 ($TOTAL_CONTAINERS containers)"
	[tlist]="GET /containers/json?all=1 of one tenant (1 of $TOTAL_CONTAINERS)"
	[ping]="GET /_ping"
)
declare -A M_SIDES=([inspect]="direct mtswarm nginx tenant" [list]="direct mtswarm nginx" [tlist]="direct mtswarm nginx tenant" [ping]="direct mtswarm nginx")
path_for() { # metric side
	case $1 in
	inspect) echo "$API/containers/$TCID/json" ;;
	list) echo "$API/containers/json?all=1" ;;
	tlist) if [ "$2" = tenant ]; then echo "$API/containers/json?all=1"; else echo "$API/containers/json?all=1&filters=$TENANT_FILTER"; fi ;;
	ping) echo "/_ping" ;;
	esac
}
rate_check() { # metric side: the request must answer 200 before it is measured
	local out hdr=() path
	path=$(path_for "$1" "$2")
	mapfile -t hdr < <(side_headers "$2")
	out=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "${hdr[@]}" "http://${ADDR[$2]}$path") ||
		die "curl to ${LABEL[$2]} $path failed"
	[ "${out%% *}" = 200 ] || die "${LABEL[$2]}: GET $path answered ${out%% *}, not 200"
	detail "- $1, ${LABEL[$2]}: GET $path -> 200, ${out#* } bytes"
}
# µs from wrk's "101.00us" / "1.20ms" / "2.00s".
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1e6; else print n }'; }

WRK_BAD=0 WRK_N=0
# run_wrk METRIC SIDE CONNECTIONS DURATION [warmup]: one wrk run. At one connection it appends the median and
# p99 latency (µs) to $WORK/lat-METRIC-SIDE; at more, the requests/s to $WORK/rps-... and the proxy's and the
# engine's CPU µs per request to $WORK/cpu-...
run_wrk() {
	local metric=$1 side=$2 conns=$3 dur=$4 warm=${5:-} out path rps reqs non2xx errs g0 g1 e0 e1 threads hdr=()
	path=$(path_for "$metric" "$side")
	out=$WORK/wrk-$metric-$side-c$conns-${warm:-run}$((++WRK_N)).txt
	threads=$THREADS
	((conns >= threads)) || threads=$conns
	mapfile -t hdr < <(side_headers "$side")
	g0=$(cpu_ticks "${PID[$side]}") e0=$(cpu_ticks "$ENGINE_PID")
	wrk --latency -t "$threads" -c "$conns" -d "$dur" "${hdr[@]}" "http://${ADDR[$side]}$path" >"$out" 2>&1 ||
		die "wrk against ${LABEL[$side]} failed: $(tail -n3 "$out")"
	g1=$(cpu_ticks "${PID[$side]}") e1=$(cpu_ticks "$ENGINE_PID")
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	reqs=$(awk '/requests in/ {print $1}' "$out")
	if [ -z "$rps" ] || [ -z "$reqs" ]; then die "no Requests/sec in wrk output: $out"; fi
	non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
	errs=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$out")
	if [ -n "$non2xx" ] || [ -n "$errs" ]; then
		log "WARNING: ${LABEL[$side]} $path: ${non2xx:+$non2xx non-2xx responses }${errs:+socket errors: $errs}"
		detail "- WARNING ${LABEL[$side]} $metric: ${non2xx:+$non2xx non-2xx responses; }${errs:+socket errors: $errs}"
		WRK_BAD=1
	fi
	[ -z "$warm" ] || return 0
	if ((conns == 1)); then
		echo "$(to_us "$(awk '$1 == "50%" {print $2}' "$out")") $(to_us "$(awk '$1 == "99%" {print $2}' "$out")")" \
			>>"$WORK/lat-$metric-$side"
		return 0
	fi
	echo "$rps" >>"$WORK/rps-$metric-$side"
	((reqs > 0)) || return 0
	awk -v g="${g1:-0}-${g0:-0}" -v e="${e1:-0}-${e0:-0}" -v hz="$CLK_TCK" -v n="$reqs" '
		function d(x,  p) { split(x, p, "-"); return p[1] - p[2] }
		BEGIN { printf "%.1f %.1f\n", d(g) / hz * 1e6 / n, d(e) / hz * 1e6 / n }' >>"$WORK/cpu-$metric-$side"
}

for metric in "${METRICS[@]}"; do
	read -r -a sides <<<"${M_SIDES[$metric]}"
	for side in "${sides[@]}"; do rate_check "$metric" "$side"; done
	log "wrk $metric: warm-up, then $ROUNDS round(s) a side of $DURATION at 1 connection and $DURATION at $CONNECTIONS"
	for side in "${sides[@]}"; do run_wrk "$metric" "$side" "$CONNECTIONS" 1s warmup; done
	for ((round = 1; round <= ROUNDS; round++)); do
		for side in "${sides[@]}"; do
			run_wrk "$metric" "$side" 1 "$DURATION"
			run_wrk "$metric" "$side" "$CONNECTIONS" "$DURATION"
			log "  round $round ${LABEL[$side]}: median $(tail -n1 "$WORK/lat-$metric-$side" | cut -d' ' -f1) µs," \
				"$(tail -n1 "$WORK/rps-$metric-$side") req/s, CPU $(tail -n1 "$WORK/cpu-$metric-$side" | cut -d' ' -f1) µs/request"
		done
	done
	for side in "${sides[@]}"; do
		RES[p50,$metric,$side]=$(cut -d' ' -f1 "$WORK/lat-$metric-$side" | median)
		RES[p99,$metric,$side]=$(cut -d' ' -f2 "$WORK/lat-$metric-$side" | median)
		RES[rps,$metric,$side]=$(median <"$WORK/rps-$metric-$side")
		RES[cpu,$metric,$side]=$(cut -d' ' -f1 "$WORK/cpu-$metric-$side" | median)
		RES[ecpu,$metric,$side]=$(cut -d' ' -f2 "$WORK/cpu-$metric-$side" | median)
		detail "- $metric, ${LABEL[$side]}: median/p99 µs per round $(tr ' ' / <"$WORK/lat-$metric-$side" | paste -sd' ');" \
			"req/s per round $(paste -sd' ' "$WORK/rps-$metric-$side"); proxy/engine CPU µs/request per round $(tr ' ' / <"$WORK/cpu-$metric-$side" | paste -sd' ')"
	done
done

# ---------------------------------------------------------------------------------------------------------
# 2. A logs stream

LOG_BYTES=$((LOG_MB * 1000000))
LINE=$(printf 'a%.0s' $(seq 99)) # 99 characters + newline: 100-byte lines
log "writing a ${LOG_MB} MB log ($((LOG_BYTES / 100)) lines of 100 bytes)"
LOGC=$(engine_docker run -d "${LABELS[@]}" --name "mtswarm-bench-$RUN_ID-logs" "$IMAGE" \
	sh -c "yes $LINE | head -c $LOG_BYTES") || die "could not start the log writer container"
code=$(timeout 600 "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$ENGINE_TCP" wait "$LOGC") ||
	die "the log writer container did not finish within 600s"
[ "$code" = 0 ] || die "the log writer container exited with $code"
LOG_SIDES=(direct mtswarm nginx)
# Each 100-byte line comes in a frame with an 8-byte header (the container has no TTY).
LOG_WIRE=$((LOG_BYTES / 100 * 108))
log "logs: $LOG_ROUNDS round(s) a side, alternated (curl into /dev/null)"
for ((round = 1; round <= LOG_ROUNDS; round++)); do
	for side in "${LOG_SIDES[@]}"; do
		g0=$(cpu_ticks "${PID[$side]}") e0=$(cpu_ticks "$ENGINE_PID")
		out=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
			"http://${ADDR[$side]}$API/containers/$LOGC/logs?stdout=1") || die "logs through ${LABEL[$side]} failed"
		g1=$(cpu_ticks "${PID[$side]}") e1=$(cpu_ticks "$ENGINE_PID")
		read -r code size secs <<<"$out"
		[ "$code" = 200 ] && [ "$size" = "$LOG_WIRE" ] ||
			die "logs through ${LABEL[$side]}: status $code, $size bytes (expected 200, $LOG_WIRE)"
		awk -v b="$size" -v s="$secs" -v g="${g1:-0}-${g0:-0}" -v e="${e1:-0}-${e0:-0}" -v hz="$CLK_TCK" '
			function d(x,  p) { split(x, p, "-"); return p[1] - p[2] }
			BEGIN { mb = b / 1e6; printf "%.1f %.2f %.2f\n", mb / s, d(g) / hz * 1e3 / mb, d(e) / hz * 1e3 / mb }' \
			>>"$WORK/logs-$side"
		log "  round $round ${LABEL[$side]}: $(cut -d' ' -f1 <<<"$(tail -n1 "$WORK/logs-$side")") MB/s"
	done
done
for side in "${LOG_SIDES[@]}"; do
	RES[mbs,logs,$side]=$(cut -d' ' -f1 "$WORK/logs-$side" | median)
	RES[cpu,logs,$side]=$(cut -d' ' -f2 "$WORK/logs-$side" | median)
	RES[ecpu,logs,$side]=$(cut -d' ' -f3 "$WORK/logs-$side" | median)
	detail "- logs, ${LABEL[$side]}: MB/s / proxy CPU ms per MB / engine CPU ms per MB per round $(tr ' ' / <"$WORK/logs-$side" | paste -sd' ')"
done

# ---------------------------------------------------------------------------------------------------------
# 3. docker run --rm IMAGE true

time_ms() { # prints the wall time of "$@" in ms; fails if the command fails
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>>"$WORK/run.err" || return 1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}
CLI_SIDES=(direct mtswarm)
log "docker run --rm $IMAGE true: 1 warm-up + $RUNS runs a side, interleaved"
for side in "${CLI_SIDES[@]}"; do
	time_ms side_docker "$side" run --rm "${LABELS[@]}" "$IMAGE" true >/dev/null ||
		die "docker run through ${LABEL[$side]} failed: $(tail -n3 "$WORK/run.err")"
done
for ((i = 1; i <= RUNS; i++)); do
	for side in "${CLI_SIDES[@]}"; do
		ms=$(time_ms side_docker "$side" run --rm "${LABELS[@]}" "$IMAGE" true) ||
			die "docker run through ${LABEL[$side]} failed: $(tail -n3 "$WORK/run.err")"
		echo "$ms" >>"$WORK/run-$side"
	done
done
for side in "${CLI_SIDES[@]}"; do
	RES[run,$side]=$(median <"$WORK/run-$side")
	detail "- run, ${LABEL[$side]}: median ${RES[run,$side]} ms, mean $(mean <"$WORK/run-$side") ms, runs (ms) $(paste -sd' ' "$WORK/run-$side")"
done

# ---------------------------------------------------------------------------------------------------------
# The tables

num() { awk -v v="$1" -v d="${2:-0}" 'BEGIN {if (v == "") print "–"; else printf "%.*f\n", d, v}'; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "") print ""; else print a - b}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print ""; else printf "%.2f\n", a / b}'; }
goal() { # value op target: yes / **NO**
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {if (v == "" || t == "") print "–"; else if ((op == "<=" && v <= t) || (op == ">=" && v >= t)) print "yes"; else print "**NO**"}'
}

table() {
	local m side added
	echo "| request | side | median at 1 conn. (µs) | added (µs) | p99 at 1 conn. (µs) | req/s at $CONNECTIONS conn. | / direct | proxy CPU (µs/request) | engine CPU (µs/request) |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
	for m in "${METRICS[@]}"; do
		for side in ${M_SIDES[$m]}; do
			added=$(minus "${RES[p50,$m,$side]}" "${RES[p50,$m,direct]}")
			[ "$side" != direct ] || added=
			echo "| ${M_NAME[$m]} | ${LABEL[$side]} | $(num "${RES[p50,$m,$side]}") | $(num "$added") |" \
				"$(num "${RES[p99,$m,$side]}") | $(num "${RES[rps,$m,$side]}") |" \
				"$( [ "$side" = direct ] && echo – || num "$(ratio "${RES[rps,$m,$side]}" "${RES[rps,$m,direct]}")" 2) |" \
				"$( [ -z "${PID[$side]}" ] && echo – || num "${RES[cpu,$m,$side]}" 1) | $(num "${RES[ecpu,$m,$side]}" 1) |"
		done
	done
	echo
	echo "| logs stream, $LOG_MB MB | MB/s | proxy CPU (ms/MB) | engine CPU (ms/MB) |"
	echo "|---|---:|---:|---:|"
	for side in "${LOG_SIDES[@]}"; do
		echo "| ${LABEL[$side]} | $(num "${RES[mbs,logs,$side]}" 1) | $( [ -z "${PID[$side]}" ] && echo – || num "${RES[cpu,logs,$side]}" 2) | $(num "${RES[ecpu,logs,$side]}" 2) |"
	done
	echo
	echo "| \`docker run --rm $IMAGE true\` | direct | mtswarm | mtswarm / direct |"
	echo "|---|---:|---:|---:|"
	echo "| median wall time (ms) | $(num "${RES[run,direct]}") | $(num "${RES[run,mtswarm]}") | $(num "$(ratio "${RES[run,mtswarm]}" "${RES[run,direct]}")" 2) |"
}

goals() {
	local add_m add_n c_m c_n c_t
	add_m=$(minus "${RES[p50,inspect,mtswarm]}" "${RES[p50,inspect,direct]}")
	add_n=$(minus "${RES[p50,inspect,nginx]}" "${RES[p50,inspect,direct]}")
	c_m=${RES[cpu,inspect,mtswarm]} c_n=${RES[cpu,inspect,nginx]} c_t=${RES[cpu,inspect,tenant]}
	echo "| goal (issue 15), on GET /containers/{id}/json | mtswarm | nginx | target | met |"
	echo "|---|---:|---:|---|---|"
	echo "| added median latency at 1 connection (µs) | $(num "$add_m") | $(num "$add_n") | ≤ nginx | $(goal "$add_m" "<=" "$add_n") |"
	echo "| proxy CPU per request, vanilla (µs) | $(num "$c_m" 1) | $(num "$c_n" 1) | ≤ nginx | $(goal "$c_m" "<=" "$c_n") |"
	echo "| proxy CPU per request, a tenant's (µs) | $(num "$c_t" 1) | $(num "$c_n" 1) | ≤ 1.3 × nginx | $(goal "$c_t" "<=" "$(awk -v n="$c_n" 'BEGIN {if (n != "") print 1.3 * n}')") |"
	echo "| req/s at $CONNECTIONS connections / direct | $(num "$(ratio "${RES[rps,inspect,mtswarm]}" "${RES[rps,inspect,direct]}")" 2) | $(num "$(ratio "${RES[rps,inspect,nginx]}" "${RES[rps,inspect,direct]}")" 2) | ≥ 0.85 | $(goal "$(ratio "${RES[rps,inspect,mtswarm]}" "${RES[rps,inspect,direct]}")" ">=" 0.85) |"
}

TABLE=$(table)
GOALS=$(goals)
QUICK_NOTE=''
((QUICK == 0)) || QUICK_NOTE=' (--quick smoke run: not a measurement)'
KEPT=''
[ ! -f "$RESULTS" ] || KEPT=$(sed -n '/^<!-- end of run -->$/,$p' "$RESULTS" | sed '1d')
{
	echo "# mtswarm benchmark: the engine directly, mtswarm and nginx in front of it"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')$QUICK_NOTE"
	echo "- Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -r)"
	echo "- Engine: Docker $ENGINE_VERSION, direct at tcp://$ENGINE_TCP; mtswarm $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)'), binary built $BIN_BUILT, ${BENCH_MTSWARM_THREADS:-1} serving thread(s)${BENCH_MTSWARM_ENV:+, with $BENCH_MTSWARM_ENV}; $("$NGINX" -v 2>&1 | sed 's/.*: //') (one worker, keep-alive upstream, access log on); both proxies reach the engine at $GATEWAY_ENGINE"
	echo "- Client: wrk --latency, $ROUNDS round(s) a side of $DURATION at 1 connection (-t 1) and $DURATION at -t $THREADS -c $CONNECTIONS, sides alternated, median of the rounds;" \
		"logs read with curl; docker CLI $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null || echo '?'), $RUNS interleaved runs a side"
	echo "- \`mtswarm\`: SWARM_MULTI_TENANT=false, log level info (one line per request). \`mtswarm, tenant\`: multi-tenancy on, token file, tenant \`bench\`, warm token cache."
	echo "- CPU: utime+stime of the proxy's processes (/proc/PID/stat, clock ticks of 1/$CLK_TCK s) over the $CONNECTIONS-connection run, divided by its requests."
	echo "- Everything runs on this machine: wrk, the proxies and dockerd share its $(nproc) CPUs." \
		"Load average before the run: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	echo "$GOALS"
	echo
	echo "$TABLE"
	echo
	echo "<details><summary>Details of this run</summary>"
	echo
	printf '%s\n' "${DETAILS[@]}"
	if ((WRK_BAD)); then
		echo
		echo "**Some wrk runs had errors or non-2xx responses: those rates are not valid.**"
	fi
	echo
	echo "</details>"
	echo
	echo "<!-- end of run -->"
	[ -z "$KEPT" ] || printf '%s\n' "$KEPT"
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"

echo
echo "$GOALS"
echo
echo "$TABLE"
echo
log "results written to ${RESULTS#"$ROOT"/}"
((WRK_BAD == 0)) || die "some wrk runs had errors or non-2xx responses (see $RESULTS)"
