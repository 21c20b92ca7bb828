#!/bin/sh
# Run inside an extra engine's new mount and UTS namespaces, before exec dockerd (scripts/testbed.sh's node1,
# node2, ovnodes and tlsnode; bench/suite-engine.sh's engine):
#   sh scripts/engine-ns-init.sh ETC_DOCKER_DIR HOSTNAME dockerd ARGS...
# A private /etc/docker (own key.json, so own engine ID), its own host name, no copies of the default engine's
# mounts (container rootfs, netns files) pinned in this namespace, and no system containerd in sight (dockerd
# would use /run/containerd/containerd.sock if it existed, instead of starting its own).
set -e
mount --bind "$1" /etc/docker
hostname "$2"
shift 2
awk '$5 ~ "^/run/docker/" || $5 ~ "^/var/lib/docker/" {print $5}' /proc/self/mountinfo | sort -r |
	while read -r m; do umount -l "$m" 2>/dev/null || true; done
if [ -e /run/containerd/containerd.sock ]; then mount -t tmpfs -o mode=0711 tmpfs /run/containerd; fi
exec "$@"
