#!/usr/bin/env bash
# The cluster's benchmark: mtswarm in front of the three engines of the test bed (nodes://node0,node1,node2),
# against one engine (node1) answered directly, in one run.
#
#   bench/cluster.sh           full run (about 1-2 minutes)
#   bench/cluster.sh --quick   smoke run: 20 containers a node, wrk -d 1s, one round, 10 creates a round
#
# mtswarm runs as a plain cluster manager (SWARM_MULTI_TENANT=false: no authentication, no tenancy), so what is
# measured is the cluster's own cost: answering a list for three engines, and placing creates; and, beside it,
# as a multi-tenant endpoint for the list. It measures:
#   1. requests/s of GET /v1.41/containers/json?all=1 (wrk, same threads/connections/duration on every side,
#      the sides alternated round by round) with $BENCH_PER_NODE containers created (not started) directly on
#      EACH engine: through mtswarm, which lists the three engines' containers (3 x $BENCH_PER_NODE and whatever
#      else the engines hold), against node1 listing its own directly. Ratio mtswarm/direct (median of the
#      per-round ratios, each mtswarm round against the direct round just before it).
#      A third side is a tenant: a second mtswarm over the same nodes with multi-tenancy on (token file, tenant
#      "bench", warm token cache). The run's containers belong to "bench" (its label and its names), so the
#      tenant lists the same 3 x $BENCH_PER_NODE containers, in its own view (its names, filtered to its own).
#   2. wall time of $BENCH_CREATES parallel POST /v1.41/containers/create (one curl --parallel, raw HTTP): through
#      mtswarm, which places them over the three nodes, against node1 directly. Ratio mtswarm/direct of the
#      median wall times (above 1: mtswarm is slower).
#   3. mtswarm's resident memory (VmRSS of /proc/PID/status) after the list benchmark.
# Everything it creates carries the labels mtswarm-bench=1 and mtswarm-bench.run=<run id>; exactly those
# containers are removed at the end (and on failure or ^C), on all three engines. Writes bench/results-cluster.md.
#
# Environment (defaults in brackets; --quick changes those marked *):
#   BENCH_PER_NODE [100*]  BENCH_CREATES [50*]: parallel creates a round  BENCH_CREATE_ROUNDS [5*]
#   BENCH_DURATION [3s*]  BENCH_ROUNDS [5*]  BENCH_CONNECTIONS [16]  BENCH_THREADS [2]  BENCH_TIMEOUT [30s]
#   BENCH_NODES [127.0.0.1:23750,127.0.0.1:23751,127.0.0.1:23752]  BENCH_DIRECT [127.0.0.1:23751]: the engine
#   answered directly (one of BENCH_NODES)  BENCH_IMAGE [busybox:latest]  BENCH_DOCKER [/usr/local/bin/docker]
#   BENCH_RESULTS [bench/results-cluster.md]  BENCH_KEEP_WORK [0]: keep the work dir (wrk output, gateway log)
# mtswarm is target/release/mtswarm as it is (never rebuilt here; build it with cargo build --release).
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
		printf 'cluster: unknown argument %q (try --help)\n' "$arg" >&2
		exit 2
		;;
	esac
done

if ((QUICK)); then
	PER_NODE=${BENCH_PER_NODE:-20} CREATES=${BENCH_CREATES:-10} CREATE_ROUNDS=${BENCH_CREATE_ROUNDS:-1}
	DURATION=${BENCH_DURATION:-1s} ROUNDS=${BENCH_ROUNDS:-1}
else
	PER_NODE=${BENCH_PER_NODE:-100} CREATES=${BENCH_CREATES:-50} CREATE_ROUNDS=${BENCH_CREATE_ROUNDS:-5}
	DURATION=${BENCH_DURATION:-3s} ROUNDS=${BENCH_ROUNDS:-5}
fi
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
TIMEOUT=${BENCH_TIMEOUT:-30s}
NODES=${BENCH_NODES:-127.0.0.1:23750,127.0.0.1:23751,127.0.0.1:23752}
DIRECT=${BENCH_DIRECT:-127.0.0.1:23751}
IMAGE=${BENCH_IMAGE:-busybox:latest}
DOCKER=${BENCH_DOCKER:-/usr/local/bin/docker}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results-cluster.md}
KEEP_WORK=${BENCH_KEEP_WORK:-0}
API=/v1.41
RUN_ID=$(date +%s)-$$
LABELS=(--label mtswarm-bench=1 --label "mtswarm-bench.run=$RUN_ID")
IFS=, read -r -a ENGINES <<<"$NODES"

for n in PER_NODE CREATES CREATE_ROUNDS ROUNDS CONNECTIONS THREADS; do
	[[ ${!n} =~ ^[1-9][0-9]*$ ]] || {
		printf 'cluster: BENCH_%s must be a number of at least 1, not %q\n' "$n" "${!n}" >&2
		exit 2
	}
done
[[ ",$NODES," == *",$DIRECT,"* ]] || {
	printf 'cluster: BENCH_DIRECT (%s) must be one of BENCH_NODES (%s)\n' "$DIRECT" "$NODES" >&2
	exit 2
}

# The caller's client settings must not leak into the docker CLI calls: every call says -H and --config.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION DOCKER_CUSTOM_HEADERS
export DOCKER_CLI_HINTS=false

log() { printf 'cluster: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
	printf 'cluster: error: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------------------------------------
# Cleanup: the gateway we started (by pid), the containers we created (by run label, on every engine), the
# work dir.

WORK=$(mktemp -d /tmp/mtswarm-bench-cluster.XXXXXX)
GW_PID= TENANT_PID=
engine_docker() { # ENGINE ARGS...
	local engine=$1
	shift
	"$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$engine" "$@"
}
remove_run_containers() {
	local engine ids left
	for engine in "${ENGINES[@]}"; do
		ids=$(engine_docker "$engine" ps -aq --filter "label=mtswarm-bench.run=$RUN_ID" 2>/dev/null) || true
		[ -n "$ids" ] || continue
		log "removing $(wc -w <<<"$ids") containers labelled mtswarm-bench.run=$RUN_ID on $engine"
		xargs -n 50 -P 4 "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$engine" rm -f \
			<<<"$ids" >/dev/null 2>>"$WORK/rm.err" || true
		left=$(engine_docker "$engine" ps -aq --filter "label=mtswarm-bench.run=$RUN_ID" 2>/dev/null | wc -l) || true
		((${left:-0} == 0)) ||
			log "WARNING: $left containers labelled mtswarm-bench.run=$RUN_ID are left on $engine: $(head -n2 "$WORK/rm.err")"
	done
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local pid
	for pid in $GW_PID $TENANT_PID; do
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	remove_run_containers
	rm -f "$WORK/mtswarm"
	if ((rc != 0)); then
		log "failed (exit $rc); gateway log, wrk output and curl answers kept in $WORK"
	elif ((KEEP_WORK)); then
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

mkdir -p "$WORK/cfg-engine"
echo '{}' >"$WORK/cfg-engine/config.json"
[ -x "$DOCKER" ] || die "no docker CLI at $DOCKER (set BENCH_DOCKER)"
if ! command -v wrk >/dev/null; then
	log "wrk is missing: installing Debian's wrk"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >"$WORK/apt.log" 2>&1 ||
		die "could not install wrk (apt-get install -y --no-install-recommends wrk); see $WORK/apt.log"
fi
for tool in curl awk python3; do command -v "$tool" >/dev/null || die "$tool is missing"; done
declare -A NAME
for engine in "${ENGINES[@]}"; do
	if [ "$(curl -s -m 5 "http://$engine/_ping" || true)" != OK ]; then
		die "no Docker engine answers on tcp://$engine; start the test bed first: scripts/testbed.sh up"
	fi
	NAME[$engine]=$(engine_docker "$engine" info --format '{{.Name}}') || die "docker info against tcp://$engine failed"
	engine_docker "$engine" image inspect "$IMAGE" >/dev/null 2>&1 ||
		die "engine $engine has no image $IMAGE; scripts/testbed.sh up imports it"
done
ENGINE_VERSION=$(engine_docker "$DIRECT" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') ||
	die "docker version against tcp://$DIRECT failed"
[ -x "$BIN" ] || die "no mtswarm binary at $BIN (cargo build --release)"
# Others build in the same checkout: run a copy, so that the binary cannot change under the run.
BIN_BUILT=$(date -u -r "$BIN" '+%F %T UTC')
cp "$BIN" "$WORK/mtswarm"
BIN=$WORK/mtswarm
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_BEFORE%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
	log "WARNING: load average $LOAD_BEFORE on $(nproc) CPUs before the run: the numbers will be noisy"
fi

# ---------------------------------------------------------------------------------------------------------
# The gateway: multi-tenancy off, the three engines.

# start_gateway NAME ENV...: starts mtswarm over the nodes with ENV (in a work dir of its own, so that no policy
# file is picked up), writes its pid to $WORK/NAME.pid and prints its address.
start_gateway() {
	local name=$1 pid addr deadline
	shift
	mkdir -p "$WORK/dir-$name"
	(cd "$WORK/dir-$name" && exec env "$@" "$BIN" manage -H tcp://127.0.0.1:0 "nodes://$NODES") \
		</dev/null >"$WORK/$name.out" 2>"$WORK/$name.log" &
	pid=$!
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
log "starting mtswarm (target/release/mtswarm, built $BIN_BUILT) over nodes://$NODES: plain, and multi-tenant"
GW=$(start_gateway mtswarm SWARM_MULTI_TENANT=false)
GW_PID=$(cat "$WORK/mtswarm.pid")
TOKEN=$("$BIN" tokens add --tenant bench --file "$WORK/tokens.json" 2>"$WORK/tokens.err") ||
	die "mtswarm tokens add failed: $(cat "$WORK/tokens.err")"
GW_TENANT=$(start_gateway tenant SWARM_TOKENS_FILE="$WORK/tokens.json")
TENANT_PID=$(cat "$WORK/tenant.pid")
AUTH=(-H "X-Auth-Token: $TOKEN" -H "X-Auth-TenantId: bench")

# ---------------------------------------------------------------------------------------------------------
# The containers listed: $PER_NODE on each engine, created directly (not through mtswarm, for speed), never
# started. The engines are filled side by side.

log "creating $PER_NODE containers on each of ${#ENGINES[@]} engines (labelled mtswarm-bench.run=$RUN_ID)"
t0=$(date +%s.%N)
pids=()
for i in "${!ENGINES[@]}"; do
	# The tenant "bench" owns them: its label, and names in its scope (mtswarm's t<length>-<tenant>- prefix).
	seq "$PER_NODE" | xargs -P 6 -I{} "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://${ENGINES[$i]}" \
		create -q "${LABELS[@]}" --label mtswarm.tenant=bench --name "t5-bench-$RUN_ID-$i-{}" "$IMAGE" true \
		>"$WORK/created-${ENGINES[$i]}" 2>"$WORK/create-${ENGINES[$i]}.err" &
	pids+=($!)
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || die "docker create on ${ENGINES[$i]} failed: $(head -n3 "$WORK/create-${ENGINES[$i]}.err")"
done
FILL_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
declare -A HOLDS
TOTAL=0
for engine in "${ENGINES[@]}"; do
	HOLDS[$engine]=$(engine_docker "$engine" ps -aq | wc -l)
	TOTAL=$((TOTAL + HOLDS[$engine]))
done

# GET PATH on ADDR: must answer 200 and a JSON array; prints its length and size in bytes.
list_check() { # ADDR PATH [CURL ARGS...]
	local addr=$1 path=$2 out=$WORK/answer.json code
	shift 2
	code=$(curl -sS "$@" -o "$out" -w '%{http_code}' "http://$addr$path") || die "curl to $addr$path failed"
	[ "$code" = 200 ] || die "GET $addr$path answered $code: $(head -c 300 "$out")"
	python3 -c 'import json, os, sys; a = json.load(open(sys.argv[1])); assert isinstance(a, list); print(len(a), os.path.getsize(sys.argv[1]))' "$out" ||
		die "GET $addr$path did not answer a JSON array: $(head -c 300 "$out")"
}
# mtswarm must see every one of the run's containers before it is measured (its view of the nodes may lag).
FILTER=$(python3 -c 'import json, sys, urllib.parse; print(urllib.parse.quote(json.dumps({"label": ["mtswarm-bench.run=" + sys.argv[1]]}), safe=""))' "$RUN_ID")
want=$((PER_NODE * ${#ENGINES[@]}))
deadline=$((SECONDS + 30))
until seen=$(list_check "$GW" "$API/containers/json?all=1&filters=$FILTER") && [ "${seen%% *}" = "$want" ]; do
	((SECONDS < deadline)) || die "mtswarm lists ${seen%% *} of the run's $want containers after 30s; log: $WORK/mtswarm.log"
	sleep 0.2
done
until seen=$(list_check "$GW_TENANT" "$API/containers/json?all=1&filters=$FILTER" "${AUTH[@]}") && [ "${seen%% *}" = "$want" ]; do
	((SECONDS < deadline)) || die "the tenant lists ${seen%% *} of the run's $want containers after 30s; log: $WORK/tenant.log"
	sleep 0.2
done
LIST="$API/containers/json?all=1"
read -r DIRECT_ITEMS DIRECT_BYTES < <(list_check "$DIRECT" "$LIST")
read -r GW_ITEMS GW_BYTES < <(list_check "$GW" "$LIST")
((GW_ITEMS >= want)) || die "mtswarm lists $GW_ITEMS containers, fewer than the run's $want"
read -r TENANT_ITEMS TENANT_BYTES < <(list_check "$GW_TENANT" "$LIST" "${AUTH[@]}")
((TENANT_ITEMS == want)) || die "the tenant lists $TENANT_ITEMS containers, not its $want"
python3 -c 'import json, sys; names = [c["Names"][0] for c in json.load(open(sys.argv[1]))]; bad = [n for n in names if n.startswith("/t5-bench-")]; sys.exit(f"the tenant sees engine-side names: {bad[:3]}" if bad else 0)' "$WORK/answer.json" ||
	die "the tenant's list is not in its own view"

# ---------------------------------------------------------------------------------------------------------
# 1. The list: wrk, the sides alternated round by round; one line "req/s latency_ms" a round in
# $WORK/res-SIDE.

declare -A URL LABEL
URL[direct]="http://$DIRECT$LIST"
LABEL[direct]="direct: ${NAME[$DIRECT]} ($DIRECT)"
URL[mtswarm]="http://$GW$LIST"
LABEL[mtswarm]="mtswarm: ${#ENGINES[@]} nodes"
URL[tenant]="http://$GW_TENANT$LIST"
LABEL[tenant]="mtswarm as a tenant: ${#ENGINES[@]} nodes"
SIDES=(direct mtswarm tenant)
WRK_BAD=0 WRK_N=0
run_wrk() { # side duration [warmup]
	local side=$1 dur=$2 warm=${3:-} out non2xx errs
	out=$WORK/wrk-$side-$((++WRK_N))${warm:+-warmup}.txt
	local headers=()
	[ "$side" != tenant ] || headers=("${AUTH[@]}")
	wrk -t "$THREADS" -c "$CONNECTIONS" -d "$dur" --timeout "$TIMEOUT" "${headers[@]}" "${URL[$side]}" >"$out" 2>&1 ||
		die "wrk against ${LABEL[$side]} failed: $(tail -n3 "$out")"
	non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
	errs=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$out")
	if [ -n "$non2xx" ] || [ -n "$errs" ]; then
		log "WARNING: ${LABEL[$side]}: ${non2xx:+$non2xx non-2xx responses }${errs:+socket errors: $errs}"
		WRK_BAD=1
	fi
	[ -z "$warm" ] || return 0
	awk '
		function ms(v) { # wrk latency "950.00us", "181.76ms", "1.23s", "1.02m"
			if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; return v * 1000 }
		/^Requests\/sec:/ { rps = $2 }
		$1 == "Latency" && lat == "" { lat = ms($2) }
		END { if (rps == "") exit 1; printf "%s %.1f\n", rps, lat }' "$out" >>"$WORK/res-$side" ||
		die "no Requests/sec in wrk output: $out"
}
log "list: warm-up (1s a side), then $ROUNDS round(s) of $DURATION a side, wrk -t $THREADS -c $CONNECTIONS"
for side in "${SIDES[@]}"; do run_wrk "$side" 1s warmup; done
for ((round = 1; round <= ROUNDS; round++)); do
	for side in "${SIDES[@]}"; do
		run_wrk "$side" "$DURATION"
		log "  round $round ${LABEL[$side]}: $(tail -n1 "$WORK/res-$side" | cut -d' ' -f1) req/s, $(tail -n1 "$WORK/res-$side" | cut -d' ' -f2) ms"
	done
done

# ---------------------------------------------------------------------------------------------------------
# 3. mtswarm's memory after the list benchmark.

RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$GW_PID/status")
RSS_MB=$(awk -v k="$RSS_KB" 'BEGIN {printf "%.1f", k / 1024}')
log "mtswarm VmRSS after the list benchmark: $RSS_MB MB"

# ---------------------------------------------------------------------------------------------------------
# 2. Creates: $CREATES POST /containers/create at once (one curl, --parallel), wall time; the sides alternated
# round by round. Every create must answer 201. One line "seconds" a round in $WORK/create-SIDE.

create_round() { # side round
	local side=$1 round=$2 addr cfg=$WORK/create-$1-$2.cfg codes=$WORK/create-$1-$2.codes i t0 t1 first
	case $side in direct) addr=$DIRECT ;; mtswarm) addr=$GW ;; esac
	: >"$cfg"
	for ((i = 1; i <= CREATES; i++)); do
		((i == 1)) || echo next >>"$cfg"
		printf '%s\n' \
			"url = \"http://$addr$API/containers/create\"" \
			'header = "Content-Type: application/json"' \
			"data = \"{\\\"Image\\\": \\\"$IMAGE\\\", \\\"Cmd\\\": [\\\"true\\\"], \\\"Labels\\\": {\\\"mtswarm-bench\\\": \\\"1\\\", \\\"mtswarm-bench.run\\\": \\\"$RUN_ID\\\"}}\"" \
			"output = \"$WORK/create-$side-$round.$i.json\"" \
			'write-out = "%{http_code} %{url}\n"' >>"$cfg"
	done
	t0=$(date +%s.%N)
	curl -sS --parallel --parallel-immediate --parallel-max "$CREATES" -K "$cfg" >"$codes" 2>"$WORK/create-$side-$round.err" || true
	t1=$(date +%s.%N)
	if (($(grep -c '^201 ' "$codes" || true) != CREATES)); then
		first=$(find "$WORK" -maxdepth 1 -name "create-$side-$round.*.json" -exec grep -L '"Id"' {} + | head -n1)
		die "creates through ${LABEL[$side]}: $(grep -c '^201 ' "$codes" || true) of $CREATES answered 201;" \
			"codes: $(cut -d' ' -f1 "$codes" | sort | uniq -c | tr -s ' \n' ' ')" \
			"${first:+first failure: $(head -c 300 "$first")} $(head -c 300 "$WORK/create-$side-$round.err")"
	fi
	find "$WORK" -maxdepth 1 -name "create-$side-$round.*.json" -delete
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}' >>"$WORK/create-$side"
}
log "create: $CREATE_ROUNDS round(s) of $CREATES parallel creates a side"
for ((round = 1; round <= CREATE_ROUNDS; round++)); do
	for side in direct mtswarm; do
		create_round "$side" "$round"
		log "  round $round ${LABEL[$side]}: $(tail -n1 "$WORK/create-$side") s"
	done
done
# Where mtswarm put its creates (the direct ones are all on $DIRECT).
declare -A PLACED
for engine in "${ENGINES[@]}"; do
	PLACED[$engine]=$(engine_docker "$engine" ps -aq --filter "label=mtswarm-bench.run=$RUN_ID" | wc -l)
done
PLACED[$DIRECT]=$((PLACED[$DIRECT] - CREATES * CREATE_ROUNDS))
for engine in "${ENGINES[@]}"; do PLACED[$engine]=$((PLACED[$engine] - PER_NODE)); done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------------------
# Results

median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { cut -d' ' -f"$2" "$1" | median; }
rounds() { cut -d' ' -f"$2" "$1" | paste -sd' '; }
fmt() { awk -v v="$1" 'BEGIN {if (v == "") print "–"; else if (v >= 100) printf "%.0f\n", v; else if (v >= 10) printf "%.1f\n", v; else printf "%.2f\n", v}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "–"; else printf "%.2f\n", a / b}'; }
per_round() { # SIDE: each of its rounds against the direct round just before it
	paste -d' ' <(cut -d' ' -f1 "$WORK/res-$1") <(cut -d' ' -f1 "$WORK/res-direct") | awk '$2 > 0 {printf "%.2f\n", $1 / $2}'
}

LIST_RATIO=$(per_round mtswarm | median | awk '{printf "%.2f", $1}')
TENANT_RATIO=$(per_round tenant | median | awk '{printf "%.2f", $1}')
TENANT_RATIO_MEDIANS=$(ratio "$(col "$WORK/res-tenant" 1)" "$(col "$WORK/res-direct" 1)")
LIST_RATIO_MEDIANS=$(ratio "$(col "$WORK/res-mtswarm" 1)" "$(col "$WORK/res-direct" 1)")
CREATE_RATIO=$(ratio "$(median <"$WORK/create-mtswarm")" "$(median <"$WORK/create-direct")")
placed_list=$(for engine in "${ENGINES[@]}"; do printf '%s %s, ' "${NAME[$engine]}" "${PLACED[$engine]}"; done)
placed_list=${placed_list%, }

TABLE=$(
	echo "| measurement | direct: ${NAME[$DIRECT]} | mtswarm: ${#ENGINES[@]} nodes | ratio mtswarm/direct |"
	echo "|---|---:|---:|---:|"
	echo "| GET $LIST, req/s | $(fmt "$(col "$WORK/res-direct" 1)") | $(fmt "$(col "$WORK/res-mtswarm" 1)") | **$LIST_RATIO** (ratio of the medians $LIST_RATIO_MEDIANS) |"
	echo "| GET $LIST, mean latency (ms) | $(fmt "$(col "$WORK/res-direct" 2)") | $(fmt "$(col "$WORK/res-mtswarm" 2)") | $(ratio "$(col "$WORK/res-mtswarm" 2)" "$(col "$WORK/res-direct" 2)") |"
	echo "| containers in one answer | $DIRECT_ITEMS | $GW_ITEMS | $(ratio "$GW_ITEMS" "$DIRECT_ITEMS") |"
	echo "| the same list as tenant bench, req/s | $(fmt "$(col "$WORK/res-direct" 1)") | $(fmt "$(col "$WORK/res-tenant" 1)") | **$TENANT_RATIO** (ratio of the medians $TENANT_RATIO_MEDIANS) |"
	echo "| the same list as tenant bench, mean latency (ms) | $(fmt "$(col "$WORK/res-direct" 2)") | $(fmt "$(col "$WORK/res-tenant" 2)") | $(ratio "$(col "$WORK/res-tenant" 2)" "$(col "$WORK/res-direct" 2)") |"
	echo "| containers in the tenant's answer | $DIRECT_ITEMS | $TENANT_ITEMS | $(ratio "$TENANT_ITEMS" "$DIRECT_ITEMS") |"
	echo "| $CREATES parallel creates, wall time (s) | $(fmt "$(median <"$WORK/create-direct")") | $(fmt "$(median <"$WORK/create-mtswarm")") | **$CREATE_RATIO** |"
	echo "| mtswarm VmRSS after the list benchmark (MB) | – | $RSS_MB | – |"
)

QUICK_NOTE=''
((QUICK == 0)) || QUICK_NOTE=' (--quick smoke run: not a measurement)'
holds=$(for engine in "${ENGINES[@]}"; do printf '%s %s, ' "${NAME[$engine]}" "${HOLDS[$engine]}"; done)
{
	echo "# Cluster benchmark: mtswarm over ${#ENGINES[@]} engines against one engine directly"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')$QUICK_NOTE; \`bench/cluster.sh$( ((QUICK == 0)) || echo ' --quick')\`"
	echo "- Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -r);" \
		"wrk, mtswarm and the three dockerds share them. Load average before the run: $LOAD_BEFORE; after: $LOAD_AFTER."
	echo "- Engines: Docker $ENGINE_VERSION, nodes://$NODES; the direct side is ${NAME[$DIRECT]} at tcp://$DIRECT." \
		"mtswarm $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)')," \
		"binary built $BIN_BUILT, default strategy (spread) and log level; one with SWARM_MULTI_TENANT=false, and one" \
		"multi-tenant (token file) for the tenant's list."
	echo "- Containers: $PER_NODE created (not started) directly on each engine in ${FILL_S}s, labelled" \
		"mtswarm-bench.run=$RUN_ID and owned by tenant bench (its label and names); the engines then held ${holds%, } ($TOTAL in all, other sessions' containers included)."
	echo "- List: \`GET $LIST\` with wrk -t $THREADS -c $CONNECTIONS -d $DURATION --timeout $TIMEOUT, $ROUNDS round(s) a side" \
		"after a 1s warm-up, the sides alternated; direct answered $DIRECT_ITEMS containers ($DIRECT_BYTES bytes), mtswarm" \
		"$GW_ITEMS ($GW_BYTES bytes), i.e. every engine's, the tenant $TENANT_ITEMS ($TENANT_BYTES bytes), its own. Rates and latencies are the medians of the rounds; the ratio is the" \
		"median of the per-round ratios (each mtswarm round against the direct round just before it)."
	echo "- Creates: $CREATE_ROUNDS round(s) a side of $CREATES \`POST $API/containers/create\` at once (one curl --parallel," \
		"raw HTTP, busybox \`true\`), wall time of the whole round, median of the rounds; mtswarm placed its creates on:" \
		"$placed_list."
	echo
	echo "**Ratios mtswarm/direct: list req/s $LIST_RATIO (mtswarm answers ${#ENGINES[@]}x the containers), as a tenant $TENANT_RATIO; create wall time $CREATE_RATIO; mtswarm's RSS $RSS_MB MB.**" \
		"The peer: Swarm classic answers a list of 100 containers from its cache at about 20x the engine's rate, in about 25 MB."
	echo
	echo "$TABLE"
	echo
	echo "## Details"
	echo
	echo "- list, direct: req/s per round $(rounds "$WORK/res-direct" 1); mean latency (ms) $(rounds "$WORK/res-direct" 2)"
	echo "- list, mtswarm: req/s per round $(rounds "$WORK/res-mtswarm" 1); mean latency (ms) $(rounds "$WORK/res-mtswarm" 2)"
	echo "- list, mtswarm as a tenant: req/s per round $(rounds "$WORK/res-tenant" 1); mean latency (ms) $(rounds "$WORK/res-tenant" 2)"
	echo "- list, mtswarm/direct round by round: $(per_round mtswarm | paste -sd' ')"
	echo "- list, tenant/direct round by round: $(per_round tenant | paste -sd' ')"
	echo "- creates, direct: seconds per round $(paste -sd' ' "$WORK/create-direct")"
	echo "- creates, mtswarm: seconds per round $(paste -sd' ' "$WORK/create-mtswarm")"
	if ((WRK_BAD)); then
		echo
		echo "**Some wrk runs had errors or non-2xx responses: those rates are not valid.**"
	fi
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"

echo
echo "$TABLE" | sed '2d; s/^| //; s/ |$//; s/ | /\t/g; s/\*\*//g' | column -t -s $'\t' | sed '1{p; s/./-/g}'
echo
log "ratios mtswarm/direct: list $LIST_RATIO, as a tenant $TENANT_RATIO, create $CREATE_RATIO; RSS $RSS_MB MB; results written to ${RESULTS#"$ROOT"/}"
((WRK_BAD == 0)) || die "some wrk runs had errors or non-2xx responses (see $RESULTS)"
