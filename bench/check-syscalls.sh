#!/usr/bin/env bash
# Checks the benchmark's premise: the engine (bench/engine-cycle.mjs), bench/cycle.c and
# bench/raw-koffi.mjs make the same system calls, with the same arguments, in the same order.
# Each runs 3 cycles on a scratch tmpfs under `strace -f`; the calls of the thread that opened
# the root, from that open to the root's close, are normalized (fd numbers, results, spacing)
# and diffed. Exit 0 and "identical" if all three agree.
#   usage: bench/check-syscalls.sh       (as root, after `npm run build`; needs strace and cc)
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)

# Mounting happens in a private mount namespace of our own, so nothing can reach the host.
if [ -z "${MOUNTAT_CHECK_IN_NAMESPACE:-}" ]; then
  MOUNTAT_CHECK_IN_NAMESPACE=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

work=$(mktemp -d /tmp/mountat-check-XXXXXX)
root="$work/root"
mkdir "$root"
mount -t tmpfs mountat-check "$root"
trap 'umount -l "$root" 2>/dev/null; rm -rf "$work"' EXIT
cc -O2 -Wall -Wextra -o "$work/cycle" "$bench/cycle.c"

calls=statx,openat2,mkdirat,fsopen,fsconfig,fsmount,move_mount,umount2,unlinkat,close,open_tree,mount_setattr,openat

# The calls between the root's open and its close, by the thread that opened it (Node's other
# threads never make these calls, but are filtered out all the same). Files opened with plain
# openat are the measurement's own (/proc/thread-self/schedstat, read between batches), not
# the cycle's: they and their close are dropped.
extract() {
  local trace=$1 line pid fd
  line=$(grep -m1 "openat2(AT_FDCWD, \"$root\"" "$trace")
  pid=${line%% *}
  fd=${line##*= }
  awk -v pid="$pid" -v fd="$fd" -v root="$root" '
    $1 != pid { next }
    index($0, "openat2(AT_FDCWD, \"" root "\"") { inside = 1; next }
    inside && index($0, "close(" fd ")") { exit }
    !inside { next }
    { sub(/^[0-9]+ +/, "") }
    /^openat\(/ { own[$NF] = 1; next }
    /^close\(/ { n = $0; sub(/^close\(/, "", n); sub(/\).*/, "", n); if (n in own) { delete own[n]; next } }
    { print }
  ' "$trace" | normalize "$fd"
}

# Same text for the same call: the root fd is ROOT, other fds and results N, statx's output
# struct dropped, spacing before "=" collapsed.
normalize() {
  sed -E -e 's/, \{stx_mask=.*\}\) += /) = /' \
    -e "s/\\(${1}([,)])/(ROOT\\1/" -e 's/ +=  *([0-9]+)$/ = N/' -e 's/ +=  *-1 / = -1 /' \
    -e 's/fd\/[0-9]+/fd\/N/' -e 's/\(([0-9]+)([,)])/(N\2/' -e 's/, [0-9]+, ""/, N, ""/'
}

strace -f -qq -o "$work/c.trace" -e trace="$calls" "$work/cycle" "$root" 3 1 0 >/dev/null
strace -f -qq -o "$work/raw.trace" -e trace="$calls" node "$bench/raw-koffi.mjs" "$root" 3 1 0 >/dev/null
strace -f -qq -o "$work/engine.trace" -e trace="$calls" node "$bench/engine-cycle.mjs" "$root" 3 1 0 >/dev/null
for kind in c raw engine; do extract "$work/$kind.trace" >"$work/$kind.calls"; done

status=0
for kind in raw engine; do
  if ! diff -u --label cycle.c "$work/c.calls" --label "$kind" "$work/$kind.calls"; then
    echo "check-syscalls: $kind differs from cycle.c" >&2
    status=1
  fi
done
count=$(wc -l <"$work/c.calls")
if [ "$count" -eq 0 ] || [ $((count % 3)) -ne 0 ]; then
  echo "check-syscalls: cycle.c made $count calls in 3 cycles: the trace was not read right" >&2
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "identical: engine, cycle.c and raw koffi each made $((count / 3)) calls per cycle, in the same order"
  echo "one cycle, as cycle.c made it:"
  head -n $((count / 3)) "$work/c.calls" | sed 's/^/  /'
fi
exit "$status"
