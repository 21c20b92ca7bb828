#!/usr/bin/env bash
# Issue 4's benchmark: `docker ps` for a tenant with 50 containers while other tenants hold 1,000, through
# mtswarm, against the engine listing those 50 directly.
#
#   bench/isolation.sh           full run: 1,000 other containers + 50 of the tenant (about 3-4 minutes)
#   bench/isolation.sh --quick   smoke run: 100 others + 10 own, wrk -d 1s, one round
#
# On the engine (tcp://127.0.0.1:23750, the test bed's node0) it creates, directly through the engine API
# (not through mtswarm, for speed; created, never started):
#   - $BENCH_OTHERS containers of $BENCH_OTHER_TENANTS other tenants, labelled mtswarm.tenant=bench-other-K,
#     named as mtswarm would name them (t<len>-<tenant>-<name>);
#   - $BENCH_OWN containers of the tenant bench-iso, labelled mtswarm.tenant=bench-iso, named t9-bench-iso-cN.
# All of them also carry mtswarm-bench-iso=<run id>; only those are removed at the end (and on failure or ^C).
# It starts its own mtswarm (multi-tenancy on, a token file with one token for bench-iso) in front of the
# engine's unix socket, checks that every side answers the expected containers, then measures with wrk, same
# threads/connections/duration on every side:
#   (a) direct:       GET /v1.41/containers/json?all=1&filters={"label":["mtswarm.tenant=bench-iso"]} on the engine
#   (b) mtswarm:      GET /v1.41/containers/json?all=1 as tenant bench-iso (X-Auth-Token, X-Auth-TenantId)
#   (c) direct (all): GET /v1.41/containers/json?all=1 on the engine, every container (context)
# (a) and (b) alternate round by round; (c) runs on its own afterwards (its slow requests, still being answered
# by dockerd when wrk stops, would slow whichever side came next). Before every wrk run the script waits
# $BENCH_SETTLE for the previous run's unfinished requests. Before the others are created (BENCH_BEFORE=1),
# (a) and (b) are also measured with only the tenant's containers present, to show what the others cost.
# Reports req/s (median of the rounds), mean latency, the CPU time per request of mtswarm and of dockerd
# (/proc/PID/stat; dockerd's includes whatever else the engine did meanwhile), and the ratio b/a as the median
# of the per-round ratios (each round's b against the a measured just before it: robust to the load of a
# shared machine drifting) next to the ratio of the medians; writes bench/results-isolation.md.
#
# Environment (defaults in brackets; --quick changes those marked *):
#   BENCH_OTHERS [1000*]  BENCH_OWN [50*]  BENCH_OTHER_TENANTS [20]  BENCH_TENANT [bench-iso]
#   BENCH_DURATION [3s*]  BENCH_ROUNDS [7*]  BENCH_CONNECTIONS [16]  BENCH_THREADS [2]  BENCH_TIMEOUT [30s]
#   BENCH_SETTLE [1*]: seconds of quiet before every wrk run
#   BENCH_BEFORE [1]: measure (a) and (b) before the others exist   BENCH_PARALLEL [4]: create/remove workers
#   BENCH_ENGINE_TCP [127.0.0.1:23750]  BENCH_GATEWAY_ENGINE [unix:///var/run/docker.sock] (the same engine)
#   BENCH_IMAGE [busybox:latest]  BENCH_DOCKER [/usr/local/bin/docker]  BENCH_LOG_LEVEL [unset: mtswarm's default]
#   BENCH_RESULTS [bench/results-isolation.md]  BENCH_KEEP_WORK [0]: keep the work dir (wrk output, gateway log)
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
		printf 'isolation: unknown argument %q (try --help)\n' "$arg" >&2
		exit 2
		;;
	esac
done

if ((QUICK)); then
	OTHERS=${BENCH_OTHERS:-100} OWN=${BENCH_OWN:-10} DURATION=${BENCH_DURATION:-1s} ROUNDS=${BENCH_ROUNDS:-1}
	SETTLE=${BENCH_SETTLE:-0.2}
else
	OTHERS=${BENCH_OTHERS:-1000} OWN=${BENCH_OWN:-50} DURATION=${BENCH_DURATION:-3s} ROUNDS=${BENCH_ROUNDS:-7}
	SETTLE=${BENCH_SETTLE:-1}
fi
OTHER_TENANTS=${BENCH_OTHER_TENANTS:-20}
TENANT=${BENCH_TENANT:-bench-iso}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
TIMEOUT=${BENCH_TIMEOUT:-30s}
BEFORE=${BENCH_BEFORE:-1}
PARALLEL=${BENCH_PARALLEL:-4}
ENGINE_TCP=${BENCH_ENGINE_TCP:-127.0.0.1:23750}
GATEWAY_ENGINE=${BENCH_GATEWAY_ENGINE:-unix:///var/run/docker.sock}
IMAGE=${BENCH_IMAGE:-busybox:latest}
DOCKER=${BENCH_DOCKER:-/usr/local/bin/docker}
LOG_LEVEL=${BENCH_LOG_LEVEL:-}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results-isolation.md}
KEEP_WORK=${BENCH_KEEP_WORK:-0}
API=/v1.41
RUN_ID=$(date +%s)-$$
RUN_LABEL=mtswarm-bench-iso

[[ $SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || {
	printf 'isolation: BENCH_SETTLE must be a number of seconds, not %q\n' "$SETTLE" >&2
	exit 2
}
for n in OTHERS OWN OTHER_TENANTS CONNECTIONS THREADS ROUNDS PARALLEL; do
	[[ ${!n} =~ ^[0-9]+$ ]] || {
		printf 'isolation: BENCH_%s must be a number, not %q\n' "$n" "${!n}" >&2
		exit 2
	}
done
((OWN > 0 && OTHER_TENANTS > 0 && ROUNDS > 0 && PARALLEL > 0)) || {
	echo 'isolation: BENCH_OWN, BENCH_OTHER_TENANTS, BENCH_ROUNDS and BENCH_PARALLEL must be at least 1' >&2
	exit 2
}

# The caller's client settings must not leak into the docker CLI calls: every call says -H and --config.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION DOCKER_CUSTOM_HEADERS
export DOCKER_CLI_HINTS=false

log() { printf 'isolation: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
	printf 'isolation: error: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------------------------------------
# Cleanup: the gateway we started (by pid), the containers we created (by run label), the work dir.

WORK=$(mktemp -d /tmp/mtswarm-bench-iso.XXXXXX)
GW_PID=
engine_docker() { "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$ENGINE_TCP" "$@"; }
remove_run_containers() {
	local ids left
	ids=$(engine_docker ps -aq --filter "label=$RUN_LABEL=$RUN_ID" 2>/dev/null) || true
	[ -n "$ids" ] || return 0
	log "removing $(wc -w <<<"$ids") containers labelled $RUN_LABEL=$RUN_ID ($PARALLEL workers, 100 a batch)"
	xargs -n 100 -P "$PARALLEL" "$DOCKER" --config "$WORK/cfg-engine" -H "tcp://$ENGINE_TCP" rm -f \
		<<<"$ids" >/dev/null 2>>"$WORK/rm.err" || true
	left=$(engine_docker ps -aq --filter "label=$RUN_LABEL=$RUN_ID" 2>/dev/null | wc -l) || true
	((${left:-0} == 0)) || log "WARNING: $left containers labelled $RUN_LABEL=$RUN_ID are left: $(head -n2 "$WORK/rm.err")"
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then
		kill -TERM "$GW_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$GW_PID" 2>/dev/null || true
	fi
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
for tool in curl awk python3 ss; do command -v "$tool" >/dev/null || die "$tool is missing"; done
if [ "$(curl -s -m 5 "http://$ENGINE_TCP/_ping" || true)" != OK ]; then
	die "no Docker engine answers on tcp://$ENGINE_TCP; start the test bed first: scripts/testbed.sh up"
fi
ENGINE_VERSION=$(engine_docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') ||
	die "docker version against tcp://$ENGINE_TCP failed"
engine_docker image inspect "$IMAGE" >/dev/null 2>&1 || die "the engine has no image $IMAGE; scripts/testbed.sh up imports it"
[ -x "$BIN" ] || die "no mtswarm binary at $BIN (cargo build --release)"
# Others build in the same checkout: run a copy, so that the binary cannot change under the run.
BIN_BUILT=$(date -u -r "$BIN" '+%F %T UTC')
cp "$BIN" "$WORK/mtswarm"
BIN=$WORK/mtswarm

# The tenant's containers must be exactly ours: a leftover of a killed run would change the counts (and its
# names would collide with ours).
stale=$(engine_docker ps -aq --filter "label=mtswarm.tenant=$TENANT" | wc -l)
((stale == 0)) || die "the engine already has $stale containers labelled mtswarm.tenant=$TENANT (a killed run?);" \
	"remove them first: docker -H tcp://$ENGINE_TCP ps -aq --filter label=mtswarm.tenant=$TENANT | xargs docker -H tcp://$ENGINE_TCP rm -f"

CLK_TCK=$(getconf CLK_TCK)
ENGINE_PID=$(ss -Hltnp "sport = :${ENGINE_TCP##*:}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || true
[ -n "$ENGINE_PID" ] || log "WARNING: cannot tell dockerd's pid (ss): no engine CPU per request"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_BEFORE%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
	log "WARNING: load average $LOAD_BEFORE on $(nproc) CPUs before the run: the numbers will be noisy"
fi

# ---------------------------------------------------------------------------------------------------------
# Creating containers: one curl, $PARALLEL transfers at a time, one POST /containers/create each.

# create_containers WHAT COUNT TENANT_OF_I NAME_OF_I: TENANT_OF_I and NAME_OF_I are functions of the index
# 1..COUNT; every container gets the run label and mtswarm.tenant=<its tenant>.
create_containers() {
	local what=$1 count=$2 tenant_of=$3 name_of=$4 i t first cfg=$WORK/create-$1.cfg codes=$WORK/create-$1.codes bad
	((count > 0)) || return 0
	: >"$cfg"
	for ((i = 1; i <= count; i++)); do
		t=$("$tenant_of" "$i")
		((i == 1)) || echo next >>"$cfg"
		# Names and tenant ids here are [a-zA-Z0-9_.-]: nothing to escape in the URL or the JSON.
		printf '%s\n' \
			"url = \"http://$ENGINE_TCP$API/containers/create?name=$("$name_of" "$i")\"" \
			'header = "Content-Type: application/json"' \
			"data = \"{\\\"Image\\\": \\\"$IMAGE\\\", \\\"Cmd\\\": [\\\"true\\\"], \\\"Labels\\\": {\\\"mtswarm.tenant\\\": \\\"$t\\\", \\\"$RUN_LABEL\\\": \\\"$RUN_ID\\\"}}\"" \
			"output = \"$WORK/create-$what.$i.json\"" \
			'write-out = "%{http_code} %{url}\n"' >>"$cfg"
	done
	curl -sS --parallel --parallel-max "$PARALLEL" -K "$cfg" >"$codes" 2>"$WORK/create-$what.err" || true
	bad=$(awk '$1 != 201' "$codes" | wc -l)
	if ((bad > 0)) || (($(wc -l <"$codes") != count)); then
		first=$(awk '$1 != 201 {print; exit}' "$codes")
		die "creating $what containers: $(grep -c '^201 ' "$codes" || true) of $count answered 201;" \
			"first failure: ${first:-none answered} $(head -c 300 "$WORK/create-$what.${first##*-c}.json" 2>/dev/null || true)" \
			"$(head -c 300 "$WORK/create-$what.err")"
	fi
	find "$WORK" -maxdepth 1 -name "create-$what.*.json" -delete
}
own_tenant() { echo "$TENANT"; }
own_name() { echo "t${#TENANT}-$TENANT-c$1"; }
other_tenant() { echo "bench-other-$((($1 - 1) % OTHER_TENANTS + 1))"; }
other_name() {
	local t
	t=$(other_tenant "$1")
	echo "t${#t}-$t-$RUN_ID-c$1"
}

# ---------------------------------------------------------------------------------------------------------
# The gateway: multi-tenancy on (the default), a token file with one token for the tenant.

TOKEN=$(cd "$WORK" && "$BIN" tokens add --tenant "$TENANT" --file "$WORK/tokens.json" 2>"$WORK/tokens.err") ||
	die "mtswarm tokens add failed: $(cat "$WORK/tokens.err")"
GW_ARGS=()
[ -z "$LOG_LEVEL" ] || GW_ARGS=(--log-level "$LOG_LEVEL")
log "starting mtswarm (target/release/mtswarm, built $BIN_BUILT) with a token file for tenant $TENANT"
(cd "$WORK" && exec env SWARM_TOKENS_FILE="$WORK/tokens.json" "$BIN" manage -H tcp://127.0.0.1:0 "${GW_ARGS[@]}" \
	"$GATEWAY_ENGINE") </dev/null >"$WORK/mtswarm.out" 2>"$WORK/mtswarm.log" &
GW_PID=$!
deadline=$((SECONDS + 30))
until GW_ADDR=$(sed -n 's|^mtswarm: listening on tcp://||p' "$WORK/mtswarm.out" | head -n1) && [ -n "$GW_ADDR" ]; do
	if ! kill -0 "$GW_PID" 2>/dev/null; then
		tail -n 20 "$WORK/mtswarm.log" >&2 || true
		die "mtswarm exited during start-up; log: $WORK/mtswarm.log"
	fi
	((SECONDS < deadline)) || die "mtswarm did not say 'listening on' within 30s; log: $WORK/mtswarm.log"
	sleep 0.05
done

# ---------------------------------------------------------------------------------------------------------
# Sides: URL, label, extra headers (for wrk and curl), the pid whose CPU time is charged to the side.

FILTER=$(python3 -c 'import json, sys, urllib.parse; print(urllib.parse.quote(json.dumps({"label": ["mtswarm.tenant=" + sys.argv[1]]}, separators=(",", ":")), safe=""))' "$TENANT")
declare -A URL LABEL HDR GPID
URL[direct]="http://$ENGINE_TCP$API/containers/json?all=1&filters=$FILTER"
LABEL[direct]="(a) direct, label filter"
URL[mtswarm]="http://$GW_ADDR$API/containers/json?all=1"
LABEL[mtswarm]="(b) mtswarm, tenant $TENANT"
HDR[mtswarm]="X-Auth-Token: $TOKEN"$'\n'"X-Auth-TenantId: $TENANT"
GPID[mtswarm]=$GW_PID
URL[all]="http://$ENGINE_TCP$API/containers/json?all=1"
LABEL[all]="(c) direct, every container"
headers() { # side: curl/wrk arguments, one a line
	local h
	while IFS= read -r h; do [ -z "$h" ] || printf -- '-H\n%s\n' "$h"; done <<<"${HDR[$1]:-}"
}

# check SIDE PHASE EXPECTED: GET the side's URL once; it must answer 200 and a JSON array of EXPECTED
# containers (at least EXPECTED for "all"), each the tenant's, under the names its client should see.
# Records "items bytes" in $WORK/check-SIDE-PHASE.
check() {
	local side=$1 phase=$2 expected=$3 hdr=() code out
	mapfile -t hdr < <(headers "$side")
	out=$WORK/answer-$side-$phase.json
	code=$(curl -sS -o "$out" -w '%{http_code}' "${hdr[@]}" "${URL[$side]}") || die "curl to ${LABEL[$side]} failed"
	[ "$code" = 200 ] || die "${LABEL[$side]}: GET ${URL[$side]} answered $code: $(head -c 300 "$out")"
	python3 - "$side" "$expected" "$TENANT" "$out" >"$WORK/check-$side-$phase" <<-'EOF' || die "${LABEL[$side]} ($phase): $(cat "$WORK/check-$side-$phase")"
		import json, os, re, sys
		side, expected, tenant, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
		items = json.load(open(path))
		if not isinstance(items, list):
		    sys.exit("not a JSON array")
		if side == "all":
		    if len(items) < expected:
		        sys.exit(f"{len(items)} containers, expected at least {expected}")
		else:
		    if len(items) != expected:
		        sys.exit(f"{len(items)} containers, expected {expected}")
		    # mtswarm shows the tenant its own names; the engine shows the scoped ones.
		    want = re.compile(r"^/c\d+$" if side == "mtswarm" else r"^/t%d-%s-c\d+$" % (len(tenant), re.escape(tenant)))
		    for c in items:
		        names = c.get("Names") or []
		        if not names or not all(want.match(n) for n in names):
		            sys.exit(f"unexpected names {names}")
		        owner = (c.get("Labels") or {}).get("mtswarm.tenant")
		        if owner not in (None, tenant):
		            sys.exit(f"container {names} belongs to {owner}")
		print(len(items), os.path.getsize(path))
	EOF
}

# ---------------------------------------------------------------------------------------------------------
# wrk: one run of DURATION against a side; per round, one line "req/s latency_ms gateway_µs/req engine_µs/req
# machine_busy_% requests" appended to $WORK/res-PHASE-SIDE.

cpu_ticks() { # pid (or empty): user+system clock ticks
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 0
	sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
machine_ticks() { awk '$1 == "cpu" {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat; }
WRK_BAD=0 WRK_N=0
run_wrk() { # side phase duration [warmup]
	local side=$1 phase=$2 dur=$3 warm=${4:-} out hdr=() g0 g1 e0 e1 m0 m1 non2xx errs
	out=$WORK/wrk-$phase-$side-$((++WRK_N))${warm:+-warmup}.txt
	mapfile -t hdr < <(headers "$side")
	sleep "$SETTLE"
	g0=$(cpu_ticks "${GPID[$side]:-}") e0=$(cpu_ticks "$ENGINE_PID") m0=$(machine_ticks)
	wrk -t "$THREADS" -c "$CONNECTIONS" -d "$dur" --timeout "$TIMEOUT" "${hdr[@]}" "${URL[$side]}" >"$out" 2>&1 ||
		die "wrk against ${LABEL[$side]} failed: $(tail -n3 "$out")"
	g1=$(cpu_ticks "${GPID[$side]:-}") e1=$(cpu_ticks "$ENGINE_PID") m1=$(machine_ticks)
	non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
	errs=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$out")
	if [ -n "$non2xx" ] || [ -n "$errs" ]; then
		log "WARNING: ${LABEL[$side]}: ${non2xx:+$non2xx non-2xx responses }${errs:+socket errors: $errs}"
		WRK_BAD=1
	fi
	[ -z "$warm" ] || return 0
	awk -v g="${g0:-}:${g1:-}" -v e="${e0:-}:${e1:-}" -v m0="$m0" -v m1="$m1" -v hz="$CLK_TCK" '
		function ms(v) { # wrk latency "950.00us", "181.76ms", "1.23s", "1.02m"
			if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; return v * 1000 }
		function per(x, n,  p) { split(x, p, ":"); return (p[1] == "" || n == 0) ? "-" : sprintf("%.0f", (p[2] - p[1]) / hz * 1e6 / n) }
		/^Requests\/sec:/ { rps = $2 }
		$1 == "Latency" && lat == "" { lat = ms($2) }
		/requests in/ { n = $1 }
		END {
			if (rps == "" || n == "") exit 1
			split(m0, a, " "); split(m1, b, " ")
			printf "%s %.1f %s %s %.0f %d\n", rps, lat, per(g, n), per(e, n), 100 * (b[1] - a[1]) / (b[2] - a[2]), n }' \
		"$out" >>"$WORK/res-$phase-$side" || die "no Requests/sec in wrk output: $out"
}
# measure PHASE SIDE...: a 1s warm-up a side, then ROUNDS rounds, the sides alternated (the rounds of one side
# are line N of $WORK/res-PHASE-SIDE).
measure() {
	local phase=$1 side round
	shift
	log "$phase: warm-up (1s a side), then $ROUNDS round(s) of $DURATION a side, wrk -t $THREADS -c $CONNECTIONS"
	for side in "$@"; do run_wrk "$side" "$phase" 1s warmup; done
	for ((round = 1; round <= ROUNDS; round++)); do
		for side in "$@"; do
			run_wrk "$side" "$phase" "$DURATION"
			log "  round $round ${LABEL[$side]}: $(tail -n1 "$WORK/res-$phase-$side" | cut -d' ' -f1) req/s," \
				"$(tail -n1 "$WORK/res-$phase-$side" | cut -d' ' -f2) ms"
		done
	done
}

# ---------------------------------------------------------------------------------------------------------
# The run

log "creating $OWN containers of tenant $TENANT (labelled $RUN_LABEL=$RUN_ID)"
create_containers own "$OWN" own_tenant own_name
BEFORE_TOTAL=
if ((BEFORE)); then
	BEFORE_TOTAL=$(engine_docker ps -aq | wc -l)
	check direct before "$OWN"
	check mtswarm before "$OWN"
	measure before direct mtswarm
fi
log "creating $OTHERS containers of $OTHER_TENANTS other tenants ($PARALLEL at a time)"
t0=$SECONDS
create_containers others "$OTHERS" other_tenant other_name
CREATE_S=$((SECONDS - t0))
log "  created in ${CREATE_S}s"
TOTAL=$(engine_docker ps -aq | wc -l)
check direct after "$OWN"
check mtswarm after "$OWN"
check all after "$((OWN + OTHERS))"
measure after direct mtswarm
measure after all
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------------------
# Results

median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { # phase side column: the median of the rounds ("-" where not measured)
	local f=$WORK/res-$1-$2
	[ -s "$f" ] || {
		echo -
		return
	}
	awk -v c="$3" '$c != "-" {print $c}' "$f" | median | awk '{print ($0 == "" ? "-" : $0)}'
}
rounds() { [ -s "$WORK/res-$1-$2" ] && awk -v c="$3" '{printf "%s%s", (NR > 1 ? " " : ""), $c}' "$WORK/res-$1-$2"; }
fmt() { awk -v v="$1" 'BEGIN {if (v == "-" || v == "") print "–"; else if (v >= 100) printf "%.0f\n", v; else printf "%.1f\n", v}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || a == "" || b == "" || b == 0) print "–"; else printf "%.2f\n", a / b}'; }

# per_round PHASE B A: B's req/s / A's req/s, round by round (A measured just before B), one a line.
per_round() {
	[ -s "$WORK/res-$1-$2" ] && [ -s "$WORK/res-$1-$3" ] || return 0
	paste -d' ' <(cut -d' ' -f1 "$WORK/res-$1-$2") <(cut -d' ' -f1 "$WORK/res-$1-$3") | awk '$2 > 0 {printf "%.2f\n", $1 / $2}'
}
# paired PHASE B A: the median of the per-round ratios ("–" where not measured).
paired() { per_round "$@" | median | awk '{v = sprintf("%.2f", $1)} END {print (v == "" ? "–" : v)}'; }
RATIO_AFTER=$(paired after mtswarm direct)
RATIO_AFTER_MEDIANS=$(ratio "$(col after mtswarm 1)" "$(col after direct 1)")
row() { # phase side "what is listed" "ratio"
	local p=$1 s=$2
	echo "| ${LABEL[$s]} | $3 | $(cut -d' ' -f1 "$WORK/check-$s-$p") | $(fmt "$(col "$p" "$s" 1)") |" \
		"$(fmt "$(col "$p" "$s" 2)") | $(fmt "$(col "$p" "$s" 3)") | $(fmt "$(col "$p" "$s" 4)") | $4 |"
}
TABLE=$(
	echo "| side | engine holds | containers answered | req/s | mean latency (ms) | mtswarm CPU µs/req | dockerd CPU µs/req | ratio |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|"
	row after direct "$TOTAL" "1.00"
	row after mtswarm "$TOTAL" "**$RATIO_AFTER** (b/a; ratio of the medians $RATIO_AFTER_MEDIANS)"
	row after all "$TOTAL" "$(ratio "$(col after all 1)" "$(col after direct 1)") (c/a)"
	if ((BEFORE)); then
		row before direct "$BEFORE_TOTAL (before the others)" "$(ratio "$(col before direct 1)" "$(col after direct 1)") (vs a)"
		row before mtswarm "$BEFORE_TOTAL (before the others)" "$(paired before mtswarm direct) (b/a before); $(ratio "$(col before mtswarm 1)" "$(col after mtswarm 1)") (vs b)"
	fi
)

QUICK_NOTE=''
((QUICK == 0)) || QUICK_NOTE=' (--quick smoke run: not a measurement)'
DETAILS=()
for p in before after; do
	for s in direct mtswarm all; do
		[ -s "$WORK/res-$p-$s" ] || continue
		d="- $p, ${LABEL[$s]}: $(cut -d' ' -f1 "$WORK/check-$s-$p") containers, $(cut -d' ' -f2 "$WORK/check-$s-$p") bytes;"
		d+=" req/s per round $(rounds "$p" "$s" 1); mean latency (ms) $(rounds "$p" "$s" 2);"
		[ -z "${GPID[$s]:-}" ] || d+=" mtswarm µs/req $(rounds "$p" "$s" 3);"
		DETAILS+=("$d dockerd µs/req $(rounds "$p" "$s" 4); machine busy % $(rounds "$p" "$s" 5)")
	done
	[ -z "$(per_round "$p" mtswarm direct)" ] ||
		DETAILS+=("- $p, b/a round by round: $(per_round "$p" mtswarm direct | paste -sd' ')")
done
{
	echo "# Tenant isolation benchmark: a tenant's \`docker ps\` among other tenants' containers (issue 4)"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')$QUICK_NOTE; \`bench/isolation.sh$( ((QUICK == 0)) || echo ' --quick')\`"
	echo "- Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -r);" \
		"wrk, mtswarm and dockerd share them. Load average before the run: $LOAD_BEFORE; after: $LOAD_AFTER."
	echo "- Engine: Docker $ENGINE_VERSION at tcp://$ENGINE_TCP; mtswarm $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)')," \
		"binary built $BIN_BUILT, multi-tenancy on, token file, log level ${LOG_LEVEL:-default}, to $GATEWAY_ENGINE."
	echo "- Containers (created, not started, directly on the engine in ${CREATE_S}s with $PARALLEL parallel creates):" \
		"$OWN of tenant \`$TENANT\`, $OTHERS of $OTHER_TENANTS other tenants (\`bench-other-K\`);" \
		"the engine held $TOTAL in all (other sessions' containers included)."
	echo "- Client: wrk -t $THREADS -c $CONNECTIONS -d $DURATION --timeout $TIMEOUT, $ROUNDS round(s) a side after a 1s warm-up," \
		"${SETTLE}s of quiet before every run; (a) and (b) alternated round by round, (c) on its own after them." \
		"Rates, latencies and CPU times are the medians of the rounds (CPU from /proc/PID/stat; dockerd's counts" \
		"everything the engine did meanwhile, other sessions' work included). The ratio b/a is the median of the" \
		"per-round ratios (each b against the a just before it), with the ratio of the medians beside it."
	echo "- (a) \`GET $API/containers/json?all=1&filters={\"label\":[\"mtswarm.tenant=$TENANT\"]}\` on the engine;" \
		"(b) \`GET $API/containers/json?all=1\` through mtswarm with \`X-Auth-Token\` and \`X-Auth-TenantId: $TENANT\`" \
		"(mtswarm adds the same label filter and rewrites the names); (c) \`GET $API/containers/json?all=1\` on the engine."
	echo
	echo "**Ratio b/a (mtswarm listing the tenant's $OWN / the engine listing those $OWN directly, with $OTHERS other tenants' containers present): $RATIO_AFTER**"
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
echo "$TABLE" | sed '2d; s/^| //; s/ |$//; s/ | /\t/g; s/\*\*//g' | column -t -s $'\t' | sed '1{p; s/./-/g}'
echo
log "ratio b/a: $RATIO_AFTER; results written to ${RESULTS#"$ROOT"/}"
((WRK_BAD == 0)) || die "some wrk runs had errors or non-2xx responses (see $RESULTS)"
