#!/usr/bin/env bash
# The real test bed of mtswarm: three Docker engines, a Keystone and an etcd, on loopback.
#
#   scripts/testbed.sh up     [engines|keystone|etcd|overlay|tls]...  start (default: everything); idempotent
#   scripts/testbed.sh down   [engines|keystone|etcd|overlay|tls]...  stop; leaves no process and no mount behind
#   scripts/testbed.sh status [engines|keystone|etcd|overlay|tls]...  one line each; non-zero if any is down
#   scripts/testbed.sh engine-stop N | engine-start N      stop/start engine nodeN (node-failure tests)
#   scripts/testbed.sh keystone-stop | keystone-start
#   scripts/testbed.sh install [DEBIAN-PACKAGE]...         install what the test bed needs, plus extras
#   scripts/testbed.sh env                                 print the env file
#
# Engines (Debian's docker.io 20.10, API 1.41), each dockerd in its own UTS namespace, so that /info
# reports a distinct Name (nodeN):
#   node0  unix:///var/run/docker.sock       tcp://127.0.0.1:23750  bridge networking on bridge mtswarm0 (*),
#                                                                   data-root /var/lib/docker
#   node1  unix://$STATE/node1.sock          tcp://127.0.0.1:23751  --bridge=none --iptables=false
#   node2  unix://$STATE/node2.sock          tcp://127.0.0.1:23752  --bridge=none --iptables=false
# node1 and node2 also run in their own mount namespace with their own /etc/docker (so their own key.json,
# hence their own ID), and start their own containerd under their own --exec-root. Every engine has the
# label zone=zN and the images busybox:latest and mtswarm-test:latest (one import of a busybox-static rootfs).
# (*) Not docker0: a dockerd started with --bridge=none deletes the host's docker0 link at start-up (moby's
# removeDefaultBridgeInterface), which broke node0's networking each time node1 or node2 started. node0's
# bridge has its own name, created by this script; dockerd still manages its address, NAT and rules.
# Keystone 22 (SQLite, fernet) on http://127.0.0.1:35357/v3; etcd on http://127.0.0.1:23790.
# The tls component: engine tlsnode, `dockerd --tlsverify` on tcp://127.0.0.1:23753 (and plain on
# unix://$STATE/tlsnode.sock for this script), --bridge=none, own namespaces like node1; its CA, server
# certificate (SAN IP:127.0.0.1) and a client certificate for mtswarm (CN mtswarm) are made once by openssl
# in $DATA/tls.
#
# After `up` (and `down`), $STATE/env holds KEY=VALUE lines for the components that are up (MTSWARM_ENGINE0,
# MTSWARM_KEYSTONE_URL, ...). engine-stop/engine-start and keystone-stop/keystone-start leave it alone.
# Daemon logs: $STATE/*.log. Persistent data: $DATA. Stopping an engine kills its running containers
# first (there is no live-restore: they would be stopped anyway, only slower).
#
# Environment: MTSWARM_TESTBED_DIR (state, default /run/mtswarm-testbed), MTSWARM_TESTBED_DATA (data,
# default /var/lib/mtswarm-testbed), MTSWARM_TESTBED_TIMEOUT (seconds to wait for a daemon, default 120).
set -euo pipefail
shopt -s inherit_errexit

STATE=${MTSWARM_TESTBED_DIR:-/run/mtswarm-testbed}
DATA=${MTSWARM_TESTBED_DATA:-/var/lib/mtswarm-testbed}
TIMEOUT=${MTSWARM_TESTBED_TIMEOUT:-120}
ENV_FILE=$STATE/env
ISOLATION=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/engine-isolation.sh
ENGINES=(0 1 2)
IMAGE=busybox:latest
IMAGE_ALIAS=mtswarm-test:latest
KEYSTONE_PORT=35357
KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
BRIDGE0=mtswarm0
KDIR=$DATA/keystone
ETCD_PORT=23790
ETCD_URL=http://127.0.0.1:$ETCD_PORT
ETCD_PEER_URL=http://127.0.0.1:23800
ALL_COMPONENTS=(engines keystone etcd overlay tls)
TLS_PORT=23753
TLS_DIR=$DATA/tls
# The overlay component: two more engines, ovnode1 and ovnode2, each in its own network namespace (ovns1, ovns2,
# veth to the host bridge mtsov0, 10.99.0.1x), with a cluster store (the legacy multi-host networking that
# dockerd 20.10 still has behind the deprecated --cluster-store/--cluster-advertise) on an etcd of their own
# with the v2 API, on 10.99.0.1:23791. Their API is tcp://10.99.0.1x:2375; node0 and the host reach it.
OV_BRIDGE=mtsov0
OV_NET=10.99.0
OV_NODES=(1 2)
OV_ETCD_URL=http://$OV_NET.1:23791
OV_ETCD_PEER_URL=http://127.0.0.1:23801
KEYSTONE_STARTED=
ETCD_STARTED=

PATH=$PATH:/usr/sbin:/sbin
# The script's own docker calls always say -H; keep the caller's client settings out of them.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION DOCKER_CUSTOM_HEADERS
export DOCKER_CONFIG=$STATE/docker-client DOCKER_CLI_HINTS=false

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }
# Shows the end of log $1, from its last "==== " line (written by spawn at each start) on.
tail_log() {
	if [ -s "$1" ]; then
		printf -- '---- last lines of %s:\n' "$1" >&2
		awk '/^==== / {n = 0} {line[n++] = $0} END {for (i = (n > 40 ? n - 40 : 0); i < n; i++) print line[i]}' "$1" >&2
		printf -- '----\n' >&2
	fi
}

# ---------------------------------------------------------------------------------------------------------
# Processes

# True if process $1 exists and is not a zombie.
proc_alive() {
	local st
	[ -n "${1:-}" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st%% *}" != Z ]
}
# Prints the pid in pidfile $1 if that process is alive and its command line contains $2.
pid_from_file() {
	local p=
	if [ -s "$1" ]; then read -r p <"$1" 2>/dev/null || true; fi
	if [[ $p =~ ^[0-9]+$ ]] && proc_alive "$p" && cmdline_has "$p" "$2"; then echo "$p"; fi
	return 0
}
cmdline_has() { grep -aqF -- "$2" "/proc/$1/cmdline" 2>/dev/null; }
# Prints the pid listening on TCP port $1 (loopback or any) if its command line contains $2.
tcp_owner() {
	local p
	p=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || true
	if [ -n "$p" ] && cmdline_has "$p" "$2"; then echo "$p"; fi
	return 0
}
# Prints the pid listening on unix socket $1 if its command line contains $2.
unix_owner() {
	local p
	p=$(ss -Hxlpn 2>/dev/null | awk -v s="$1" '$5 == s' | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2) || true
	if [ -n "$p" ] && cmdline_has "$p" "$2"; then echo "$p"; fi
	return 0
}
# Sends SIGTERM to pid $2 (named $1), waits up to $3 seconds, then SIGKILLs it.
terminate() {
	local name=$1 pid=$2 grace=$3 deadline
	proc_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + grace))
	while proc_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			log "$name (pid $pid) still running ${grace}s after SIGTERM: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$((SECONDS + 10))
			while proc_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
			proc_alive "$pid" && die "$name (pid $pid) survives SIGKILL"
			return 0
		fi
		sleep 0.1
	done
}
# Terminates every process whose command line contains $1 (an exact path, e.g. an engine's containerd dir).
terminate_by_path() {
	local f pid pids=()
	for f in $(grep -alF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null || true); do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		if [ "$pid" != $$ ] && [ "$pid" != "$BASHPID" ] && proc_alive "$pid"; then pids+=("$pid"); fi
	done
	for pid in "${pids[@]}"; do
		log "leftover process $pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo gone)) of $1: terminating"
		terminate "leftover $pid" "$pid" 10
	done
}
# Polls `$@` every 0.2 s until it succeeds. Fails (with the log tail) when pid $3 is empty or dies, or after $TIMEOUT s.
wait_until() {
	local what=$1 logf=$2 pid=$3 deadline=$((SECONDS + TIMEOUT))
	shift 3
	until "$@"; do
		if [ -z "$pid" ] || ! proc_alive "$pid"; then
			tail_log "$logf"
			die "$what exited during start-up (log: $logf)"
		fi
		if ((SECONDS >= deadline)); then
			tail_log "$logf"
			die "$what not ready after ${TIMEOUT}s (log: $logf)"
		fi
		sleep 0.2
	done
}
# Starts "$@" in its own session, detached, logging to $1 (after a line "==== DATE: $2"); stdin closed;
# prints its pid. fd 9 (the test bed lock) is closed in the daemon, or it would hold the lock forever.
spawn() {
	local logf=$1
	printf '==== %s: %s\n' "$(date '+%F %T')" "$2" >>"$logf"
	shift 2
	setsid "$@" </dev/null >>"$logf" 2>&1 9>&- &
	echo $!
}

# ---------------------------------------------------------------------------------------------------------
# Packages

packages_for() {
	case $1 in
	engines) echo docker.io busybox-static iproute2 util-linux docker-compose curl nftables ;;
	keystone) echo python3-keystone sqlite3 curl ;;
	etcd) echo etcd-server curl ;;
	overlay) echo docker.io etcd-server iproute2 iptables util-linux curl nftables ;;
	tls) echo docker.io busybox-static openssl util-linux curl nftables ;;
	*) die "unknown component $1" ;;
	esac
}
# Installs the Debian packages among "$@" that are missing, in one apt-get call (update first).
ensure_packages() {
	local p missing=() installed guard='' rc=0
	[ $# -gt 0 ] || return 0
	installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null | awk '$NF == "installed" {print $1}') || true
	for p in "$@"; do
		if ! grep -qxF -- "$p" <<<"$installed" && [[ " ${missing[*]} " != *" $p "* ]]; then missing+=("$p"); fi
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	log "installing ${missing[*]} (log: $STATE/apt.log)"
	# No package may start its service (docker, etcd) behind our back; Docker images usually have this file.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		guard=1
	fi
	{
		DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update &&
			DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
				install --no-install-recommends "${missing[@]}"
	} </dev/null >>"$STATE/apt.log" 2>&1 9>&- || rc=$?
	[ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
	if [ $rc -ne 0 ]; then
		tail_log "$STATE/apt.log"
		die "apt-get failed to install ${missing[*]}"
	fi
}

# ---------------------------------------------------------------------------------------------------------
# Engines

e_name() { echo "node$1"; }
e_sock() { if [ "$1" = 0 ]; then echo /var/run/docker.sock; else echo "$STATE/node$1.sock"; fi; }
e_port() { echo $((23750 + $1)); }
e_pidfile() { if [ "$1" = 0 ]; then echo /var/run/docker.pid; else echo "$STATE/node$1.pid"; fi; }
e_execroot() { if [ "$1" = 0 ]; then echo /var/run/docker; else echo "$STATE/node$1/exec"; fi; }
e_dataroot() { if [ "$1" = 0 ]; then echo /var/lib/docker; else echo "$DATA/node$1/docker"; fi; }
e_keydir() { echo "$DATA/node$1/etc-docker"; }
e_log() { echo "$STATE/node$1.log"; }
e_api() { curl -sf -m 10 --unix-socket "$(e_sock "$1")" "http://localhost$2"; }

# The engine answers on its socket and its TCP port.
engine_answers() {
	[ "$(curl -sf -m 5 --unix-socket "$(e_sock "$1")" http://localhost/_ping 2>/dev/null)" = OK ] &&
		[ "$(curl -sf -m 5 "http://127.0.0.1:$(e_port "$1")/_ping" 2>/dev/null)" = OK ]
}
# The engine answers and is ours: name nodeN, label zone=zN (and node0's bridge exists).
engine_ok() {
	local info
	if [ "$1" = 0 ] && [ ! -e "/sys/class/net/$BRIDGE0" ]; then return 1; fi
	info=$(e_api "$1" /info 2>/dev/null) || return 1
	[[ $info == *"\"Name\":\"node$1\""* && $info == *"\"zone=z$1\""* ]] || return 1
	[ "$(curl -sf -m 5 "http://127.0.0.1:$(e_port "$1")/_ping" 2>/dev/null)" = OK ]
}
# The pid of the dockerd serving engine N (ours or not), if any.
engine_pid() {
	local p
	p=$(pid_from_file "$(e_pidfile "$1")" dockerd)
	[ -n "$p" ] || p=$(unix_owner "$(e_sock "$1")" dockerd)
	[ -n "$p" ] || p=$(tcp_owner "$(e_port "$1")" dockerd)
	if [ -n "$p" ]; then echo "$p"; fi
	return 0
}

# Run inside an extra engine's new namespaces, before exec dockerd (see the script).
NS_INIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/engine-ns-init.sh

# Starts engine N's dockerd; prints its pid.
engine_launch() {
	local n=$1 args
	mkdir -p "$(e_execroot "$n")" "$(e_dataroot "$n")"
	rm -f "$(e_pidfile "$n")" # stale: engine_pid found no live dockerd for it
	args=(dockerd --data-root "$(e_dataroot "$n")" --exec-root "$(e_execroot "$n")" --pidfile "$(e_pidfile "$n")"
		-H "unix://$(e_sock "$n")" -H "tcp://127.0.0.1:$(e_port "$n")" --label "zone=z$n")
	if [ "$n" = 0 ]; then
		if [ ! -e "/sys/class/net/$BRIDGE0" ]; then ip link add name "$BRIDGE0" type bridge; fi
		args+=(--bridge "$BRIDGE0")
		# shellcheck disable=SC2016
		spawn "$(e_log "$n")" "${args[*]}" unshare --uts sh -c 'hostname "$1"; shift; exec "$@"' sh "$(e_name "$n")" "${args[@]}"
	else
		args+=(--bridge=none --iptables=false --ip-masq=false --default-address-pool "base=10.$((200 + n)).0.0/16,size=24")
		mkdir -p "$(e_keydir "$n")"
		chmod 700 "$(e_keydir "$n")"
		mkdir -p /etc/docker
		spawn "$(e_log "$n")" "${args[*]}" unshare --uts --mount --propagation private sh "$NS_INIT" \
			"$(e_keydir "$n")" "$(e_name "$n")" "${args[@]}"
	fi
}

# Stops engine N (ours or a foreign dockerd on its socket/port); kills its running containers first.
engine_stop() {
	local n=$1 pid ids id kills=()
	pid=$(engine_pid "$n")
	if [ -n "$pid" ]; then
		ids=$(e_api "$n" /containers/json 2>/dev/null | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4) || true
		for id in $ids; do
			curl -sf -m 20 -X POST --unix-socket "$(e_sock "$n")" "http://localhost/containers/$id/kill" >/dev/null 2>&1 &
			kills+=($!)
		done
		for id in "${kills[@]}"; do wait "$id" || true; done
		log "stopping node$n (dockerd pid $pid)"
		terminate "node$n dockerd" "$pid" 60
	fi
	# dockerd stops its containerd on a clean exit, not when killed: reap what is left of this engine.
	terminate_by_path "$(e_execroot "$n")/containerd/"
	rm -f "$(e_pidfile "$n")"
	if [ "$n" != 0 ]; then rm -f "$(e_sock "$n")"; fi
}

# Builds (once) the test image's rootfs tarball; prints its path.
image_tar() {
	local bb=/bin/busybox ver tar rootfs a
	[ -x "$bb" ] || die "$bb missing: is busybox-static installed?"
	ver=$(dpkg-query -W -f='${Version}' busybox-static | tr -c 'A-Za-z0-9.\n' _)
	tar=$DATA/image/busybox-static-$ver.tar
	if [ ! -s "$tar" ]; then
		mkdir -p "$DATA/image"
		rootfs=$(mktemp -d "$DATA/image/rootfs.XXXXXX")
		mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp" "$rootfs/usr"
		cp "$bb" "$rootfs/bin/busybox"
		for a in $("$rootfs/bin/busybox" --list); do
			[ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"
		done
		ln -s bin "$rootfs/sbin"
		ln -s ../bin "$rootfs/usr/bin"
		ln -s ../bin "$rootfs/usr/sbin"
		printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
		printf 'root:x:0:\nnobody:x:65534:\n' >"$rootfs/etc/group"
		chmod 1777 "$rootfs/tmp"
		chmod 700 "$rootfs/root"
		tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf "$tar.tmp" .
		mv "$tar.tmp" "$tar"
		rm -rf "$rootfs"
	fi
	echo "$tar"
}
has_image() { e_api "$1" "/images/$2/json" >/dev/null 2>&1; }
# Makes sure engine N has the test image under both names. Node0 imports it from tarball $2; the others load
# node0's (docker save | docker load), so the image has one id on every engine, as a pulled image would.
# Sets IMPORTED=1 if it had to import it. A node whose image differs from node0's gets node0's.
engine_image() {
	local n=$1 h h0
	h=unix://$(e_sock "$n")
	h0=unix://$(e_sock 0)
	if [ "$n" != 0 ] && has_image "$n" "$IMAGE" && has_image 0 "$IMAGE" &&
		[ "$(docker -H "$h" image inspect -f '{{.Id}}' "$IMAGE")" != "$(docker -H "$h0" image inspect -f '{{.Id}}' "$IMAGE")" ]; then
		log "node$n: its $IMAGE differs from node0's: replacing it"
		docker -H "$h" rmi -f "$IMAGE" "$IMAGE_ALIAS" >/dev/null 2>&1 || true
	fi
	if ! has_image "$n" "$IMAGE"; then
		if [ "$n" != 0 ] && has_image 0 "$IMAGE"; then
			log "node$n: loading $IMAGE from node0"
			docker -H "$h0" save "$IMAGE" | docker -H "$h" load >/dev/null || die "node$n: docker load failed"
		else
			log "node$n: importing $IMAGE"
			docker -H "$h" import --change 'CMD ["/bin/sh"]' - "$IMAGE" <"$2" >/dev/null || die "node$n: docker import failed"
		fi
		IMPORTED=1
	fi
	if ! has_image "$n" "$IMAGE_ALIAS"; then
		docker -H "$h" tag "$IMAGE" "$IMAGE_ALIAS" || die "node$n: docker tag failed"
	fi
}
# Runs a container on engine N; node1+ have no bridge, so --network none there.
engine_check_run() {
	local n=$1 out net=()
	[ "$n" = 0 ] || net=(--network none)
	out=$(docker -H "unix://$(e_sock "$n")" run --rm "${net[@]}" "$IMAGE" echo ok 2>&1) || true
	[ "$out" = ok ] || die "node$n: 'docker run --rm ${net[*]} $IMAGE echo ok' said: $out"
}

# Brings up engines "$@" (numbers); fast when they are up already.
engines_up() {
	local n pid tar todo=() changed=() pids=()
	for n in "$@"; do
		engine_ok "$n" || todo+=("$n")
	done
	for n in "${todo[@]}"; do
		pid=$(engine_pid "$n")
		if [ -n "$pid" ]; then
			# Foreign (e.g. a dockerd started by hand or by the package), misconfigured or stuck: replace it.
			log "node$n: a dockerd (pid $pid) serves it but is not this test bed's node$n: replacing it"
			engine_stop "$n"
		fi
		terminate_by_path "$(e_execroot "$n")/containerd/" # of an engine that was killed
		log "node$n: starting dockerd (log: $(e_log "$n"))"
		pids[n]=$(engine_launch "$n")
	done
	for n in "${todo[@]}"; do
		wait_until "node$n dockerd" "$(e_log "$n")" "${pids[n]}" engine_answers "$n"
		engine_ok "$n" || die "node$n answers but /info does not say Name node$n and label zone=z$n"
		changed+=("$n")
	done
	tar=$(image_tar)
	for n in "$@"; do
		IMPORTED=
		engine_image "$n" "$tar"
		if [ -n "$IMPORTED" ] && [[ " ${changed[*]} " != *" $n "* ]]; then changed+=("$n"); fi
	done
	for n in "${changed[@]}"; do
		engine_check_run "$n"
		log "node$n: up ($(e_sock "$n"), tcp://127.0.0.1:$(e_port "$n")), runs $IMAGE"
	done
	# The engines' bridges (node0's, and node1's and node2's user networks, all in this network namespace) are
	# isolated from each other by scripts/engine-isolation.sh, as the README tells operators to do.
	isolation_ok || log "isolation: loading table inet mtswarm-isolation (scripts/engine-isolation.sh)"
	bash "$ISOLATION" install
}
isolation_ok() { bash "$ISOLATION" status >/dev/null 2>&1; }

engines_down() {
	local n pids=() rc=0
	for n in "${ENGINES[@]}"; do
		engine_stop "$n" &
		pids+=($!)
	done
	for n in "${pids[@]}"; do wait "$n" || rc=1; done
	[ $rc = 0 ] || die "could not stop every engine"
	if [ -e "/sys/class/net/$BRIDGE0" ]; then ip link del "$BRIDGE0" || true; fi
	if command -v nft >/dev/null; then bash "$ISOLATION" remove; fi
}

engine_arg() {
	[[ ${1:-} =~ ^[0-9]+$ && $1 -lt ${#ENGINES[@]} ]] || die "engine number 0..$((${#ENGINES[@]} - 1)) expected, got '${1:-}'"
}

# ---------------------------------------------------------------------------------------------------------
# Keystone

keystone_pid() {
	local p
	p=$(pid_from_file "$STATE/keystone.pid" keystone-wsgi-public)
	[ -n "$p" ] || p=$(tcp_owner "$KEYSTONE_PORT" keystone-wsgi-public)
	if [ -n "$p" ]; then echo "$p"; fi
	return 0
}
keystone_answers() {
	[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$KEYSTONE_URL" 2>/dev/null)" = 200 ]
}
keystone_ok() { [ -n "$(keystone_pid)" ] && keystone_answers; }
gen_password() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c1-24; }
keystone_manage() {
	keystone-manage --config-file "$KDIR/keystone.conf" "$@" </dev/null >>"$STATE/keystone-manage.log" 2>&1 9>&- || {
		tail_log "$STATE/keystone-manage.log"
		die "keystone-manage $1 failed"
	}
}
keystone_setup() {
	local f
	mkdir -p "$KDIR/fernet-keys" "$KDIR/credential-keys" "$KDIR/receipt-keys"
	chmod 700 "$KDIR" "$KDIR/fernet-keys" "$KDIR/credential-keys" "$KDIR/receipt-keys"
	for f in admin-password service-password; do
		if [ ! -s "$KDIR/$f" ]; then (umask 077 && gen_password >"$KDIR/$f"); fi
	done
	cat >"$KDIR/keystone.conf.tmp" <<EOF
[DEFAULT]
log_file = $STATE/keystone.log
[database]
connection = sqlite:///$KDIR/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $KDIR/fernet-keys
[fernet_receipts]
key_repository = $KDIR/receipt-keys
[credential]
key_repository = $KDIR/credential-keys
EOF
	mv "$KDIR/keystone.conf.tmp" "$KDIR/keystone.conf"
	[ ! -e "$KDIR/bootstrapped" ] || return 0
	log "keystone: db_sync and bootstrap (once; log: $STATE/keystone-manage.log)"
	rm -f "$KDIR"/keystone.db*
	rm -rf "${KDIR:?}"/fernet-keys/* "${KDIR:?}"/credential-keys/*
	keystone_manage db_sync
	# Without WAL, concurrent writes fail with "database is locked".
	[ "$(sqlite3 "$KDIR/keystone.db" 'PRAGMA journal_mode=WAL;')" = wal ] || die "keystone: cannot set WAL mode"
	keystone_manage fernet_setup --keystone-user root --keystone-group root
	keystone_manage credential_setup --keystone-user root --keystone-group root
	keystone_manage bootstrap --bootstrap-username admin --bootstrap-password "$(cat "$KDIR/admin-password")" \
		--bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-region-id RegionOne \
		--bootstrap-admin-url "$KEYSTONE_URL/" --bootstrap-public-url "$KEYSTONE_URL/" \
		--bootstrap-internal-url "$KEYSTONE_URL/"
	# The service user: role `service` lets it validate other users' tokens (rule service_or_admin).
	keystone_manage bootstrap --bootstrap-username mtswarm --bootstrap-password "$(cat "$KDIR/service-password")" \
		--bootstrap-project-name service --bootstrap-role-name service
	touch "$KDIR/bootstrapped"
}
# Starts keystone unless it runs already (then `keystone_wait`): the two halves let `up` start every
# daemon first and wait for them after.
keystone_start() {
	local pid
	keystone_ok && return 0
	pid=$(keystone_pid)
	if [ -z "$pid" ]; then
		if [ -n "$(ss -Hltn "sport = :$KEYSTONE_PORT" 2>/dev/null)" ]; then
			die "keystone: port $KEYSTONE_PORT is taken by another program: $(ss -Hltnp "sport = :$KEYSTONE_PORT")"
		fi
		keystone_setup
		log "keystone: starting (log: $STATE/keystone.log)"
		pid=$(spawn "$STATE/keystone.log" "keystone-wsgi-public on port $KEYSTONE_PORT" env -C "$KDIR" OS_KEYSTONE_CONFIG_FILES="$KDIR/keystone.conf" \
			keystone-wsgi-public --host 127.0.0.1 --port "$KEYSTONE_PORT")
		echo "$pid" >"$STATE/keystone.pid"
	fi
	KEYSTONE_STARTED=1
}
keystone_wait() {
	[ -n "$KEYSTONE_STARTED" ] || keystone_ok || KEYSTONE_STARTED=1
	[ -n "$KEYSTONE_STARTED" ] || return 0
	wait_until keystone "$STATE/keystone.log" "$(keystone_pid)" keystone_ok
	log "keystone: up ($KEYSTONE_URL)"
}
keystone_down() {
	local pid
	pid=$(keystone_pid)
	if [ -n "$pid" ]; then
		log "stopping keystone (pid $pid)"
		terminate keystone "$pid" 20
	fi
	rm -f "$STATE/keystone.pid"
}

# ---------------------------------------------------------------------------------------------------------
# etcd

etcd_pid() {
	local p
	p=$(pid_from_file "$STATE/etcd.pid" etcd)
	[ -n "$p" ] || p=$(tcp_owner "$ETCD_PORT" etcd)
	if [ -n "$p" ]; then echo "$p"; fi
	return 0
}
etcd_answers() { [[ $(curl -s -m 5 "$ETCD_URL/health" 2>/dev/null) == *'"health":"true"'* ]]; }
etcd_ok() { [ -n "$(etcd_pid)" ] && etcd_answers; }
etcd_start() {
	local pid
	etcd_ok && return 0
	pid=$(etcd_pid)
	if [ -z "$pid" ]; then
		if [ -n "$(ss -Hltn "sport = :$ETCD_PORT" 2>/dev/null)" ]; then
			die "etcd: port $ETCD_PORT is taken by another program: $(ss -Hltnp "sport = :$ETCD_PORT")"
		fi
		mkdir -p "$DATA/etcd"
		chmod 700 "$DATA/etcd"
		log "etcd: starting (log: $STATE/etcd.log)"
		pid=$(spawn "$STATE/etcd.log" "etcd on $ETCD_URL" etcd --name mtswarm-testbed --data-dir "$DATA/etcd" \
			--listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
			--listen-peer-urls "$ETCD_PEER_URL" --initial-advertise-peer-urls "$ETCD_PEER_URL" \
			--initial-cluster "mtswarm-testbed=$ETCD_PEER_URL" --initial-cluster-state new \
			--initial-cluster-token mtswarm-testbed)
		echo "$pid" >"$STATE/etcd.pid"
	fi
	ETCD_STARTED=1
}
etcd_wait() {
	[ -n "$ETCD_STARTED" ] || etcd_ok || ETCD_STARTED=1
	[ -n "$ETCD_STARTED" ] || return 0
	wait_until etcd "$STATE/etcd.log" "$(etcd_pid)" etcd_ok
	log "etcd: up ($ETCD_URL)"
}
etcd_down() {
	local pid
	pid=$(etcd_pid)
	if [ -n "$pid" ]; then
		log "stopping etcd (pid $pid)"
		terminate etcd "$pid" 20
	fi
	rm -f "$STATE/etcd.pid"
}

# ---------------------------------------------------------------------------------------------------------
# Overlay: engines in their own network namespaces, with a cluster store

ov_dir() { echo "$DATA/ov$1"; }
ov_addr() { echo "$OV_NET.1$1"; }
ov_url() { echo "tcp://$(ov_addr "$1"):2375"; }
ov_pid() { pid_from_file "$(ov_dir "$1")/dockerd.pid" dockerd; }
ov_answers() { curl -sf -m 3 "http://$(ov_addr "$1"):2375/_ping" >/dev/null 2>&1; }
ov_etcd_pid() { pid_from_file "$STATE/ov-etcd.pid" etcd; }
ov_etcd_ok() { [[ $(curl -s -m 5 "$OV_ETCD_URL/health" 2>/dev/null) == *'"health":"true"'* ]]; }
ov_ok() {
	local n
	[ -n "$(ov_etcd_pid)" ] && ov_etcd_ok || return 1
	for n in "${OV_NODES[@]}"; do [ -n "$(ov_pid "$n")" ] && ov_answers "$n" || return 1; done
}
# The bridge, the namespaces and their veths; bridged traffic is let through the FORWARD chain, whose policy
# node0's dockerd sets to DROP.
ov_network() {
	local n
	if [ ! -e "/sys/class/net/$OV_BRIDGE" ]; then ip link add name "$OV_BRIDGE" type bridge; fi
	ip addr replace "$OV_NET.1/24" dev "$OV_BRIDGE"
	ip link set "$OV_BRIDGE" up
	iptables -C FORWARD -i "$OV_BRIDGE" -o "$OV_BRIDGE" -j ACCEPT 2>/dev/null ||
		iptables -I FORWARD -i "$OV_BRIDGE" -o "$OV_BRIDGE" -j ACCEPT
	for n in "${OV_NODES[@]}"; do
		[ -e "/run/netns/ovns$n" ] || ip netns add "ovns$n"
		if [ ! -e "/sys/class/net/ovh$n" ]; then
			ip link add "ovh$n" type veth peer name "ovc$n"
			ip link set "ovc$n" netns "ovns$n"
		fi
		ip link set "ovh$n" master "$OV_BRIDGE" up
		ip -n "ovns$n" addr replace "$(ov_addr "$n")/24" dev "ovc$n"
		ip -n "ovns$n" link set "ovc$n" up
		ip -n "ovns$n" link set lo up
	done
	ov_isolate
}
# The ovnodes run with --iptables=false: without scripts/engine-isolation.sh's table in their network namespaces
# their bridges would forward to each other.
ov_isolate() {
	local n
	for n in "${OV_NODES[@]}"; do
		nsenter --net="/run/netns/ovns$n" bash "$ISOLATION" install
	done
}
overlay_up() {
	local n pid pids=() tar
	if ov_ok; then
		ov_isolate
		return 0
	fi
	ov_network
	if [ -z "$(ov_etcd_pid)" ]; then
		mkdir -p "$DATA/ov-etcd"
		chmod 700 "$DATA/ov-etcd"
		log "overlay: starting its etcd (v2 API; log: $STATE/ov-etcd.log)"
		pid=$(spawn "$STATE/ov-etcd.log" "etcd on $OV_ETCD_URL" etcd --name mtswarm-ov --data-dir "$DATA/ov-etcd" \
			--enable-v2=true --listen-client-urls "$OV_ETCD_URL" --advertise-client-urls "$OV_ETCD_URL" \
			--listen-peer-urls "$OV_ETCD_PEER_URL" --initial-advertise-peer-urls "$OV_ETCD_PEER_URL" \
			--initial-cluster "mtswarm-ov=$OV_ETCD_PEER_URL" --initial-cluster-state new)
		echo "$pid" >"$STATE/ov-etcd.pid"
		wait_until "overlay etcd" "$STATE/ov-etcd.log" "$pid" ov_etcd_ok
	fi
	for n in "${OV_NODES[@]}"; do
		[ -n "$(ov_pid "$n")" ] && continue
		terminate_by_path "$(ov_dir "$n")/exec/containerd/"
		mkdir -p "$(ov_dir "$n")/data" "$(ov_dir "$n")/exec" "$(ov_dir "$n")/keys"
		chmod 700 "$(ov_dir "$n")/keys"
		log "ovnode$n: starting dockerd in network namespace ovns$n (log: $STATE/ovnode$n.log)"
		# nsenter, not `ip netns exec`, which mounts a new /sys without the cgroup hierarchy dockerd needs.
		pids[n]=$(spawn "$STATE/ovnode$n.log" "ovnode$n dockerd" nsenter --net="/run/netns/ovns$n" \
			unshare --uts --mount --propagation private sh "$NS_INIT" "$(ov_dir "$n")/keys" "ovnode$n" \
			dockerd --data-root "$(ov_dir "$n")/data" --exec-root "$(ov_dir "$n")/exec" \
			--pidfile "$(ov_dir "$n")/dockerd.pid" -H "unix://$STATE/ovnode$n.sock" -H "$(ov_url "$n")" \
			--cluster-store "etcd://$OV_NET.1:23791" --cluster-advertise "$(ov_addr "$n"):2375" \
			--bridge=none --iptables=false --label "zone=ov$n")
	done
	for n in "${OV_NODES[@]}"; do
		[ -n "${pids[n]:-}" ] || continue
		wait_until "ovnode$n dockerd" "$STATE/ovnode$n.log" "${pids[n]}" ov_answers "$n"
	done
	for n in "${OV_NODES[@]}"; do
		if ! docker -H "$(ov_url "$n")" image inspect "$IMAGE" >/dev/null 2>&1; then
			if engine_ok 0 && has_image 0 "$IMAGE"; then
				docker -H "unix://$(e_sock 0)" save "$IMAGE" | docker -H "$(ov_url "$n")" load >/dev/null ||
					die "ovnode$n: docker load failed"
			else
				tar=$(image_tar)
				docker -H "$(ov_url "$n")" import --change 'CMD ["/bin/sh"]' - "$IMAGE" <"$tar" >/dev/null ||
					die "ovnode$n: docker import failed"
			fi
		fi
	done
	log "overlay: up (ovnode1 $(ov_url 1), ovnode2 $(ov_url 2), cluster store $OV_ETCD_URL)"
}
overlay_down() {
	local n pid
	for n in "${OV_NODES[@]}"; do
		pid=$(ov_pid "$n")
		if [ -n "$pid" ]; then
			log "stopping ovnode$n (dockerd pid $pid)"
			terminate "ovnode$n dockerd" "$pid" 60
		fi
		terminate_by_path "$(ov_dir "$n")/exec/containerd/"
		rm -f "$(ov_dir "$n")/dockerd.pid" "$STATE/ovnode$n.sock"
		if [ -e "/run/netns/ovns$n" ]; then ip netns del "ovns$n" || true; fi
		if [ -e "/sys/class/net/ovh$n" ]; then ip link del "ovh$n" || true; fi
	done
	pid=$(ov_etcd_pid)
	if [ -n "$pid" ]; then
		log "stopping the overlay etcd (pid $pid)"
		terminate "overlay etcd" "$pid" 20
	fi
	rm -f "$STATE/ov-etcd.pid"
	# The cluster store starts empty next time: no network from a run before.
	rm -rf "$DATA/ov-etcd"
	while iptables -D FORWARD -i "$OV_BRIDGE" -o "$OV_BRIDGE" -j ACCEPT 2>/dev/null; do :; done
	if [ -e "/sys/class/net/$OV_BRIDGE" ]; then ip link del "$OV_BRIDGE" || true; fi
}

# ---------------------------------------------------------------------------------------------------------
# TLS: an engine that speaks only mutual TLS on TCP

tls_sock() { echo "$STATE/tlsnode.sock"; }
tls_pid() { pid_from_file "$STATE/tlsnode.pid" dockerd; }
tls_answers() {
	[ "$(curl -sf -m 5 --unix-socket "$(tls_sock)" http://localhost/_ping 2>/dev/null)" = OK ] &&
		[ "$(curl -sf -m 5 --cacert "$TLS_DIR/ca.pem" --cert "$TLS_DIR/client-cert.pem" --key "$TLS_DIR/client-key.pem" \
			"https://127.0.0.1:$TLS_PORT/_ping" 2>/dev/null)" = OK ]
}
tls_ok() { [ -n "$(tls_pid)" ] && tls_answers; }
# The CA, the engine's certificate (for the address mtswarm dials) and mtswarm's client certificate; once.
tls_certs() {
	local d=$TLS_DIR
	[ -s "$d/client-cert.pem" ] && return 0
	mkdir -p "$d"
	chmod 700 "$d"
	log "tls: making a CA, a server and a client certificate in $d"
	{
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=mtswarm-testbed-ca -keyout "$d/ca-key.pem" \
			-out "$d/ca.pem" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
			openssl req -newkey rsa:2048 -nodes -subj /CN=tlsnode -keyout "$d/server-key.pem" -out "$d/server.csr" &&
			printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext" &&
			openssl x509 -req -days 3650 -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
				-extfile "$d/server.ext" -out "$d/server-cert.pem" &&
			openssl req -newkey rsa:2048 -nodes -subj /CN=mtswarm -keyout "$d/client-key.pem" -out "$d/client.csr" &&
			printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext" &&
			openssl x509 -req -days 3650 -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
				-extfile "$d/client.ext" -out "$d/client-cert.pem.tmp"
	} >>"$STATE/tls-certs.log" 2>&1 || {
		tail_log "$STATE/tls-certs.log"
		die "tls: openssl failed"
	}
	mv "$d/client-cert.pem.tmp" "$d/client-cert.pem"
}
tls_up() {
	local pid tar h
	# tlsnode's networks are in this network namespace too.
	bash "$ISOLATION" install
	tls_ok && return 0
	tls_certs
	pid=$(tls_pid)
	if [ -z "$pid" ]; then
		terminate_by_path "$STATE/tlsnode/exec/containerd/"
		mkdir -p "$STATE/tlsnode/exec" "$DATA/tlsnode/docker" "$DATA/tlsnode/etc-docker" /etc/docker
		chmod 700 "$DATA/tlsnode/etc-docker"
		rm -f "$STATE/tlsnode.pid"
		log "tlsnode: starting dockerd --tlsverify (log: $STATE/tlsnode.log)"
		pid=$(spawn "$STATE/tlsnode.log" "tlsnode dockerd" unshare --uts --mount --propagation private sh "$NS_INIT" \
			"$DATA/tlsnode/etc-docker" tlsnode dockerd --data-root "$DATA/tlsnode/docker" \
			--exec-root "$STATE/tlsnode/exec" --pidfile "$STATE/tlsnode.pid" -H "unix://$(tls_sock)" \
			-H "tcp://127.0.0.1:$TLS_PORT" --tlsverify --tlscacert "$TLS_DIR/ca.pem" --tlscert "$TLS_DIR/server-cert.pem" \
			--tlskey "$TLS_DIR/server-key.pem" --bridge=none --iptables=false --ip-masq=false --label zone=tls \
			--default-address-pool base=10.209.0.0/16,size=24)
	fi
	wait_until "tlsnode dockerd" "$STATE/tlsnode.log" "$pid" tls_answers
	h=unix://$(tls_sock)
	if ! docker -H "$h" image inspect "$IMAGE" >/dev/null 2>&1; then
		if engine_ok 0 && has_image 0 "$IMAGE"; then
			docker -H "unix://$(e_sock 0)" save "$IMAGE" | docker -H "$h" load >/dev/null || die "tlsnode: docker load failed"
		else
			tar=$(image_tar)
			docker -H "$h" import --change 'CMD ["/bin/sh"]' - "$IMAGE" <"$tar" >/dev/null || die "tlsnode: docker import failed"
		fi
	fi
	docker -H "$h" image inspect "$IMAGE_ALIAS" >/dev/null 2>&1 || docker -H "$h" tag "$IMAGE" "$IMAGE_ALIAS"
	log "tlsnode: up (tcp://127.0.0.1:$TLS_PORT with --tlsverify, $h)"
}
tls_down() {
	local pid
	pid=$(tls_pid)
	if [ -n "$pid" ]; then
		log "stopping tlsnode (dockerd pid $pid)"
		terminate "tlsnode dockerd" "$pid" 60
	fi
	terminate_by_path "$STATE/tlsnode/exec/containerd/"
	rm -f "$STATE/tlsnode.pid" "$(tls_sock)"
}

# ---------------------------------------------------------------------------------------------------------
# Env file, status

write_env() {
	local n any=
	{
		echo "MTSWARM_TESTBED_DIR=$STATE"
		for n in "${ENGINES[@]}"; do
			engine_ok "$n" || continue
			any=1
			echo "MTSWARM_ENGINE$n=unix://$(e_sock "$n")"
			echo "MTSWARM_ENGINE${n}_TCP=tcp://127.0.0.1:$(e_port "$n")"
			echo "MTSWARM_ENGINE${n}_NAME=$(e_name "$n")"
		done
		if [ -n "$any" ]; then
			echo "MTSWARM_TEST_IMAGE=$IMAGE"
			echo "MTSWARM_TEST_IMAGE_ALIAS=$IMAGE_ALIAS"
			if [ -x /usr/local/bin/docker ]; then echo "MTSWARM_DOCKER_CLI=/usr/local/bin/docker"; fi
			if [ -x /usr/bin/docker ]; then echo "MTSWARM_DOCKER_CLI_OLD=/usr/bin/docker"; fi
		fi
		if keystone_ok; then
			echo "MTSWARM_KEYSTONE_URL=$KEYSTONE_URL"
			echo "MTSWARM_KEYSTONE_ADMIN_USER=admin"
			echo "MTSWARM_KEYSTONE_ADMIN_PASSWORD=$(cat "$KDIR/admin-password")"
			echo "MTSWARM_KEYSTONE_ADMIN_PROJECT=admin"
			echo "MTSWARM_KEYSTONE_SERVICE_USER=mtswarm"
			echo "MTSWARM_KEYSTONE_SERVICE_PASSWORD=$(cat "$KDIR/service-password")"
			echo "MTSWARM_KEYSTONE_SERVICE_PROJECT=service"
		fi
		if etcd_ok; then echo "MTSWARM_ETCD=$ETCD_URL"; fi
		if ov_ok; then echo "MTSWARM_OVERLAY_NODES=$(ov_addr 1):2375,$(ov_addr 2):2375"; fi
		if tls_ok; then
			echo "MTSWARM_TLS_ENGINE=tcp://127.0.0.1:$TLS_PORT"
			echo "MTSWARM_TLS_ENGINE_SOCK=unix://$(tls_sock)"
			echo "MTSWARM_TLS_CA=$TLS_DIR/ca.pem"
			echo "MTSWARM_TLS_CERT=$TLS_DIR/client-cert.pem"
			echo "MTSWARM_TLS_KEY=$TLS_DIR/client-key.pem"
		fi
	} >"$ENV_FILE.tmp"
	if [ "$(wc -l <"$ENV_FILE.tmp")" -gt 1 ]; then mv "$ENV_FILE.tmp" "$ENV_FILE"; else rm -f "$ENV_FILE.tmp" "$ENV_FILE"; fi
}

status_of() {
	local c=$1 n down=0
	case $c in
	engines)
		for n in "${ENGINES[@]}"; do
			if engine_ok "$n"; then
				echo "engine node$n: up unix://$(e_sock "$n") tcp://127.0.0.1:$(e_port "$n") (pid $(engine_pid "$n"))"
			else
				echo "engine node$n: down unix://$(e_sock "$n") tcp://127.0.0.1:$(e_port "$n")"
				down=1
			fi
		done
		if isolation_ok; then echo "isolation: table inet mtswarm-isolation loaded"; else
			echo "isolation: table inet mtswarm-isolation not loaded (scripts/engine-isolation.sh install)"
			down=1
		fi
		;;
	keystone)
		if keystone_ok; then echo "keystone: up $KEYSTONE_URL (pid $(keystone_pid))"; else
			echo "keystone: down $KEYSTONE_URL"
			down=1
		fi
		;;
	etcd)
		if etcd_ok; then echo "etcd: up $ETCD_URL (pid $(etcd_pid))"; else
			echo "etcd: down $ETCD_URL"
			down=1
		fi
		;;
	overlay)
		if ov_ok; then echo "overlay: up $(ov_url 1) $(ov_url 2), cluster store $OV_ETCD_URL"; else
			echo "overlay: down $(ov_url 1) $(ov_url 2)"
			down=1
		fi
		;;
	tls)
		if tls_ok; then echo "tls: up tcp://127.0.0.1:$TLS_PORT --tlsverify (pid $(tls_pid))"; else
			echo "tls: down tcp://127.0.0.1:$TLS_PORT"
			down=1
		fi
		;;
	esac
	return $down
}

# Unmounts what a killed engine may have left mounted in this (the host's) mount namespace.
cleanup_mounts() {
	local m
	awk -v s="$STATE/" -v d="$DATA/" \
		'index($5, s) == 1 || index($5, d) == 1 || $5 ~ "^/run/docker/" || $5 ~ "^/var/lib/docker/" {print $5}' \
		/proc/self/mountinfo | sort -r | while read -r m; do
		log "unmounting leftover $m"
		umount -l "$m" || true
	done
}

# ---------------------------------------------------------------------------------------------------------

# Sets comps (declared by the caller) to the components named in "$@", default all.
components() {
	local c
	if [ $# -eq 0 ]; then set -- "${ALL_COMPONENTS[@]}"; fi
	for c in "$@"; do
		case $c in engines | keystone | etcd | overlay | tls) comps+=("$c") ;; *) die "unknown component '$c' (engines, keystone, etcd, overlay, tls)" ;; esac
	done
}
lock() {
	mkdir -p "$STATE" "$DATA" "$DOCKER_CONFIG"
	exec 9>"$STATE/.lock"
	flock -w 900 9 || die "another scripts/testbed.sh holds $STATE/.lock"
}
need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

main() {
	local cmd=${1:-} c comps=() pkgs=() p=() start=$SECONDS rc=0
	shift || true
	case $cmd in
	up)
		need_root
		components "$@"
		lock
		trap 'write_env || true' EXIT # also when it fails half-way: the env file lists what is up
		for c in "${comps[@]}"; do read -ra p <<<"$(packages_for "$c")" && pkgs+=("${p[@]}"); done
		ensure_packages "${pkgs[@]}"
		# Start keystone and etcd first, bring up the engines meanwhile, then wait for keystone and etcd.
		for c in "${comps[@]}"; do
			case $c in keystone) keystone_start ;; etcd) etcd_start ;; esac
		done
		if [[ " ${comps[*]} " == *" engines "* ]]; then engines_up "${ENGINES[@]}"; fi
		if [[ " ${comps[*]} " == *" overlay "* ]]; then overlay_up; fi
		if [[ " ${comps[*]} " == *" tls "* ]]; then tls_up; fi
		for c in "${comps[@]}"; do
			case $c in keystone) keystone_wait ;; etcd) etcd_wait ;; esac
		done
		trap - EXIT
		write_env
		log "up: ${comps[*]} in $((SECONDS - start))s; env: $ENV_FILE"
		;;
	down)
		need_root
		components "$@"
		lock
		trap 'write_env || true' EXIT
		for c in "${comps[@]}"; do
			case $c in
			engines) engines_down ;;
			keystone) keystone_down ;;
			etcd) etcd_down ;;
			overlay) overlay_down ;;
			tls) tls_down ;;
			esac
		done
		if [[ " ${comps[*]} " == *" engines "* || " ${comps[*]} " == *" overlay "* || " ${comps[*]} " == *" tls "* ]]; then cleanup_mounts; fi
		trap - EXIT
		write_env
		log "down: ${comps[*]} in $((SECONDS - start))s"
		;;
	status)
		components "$@"
		for c in "${comps[@]}"; do status_of "$c" || rc=1; done
		exit $rc
		;;
	engine-stop)
		need_root
		engine_arg "${1:-}"
		lock
		engine_stop "$1"
		log "node$1: stopped"
		;;
	engine-start)
		need_root
		engine_arg "${1:-}"
		lock
		engines_up "$1"
		;;
	keystone-stop)
		need_root
		lock
		keystone_down
		;;
	keystone-start)
		need_root
		lock
		keystone_start
		keystone_wait
		;;
	install)
		need_root
		lock
		for c in "${ALL_COMPONENTS[@]}"; do read -ra p <<<"$(packages_for "$c")" && pkgs+=("${p[@]}"); done
		ensure_packages "${pkgs[@]}" "$@"
		;;
	env)
		[ -s "$ENV_FILE" ] || die "no $ENV_FILE: run scripts/testbed.sh up"
		cat "$ENV_FILE"
		;;
	*)
		sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2
		exit 2
		;;
	esac
}

main "$@"
