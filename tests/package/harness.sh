#!/usr/bin/env bash
# Install supz's .deb into a clean Debian 12 root and run tests/package/inroot.sh there.
#   harness.sh CACHE DEB
# CACHE holds the debootstrapped root (made once: debootstrap, apt lists, the .debs the test
# installs downloaded ahead); every run works on an overlay of it, inside new mount, pid and
# network namespaces: no network (installing downloads nothing), and when the namespace's first
# process ends the kernel kills every process and drops every mount it made, even on failure.
set -euo pipefail
cache="$1"; deb="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)"
[ -n "$mirror" ] || mirror="$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
debs=(supervisor python3-click python3-jinja2 python3-pyinotify python3-prometheus-client python3-aiohttp rsync logrotate passwd systemd)
# The cache is remade when this list changes.
ready="ready-$(echo "${debs[*]}" | md5sum | cut -c1-12)"

mkdir -p "$(dirname "$cache")"
exec 9>"$cache.lock"
flock 9  # one run makes the cache; concurrent runs wait for it
if [ ! -f "$cache/$ready" ]; then
    rm -rf "$cache/root"; mkdir -p "$cache"
    echo "harness: debootstrap bookworm from $mirror into $cache/root" >&2
    debootstrap --variant=minbase bookworm "$cache/root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    cp /etc/resolv.conf "$cache/root/etc/resolv.conf"
    chroot "$cache/root" apt-get update -qq
    chroot "$cache/root" apt-get install -y -qq --download-only --no-install-recommends "${debs[@]}" >/dev/null
    rm -f "$cache"/ready*
    touch "$cache/$ready"
fi

work="$(mktemp -d /tmp/supz-pkgtest.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/upper" "$work/work" "$work/merged"
cp "$deb" "$work/"; cp "${INROOT:-$here/inroot.sh}" "$work/inroot.sh"
rc=0
unshare --mount --pid --net --fork --kill-child --propagation private bash -euo pipefail -c '
    cache="$1"; work="$2"; deb="$(basename "$3")"
    m="$work/merged"
    mount -t overlay overlay -o "lowerdir=$cache/root,upperdir=$work/upper,workdir=$work/work" "$m"
    mount -t proc proc "$m/proc"
    mount -t tmpfs tmpfs "$m/run"
    mount -t tmpfs tmpfs "$m/tmp"
    ip link set lo up 2>/dev/null || true
    cp "$work/$deb" "$work/inroot.sh" "$m/tmp/"
    chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive bash /tmp/inroot.sh "/tmp/$deb"
' harness "$cache" "$work" "$deb" || rc=$?
exit "$rc"
