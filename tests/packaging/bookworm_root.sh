#!/usr/bin/env bash
# bookworm_root.sh - the Debian 12 root that packaging.nspawn boots with
# systemd-nspawn, made once with debootstrap and kept outside the checkout.
#
#   bookworm_root.sh [CACHE_DIR] [PACKAGE...]
#
# CACHE_DIR defaults to $TRACKGATE_NSPAWN_CACHE or
# /var/cache/trackgate-tests/bookworm.  When it is missing, debootstrap
# (--variant=minbase) fills it from the Debian mirror this machine's apt
# uses, with systemd, python3, curl and apt's lists; it is built in
# CACHE_DIR.new and renamed only when complete, so an interrupted run leaves
# no half root to reuse.  Then the .debs of redis-server and of each PACKAGE
# (the .deb's Depends) that the root lacks are downloaded into its apt cache
# (apt-get --download-only in a chroot, with the host's network), so the
# test can install them inside the container, which has no network.
# First run: about 65 MB of downloads and about 75 s; afterwards a
# few seconds, and nothing is downloaded unless the .deb's Depends changed.
# Needs root, debootstrap and network access on the first run.
set -euo pipefail

cache=${1:-${TRACKGATE_NSPAWN_CACHE:-/var/cache/trackgate-tests/bookworm}}
shift || true

# The mirror of this machine's apt sources (deb822 or one-line), else Debian's.
mirror() {
	local m
	m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list 2>/dev/null |
		grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
	echo "${m:-http://deb.debian.org/debian}"
}

# chroot_run CMD...: CMD in the root, with the host's resolver and /proc.
chroot_run() {
	cp -L /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null || true
	local root=$1
	shift
	mount -t proc proc "$root/proc"
	local rc=0
	chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@" || rc=$?
	umount "$root/proc"
	return "$rc"
}

if [ ! -x "$cache/usr/lib/systemd/systemd" ]; then
	command -v debootstrap >/dev/null || {
		echo "bookworm_root.sh: debootstrap not found (tools/deps installs it)" >&2
		exit 77
	}
	url=$(mirror)
	echo "bookworm_root.sh: debootstrap bookworm from $url into $cache (first run only)"
	rm -rf "$cache.new"
	mkdir -p "$(dirname "$cache")"
	start=$(date +%s)
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,curl,procps \
		bookworm "$cache.new" "$url" >"$cache.log" 2>&1 || {
		tail -20 "$cache.log" >&2
		exit 1
	}
	echo "deb $url bookworm main" >"$cache.new/etc/apt/sources.list"
	chroot_run "$cache.new" apt-get update -q >/dev/null
	# No getty in the container: nothing a test needs, and no console to
	# wait on.  An empty machine-id: each boot makes its own.
	rm -rf "$cache.new/etc/systemd/system/getty.target.wants" "$cache.new/etc/machine-id"
	: >"$cache.new/etc/machine-id"
	mv "$cache.new" "$cache"
	echo "bookworm_root.sh: root ready in $(($(date +%s) - start)) s ($(du -sh "$cache" | cut -f1))"
fi

# The packages the test installs inside: their .debs must be in the root's
# apt cache (the container has no network).
want=(redis-server "$@")
missing=()
# shellcheck disable=SC2016 # ${Status} is dpkg-query's
for p in "${want[@]}"; do
	ls "$cache/var/cache/apt/archives/${p}_"*.deb >/dev/null 2>&1 ||
		chroot "$cache" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "bookworm_root.sh: downloading into the root's apt cache: ${missing[*]}"
	chroot_run "$cache" apt-get install -q -y --download-only --no-install-recommends \
		"${missing[@]}" >/dev/null
fi
