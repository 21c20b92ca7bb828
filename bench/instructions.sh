#!/usr/bin/env bash
# User-space instructions per forwarded request, counted by callgrind: a measure that does not drift with the
# machine's load (this VM has no hardware counters, and its CPU time per request moves by a third between hours).
#
#   bench/instructions.sh [BIN] [N]    BIN: an mtswarm binary [target/release/mtswarm]; N requests [300]
#
# For vanilla mtswarm (SWARM_MULTI_TENANT=false) and a tenant's mtswarm (a token file), one at a time under
# `valgrind --tool=callgrind` in front of the test bed's default engine (unix:///var/run/docker.sock): creates one
# container of the tenant, makes 50 warm-up inspects of it over one keep-alive connection, zeroes the counters, makes
# N more, and prints the instructions counted meanwhile (every thread, user space) divided by N. The container is
# removed at the end. Needs valgrind (installed from Debian if missing), python3, curl; the test bed up.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/release/mtswarm}
N=${2:-300}
[ -x "$BIN" ] || { echo "instructions: no binary at $BIN" >&2; exit 2; }
if ! command -v valgrind >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends valgrind >/dev/null
fi
WORK=$(mktemp -d /tmp/mtswarm-instructions.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 1
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
cp "$BIN" "$WORK/mtswarm"
TOKEN=$(cd "$WORK" && ./mtswarm tokens add --tenant bench --file "$WORK/tokens.json" 2>/dev/null)

# measure MODE: prints "MODE: I instructions/request"
measure() {
	local mode=$1 env port pid cid dir=$WORK/$1
	mkdir -p "$dir"
	if [ "$mode" = vanilla ]; then env=SWARM_MULTI_TENANT=false; else env=SWARM_TOKENS_FILE=$WORK/tokens.json; fi
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	(cd "$dir" && exec env "$env" valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
		"$WORK/mtswarm" manage -H "tcp://127.0.0.1:$port" unix:///var/run/docker.sock) >"$dir/out" 2>"$dir/log" &
	pid=$!
	PIDS+=("$pid")
	for _ in $(seq 200); do grep -q "listening on" "$dir/out" 2>/dev/null && break; sleep 0.3; done
	grep -q "listening on" "$dir/out" || { echo "instructions: mtswarm ($mode) did not start; $dir/log" >&2; exit 1; }
	python3 - "$port" "$TOKEN" "$N" "$pid" <<'PY'
import http.client, json, subprocess, sys
port, token, n, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
h = {"X-Auth-Token": token, "X-Auth-TenantId": "bench"}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
def call(method, path, body=None):
    hdrs = dict(h, **({"Content-Type": "application/json"} if body else {}))
    c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    return r.status, r.read()
status, body = call("POST", "/v1.41/containers/create", json.dumps({"Image": "busybox:latest", "Cmd": ["true"], "Labels": {"mtswarm-bench": "1"}}))
assert status == 201, (status, body)
cid = json.loads(body)["Id"]
try:
    for _ in range(50):
        assert call("GET", f"/v1.41/containers/{cid}/json")[0] == 200
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    for _ in range(n):
        assert call("GET", f"/v1.41/containers/{cid}/json")[0] == 200
    subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
finally:
    call("DELETE", f"/v1.41/containers/{cid}?force=1")
PY
	sleep 1
	# The dump holds what was counted between zeroing and dumping: its "summary:" line (the final dump at exit is cg.out).
	awk -v n="$N" -v m="$mode" '/^summary:/ {s += $2} END {printf "%s: %.0f instructions/request (user space, %d requests)\n", m, s / n, n}' "$dir"/cg.out.*
	kill "$pid" 2>/dev/null || true
}
measure vanilla
measure tenant
