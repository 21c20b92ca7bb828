#!/usr/bin/env bash
# Idle client connections: what each costs mtswarm in memory, and when mtswarm closes it.
#
#   bench/idle.sh [N]        N connections of each kind (default 2000)
#
# Starts vanilla mtswarm (SWARM_MULTI_TENANT=false, in front of the test bed's engine at
# unix:///var/run/docker.sock) with --header-timeout $BENCH_HEADER_TIMEOUT (default 10 s), then for each kind:
#   silent      connections that send nothing;
#   half-sent   connections that send half a request's headers ("GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: ");
#   keep-alive  connections that send one whole GET /_ping, read the answer and stay open;
# opens N of them, reports mtswarm's anonymous memory before and after (RssAnon from /proc: the heap, not the binary's pages), in KB per connection, and how long
# until mtswarm had closed them all (polled every 0.1 s: the timeout, not a precise measurement), then closes
# what is left. Writes nothing to results files: paste the output where it is needed.
#
# Environment: BENCH_BIN [target/release/mtswarm]  BENCH_HEADER_TIMEOUT [10; "none" for a binary without the flag]  BENCH_GATEWAY_ENGINE [unix:///var/run/docker.sock]  BENCH_NO_BUILD
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BENCH_BIN:-$ROOT/target/release/mtswarm}
N=${1:-2000}
TIMEOUT=${BENCH_HEADER_TIMEOUT:-10}
ENGINE=${BENCH_GATEWAY_ENGINE:-unix:///var/run/docker.sock}

die() {
	printf 'idle: error: %s\n' "$*" >&2
	exit 1
}
command -v python3 >/dev/null || die "python3 is missing"
if [ -z "${BENCH_NO_BUILD:-}" ]; then
	(cd "$ROOT" && cargo build --release) >/dev/null 2>&1 || die "cargo build --release failed"
fi
WORK=$(mktemp -d /tmp/mtswarm-idle.XXXXXX)
PID=
stop() {
	[ -z "$PID" ] || kill "$PID" 2>/dev/null || true
	[ -z "$PID" ] || wait "$PID" 2>/dev/null || true
	PID=
}
trap 'stop; rm -rf "$WORK"' EXIT
# Each connection is a file descriptor of the client and of mtswarm.
ulimit -n $((N + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# A fresh mtswarm for each kind, so that no kind reuses memory another one left to malloc.
start() {
	local flag=(--header-timeout "$TIMEOUT")
	[ "$TIMEOUT" != none ] || flag=()
	(cd "$WORK" && exec env SWARM_MULTI_TENANT=false "$BIN" manage -H tcp://127.0.0.1:0 "${flag[@]}" \
		--log-level warn "$ENGINE") >"$WORK/out" 2>"$WORK/log" &
	PID=$!
	ADDR=
	for _ in $(seq 200); do
		ADDR=$(sed -n 's|^mtswarm: listening on tcp://||p' "$WORK/out")
		[ -z "$ADDR" ] || return 0
		kill -0 "$PID" 2>/dev/null || die "mtswarm exited: $(tail -n5 "$WORK/log")"
		sleep 0.05
	done
	die "mtswarm did not start"
}

echo "mtswarm $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), --header-timeout $TIMEOUT s, $N connections of each kind"
for kind in silent half-sent keep-alive; do
	start
	python3 - "$ADDR" "$N" "$PID" "$TIMEOUT" "$kind" <<'EOF'
import socket, sys, time, select

host, port = sys.argv[1].rsplit(":", 1)
n, pid, only = int(sys.argv[2]), sys.argv[3], sys.argv[5]
# "none": a binary without --header-timeout (before issue 15), which closes after 60 s.
timeout = 60.0 if sys.argv[4] == "none" else float(sys.argv[4])

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

def settle():
    # Let mtswarm take in what was sent (accept, first read), then read its RSS.
    time.sleep(1.0)
    return rss_kb()

kinds = {
    "silent": b"",
    "half-sent": b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-A: ",
    "keep-alive": b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n",
}
for kind, data in [(only, kinds[only])]:
    before = settle()
    socks = []
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.create_connection((host, int(port)))
        if data:
            s.sendall(data)
        socks.append(s)
    if kind == "keep-alive":
        for s in socks:
            got = s.recv(4096)
            assert got.startswith(b"HTTP/1.1 200"), got[:40]
    after = settle()
    per = (after - before) / n
    # Closed by mtswarm: the socket reads EOF (or a 408 and then EOF, or a reset).
    open_ = set(socks)
    closed_at = None
    deadline = t0 + timeout * 3 + 30
    poller = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
    while open_ and time.monotonic() < deadline:
        for fd, _ in poller.poll(0.1):
            s = by_fd[fd]
            try:
                if s.recv(4096):
                    continue
            except OSError:
                pass
            poller.unregister(fd)
            open_.discard(s)
        if not open_:
            closed_at = time.monotonic() - t0
    poller.close()
    if closed_at is None:
        print(f"{kind:10}  RssAnon {before/1024:6.1f} -> {after/1024:6.1f} MB, {per:5.1f} KB a connection; "
              f"{len(open_)} of {n} still open after {time.monotonic() - t0:.0f} s")
    else:
        print(f"{kind:10}  RssAnon {before/1024:6.1f} -> {after/1024:6.1f} MB, {per:5.1f} KB a connection; "
              f"all closed by mtswarm within {closed_at:.1f} s of opening; RSS then {rss_kb()/1024:.1f} MB")
    for s in socks:
        s.close()
EOF
	stop
done
