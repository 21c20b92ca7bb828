#!/usr/bin/env bash
# Isolates the bridge networks of an engine host from each other with a firewall table of its own, which no
# dockerd rewrites. Run it as root on every engine host (and in the network namespace of an engine that has one):
#
#   scripts/engine-isolation.sh install [--uplink IFACE]...   load (or atomically replace) the table; idempotent
#   scripts/engine-isolation.sh remove                        delete the table
#   scripts/engine-isolation.sh status                        print the table and its counters; non-zero if not loaded
#
# Why: dockerd 20.10 (Debian's docker.io) isolates bridge networks through its DOCKER-ISOLATION-STAGE-1/2
# chains, and each time a network is created on the engine it deletes the FORWARD chain's jump to them and
# inserts it again (libnetwork's EnsureJumpRule, two iptables calls). In between, every bridge forwards to every
# other: with networks created in a loop, a container reached a container of another network 26 times in
# 11 s on the test bed. A tenant creates networks at will, so a tenant could open that window itself. On an
# engine run with --iptables=false there is no isolation between bridges at all.
#
# The rules, in a table of their own (`inet mtswarm-isolation`), over every interface of kind bridge (docker0,
# br-*, a --bridge of another name; IPv4 and IPv6 alike):
# - a packet routed from one bridge to another, to an address not on the bridge it came from, is dropped
#   (`fib daddr . iif oif missing`), as DOCKER-ISOLATION drops it. Traffic within one bridge (unicast,
#   broadcast, multicast, a route through a container of the same network) is left alone: a frame bridged
#   through br_netfilter has the same input and output interface, which the set `bridged` recognises;
# - a packet from a bridge whose source address does not route back through that bridge is dropped
#   (reverse-path filtering): a container with NET_RAW, a default capability, could otherwise send with another
#   tenant's container's address and have a server outside answer into that container;
# - frames between two containers on docker_gwbridge (the overlay networks' way out, made with icc off) are
#   dropped, as dockerd's own rule does where it manages iptables.
# Traffic from a bridge to the outside world, from the outside to published ports, and to the host itself
# (INPUT: the engine's API must be TLS, see the README) is untouched. A host whose own uplink is a Linux bridge
# (Proxmox's vmbr0, libvirt, netplan bridges) names it with --uplink, and the rules leave it out.
#
# The table lives in the kernel: load it again after a reboot (for instance from /etc/nftables.conf, whose
# systemd unit Debian's nftables package has; a `flush ruleset` there removes it). Needs nft (Debian: nftables)
# and nf_tables' fib and meta iifkind (Linux 5.x and later).
set -euo pipefail

TABLE='inet mtswarm-isolation'

die() { printf 'engine-isolation: %s\n' "$*" >&2; exit 1; }

# The table, with the uplinks "$@" left out of the bridge rules.
ruleset() {
	local skip='' names
	if [ $# -gt 0 ]; then
		names=$(printf '"%s", ' "$@")
		skip="iifname != { ${names%, } } oifname != { ${names%, } } "
	fi
	# Declaring the table first makes the delete valid when it does not exist yet; the file is one transaction.
	cat <<EOF
table $TABLE
delete table $TABLE
table $TABLE {
	set bridged {
		type iface_index . iface_index
		flags dynamic,timeout
		timeout 10m
	}
	chain prerouting {
		type filter hook prerouting priority -300; policy accept;
		meta iifkind "bridge" icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept
		${skip}meta iifkind "bridge" fib saddr . iif oif missing counter drop comment "a source address of another network"
	}
	chain forward {
		type filter hook forward priority -200; policy accept;
		iifname "docker_gwbridge" oifname "docker_gwbridge" counter drop comment "docker_gwbridge has icc off"
		meta iifkind "bridge" update @bridged { meta iif . meta iif }
		${skip}meta iifkind "bridge" meta oifkind "bridge" meta iif . meta oif != @bridged fib daddr . iif oif missing counter drop comment "one bridge network to another"
	}
}
EOF
}

command -v nft >/dev/null || die "nft not found (Debian: apt-get install nftables)"
cmd=${1:-}
[ $# -gt 0 ] && shift
uplinks=()
while [ $# -gt 0 ]; do
	case $1 in
	--uplink)
		[ $# -ge 2 ] || die "--uplink needs an interface name"
		uplinks+=("$2")
		shift 2
		;;
	*) die "unknown argument: $1" ;;
	esac
done
case $cmd in
install) ruleset "${uplinks[@]}" | nft -f - ;;
remove) if nft list table $TABLE >/dev/null 2>&1; then nft delete table $TABLE; fi ;;
status) nft list table $TABLE ;;
*) die "usage: $0 install [--uplink IFACE]... | remove | status" ;;
esac
