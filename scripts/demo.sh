#!/usr/bin/env bash
# The quick start's main job, on a built-in busybox root: first `mountat exec` mounts proc, sysfs
# and tmpfs, runs a command chrooted there that uses all three, and unmounts; then `mountat
# runner` serves one real Run over its UNIX socket, as bb_worker would send it. Both run in a
# private mount namespace so that even a crash could leave nothing mounted on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
root=${MOUNTAT_DEMO_ROOT:-${TMPDIR:-/tmp}/mountat-demo-root}
rm -rf "$root"
scripts/make-busybox-root.sh "$root"
script='echo "readlink /proc/self/exe: $(readlink /proc/self/exe)"
echo "/sys/devices/system/cpu/online: $(cat /sys/devices/system/cpu/online)"
echo written-in-tmp > /tmp/hello && echo "/tmp/hello: $(cat /tmp/hello)"
echo "mounts seen inside the root:"; cut -d" " -f5- /proc/self/mountinfo | grep -E "^/(proc|sys|tmp)( |/)"'
echo "== mountat exec =="
unshare --mount --propagation private \
  sh -c 'node bin/mountat.js exec --root "$1" --state-dir "$1.state" -- /bin/sh -c "$2"; rc=$?
         left=$(awk -v r="$1/" "index(\$5, r) == 1" /proc/self/mountinfo | wc -l)
         echo "after exec: exit status $rc, $left mount(s) left under the root"; exit $rc' demo "$root" "$script"
echo
echo "== mountat runner =="
exec unshare --mount --propagation private node scripts/runner-demo.mjs
