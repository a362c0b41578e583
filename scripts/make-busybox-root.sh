#!/usr/bin/env bash
# Makes a minimal action root: a static busybox and its applets, and nothing else (no proc,
# sys or tmp: the engine creates them). Used by the quick start and the tests.
# usage: scripts/make-busybox-root.sh DIR
set -euo pipefail
dir=${1:?usage: make-busybox-root.sh DIR}
# Debian's busybox-static puts a static binary at /bin/busybox: it runs in a root with no libc.
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "make-busybox-root: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dir/bin" "$dir/usr/bin"
cp "$busybox" "$dir/bin/busybox"
# Relative links, so they resolve inside the chroot; one perl (Essential on Debian) instead of
# hundreds of ln processes.
cd "$dir/bin"
# shellcheck disable=SC2046
perl -e 'for (@ARGV) { symlink("busybox", $_) or $!{EEXIST} or die "symlink $_: $!\n" }' $(./busybox --list)
cd - >/dev/null
ln -sfn ../../bin/env "$dir/usr/bin/env"
