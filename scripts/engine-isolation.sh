#!/usr/bin/env bash
# Isolates the bridge networks of an engine host from each other with a firewall rule of its own, which no
# dockerd rewrites. Run it as root on every engine host (and in the network namespace of an engine that has one):
#
#   scripts/engine-isolation.sh install   load (or atomically replace) the table; idempotent
#   scripts/engine-isolation.sh remove    delete the table
#   scripts/engine-isolation.sh status    print the table and its drop counter; non-zero if it is not loaded
#
# Why: dockerd 20.10 (Debian's docker.io) isolates bridge networks through its DOCKER-ISOLATION-STAGE-1/2
# chains, and each time a network is created on the engine it deletes the FORWARD chain's jump to them and
# inserts it again (libnetwork's EnsureJumpRule, two iptables calls). In between, every bridge forwards to every
# other: with networks created in a loop, a container reached a container of another network 26 times in
# 11 s on the test bed. A tenant creates networks at will, so a tenant could open that window itself. On an
# engine run with --iptables=false there is no isolation between bridges at all.
#
# The rule: a packet the host routes from one bridge to another bridge, to an address not on the bridge it came
# from, is dropped (`fib daddr . iif oif missing`: the destination is not reachable through the input
# interface). Traffic within a bridge, from a bridge to the outside world and from the outside to published
# ports stays as dockerd makes it. It is what DOCKER-ISOLATION does, in a table of its own (`inet
# mtswarm-isolation`, hook forward, priority -200: before iptables' filter and mangle tables), matched by
# interface kind, so it covers docker0, br-*, a --bridge of another name and IPv6 alike.
#
# The table lives in the kernel: load it again after a reboot (for instance from /etc/nftables.conf, whose
# systemd unit Debian's nftables package has; `nft list table inet mtswarm-isolation` prints it).
# Needs nft (Debian: nftables) and a kernel with nf_tables' fib and meta iifkind (Linux 5.x and later).
set -euo pipefail

TABLE='inet mtswarm-isolation'

die() { printf 'engine-isolation: %s\n' "$*" >&2; exit 1; }

ruleset() {
	# Declaring the table first makes the delete valid when it does not exist yet; the file is one transaction.
	cat <<EOF
table $TABLE
delete table $TABLE
table $TABLE {
	chain forward {
		type filter hook forward priority -200; policy accept;
		meta iifkind "bridge" meta oifkind "bridge" fib daddr . iif oif missing counter drop comment "one bridge network to another"
	}
}
EOF
}

command -v nft >/dev/null || die "nft not found (Debian: apt-get install nftables)"
case ${1:-} in
install) ruleset | nft -f - ;;
remove) if nft list table $TABLE >/dev/null 2>&1; then nft delete table $TABLE; fi ;;
status) nft list table $TABLE ;;
*) die "usage: $0 install|remove|status" ;;
esac
