#!/usr/bin/env bash
# moby's own integration suite (dockerd 20.10.24's integration/ packages, from Debian's docker.io source
# package), against a bare engine and through mtswarm, in one run.
#
#   bench/moby.sh [--build-only] [--modes "engine vanilla tenant"] [--packages "container network ..."] [--out DIR]
#
# The suite removes every container, image, volume and network it did not find at its start, so it gets a
# dockerd of its own (bench/suite-engine.sh), started here and stopped at exit. Built once, in GOPATH mode,
# from Debian's packages only (no Go module proxy is reachable): a deb-src entry, `apt-get source docker.io`,
# golang-go and every golang-*-dev of the source's Build-Depends (libsystemd-dev and libudev-dev pinned to the
# installed libsystemd0, so apt does not upgrade systemd). Each top-level test runs in its own process
# (`-test.run '^Name$'`) with a timeout, with DOCKER_HOST at the endpoint and DOCKER_REMOTE_DAEMON=1 (tests that
# start daemons of their own skip themselves). As a tenant, the Go client cannot send config.json's headers:
# mtswarm serves TLS and a client certificate stands for the tenant (--tls-cn-tenants).
# DIR/summary.md lists what passed against the engine and not through mtswarm; expected differences are in
# the README.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/suite-engine.sh
. "$here/suite-engine.sh"

modes="engine vanilla tenant"
build_only=0
packages="container network volume image system build session"
out=${MOBY_OUT:-/var/tmp/mtswarm-moby/run}
work=${MOBY_WORK:-/var/tmp/mtswarm-moby}
while [ $# -gt 0 ]; do
	case $1 in
	--modes) modes=$2; shift ;;
	--packages) packages=$2; shift ;;
	--out) out=$2; shift ;;
	--build-only) build_only=1 ;;
	*) echo "usage: $0 [--build-only] [--modes \"engine vanilla tenant\"] [--packages \"container ...\"] [--out DIR]" >&2; exit 2 ;;
	esac
	shift
done
bin=${MTSWARM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/mtswarm}
image=${MTSWARM_TEST_IMAGE:-busybox:latest}
[ -x "$bin" ] || { echo "no mtswarm at $bin: cargo build --release (or set MTSWARM_BIN)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# ---- the sources and their build dependencies, once ----
mkdir -p "$work"
src=$(find "$work" -maxdepth 1 -type d -name 'docker.io-20.10.24*' | head -n 1)
if [ -z "$src" ]; then
	if ! grep -qs deb-src /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null; then
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >/etc/apt/sources.list.d/mtswarm-deb-src.sources
		apt-get update -q
	fi
	apt-get install -y -q dpkg-dev >/dev/null
	(cd "$work" && apt-get source --download-only docker.io && dpkg-source -x docker.io_20.10.24*.dsc)
	src=$(find "$work" -maxdepth 1 -type d -name 'docker.io-20.10.24*' | head -n 1)
fi
if [ ! -x "$work/.deps-installed" ]; then
	mapfile -t deps < <(sed -n '/^Build-Depends:/,/^[A-Z][A-Za-z-]*:/p' "$src/debian/control" |
		grep -oE 'golang-[a-z0-9.+-]+-dev' | sort -u)
	sysver=$(dpkg-query -W -f '${Version}' libsystemd0)
	apt-get install -y -q --no-install-recommends golang-go "${deps[@]}" \
		"libsystemd-dev=$sysver" "libudev-dev=$sysver" >"$work/apt.log" 2>&1 ||
		{ tail -n 30 "$work/apt.log" >&2; exit 1; }
	touch "$work/.deps-installed"
	chmod +x "$work/.deps-installed"
fi

# ---- the test binaries, GOPATH mode ----
gopath=$work/gopath
if [ ! -d "$gopath/src/github.com/docker/docker" ]; then
	mkdir -p "$gopath/src/github.com/docker"
	cp -a "$src/engine" "$gopath/src/github.com/docker/docker"
	for extra in libnetwork swarmkit; do
		if [ -d "$src/$extra" ]; then cp -a "$src/$extra" "$gopath/src/github.com/docker/$extra"; fi
	done
fi
mkdir -p "$work/bin"
for p in $packages; do
	[ -x "$work/bin/$p.test" ] && continue
	echo "== building integration/$p"
	(cd "$gopath/src/github.com/docker/docker" && GO111MODULE=off GOPROXY=off \
		GOPATH="$gopath:/usr/share/gocode" go test -c -o "$work/bin/$p.test" \
		-tags 'exclude_graphdriver_devicemapper exclude_graphdriver_btrfs exclude_graphdriver_zfs' \
		"./integration/$p") >"$work/build-$p.log" 2>&1 || { echo "   failed: $work/build-$p.log" >&2; tail -n 5 "$work/build-$p.log" >&2; }
done

if [ "$build_only" = 1 ]; then exit 0; fi

# ---- a client certificate for the tenant ----
tls=$work/tls
if [ ! -f "$tls/cert.pem" ]; then
	mkdir -p "$tls"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=mtswarm-suite-ca -keyout "$tls/ca-key.pem" \
		-out "$tls/ca.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$tls/server-key.pem" -out "$tls/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' >"$tls/server.ext"
	openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial -days 30 \
		-extfile "$tls/server.ext" -out "$tls/server-cert.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj /CN=suite -keyout "$tls/key.pem" -out "$tls/client.csr" 2>/dev/null
	printf 'extendedKeyUsage=clientAuth\n' >"$tls/client.ext"
	openssl x509 -req -in "$tls/client.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial -days 30 \
		-extfile "$tls/client.ext" -out "$tls/cert.pem" 2>/dev/null
fi

# ---- the runs ----
rm -rf "$out"
mkdir -p "$out"
mtswarm_pid=
cleanup() {
	if [ -n "$mtswarm_pid" ]; then kill "$mtswarm_pid" 2>/dev/null || true; fi
	suite_engine_stop
}
trap cleanup EXIT
suite_engine_start "$out/engine" mtsuite-moby
suite_engine_image "$image" busybox:latest busybox:glibc hello-world:frozen debian:bullseye-slim

run_suite() {
	local mode=$1 host=$2 p t
	shift 2
	echo "== moby integration suite: $mode ($host)"
	: >"$out/$mode.passed"
	# The suite protects the images it finds by their tags only, and its cleanup removes the rest: untagged
	# images an earlier mode's builds left would make every tenant's cleanup fail (removing images is the
	# admin's). Each mode starts from the frozen images alone.
	docker -H "unix://$SUITE_ENGINE_SOCK" ps -aq | xargs -r docker -H "unix://$SUITE_ENGINE_SOCK" rm -f >/dev/null 2>&1 || true
	docker -H "unix://$SUITE_ENGINE_SOCK" image prune -f >/dev/null 2>&1 || true
	for p in $packages; do
		[ -x "$work/bin/$p.test" ] || continue
		mkdir -p "$out/$mode/$p"
		# TestMain reads the frozen images' list from the tree's Dockerfile, relative to the package.
		for t in $(cd "$gopath/src/github.com/docker/docker/integration/$p" && env "$@" DOCKER_HOST="$host" \
			DOCKER_REMOTE_DAEMON=1 "$work/bin/$p.test" -test.list '.*' | grep '^Test'); do
			if (cd "$gopath/src/github.com/docker/docker/integration/$p" && env "$@" DOCKER_HOST="$host" \
				DOCKER_REMOTE_DAEMON=1 timeout 300 "$work/bin/$p.test" -test.run "^$t\$" -test.v -test.timeout 280s) \
				>"$out/$mode/$p/$t.log" 2>&1; then
				if ! grep -q -- "^--- SKIP: $t " "$out/$mode/$p/$t.log"; then echo "$p/$t" >>"$out/$mode.passed"; fi
			fi
		done
	done
	sort -o "$out/$mode.passed" "$out/$mode.passed"
	echo "   $(wc -l <"$out/$mode.passed") passed"
}

for mode in $modes; do
	case $mode in
	engine) run_suite engine "unix://$SUITE_ENGINE_SOCK" ;;
	vanilla)
		port=$(suite_free_port)
		(cd "$out" && SWARM_MULTI_TENANT=false exec "$bin" manage -H "tcp://127.0.0.1:$port" "unix://$SUITE_ENGINE_SOCK") \
			>"$out/mtswarm-vanilla.log" 2>&1 &
		mtswarm_pid=$!
		sleep 1
		run_suite vanilla "tcp://127.0.0.1:$port"
		kill "$mtswarm_pid"; wait "$mtswarm_pid" 2>/dev/null || true; mtswarm_pid=
		;;
	tenant)
		port=$(suite_free_port)
		printf '{"suite": "suite"}\n' >"$out/cn-tenants.json"
		printf '{"tokens": []}\n' >"$out/tokens.json"
		(cd "$out" && SWARM_TOKENS_FILE=$out/tokens.json exec "$bin" manage --tlsverify --tlscacert "$tls/ca.pem" \
			--tlscert "$tls/server-cert.pem" --tlskey "$tls/server-key.pem" --tls-cn-tenants "$out/cn-tenants.json" \
			-H "tcp://127.0.0.1:$port" "unix://$SUITE_ENGINE_SOCK") >"$out/mtswarm-tenant.log" 2>&1 &
		mtswarm_pid=$!
		sleep 1
		run_suite tenant "tcp://127.0.0.1:$port" DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$tls"
		kill "$mtswarm_pid"; wait "$mtswarm_pid" 2>/dev/null || true; mtswarm_pid=
		;;
	*) echo "unknown mode $mode" >&2; exit 2 ;;
	esac
done

{
	echo "# moby 20.10.24 integration suite ($packages): engine vs mtswarm"
	echo
	for mode in $modes; do echo "- $mode: $(wc -l <"$out/$mode.passed") passed"; done
	for mode in $modes; do
		[ "$mode" != engine ] && [ -f "$out/engine.passed" ] || continue
		echo
		echo "## $mode: passed against the engine only"
		comm -23 "$out/engine.passed" "$out/$mode.passed" | sed 's/^/- /'
	done
} >"$out/summary.md"
cat "$out/summary.md"
