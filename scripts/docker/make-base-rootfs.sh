#!/bin/sh
# Makes the two base root filesystems the Dockerfile is built from where no registry can be reached:
#   runtime.tar  Debian bookworm (minbase: util-linux is in it) and tini, with this machine's Node at /usr/local/bin
#   build.tar    the same plus gcc, libc6-dev and libseccomp-dev (the static launcher and action starter) and
#                npm, and this machine's extra CA certificates (/usr/local/share/ca-certificates), trusted by npm,
#                so `npm ci` in the build stage reaches the registry the way the machine does (through its TLS
#                proxy, if any)
# Both come from Debian's packages via debootstrap; Node is copied from the machine, laid out as in the official
# node images (/usr/local/bin/node, /usr/local/lib/node_modules/npm) so the Dockerfile works on either.
# The result is cached under $MOUNTAT_CACHE (default /var/cache/mountat) by a key over this script and the Node
# binary, so a second run on the same machine takes a second; a change to this script (a package added to the build
# root, say) changes the key, so a root cached before it is made again rather than reused.
# Usage: make-base-rootfs.sh  -> prints the directory holding runtime.tar and build.tar
set -eu

cache=${MOUNTAT_CACHE:-/var/cache/mountat}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")   # …/node_modules/npm
extra_ca=/usr/local/share/ca-certificates
key=$( (cat "$0"; node --version; npm --version; echo "$mirror"; cat "$extra_ca"/*.crt 2>/dev/null || true) | sha256sum | cut -c1-16)
out="$cache/base-rootfs/$key"

if [ -f "$out/runtime.tar" ] && [ -f "$out/build.tar" ]; then
  echo "$out"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mountat-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

echo "make-base-rootfs: debootstrap $suite from $mirror (a few minutes, cached afterwards)" >&2
debootstrap --variant=minbase --include=tini "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  echo "make-base-rootfs: debootstrap failed (log above)" >&2
  exit 1
}

add_node() {
  mkdir -p "$1/usr/local/bin" "$1/usr/local/lib/node_modules"
  cp "$node_bin" "$1/usr/local/bin/node"
}
add_npm() {
  cp -a "$npm_dir" "$1/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"
}
clean() {
  rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/tmp/* "$1"/var/log/*.log
}
pack() {
  tar --numeric-owner -C "$1" -cf "$2" .
}

add_node "$root"
# Node from the machine must run on the root's own libraries (libstdc++ and glibc of bookworm).
chroot "$root" /usr/local/bin/node --version >/dev/null || { echo "make-base-rootfs: this machine's node does not run in the bookworm root" >&2; exit 1; }
clean "$root"
mkdir -p "$work/out"
pack "$root" "$work/out/runtime.tar"

echo "make-base-rootfs: adding gcc, libc6-dev and libseccomp-dev for the build stage" >&2
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev libseccomp-dev ca-certificates' \
  >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; echo "make-base-rootfs: apt-get in the build root failed" >&2; exit 1; }
: >"$root/etc/resolv.conf"
if ls "$extra_ca"/*.crt >/dev/null 2>&1; then
  cp "$extra_ca"/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
add_npm "$root"
# npm's global config (prefix /usr/local): Node does not read the system trust store by itself.
mkdir -p "$root/usr/local/etc"
echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >"$root/usr/local/etc/npmrc"
clean "$root"
pack "$root" "$work/out/build.tar"

mkdir -p "$(dirname "$out")"
# Older keys are of no use any more: keep one pair.
find "$(dirname "$out")" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
mv "$work/out" "$out"
echo "$out"
