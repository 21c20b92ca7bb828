# Sourced by bench/dockerpy.sh and bench/moby.sh: a dockerd of the harness's own, so that a suite that prunes or
# removes everything on its engine (moby's does, docker-py's prune tests do) touches nothing of the test bed's.
# It has a bridge of its own (no iptables rules, no NAT: the test bed's node0 owns those), its own data root, its
# own containerd, in its own mount and UTS namespaces, as scripts/testbed.sh runs node1 and node2.
#
#   suite_engine_start DIR NAME   starts it; sets SUITE_ENGINE_SOCK, SUITE_ENGINE_PID
#   suite_engine_stop             stops it and the containers it runs
#   suite_engine_image IMAGE REF  copies IMAGE from the test bed's engine and tags it as every REF

SUITE_BRIDGE=${SUITE_BRIDGE:-mtsuite0}
# Two harnesses may run side by side: each its own bridge (SUITE_BRIDGE), address and pool.
SUITE_BRIDGE_ADDR=${SUITE_BRIDGE_ADDR:-10.228.0.1/24}
SUITE_ADDRESS_POOL=${SUITE_ADDRESS_POOL:-10.229.0.0/16}

SUITE_NS_INIT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../scripts" && pwd)/engine-ns-init.sh

suite_engine_start() {
	local dir=$1 name=$2 i
	mkdir -p "$dir/data" "$dir/exec" "$dir/etc-docker"
	chmod 700 "$dir/etc-docker"
	SUITE_ENGINE_SOCK=$dir/docker.sock
	SUITE_BRIDGE_CREATED=
	if [ ! -e "/sys/class/net/$SUITE_BRIDGE" ]; then
		SUITE_BRIDGE_CREATED=1
		ip link add name "$SUITE_BRIDGE" type bridge
		ip addr add "$SUITE_BRIDGE_ADDR" dev "$SUITE_BRIDGE"
		ip link set "$SUITE_BRIDGE" up
	fi
	mkdir -p /etc/docker
	unshare --uts --mount --propagation private sh "$SUITE_NS_INIT" "$dir/etc-docker" "$name" \
		dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
		-H "unix://$SUITE_ENGINE_SOCK" --bridge "$SUITE_BRIDGE" --iptables=false --ip-masq=false \
		--default-address-pool "base=$SUITE_ADDRESS_POOL,size=24" >"$dir/dockerd.log" 2>&1 &
	SUITE_ENGINE_PID=$!
	for i in $(seq 1 120); do
		if docker -H "unix://$SUITE_ENGINE_SOCK" version >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$SUITE_ENGINE_PID" 2>/dev/null; then break; fi
		sleep 0.5
	done
	echo "the suite's dockerd did not start; its log:" >&2
	tail -n 30 "$dir/dockerd.log" >&2
	return 1
}

suite_engine_stop() {
	[ -n "${SUITE_ENGINE_PID:-}" ] || return 0
	local ids
	ids=$(docker -H "unix://$SUITE_ENGINE_SOCK" ps -q 2>/dev/null || true)
	if [ -n "$ids" ]; then
		# shellcheck disable=SC2086
		docker -H "unix://$SUITE_ENGINE_SOCK" kill $ids >/dev/null 2>&1 || true
	fi
	kill "$SUITE_ENGINE_PID" 2>/dev/null || true
	for _ in $(seq 1 60); do
		kill -0 "$SUITE_ENGINE_PID" 2>/dev/null || break
		sleep 0.5
	done
	kill -9 "$SUITE_ENGINE_PID" 2>/dev/null || true
	SUITE_ENGINE_PID=
	if [ -n "${SUITE_BRIDGE_CREATED:-}" ]; then ip link del "$SUITE_BRIDGE" 2>/dev/null || true; fi
}

# Copies the test bed's image (no registry can be reached) and tags it under the names a suite pulls.
suite_engine_image() {
	local image=$1 ref
	shift
	docker save "$image" | docker -H "unix://$SUITE_ENGINE_SOCK" load >/dev/null
	for ref in "$@"; do
		docker -H "unix://$SUITE_ENGINE_SOCK" tag "$image" "$ref"
	done
}

# A free TCP port on loopback.
suite_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `mtswarm manage` on loopback in front of the suite's engine; MODE is vanilla or tenant. Sets
# SUITE_MTSWARM_HOST, SUITE_MTSWARM_PID and, as a tenant, SUITE_DOCKER_CONFIG (config.json with the headers).
suite_mtswarm_start() {
	local dir=$1 mode=$2 bin=$3 port token
	mkdir -p "$dir"
	port=$(suite_free_port)
	SUITE_MTSWARM_HOST=tcp://127.0.0.1:$port
	SUITE_DOCKER_CONFIG=
	if [ "$mode" = tenant ]; then
		token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
		printf '{"tokens": [{"tenant": "suite", "token": "%s"}]}\n' "$token" >"$dir/tokens.json"
		mkdir -p "$dir/config"
		printf '{"HttpHeaders": {"X-Auth-Token": "%s", "X-Auth-TenantId": "suite"}}\n' "$token" >"$dir/config/config.json"
		SUITE_DOCKER_CONFIG=$dir/config
		(cd "$dir" && SWARM_TOKENS_FILE=$dir/tokens.json exec "$bin" manage -H "$SUITE_MTSWARM_HOST" \
			"unix://$SUITE_ENGINE_SOCK") >"$dir/mtswarm.log" 2>&1 &
	else
		(cd "$dir" && SWARM_MULTI_TENANT=false exec "$bin" manage -H "$SUITE_MTSWARM_HOST" \
			"unix://$SUITE_ENGINE_SOCK") >"$dir/mtswarm.log" 2>&1 &
	fi
	SUITE_MTSWARM_PID=$!
	for _ in $(seq 1 60); do
		if grep -q "listening on" "$dir/mtswarm.log" 2>/dev/null; then return 0; fi
		kill -0 "$SUITE_MTSWARM_PID" 2>/dev/null || break
		sleep 0.25
	done
	echo "mtswarm did not start; its log:" >&2
	tail -n 30 "$dir/mtswarm.log" >&2
	return 1
}

suite_mtswarm_stop() {
	[ -n "${SUITE_MTSWARM_PID:-}" ] || return 0
	kill "$SUITE_MTSWARM_PID" 2>/dev/null || true
	wait "$SUITE_MTSWARM_PID" 2>/dev/null || true
	SUITE_MTSWARM_PID=
}
