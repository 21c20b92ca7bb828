#!/usr/bin/env bash
# Sets up and runs mtswarm on the embedded default: the local engine (unix:///var/run/docker.sock, started by
# scripts/testbed.sh when it is not running) and the token file. On first use it makes a token for the tenant
# `demo` and a docker client config for it in ./demo-config. Extra arguments go to `mtswarm manage`.
#   scripts/local.sh                      # listens on tcp://127.0.0.1:2376
#   docker --config ./demo-config -H tcp://127.0.0.1:2376 run --rm busybox echo hello
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then PATH=$HOME/.cargo/bin:$PATH; fi

bash scripts/testbed.sh up engines
cargo build --release --quiet
bin=target/release/mtswarm
if [ ! -s tokens.json ]; then
	token=$("$bin" tokens add --tenant demo --file tokens.json 2>/dev/null)
	mkdir -p demo-config
	printf '{"HttpHeaders": {"X-Auth-Token": "%s", "X-Auth-TenantId": "demo"}}\n' "$token" >demo-config/config.json
	chmod 600 demo-config/config.json
	echo "local.sh: tenant demo's token is in ./demo-config/config.json (use: docker --config ./demo-config ...)"
fi
exec "$bin" manage -H tcp://127.0.0.1:2376 "$@" unix:///var/run/docker.sock
