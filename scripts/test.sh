#!/usr/bin/env bash
# The project's test command:  scripts/test.sh [ARGS...]
#
# From the repository root (whatever the caller's cwd), it runs, stopping at the first failure:
#   scripts/testbed.sh up                       (real engines, Keystone, etcd; a second or so when up)
#   cargo fmt --check
#   cargo clippy --all-targets -- -D warnings
#   cargo test --release --lib --tests -- --test-threads 6 ARGS...
# ARGS go to the test binaries: a name filter, --nocapture, --ignored, ... If ARGS hold a `--`, the
# arguments before it go to cargo and those after it to the test binaries:
#   scripts/test.sh tenant_isolation              scripts/test.sh --test e2e -- --nocapture
# The test bed's env file ($MTSWARM_TESTBED_DIR/env, see scripts/testbed.sh) is exported to the tests.
# cargo test's output, summary lines included, is printed unchanged and last; the exit status is
# non-zero on any failure.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then PATH=$HOME/.cargo/bin:$PATH; fi

cargo_args=()
test_args=("$@")
for ((i = 1; i <= $#; i++)); do
	if [ "${!i}" = -- ]; then
		cargo_args=("${@:1:i-1}")
		test_args=("${@:i+1}")
		break
	fi
done

run() {
	local rc
	printf '==== test.sh: %s\n' "$*" >&2
	"$@"
	rc=$?
	if [ $rc -ne 0 ]; then
		printf 'test.sh: FAILED (exit %d): %s\n' "$rc" "$*" >&2
		exit $rc
	fi
}

run bash scripts/testbed.sh up
env_file=${MTSWARM_TESTBED_DIR:-/run/mtswarm-testbed}/env
if [ -f "$env_file" ]; then
	set -a
	# shellcheck disable=SC1090
	. "$env_file"
	set +a
fi
run cargo fmt --check
run cargo clippy --all-targets -- -D warnings
# The unit tests and the integration binary, in that order, so the last summary is the integration suite's
# (the crate has no doc tests, whose empty summary would otherwise close the output).
if [ ${#cargo_args[@]} -eq 0 ]; then cargo_args=(--lib --tests); fi
printf '==== test.sh: %s\n' "cargo test --release ${cargo_args[*]} -- --test-threads 6 ${test_args[*]}" >&2
exec cargo test --release "${cargo_args[@]}" -- --test-threads 6 "${test_args[@]}"
