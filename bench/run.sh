#!/usr/bin/env bash
# Side-by-side benchmark: the Docker engine directly against mtswarm in front of it, in one run.
#
#   bench/run.sh            full run (about 2-3 minutes on 2 cores)
#   bench/run.sh --quick    smoke run: wrk -d 1s, one round, fewer `docker run`s, a 20 MB log
#   bench/run.sh --auth     adds issue 3's column: GET /containers/json through mtswarm with multi-tenancy on
#                           and a token file (tenant "bench"), against mtswarm with multi-tenancy off
#
# Measures, on every "side" (the engine itself; mtswarm as a plain gateway, SWARM_MULTI_TENANT=false, at its
# default log level, which is the headline; the same at --log-level warn):
#   1. requests/s of GET /v1.41/containers/{id}/json and GET /v1.41/containers/json?all=1 with
#      $BENCH_CONTAINERS containers present (wrk, same threads/connections/duration on every side,
#      sides alternated round by round);
#   2. wall time of `docker run --rm busybox:latest true` (runs interleaved side by side);
#   3. MB/s of `docker logs` of a container that wrote $BENCH_LOG_MB MB of 100-byte lines.
# Prints a table with the ratios side/baseline and writes it, with the details, to bench/results.md.
#
# Needs the test bed's default engine (scripts/testbed.sh up): tcp://127.0.0.1:23750 and
# unix:///var/run/docker.sock are the same engine. Both sides are reached by the client over loopback TCP
# (wrk speaks TCP only); mtswarm reaches the engine over its unix socket, as it runs by default.
# Everything the script creates on the engine carries the labels mtswarm-bench=1 and
# mtswarm-bench.run=<run id>, and only those containers are removed at the end.
#
# Environment (defaults in brackets):
#   BENCH_DURATION [3s]  BENCH_CONNECTIONS [16]  BENCH_THREADS [2]  BENCH_ROUNDS [3]   wrk settings (median shown)
#   BENCH_CONTAINERS [100]  BENCH_RUNS [10]  BENCH_LOG_MB [200]  BENCH_LOG_ROUNDS [1]
#   BENCH_VERIFY_LOGS [1 with --quick, else 0]: first read the whole log through every gateway side and check
#                       its size (one more full read a side: slow with 200 MB, hence off in a full run)
#   BENCH_ENGINE_TCP [127.0.0.1:23750]  the engine, for wrk and the direct docker CLI
#   BENCH_GATEWAY_ENGINE [unix:///var/run/docker.sock]  the same engine, as mtswarm's DISCOVERY
#   BENCH_IMAGE [busybox:latest]  BENCH_DOCKER [/usr/local/bin/docker]  BENCH_NO_BUILD [unset]
#   BENCH_RESULTS [bench/results.md]  BENCH_KEEP_WORK [0]: keep the work dir (wrk output, gateway logs)
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/target/release/mtswarm

QUICK=0 AUTH=0
for arg in "$@"; do
	case $arg in
	--quick) QUICK=1 ;;
	--auth) AUTH=1 ;;
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
	LOG_MB=${BENCH_LOG_MB:-20} LOG_ROUNDS=${BENCH_LOG_ROUNDS:-1} VERIFY_LOGS=${BENCH_VERIFY_LOGS:-1}
else
	# Three short rounds a side rather than two long ones: on a shared machine the background load drifts,
	# finer alternation spreads it over the sides, and the median of three drops one disturbed round.
	DURATION=${BENCH_DURATION:-3s} ROUNDS=${BENCH_ROUNDS:-3} RUNS=${BENCH_RUNS:-10}
	# One logs read a side: at the ~7 MB/s of a 2-core machine a 200 MB read takes half a minute.
	LOG_MB=${BENCH_LOG_MB:-200} LOG_ROUNDS=${BENCH_LOG_ROUNDS:-1} VERIFY_LOGS=${BENCH_VERIFY_LOGS:-0}
fi
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
NCONTAINERS=${BENCH_CONTAINERS:-100}
ENGINE_TCP=${BENCH_ENGINE_TCP:-127.0.0.1:23750}
GATEWAY_ENGINE=${BENCH_GATEWAY_ENGINE:-unix:///var/run/docker.sock}
IMAGE=${BENCH_IMAGE:-busybox:latest}
DOCKER=${BENCH_DOCKER:-/usr/local/bin/docker}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results.md}
API=/v1.41
RUN_ID=$(date +%s)-$$
LABELS=(--label mtswarm-bench=1 --label "mtswarm-bench.run=$RUN_ID")

# The caller's client settings must not leak into the docker CLI calls: every call says -H and --config.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION DOCKER_CUSTOM_HEADERS
export DOCKER_CLI_HINTS=false

log() { printf 'bench: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------------------------------------
# Cleanup: gateways we started (by pid), containers we created (by run label), the work dir.

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
		log "failed (exit $rc); gateway logs and wrk output kept in $WORK"
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

[ -x "$DOCKER" ] || die "no docker CLI at $DOCKER (set BENCH_DOCKER)"
if ! command -v wrk >/dev/null; then
	log "wrk is missing: installing Debian's wrk"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >"$WORK/apt.log" 2>&1 ||
		die "could not install wrk (apt-get install -y --no-install-recommends wrk); see $WORK/apt.log"
fi
for tool in curl awk; do command -v "$tool" >/dev/null || die "$tool is missing"; done
if [ "$(curl -s -m 5 "http://$ENGINE_TCP/_ping" || true)" != OK ]; then
	die "no Docker engine answers on tcp://$ENGINE_TCP; start the test bed first: scripts/testbed.sh up"
fi
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
# Gateways and sides

# start_gateway NAME [VAR=VALUE]... [-- ARG...]
# Starts `mtswarm manage -H tcp://127.0.0.1:0 ARG... $GATEWAY_ENGINE` with the given environment, waits for
# its "listening on" line and prints its address HOST:PORT. Logs go to $WORK/NAME.log; the pid is recorded
# in $WORK/gateways (cleanup kills it) and $WORK/NAME.pid.
start_gateway() {
	local name=$1 envs=() args=() pid addr deadline
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

# A side is one way of reaching the engine. RATE_SIDES are measured with wrk, CLI_SIDES with the docker CLI.
# Each side has an address, a label, the side its ratio is taken against (BASE), the extra HTTP headers
# its clients send (HDRS, one "Name: value" a line, used by wrk and curl, and written to the side's docker
# config.json as HttpHeaders), the pid whose CPU time is reported (PID, empty for none), and optionally the
# only rate metrics it is measured on (ONLY, space-separated; unset: all).
declare -A ADDR LABEL BASE HDRS PID ONLY
RATE_SIDES=() CLI_SIDES=() ALL_SIDES=()
# add_side NAME LABEL ADDR BASE PIDFILE [HEADER]...
add_side() {
	local name=$1 headers=("${@:6}") h v json=
	ADDR[$name]=$3 LABEL[$name]=$2 BASE[$name]=$4 PID[$name]=
	[ -z "$5" ] || PID[$name]=$(cat "$5")
	HDRS[$name]=$(printf '%s\n' "${headers[@]}")
	mkdir -p "$WORK/cfg-$name"
	for h in "${headers[@]}"; do
		v=${h#*:}
		json+=${json:+,}$(printf '"%s": "%s"' "${h%%:*}" "${v# }")
	done
	printf '{"HttpHeaders": {%s}}\n' "$json" >"$WORK/cfg-$name/config.json"
	ALL_SIDES+=("$name")
}
side_docker() {
	local side=$1
	shift
	"$DOCKER" --config "$WORK/cfg-$side" -H "tcp://${ADDR[$side]}" "$@"
}
wrk_headers() {
	local h
	while IFS= read -r h; do [ -z "$h" ] || printf -- '-H\n%s\n' "$h"; done <<<"${HDRS[$1]}"
}
# The rate sides measured on metric $1.
rate_sides() {
	local side
	for side in "${RATE_SIDES[@]}"; do
		if [ -z "${ONLY[$side]:-}" ] || [[ " ${ONLY[$side]} " == *" $1 "* ]]; then echo "$side"; fi
	done
}
# CPU time (user+system, in clock ticks) of process $1 (a pid, or empty: prints nothing).
cpu_ticks() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 0
	sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
# "busy total" clock ticks of the whole machine, from /proc/stat.
machine_ticks() { awk '$1 == "cpu" {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
# The engine's dockerd, for its CPU time per request (empty if ss cannot tell).
ENGINE_PID=$(ss -Hltnp "sport = :${ENGINE_TCP##*:}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || true

log "starting mtswarm (target/release/mtswarm, built $BIN_BUILT)"
# Issue 2's benchmark is of the gateway itself: multi-tenancy off (no authentication, no scoping).
GW_INFO=$(start_gateway mtswarm SWARM_MULTI_TENANT=false)
GW_WARN=$(start_gateway mtswarm-warn SWARM_MULTI_TENANT=false -- --log-level warn)

add_side direct "direct" "$ENGINE_TCP" "" ""
add_side mtswarm "mtswarm" "$GW_INFO" direct "$WORK/mtswarm.pid"
add_side mtswarm-warn "mtswarm (warn)" "$GW_WARN" direct "$WORK/mtswarm-warn.pid"
RATE_SIDES=(direct mtswarm mtswarm-warn)
ONLY[mtswarm-warn]=inspect # the list is bound by the engine (~30 req/s): log lines cost nothing there
CLI_SIDES=(direct mtswarm)
if ((AUTH)); then
	# Issue 3's benchmark: an authenticated list with a warm token cache, against multi-tenancy off.
	TOKEN=$(cd "$WORK" && "$BIN" tokens add --tenant bench --file "$WORK/tokens.json" 2>"$WORK/tokens.err") ||
		die "mtswarm tokens add failed: $(cat "$WORK/tokens.err")"
	GW_AUTH=$(start_gateway auth SWARM_TOKENS_FILE="$WORK/tokens.json")
	add_side auth "mtswarm (token file)" "$GW_AUTH" mtswarm "$WORK/auth.pid" \
		"X-Auth-Token: $TOKEN" "X-Auth-TenantId: bench"
	ONLY[auth]=list
	RATE_SIDES+=(auth)
fi
HEADLINE=mtswarm

# ---------------------------------------------------------------------------------------------------------
# Results: RES[metric,side] is the median of the rounds for request rates, the mean otherwise;
# DETAILS collects lines for the markdown details.

declare -A RES
DETAILS=()
detail() { DETAILS+=("$*"); }
mean() { awk '{s += $1; n++} END {if (n) printf "%.6g\n", s / n}'; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# ---------------------------------------------------------------------------------------------------------
# 1. Request rates

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_BEFORE%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
	log "WARNING: load average $LOAD_BEFORE on $(nproc) CPUs before the run: the numbers will be noisy"
fi

log "creating $NCONTAINERS containers labelled mtswarm-bench.run=$RUN_ID"
seq "$NCONTAINERS" | xargs -P 8 -I{} "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$ENGINE_TCP" \
	create -q "${LABELS[@]}" --name "mtswarm-bench-$RUN_ID-{}" "$IMAGE" true >"$WORK/created" 2>"$WORK/create.err" ||
	die "docker create failed: $(head -n3 "$WORK/create.err")"
CID=$(head -n1 "$WORK/created")
[ -n "$CID" ] || die "no container was created"
TOTAL_CONTAINERS=$(engine_docker ps -aq | wc -l)

rate_check() { # side path: the request must answer 200 before it is measured
	local out hdr=()
	mapfile -t hdr < <(wrk_headers "$1")
	out=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "${hdr[@]}" "http://${ADDR[$1]}$2") ||
		die "curl to ${LABEL[$1]} $2 failed"
	[ "${out%% *}" = 200 ] || die "${LABEL[$1]}: GET $2 answered ${out%% *}, not 200 (log: $WORK/$1.log)"
	detail "- ${LABEL[$1]}: GET $2 -> 200, ${out#* } bytes"
}
# run_wrk METRIC SIDE PATH DURATION [warmup]: appends requests/s to $WORK/rps-METRIC-SIDE (not for a warm-up),
# the mean latency to $WORK/lat-..., the CPU time per request of the side's process and of the engine, and
# how busy the whole machine was, to $WORK/cpu-...; flags errors.
run_wrk() {
	local metric=$1 side=$2 path=$3 dur=$4 warm=${5:-} out rps errs non2xx reqs g0 g1 e0 e1 m0 m1 hdr=()
	out=$WORK/wrk-$metric-$side-${warm:-run}$((++WRK_N)).txt
	mapfile -t hdr < <(wrk_headers "$side")
	g0=$(cpu_ticks "${PID[$side]}") e0=$(cpu_ticks "$ENGINE_PID") m0=$(machine_ticks)
	wrk -t "$THREADS" -c "$CONNECTIONS" -d "$dur" "${hdr[@]}" "http://${ADDR[$side]}$path" >"$out" 2>&1 ||
		die "wrk against ${LABEL[$side]} failed: $(tail -n3 "$out")"
	g1=$(cpu_ticks "${PID[$side]}") e1=$(cpu_ticks "$ENGINE_PID") m1=$(machine_ticks)
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
	echo "$rps" >>"$WORK/rps-$metric-$side"
	awk '$1 == "Latency" {print $2; exit}' "$out" >>"$WORK/lat-$metric-$side"
	((reqs > 0)) || return 0
	# Columns: gateway µs/request, engine µs/request, machine busy %.
	awk -v g="${g1:-0}-${g0:-0}" -v e="${e1:-0}-${e0:-0}" -v m0="$m0" -v m1="$m1" -v hz="$CLK_TCK" -v n="$reqs" '
		function d(x,  p) { split(x, p, "-"); return p[1] - p[2] }
		BEGIN { split(m0, a, " "); split(m1, b, " ")
			printf "%.0f %.0f %.0f\n", d(g) / hz * 1e6 / n, d(e) / hz * 1e6 / n, 100 * (b[1] - a[1]) / (b[2] - a[2]) }' \
		>>"$WORK/cpu-$metric-$side"
}

WRK_BAD=0 WRK_N=0
declare -A RATE_PATH=([inspect]="$API/containers/$CID/json" [list]="$API/containers/json?all=1")
for metric in inspect list; do
	path=${RATE_PATH[$metric]}
	mapfile -t sides < <(rate_sides "$metric")
	for side in "${sides[@]}"; do rate_check "$side" "$path"; done
	log "wrk $metric: warm-up (1s a side), then $ROUNDS round(s) of $DURATION a side, -t $THREADS -c $CONNECTIONS"
	for side in "${sides[@]}"; do run_wrk "$metric" "$side" "$path" 1s warmup; done
	for ((round = 1; round <= ROUNDS; round++)); do
		for side in "${sides[@]}"; do
			run_wrk "$metric" "$side" "$path" "$DURATION"
			log "  round $round ${LABEL[$side]}: $(tail -n1 "$WORK/rps-$metric-$side") req/s"
		done
	done
	for side in "${sides[@]}"; do
		RES[$metric,$side]=$(median <"$WORK/rps-$metric-$side")
		cpu=$(awk -v gw="${PID[$side]}" -v en="$ENGINE_PID" '
			{ g += $1; e += $2; m += $3; n++ }
			END { if (gw != "") printf "; gateway CPU %.0f µs/request", g / n
				if (en != "") printf "; engine CPU %.0f µs/request", e / n
				printf "; machine %.0f%% busy", m / n }' "$WORK/cpu-$metric-$side")
		detail "- $metric, ${LABEL[$side]}: req/s per round $(paste -sd' ' "$WORK/rps-$metric-$side");" \
			"mean latency per round $(paste -sd' ' "$WORK/lat-$metric-$side")$cpu"
	done
done

# ---------------------------------------------------------------------------------------------------------
# 2. docker run --rm IMAGE true

time_ms() { # prints the wall time of "$@" in ms; fails if the command fails
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>>"$WORK/run.err" || return 1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}
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
	RES[run,$side]=$(mean <"$WORK/run-$side")
	detail "- run, ${LABEL[$side]}: mean ${RES[run,$side]} ms, median $(median <"$WORK/run-$side") ms, runs (ms) $(paste -sd' ' "$WORK/run-$side")"
done

# ---------------------------------------------------------------------------------------------------------
# 3. docker logs of a container that wrote LOG_MB MB

LOG_BYTES=$((LOG_MB * 1000000))
LINE=$(printf 'a%.0s' $(seq 99)) # 99 characters + newline: 100-byte lines
log "writing a ${LOG_MB} MB log ($((LOG_BYTES / 100)) lines of 100 bytes)"
LOGC=$(engine_docker run -d "${LABELS[@]}" --name "mtswarm-bench-$RUN_ID-logs" "$IMAGE" \
	sh -c "yes $LINE | head -c $LOG_BYTES") || die "could not start the log writer container"
code=$(timeout 600 "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$ENGINE_TCP" wait "$LOGC") ||
	die "the log writer container did not finish within 600s"
[ "$code" = 0 ] || die "the log writer container exited with $code"
# The timed reads go to /dev/null (a pipe would cost the CLI a third more); this untimed read through every
# gateway side checks that the whole log comes through.
if ((VERIFY_LOGS)); then
	for side in "${CLI_SIDES[@]}"; do
		[ -n "${BASE[$side]}" ] || continue
		got=$(side_docker "$side" logs "$LOGC" 2>"$WORK/logs.err" | wc -c)
		[ "$got" = "$LOG_BYTES" ] ||
			die "docker logs through ${LABEL[$side]} gave $got bytes, not $LOG_BYTES: $(head -n3 "$WORK/logs.err")"
		detail "- logs, ${LABEL[$side]}: the whole log came through ($got bytes)"
	done
fi
log "docker logs: $LOG_ROUNDS round(s) a side, alternated"
for ((round = 1; round <= LOG_ROUNDS; round++)); do
	for side in "${CLI_SIDES[@]}"; do
		g0=$(cpu_ticks "${PID[$side]}") e0=$(cpu_ticks "$ENGINE_PID")
		ms=$(time_ms side_docker "$side" logs "$LOGC") || die "docker logs through ${LABEL[$side]} failed"
		g1=$(cpu_ticks "${PID[$side]}") e1=$(cpu_ticks "$ENGINE_PID")
		awk -v b="$LOG_BYTES" -v ms="$ms" 'BEGIN {printf "%.1f\n", b / 1e6 / (ms / 1000)}' >>"$WORK/logs-$side"
		echo "${LABEL[$side]} round $round: $ms ms wall${g0:+, gateway CPU $(((g1 - g0) * 1000 / CLK_TCK)) ms}${e0:+, engine CPU $(((e1 - e0) * 1000 / CLK_TCK)) ms}" \
			>>"$WORK/logs-cpu"
		log "  round $round ${LABEL[$side]}: $(tail -n1 "$WORK/logs-$side") MB/s"
	done
done
for side in "${CLI_SIDES[@]}"; do
	RES[logs,$side]=$(mean <"$WORK/logs-$side")
	detail "- logs, ${LABEL[$side]}: MB/s per round $(paste -sd' ' "$WORK/logs-$side")"
done
while IFS= read -r line; do detail "- logs, $line"; done <"$WORK/logs-cpu"

# ---------------------------------------------------------------------------------------------------------
# The table

METRICS=(inspect list run logs)
declare -A M_NAME=(
	[inspect]="GET /containers/{id}/json (req/s)"
	[list]="GET /containers/json?all=1, $TOTAL_CONTAINERS containers (req/s)"
	[run]="docker run --rm $IMAGE true (ms)"
	[logs]="docker logs, $LOG_MB MB (MB/s)"
)
declare -A M_OP=([inspect]=">=" [list]=">=" [run]="<=" [logs]=">=")
declare -A M_TARGET=([inspect]=0.8 [list]=0.8 [run]=1.05 [logs]=0.9)

fmt() { awk -v v="$1" 'BEGIN {if (v == "") print "–"; else if (v >= 100) printf "%.0f\n", v; else printf "%.1f\n", v}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print ""; else printf "%.2f\n", a / b}'; }
meets() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {if (r == "") print "–"; else if ((op == ">=" && r >= t) || (op == "<=" && r <= t)) print "yes"; else print "**NO**"}'; }

RATIO_SIDES=()
for side in "${ALL_SIDES[@]}"; do [ -z "${BASE[$side]}" ] || RATIO_SIDES+=("$side"); done

table() {
	local header="| Metric |" rule="|---|" row side r m
	for side in "${ALL_SIDES[@]}"; do header+=" ${LABEL[$side]} |" rule+="---:|"; done
	for side in "${RATIO_SIDES[@]}"; do header+=" ${LABEL[$side]} / ${LABEL[${BASE[$side]}]} |" rule+="---:|"; done
	header+=" target (${LABEL[$HEADLINE]} / ${LABEL[${BASE[$HEADLINE]}]}) | met |" rule+="---|---|"
	echo "$header"
	echo "$rule"
	for m in "${METRICS[@]}"; do
		row="| ${M_NAME[$m]} |"
		for side in "${ALL_SIDES[@]}"; do row+=" $(fmt "${RES[$m,$side]:-}") |"; done
		for side in "${RATIO_SIDES[@]}"; do
			r=$(ratio "${RES[$m,$side]:-}" "${RES[$m,${BASE[$side]}]:-}")
			row+=" ${r:-–} |"
		done
		r=$(ratio "${RES[$m,$HEADLINE]:-}" "${RES[$m,${BASE[$HEADLINE]}]:-}")
		row+=" ${M_OP[$m]} ${M_TARGET[$m]} | $(meets "$r" "${M_OP[$m]}" "${M_TARGET[$m]}") |"
		echo "$row"
	done
}

TABLE=$(table)
AUTH_NOTE='' QUICK_NOTE=''
if ((AUTH)); then
	# shellcheck disable=SC2016 # backquotes are markdown
	AUTH_NOTE=' `mtswarm (token file)`: multi-tenancy on, token file, tenant `bench`, warm token cache; its ratio is against `mtswarm` (multi-tenancy off); target for it (issue 3): >= 0.9.'
fi
((QUICK == 0)) || QUICK_NOTE=' (--quick smoke run: not a measurement)'
{
	echo "# mtswarm benchmark: the engine directly against mtswarm in front of it"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')$QUICK_NOTE"
	echo "- Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -r)"
	echo "- Engine: Docker $ENGINE_VERSION, direct at tcp://$ENGINE_TCP; mtswarm $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)'), binary built $BIN_BUILT, to $GATEWAY_ENGINE"
	echo "- Client: wrk -t $THREADS -c $CONNECTIONS -d $DURATION, $ROUNDS round(s) a side, alternated (median shown);" \
		"docker CLI $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null || echo '?'), $RUNS interleaved runs a side; $LOG_ROUNDS logs read(s) a side"
	echo "- \`mtswarm\` is the plain gateway (SWARM_MULTI_TENANT=false) at its default log level (info: one line per request);" \
		"\`mtswarm (warn)\` the same with \`--log-level warn\`.$AUTH_NOTE"
	echo "- Everything runs on this machine: wrk, mtswarm and dockerd share its $(nproc) CPUs." \
		"Load average before the run: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	echo "$TABLE"
	echo
	echo "## Details"
	echo
	printf '%s\n' "${DETAILS[@]}"
	if ((WRK_BAD)); then
		echo
		echo "**Some wrk runs had errors or non-2xx responses: those rates are not valid.**"
	fi
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"

echo
echo "$TABLE" | sed '2d; s/^| //; s/ |$//; s/ | /\t/g' | column -t -s $'\t' | sed '1{p; s/./-/g}'
echo
log "results written to ${RESULTS#"$ROOT"/}"
((WRK_BAD == 0)) || die "some wrk runs had errors or non-2xx responses (see $RESULTS)"
