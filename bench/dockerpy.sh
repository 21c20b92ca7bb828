#!/usr/bin/env bash
# docker-py 6.1.3's own integration suite, against a bare engine and through mtswarm, in one run.
#
#   bench/dockerpy.sh [--quick | --ci] [--modes "engine vanilla tenant"] [--out DIR] [-- PYTEST ARGS...]
#
# The suite runs against a dockerd of the harness's own (bench/suite-engine.sh: its prune tests would remove the
# test bed's objects), first directly, then through `mtswarm manage` in front of that engine: vanilla
# (SWARM_MULTI_TENANT=false) and as a tenant (a token file, the headers in config.json, which docker-py sends on
# every request). No registry is reachable, so the test bed's busybox image is tagged under the names the suite
# pulls; tests that really pull fail on both sides. What counts is the pass sets: a test that passes against the
# engine and fails through mtswarm is a difference, listed in DIR/summary.md; the run fails if vanilla mode has
# any (a tenant's expected ones are listed in the README). --quick runs the container, exec, network, volume,
# image and client files only; --ci the network file and the link and websocket tests (a few minutes).
#
# Needs: root, python3 with venv, the test bed's image (scripts/testbed.sh up), a built mtswarm (cargo build
# --release; MTSWARM_BIN or CARGO_TARGET_DIR/release/mtswarm). PyPI is used through pip for docker==6.1.3,
# pytest and the docker-py sdist (its tests/integration).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/suite-engine.sh
. "$here/suite-engine.sh"

quick=0
modes="engine vanilla tenant"
out=${DOCKERPY_OUT:-/var/tmp/mtswarm-dockerpy/run}
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--ci) quick=ci ;;
	--modes) modes=$2; shift ;;
	--out) out=$2; shift ;;
	--) shift; extra=("$@"); break ;;
	*) echo "usage: $0 [--quick | --ci] [--modes \"engine vanilla tenant\"] [--out DIR] [-- PYTEST ARGS]" >&2; exit 2 ;;
	esac
	shift
done

venv=${DOCKERPY_VENV:-/var/tmp/mtswarm-dockerpy}
bin=${MTSWARM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/mtswarm}
image=${MTSWARM_TEST_IMAGE:-busybox:latest}
[ -x "$bin" ] || { echo "no mtswarm at $bin: cargo build --release (or set MTSWARM_BIN)" >&2; exit 1; }

# The client and the suite, once.
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c 'import docker, paramiko, pytest, pytest_timeout, requests; assert docker.__version__ == "6.1.3" and requests.__version__ < "2.32"' 2>/dev/null; then
	# Debian's python3 has venv without ensurepip unless python3-venv is installed.
	if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends python3-venv >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends python3-venv >/dev/null; } ||
			{ echo "dockerpy.sh: cannot install python3-venv" >&2; exit 1; }
	fi
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q docker==6.1.3 pytest pytest-timeout paramiko 'urllib3<2' 'requests<2.32'
fi
src=$venv/src/docker-6.1.3
if [ ! -d "$src/tests/integration" ]; then
	mkdir -p "$venv/src"
	(cd "$venv/src" && "$venv/bin/pip" download -q --no-binary :all: --no-deps docker==6.1.3 && tar xzf docker-6.1.3.tar.gz)
fi

rm -rf "$out"
mkdir -p "$out"
cleanup() {
	suite_mtswarm_stop
	suite_engine_stop
}
trap cleanup EXIT
suite_engine_start "$out/engine" mtsuite-dockerpy
suite_engine_image "$image" alpine:3.10 alpine:latest busybox:latest hello-world:latest

files=(tests/integration)
if [ "$quick" = 1 ]; then
	files=()
	for f in api_container_test api_exec_test api_network_test api_volume_test api_image_test api_client_test \
		models_containers_test errors_test; do
		files+=("tests/integration/$f.py")
	done
elif [ "$quick" = ci ]; then
	files=(tests/integration/api_network_test.py tests/integration/api_container_test.py::LinkTest
		tests/integration/api_container_test.py::AttachContainerTest::test_run_container_reading_socket_ws)
fi

run_suite() {
	local mode=$1 host=$2 config=${3:-}
	echo "== docker-py integration suite: $mode ($host)"
	local start=$SECONDS
	# A HOME of its own: the context tests write ~/.docker/contexts.
	mkdir -p "$out/home-$mode"
	(cd "$src" && env HOME="$out/home-$mode" DOCKER_HOST="$host" ${config:+DOCKER_CONFIG=$config} \
		timeout "${DOCKERPY_TIMEOUT:-3000}" "$venv/bin/pytest" -p no:cacheprovider -q \
		--junitxml="$out/$mode.xml" "${files[@]}" "${extra[@]}" >"$out/$mode.log" 2>&1 || true)
	python3 "$here/junit-passed.py" "$out/$mode.xml" "$out/$mode.passed"
	echo "   ($((SECONDS - start)) s; log: $out/$mode.log)"
	# What a test left behind stays out of the next mode's way.
	docker -H "unix://$SUITE_ENGINE_SOCK" ps -aq | xargs -r docker -H "unix://$SUITE_ENGINE_SOCK" rm -f >/dev/null 2>&1 || true
}

for mode in $modes; do
	case $mode in
	engine) run_suite engine "unix://$SUITE_ENGINE_SOCK" ;;
	vanilla | tenant)
		suite_mtswarm_start "$out/mtswarm-$mode" "$mode" "$bin"
		run_suite "$mode" "$SUITE_MTSWARM_HOST" "$SUITE_DOCKER_CONFIG"
		suite_mtswarm_stop
		;;
	*) echo "unknown mode $mode" >&2; exit 2 ;;
	esac
done

# The comparison: what passed against the engine and not through mtswarm, apart from the expected differences.
expected() { # MODE: the patterns for MODE, one a line
	sed -n 's/#.*//; s/[[:space:]]*$//; /^\(any\|'"$1"'\)[[:space:]]/{s/^[a-z]*[[:space:]]*//;p}' "$here/dockerpy-expected.txt"
}
status=0
{
	echo "# docker-py $(basename "$src") integration suite: engine vs mtswarm"
	echo
	for mode in $modes; do
		echo "- $mode: $(wc -l <"$out/$mode.passed") passed"
	done
	for mode in $modes; do
		[ "$mode" != engine ] && [ -f "$out/engine.passed" ] || continue
		comm -23 "$out/engine.passed" "$out/$mode.passed" >"$out/$mode.lost"
		grep -E -f <(expected "$mode") "$out/$mode.lost" >"$out/$mode.expected" || true
		grep -v -x -F -f "$out/$mode.expected" "$out/$mode.lost" >"$out/$mode.unexpected" || true
		echo
		echo "## $mode: $(wc -l <"$out/$mode.lost") passed against the engine only, $(wc -l <"$out/$mode.expected") of them on purpose (bench/dockerpy-expected.txt)"
		echo
		echo "Not expected:"
		sed 's/^/- /' "$out/$mode.unexpected"
		gained=$(comm -13 "$out/engine.passed" "$out/$mode.passed")
		if [ -n "$gained" ]; then
			echo
			echo "Passed through mtswarm only (flaky, or the engine's unix socket: docker-py's websockets need TCP):"
			printf '%s\n' "$gained" | sed 's/^/- /'
		fi
		if [ "$mode" = vanilla ] && [ -s "$out/$mode.unexpected" ]; then status=1; fi
	done
} >"$out/summary.md"
cat "$out/summary.md"
exit "$status"
