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
for applet in $("$dir/bin/busybox" --list); do
  [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
ln -sfn ../../bin/env "$dir/usr/bin/env"
