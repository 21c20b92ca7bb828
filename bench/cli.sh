#!/usr/bin/env bash
# The docker CLI as a user runs it, against one bare engine and through mtswarm over the test bed's three
# engines, in one run: every scenario's output (stdout, stderr and exit code), with ids, times, addresses and
# ports normalized, compared with the engine's.
#
#   bench/cli.sh [--modes "vanilla tenant"] [--out DIR] [--keep]
#
# Sides: `engine` is node0 directly (the reference); `vanilla` is mtswarm with SWARM_MULTI_TENANT=false over
# nodes://node0,node1,node2; `tenant` is mtswarm with multi-tenancy on (a token file, one tenant and an admin
# tenant) over the same nodes, the scenarios run as the tenant, and those that change the image catalogue (tag,
# commit, rmi) as the admin, which names a tenant's container by its id. Scenarios are the `scenario NAME 'SHELL'`
# lines below: `$D` is the side's docker CLI, `$DA` the one that may change images, `$P` the run's name prefix,
# `$IMG` the test image. A published port pins its container to node0 (`-e constraint:node==node0`): node1 and
# node2 run with --bridge=none, where nothing is published, on the engine side too the variable is plain env.
# DIR/summary.md lists, per side, the scenarios whose output differs from the engine's, with the diff; the
# expected ones are explained in bench/results-suites.md. Everything a run makes carries its prefix or its label
# (cliharness=<prefix>) or its tenant's label, and is removed at the end, on every engine. Needs the test bed
# (scripts/testbed.sh up) and target/release/mtswarm; hold the heavy lock (flock /tmp/mtswarm-heavy.lock).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
modes="vanilla tenant"
out=/var/tmp/mtswarm-cli
keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--modes) modes=$2; shift ;;
	--out) out=$2; shift ;;
	--keep) keep=1 ;;
	*) echo "usage: $0 [--modes \"vanilla tenant\"] [--out DIR] [--keep]" >&2; exit 2 ;;
	esac
	shift
done
# shellcheck disable=SC1091
set -a; . /run/mtswarm-testbed/env; set +a
bin=${MTSWARM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/mtswarm}
[ -x "$bin" ] || { echo "no mtswarm at $bin: cargo build --release" >&2; exit 1; }
cli=${MTSWARM_DOCKER_CLI:-docker}
IMG=${MTSWARM_TEST_IMAGE:-busybox:latest}
nodes="${MTSWARM_ENGINE0_TCP#tcp://},${MTSWARM_ENGINE1_TCP#tcp://},${MTSWARM_ENGINE2_TCP#tcp://}"
run_id=$(date +%s)$$
P=cli${run_id}
tenant=cli-$run_id
rm -rf "$out"
mkdir -p "$out"
work=$out/work
mkdir -p "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
token() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

pids=()
remove_objects() {
	for e in "$MTSWARM_ENGINE0_TCP" "$MTSWARM_ENGINE1_TCP" "$MTSWARM_ENGINE2_TCP"; do
		local d="$cli -H $e"
		$d ps -aq --filter "label=cliharness=$P" | xargs -r $d rm -f -v >/dev/null 2>&1 || true
		$d ps -aq --filter "label=mtswarm.tenant=$tenant" | xargs -r $d rm -f -v >/dev/null 2>&1 || true
		$d ps -aq --filter "name=$P" | xargs -r $d rm -f -v >/dev/null 2>&1 || true
		{ $d network ls -q --filter "name=$P"; $d network ls -q --filter "label=mtswarm.tenant=$tenant"; } |
			xargs -r $d network rm >/dev/null 2>&1 || true
		{ $d volume ls -q --filter "name=$P"; $d volume ls -q --filter "label=mtswarm.tenant=$tenant"; } |
			xargs -r $d volume rm -f >/dev/null 2>&1 || true
		$d images --format '{{.Repository}}:{{.Tag}}' | grep "^$P" | xargs -r $d rmi -f >/dev/null 2>&1 || true
	done
}
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "$keep" != 1 ]; then remove_objects; fi
}
trap cleanup EXIT

# ---- the sides ----
tok_tenant=$(token)
tok_admin=$(token)
printf '{"tokens": [{"tenant": "%s", "token": "%s"}, {"tenant": "cli-admin", "token": "%s"}]}\n' \
	"$tenant" "$tok_tenant" "$tok_admin" >"$work/tokens.json"
for who in tenant admin; do
	mkdir -p "$work/config-$who"
	if [ $who = tenant ]; then id=$tenant tok=$tok_tenant; else id=cli-admin tok=$tok_admin; fi
	printf '{"HttpHeaders": {"X-Auth-Token": "%s", "X-Auth-TenantId": "%s"}}\n' "$tok" "$id" >"$work/config-$who/config.json"
done
start_gateway() { # MODE PORT
	local env=(SWARM_MULTI_TENANT=false)
	if [ "$1" = tenant ]; then env=(SWARM_TOKENS_FILE="$work/tokens.json" SWARM_ADMIN_TENANT_ID=cli-admin); fi
	(cd "$work" && exec env "${env[@]}" "$bin" manage -H "tcp://127.0.0.1:$2" "nodes://$nodes") >"$out/mtswarm-$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do
		curl -sf "http://127.0.0.1:$2/_ping" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "mtswarm ($1) did not start; its log:" >&2
	tail -n 20 "$out/mtswarm-$1.log" >&2
	exit 1
}

# ---- normalizing what differs by nature: ids, times, addresses, ports, paths under a data root, the prefix ----
normalize() {
	sed -E \
		-e "s/$P/P/g" \
		-e 's/sha256:[0-9a-f]{64}/sha256:ID/g' \
		-e 's/\b[0-9a-f]{64}\b/ID64/g' \
		-e 's/\b[0-9a-f]{12}\b/ID12/g' \
		-e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)/DATE/g' \
		-e 's/(About a|About an|Less than a|[0-9]+) (second|minute|hour)s? ago/AGO/g' \
		-e 's/(Up|Exited \([0-9]+\)) (About a|About an|Less than a|[0-9]+) (second|minute|hour)s?( ago)?/\1 TIME/g' \
		-e 's/\b([0-9]{1,3}\.){3}[0-9]{1,3}\b/IP/g' \
		-e 's/:[0-9]{4,5}\b/:PORT/g' \
		-e 's#/[^ ]*/volumes/#ROOT/volumes/#g' \
		-e 's/[0-9.]+(B|kB|KB|MB|MiB|KiB|GiB|GB)\b/SIZE/g' \
		-e 's/ {2,}/  /g'
}

# ---- the scenarios ----
list=$work/scenarios
: >"$list"
scenario() { printf '%s\t%s\n' "$1" "$2" >>"$list"; }
L="--label cliharness=\$P"
scenario version "\$D version --format '{{.Server.APIVersion}} {{.Server.Os}}'"
scenario run-rm "\$D run --rm $L \$IMG echo hello"
scenario run-exit-code "\$D run --rm $L \$IMG sh -c 'exit 7'"
scenario run-stdin "echo piped | \$D run -i --rm $L \$IMG cat"
scenario run-missing-image "\$D run --rm $L \$P-nothing:v1 true"
scenario run-d "\$D run -d --name \$P-web $L \$IMG sleep 300"
scenario run-name-taken "\$D run -d --name \$P-web $L \$IMG sleep 300"
scenario ps "\$D ps --filter name=\$P-web"
scenario ps-format "\$D ps --filter name=\$P-web --format '{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}|{{.Labels}}'"
scenario ps-a-quiet-count "\$D ps -aq --filter label=cliharness=\$P | wc -l"
scenario exec "\$D exec \$P-web echo in-exec"
scenario exec-exit-code "\$D exec \$P-web sh -c 'exit 3'"
scenario exec-stdin "echo piped | \$D exec -i \$P-web cat"
scenario exec-env-workdir "\$D exec -e A=1 -w /tmp \$P-web sh -c 'echo \$A; pwd'"
scenario exec-missing "\$D exec \$P-nothing true"
scenario inspect-format "\$D inspect --format '{{.Name}} {{.Config.Image}} {{.State.Status}} {{.Config.Labels}}' \$P-web"
scenario inspect-missing "\$D inspect \$P-nothing"
scenario container-inspect-size "\$D container inspect --size --format '{{.State.Running}}' \$P-web"
# dockerd copies a container's stdout and stderr to its log apart: lines written at once may be logged in either
# order, so these come a moment apart.
scenario logs "\$D run --name \$P-log $L \$IMG sh -c 'echo out1; sleep 0.3; echo err1 >&2; sleep 0.3; echo out2' >/dev/null 2>&1; \$D logs \$P-log"
scenario logs-tail "\$D logs --tail 1 \$P-log"
scenario logs-timestamps "\$D logs -t \$P-log"
scenario logs-missing "\$D logs \$P-nothing"
scenario top "\$D top \$P-web | sed -E 's/[0-9]+/N/g'"
scenario cp-from "\$D cp \$P-web:/etc/passwd - | tar -tf -"
scenario cp-from-missing "\$D cp \$P-web:/nonexistent $work/x"
scenario cp-to "echo data > $work/f.txt; \$D cp $work/f.txt \$P-web:/tmp/ && \$D exec \$P-web cat /tmp/f.txt"
scenario cp-to-missing-dir "\$D cp $work/f.txt \$P-web:/no/such/dir/"
scenario cp-missing-container "\$D cp \$P-nothing:/etc/passwd $work/y"
# The order of a diff's entries is the engine's walk of its storage.
scenario diff "\$D exec \$P-web touch /tmp/g; \$D diff \$P-web | sort"
scenario export "\$D export \$P-web | tar -tf - | grep -E '^(bin/busybox|etc/passwd|tmp/g)\$'"
scenario stats "\$D stats --no-stream --format '{{.Name}}' \$P-web"
scenario port "\$D run -d --name \$P-pub -p 80 -e constraint:node==node0 $L \$IMG sleep 300 >/dev/null; \$D port \$P-pub"
scenario port-none "\$D port \$P-web"
scenario rename "\$D rename \$P-web \$P-web2 && \$D ps --filter name=\$P-web --format '{{.Names}}'"
scenario rename-taken "\$D rename \$P-web2 \$P-pub"
scenario pause-unpause "\$D pause \$P-web2 && \$D ps --filter name=\$P-web2 --format '{{.Status}}' && \$D unpause \$P-web2"
scenario update "\$D update --cpu-shares 512 \$P-web2 && \$D inspect --format '{{.HostConfig.CpuShares}}' \$P-web2"
scenario restart "\$D restart -t 1 \$P-web2"
scenario stop "\$D stop -t 1 \$P-web2"
scenario wait "\$D wait \$P-web2"
scenario start "\$D start \$P-web2"
scenario kill "\$D kill \$P-web2"
scenario rm-running "\$D rm \$P-pub"
scenario rm "\$D rm -f \$P-web2 \$P-pub"
scenario rm-missing "\$D rm \$P-web2"
scenario create-start-attach "\$D create --name \$P-c $L \$IMG echo created >/dev/null; \$D start -a \$P-c"
scenario network-create "\$D network create \$P-net >/dev/null && \$D network ls --filter name=\$P-net --format '{{.Name}} {{.Driver}} {{.Scope}}'"
scenario network-inspect "\$D network inspect --format '{{.Name}} {{.Driver}} {{.Internal}}' \$P-net"
scenario network-run "\$D run --rm --network \$P-net $L \$IMG echo on-net"
scenario network-connect "\$D network connect \$P-net \$P-c && \$D inspect --format '{{range \$k, \$v := .NetworkSettings.Networks}}{{\$k}} {{end}}' \$P-c"
scenario network-disconnect "\$D network disconnect \$P-net \$P-c"
scenario network-rm "\$D network rm \$P-net"
scenario network-rm-missing "\$D network rm \$P-net"
scenario network-inspect-missing "\$D network inspect \$P-net"
scenario volume-create "\$D volume create \$P-vol"
scenario volume-ls "\$D volume ls --filter name=\$P-vol"
scenario volume-inspect "\$D volume inspect --format '{{.Name}} {{.Driver}} {{.Mountpoint}}' \$P-vol"
scenario volume-run "\$D run --rm -v \$P-vol:/d $L \$IMG sh -c 'echo x > /d/f; cat /d/f'"
scenario volume-rm "\$D volume rm \$P-vol"
scenario volume-rm-missing "\$D volume rm \$P-vol"
scenario events-until "\$D events --since \$T0 --until \$(date +%s) --filter label=cliharness=\$P --filter event=create --format '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}' | grep \" \$P\" | sort"
scenario images-filter "\$D images --filter reference=\$IMG --format '{{.Repository}}:{{.Tag}}'"
scenario image-inspect "\$D image inspect --format '{{.Os}} {{.Architecture}}' \$IMG"
scenario history "\$D history --format '{{.CreatedBy}}' \$IMG"
scenario tag "\$DA tag \$IMG \$P-img:v1 && \$D images --filter reference=\$P-img --format '{{.Repository}}:{{.Tag}}'"
scenario rmi "\$DA rmi \$P-img:v1"
scenario rmi-missing "\$DA rmi \$P-img:v1"
scenario commit "\$DA commit \$(\$D inspect --format '{{.Id}}' \$P-c) \$P-commit:v1 >/dev/null && \$D images --filter reference=\$P-commit --format '{{.Repository}}:{{.Tag}}'"
scenario commit-rmi "\$DA rmi \$P-commit:v1 | sed 's/Deleted: .*/Deleted/' | sort -u"
scenario container-prune "\$D container prune -f --filter label=cliharness=\$P"
scenario system-info "\$D info --format '{{.OSType}} {{.Architecture}}'"

run_side() { # SIDE D DA
	local side=$1 name cmd
	mkdir -p "$out/$side"
	export D=$2 DA=$3 P IMG
	T0=$(date +%s)
	export T0
	while IFS=$'\t' read -r name cmd; do
		set +e
		(bash -c "$cmd") >"$out/$side/$name.raw" 2>&1 </dev/null
		echo "exit: $?" >>"$out/$side/$name.raw"
		set -e
		normalize <"$out/$side/$name.raw" >"$out/$side/$name.txt"
	done <"$list"
}

echo "== engine (node0, $MTSWARM_ENGINE0_TCP)"
run_side engine "$cli -H $MTSWARM_ENGINE0_TCP" "$cli -H $MTSWARM_ENGINE0_TCP"
remove_objects
for mode in $modes; do
	port=$(free_port)
	start_gateway "$mode" "$port"
	echo "== $mode (mtswarm over $nodes)"
	if [ "$mode" = tenant ]; then
		run_side tenant "$cli -H tcp://127.0.0.1:$port --config $work/config-tenant" \
			"$cli -H tcp://127.0.0.1:$port --config $work/config-admin"
	else
		run_side "$mode" "$cli -H tcp://127.0.0.1:$port" "$cli -H tcp://127.0.0.1:$port"
	fi
	kill "${pids[-1]}" 2>/dev/null || true
	remove_objects
done

total=$(wc -l <"$list")
{
	echo "# The docker CLI ($($cli version --format '{{.Client.Version}}')) through mtswarm vs one engine: $total scenarios"
	for mode in $modes; do
		same=0 differ=()
		while IFS=$'\t' read -r name _; do
			if cmp -s "$out/engine/$name.txt" "$out/$mode/$name.txt"; then same=$((same + 1)); else differ+=("$name"); fi
		done <"$list"
		echo
		echo "## $mode: $same of $total as the engine"
		for name in "${differ[@]}"; do
			echo
			echo "### $name"
			echo '```diff'
			diff -u --label engine --label "$mode" "$out/engine/$name.txt" "$out/$mode/$name.txt" | tail -n +3 || true
			echo '```'
		done
	done
} >"$out/summary.md"
cat "$out/summary.md"
